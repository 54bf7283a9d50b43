"""examples/workshop.ipynb runs top to bottom (nbclient) and shows the workshop's numbers."""

from pathlib import Path

import numpy as np
import pytest

import gdlab

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "workshop.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cwd = tmp_path_factory.mktemp("nb")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _outputs(nb, kind):
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == kind:
                yield cell, out


def test_notebook_runs_without_errors(executed):
    errors = [f"{o.ename}: {o.evalue}" for _, o in _outputs(executed, "error")]
    assert not errors


def test_notebook_checks_gdlab_against_the_workshops_own_code(executed):
    text = "".join(o.text for _, o in _outputs(executed, "stream") if o.name == "stdout")
    assert "same data: True" in text
    assert "same weights at every iteration: True" in text
    ds = gdlab.datasets.workshop_line()
    w = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=10, tol=None, gtol=None,
                      coef_init=ds.coef_init, intercept_init=ds.intercept_init).params
    assert f"after 10 iterations: {np.round(w, 4)}" in text
    mean = gdlab.datasets.workshop_mean().X.mean()
    assert f"the mean: {mean:.6f}" in text and f"gradient descent: {mean:.6f}" in text


def test_notebook_shows_every_figure_and_the_animation(executed):
    images = [o for _, o in _outputs(executed, "display_data")] + [o for _, o in _outputs(executed, "execute_result")]
    pngs = sum("image/png" in o.data for o in images)
    assert pngs >= 10  # the workshop's three plots and gdlab's seven figures
    assert any("image/gif" in o.data for o in images)


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
