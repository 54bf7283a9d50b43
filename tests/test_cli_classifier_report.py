"""``gdlab fit --loss <classifier> --report``: the report's files are written and decode, and every number its text
states equals an independent computation (the accuracy and the confusion counts against scikit-learn's metrics on
the saved model's predictions, the gap against gdlab.solvers.newton's minimum of the objective written out in
NumPy); a fit short of the optimum gets the banner with the flags that fix it; mistakes are one line, exit code 2,
and leave nothing behind."""

import base64
import errno
import html
import io
import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.special import logsumexp
from sklearn.datasets import load_iris, load_wine
from sklearn.metrics import accuracy_score, confusion_matrix

from cli_driver import run_cli_batch
from gdlab.solvers import newton

ENV = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
SPECIES = np.array(["setosa", "versicolor", "virginica"])
ALPHA = 0.01


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("classifier_report")
    iris = load_iris(as_frame=True).frame
    petals = pd.DataFrame({"petal_length": iris["petal length (cm)"], "petal_width": iris["petal width (cm)"],
                           "species": SPECIES[iris["target"]]})
    petals.to_csv(d / "petals.csv", index=False)  # two raw features, three named classes
    petals[petals.species != "setosa"].to_csv(d / "two.csv", index=False)  # two overlapping classes
    wine = load_wine(as_frame=True).frame.rename(columns={"od280/od315_of_diluted_wines": "od280"})
    wine.to_csv(d / "wine.csv", index=False)  # 13 raw features, classes 0, 1, 2
    (d / "afile").write_text("not a folder\n")
    (d / "foreign").mkdir()
    (d / "foreign" / "notes.txt").write_text("mine\n")
    return d


def _fit(csv, target, loss, name, *extra):
    return ["fit", csv, "-t", target, "--loss", loss, "--report", f"rep_{name}", "--save", f"{name}.json",
            "--format", "json", "-q", *extra]


PENALISED = ("--penalty", "l2", "--alpha", str(ALPHA))
CASES = {
    "binary": _fit("two.csv", "species", "log_loss", "binary", *PENALISED),
    "softmax": _fit("petals.csv", "species", "log_loss", "softmax", *PENALISED),
    "multinomial": _fit("wine.csv", "target", "multinomial", "multinomial", *PENALISED),
    "short": _fit("wine.csv", "target", "log_loss", "short", *PENALISED, "--iters", "15"),
    "step": _fit("petals.csv", "species", "log_loss", "step", "--lr", "5", "--no-standardize", "--iters", "5"),
    "hinge": _fit("petals.csv", "species", "hinge", "hinge", *PENALISED),
    "modified huber": _fit("two.csv", "species", "modified_huber", "mh", *PENALISED),
}


@pytest.fixture(scope="module")
def outcomes(data):
    results = run_cli_batch([(argv, data) for argv in CASES.values()], ENV)
    out = dict(zip(CASES, results))
    for name, o in out.items():
        assert o.returncode == 0 and "Traceback" not in o.stderr, (name, o.stderr)
    return out


def _page(data, name):
    return (data / f"rep_{name}" / "index.html").read_text(encoding="utf-8")


def _text(page):
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _fact(page, key):
    m = re.search(rf"<th>{re.escape(html.escape(key))}</th><td>([^<]*)</td>", page)
    assert m, key
    return html.unescape(m.group(1))


def _model(data, name, csv, target):
    """The saved model's classes, its linear predictor on the training rows, and each row's class index."""
    spec = json.loads((data / f"{name}.json").read_text())
    frame = pd.read_csv(data / csv)
    X = frame[spec["features"]].to_numpy(dtype=float)
    coef, intercept = np.asarray(spec["coef"], dtype=float), np.asarray(spec["intercept"], dtype=float)
    eta = X @ (coef if coef.ndim == 1 else coef.T) + intercept
    labels = [str(c) for c in spec["classes"]]
    codes = np.array([labels.index(str(v)) for v in frame[target]])
    return spec, X, eta, codes


def _objective(spec, eta, codes, k):
    """The objective the CLI minimised, written out: mean loss + alpha/2 |w|^2 (the intercept unpenalised)."""
    coef = np.asarray(spec["coef"], dtype=float)
    penalty = ALPHA / 2 * float(np.sum(coef ** 2))
    if spec["scheme"] == "binary":
        s = np.where(codes == 1, 1.0, -1.0)
        return float(np.mean(np.logaddexp(0.0, -s * eta))) + penalty
    return float(np.mean(logsumexp(eta, axis=1) - eta[np.arange(len(codes)), codes])) + penalty


@pytest.mark.parametrize("name", ["binary", "softmax", "short", "hinge"])
def test_every_image_is_written_and_decodes_and_is_the_one_on_the_page(data, outcomes, name):
    folder = data / f"rep_{'short' if name == 'short' else name}"
    pngs = sorted(p.name for p in folder.glob("*.png"))
    expected = ["confusion.png", "objective.png"] + (["boundary.png"] if name != "short" else [])
    assert pngs == sorted(expected)
    page = (folder / "index.html").read_text(encoding="utf-8")
    embedded = [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    assert len(embedded) == len(pngs)
    for png in pngs:
        raw = (folder / png).read_bytes()
        assert raw in embedded, png
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            assert im.size[0] > 300 and im.size[1] > 200, png
    assert f"gdlab fit: {CASES[name][1]}" in page  # the title names the data file


@pytest.mark.parametrize("name,csv,target", [("binary", "two.csv", "species"), ("softmax", "petals.csv", "species"),
                                             ("hinge", "petals.csv", "species"), ("mh", "two.csv", "species"),
                                             ("short", "wine.csv", "target")])
def test_accuracy_and_confusion_counts_equal_sklearn_on_the_saved_models_predictions(data, outcomes, name, csv,
                                                                                    target):
    spec, X, eta, codes = _model(data, name, csv, target)
    predicted = (eta > 0).astype(int) if eta.ndim == 1 else np.argmax(eta, axis=1)
    matrix = confusion_matrix(codes, predicted, labels=range(len(spec["classes"])))
    page = _page(data, "mh" if name == "mh" else name)
    text = _text(page)
    right = int(accuracy_score(codes, predicted, normalize=False))
    acc = accuracy_score(codes, predicted)
    assert f"{right:,} of {len(codes):,} rows are classified right: accuracy {acc:.4f}" in text
    assert _fact(page, "accuracy (the data fitted)") == f"{acc:.4f} ({right:,} of {len(codes):,} rows)"
    for c, label in enumerate(spec["classes"]):
        assert f"{label}: {matrix[c, c]:,} of {matrix[c].sum():,}" in text, label
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    if off.any():
        i, j = np.unravel_index(np.argmax(off), off.shape)
        assert f"{off[i, j]:,} row{'s' if off[i, j] != 1 else ''} of class {spec['classes'][i]} predicted as " \
               f"{spec['classes'][j]}" in text
    if X.shape[1] == 2:
        wrong = len(codes) - right
        assert f"{wrong:,} row{'s lie' if wrong != 1 else ' lies'} on the wrong side" in text
    # the printed accuracy of the same run is the report's
    printed = json.loads(outcomes["short" if name == "short" else {"mh": "modified huber"}.get(name, name)].stdout)
    assert printed["classification"]["accuracy"] == pytest.approx(acc, abs=1e-15)


@pytest.mark.parametrize("name,csv,target", [("short", "wine.csv", "target"), ("multinomial", "wine.csv", "target"),
                                             ("binary", "two.csv", "species"), ("softmax", "petals.csv", "species")])
def test_the_gap_is_the_objective_less_newtons_minimum(data, outcomes, name, csv, target):
    spec, X, eta, codes = _model(data, name, csv, target)
    k = len(spec["classes"])
    f = _objective(spec, eta, codes, k)
    y = (codes == 1).astype(float) if spec["scheme"] == "binary" else np.eye(k)[codes]
    reference = newton(X, y, loss=spec["loss"], penalty="l2", alpha=ALPHA, tol=1e-14, warn=False)
    assert reference.converged
    page = _page(data, name)
    saved = json.loads((data / f"{name}.json").read_text())["result"]
    assert saved["loss"] == pytest.approx(f, rel=1e-9)  # the objective written out is the one fitted
    shown = _fact(page, "gap to the minimum")
    gap = f - reference.loss
    if name == "short":  # 15 iterations: a real distance to the minimum, printed to three digits
        assert not saved["converged"] and gap > 1e-4
        assert float(shown) == pytest.approx(gap, rel=2e-3)
        losses = saved["trajectory"]["loss"]  # the curve's caption: its first and last gap
        assert f"the gap went from {losses[0] - reference.loss:.3g} at iteration 0 to {gap:.3g} at iteration " \
               f"{saved['n_iter']}" in _text(page)
    else:  # converged: the gap is within the convergence tolerance (1e-10 of the objective)
        assert saved["converged"] and abs(gap) <= 1e-9 * abs(f)
        value = float(shown.split(":")[0])
        assert abs(value) <= 1e-9 * abs(f)
    assert _fact(page, "minimum (Newton's method)").startswith(f"{reference.loss:.10g} (")


def test_a_fit_short_of_the_optimum_gets_the_banner_with_the_flags_that_fix_it(data, outcomes):
    short, step = _page(data, "short"), _page(data, "step")
    for page in (short, step):
        assert page.count('class="banner"') == 1 and "This fit did not reach the optimum" in page
    assert "Try --lr auto" in step
    assert "did not converge in the 15 iterations allowed" in _text(short)
    for name in ("binary", "softmax", "multinomial"):
        assert 'class="banner"' not in _page(data, name)
        assert _fact(_page(data, name), "converged").startswith("yes: converged: the Newton decrement")


def test_the_coefficients_per_class_are_the_saved_models(data, outcomes):
    spec = json.loads((data / "softmax.json").read_text())
    page = _page(data, "softmax")
    head = re.search(r"<section id=\"coefficients\">.*?</section>", page, re.S).group(0)
    assert all(f"<th>{c}</th>" in head for c in spec["classes"])
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>((?:<td>[^<]*</td>)+)</tr>", head))
    for j, feature in enumerate(spec["features"]):
        cells = [float(v) for v in re.findall(r"<td>([^<]*)</td>", rows[feature])]
        np.testing.assert_allclose(cells, [row[j] for row in spec["coef"]], rtol=1e-7)
    binary = _page(data, "binary")
    assert "<th>virginica (vs versicolor)</th>" in binary


def test_a_loss_without_a_newton_reference_says_why(data, outcomes):
    page = _page(data, "hinge")
    assert _fact(page, "gap to the minimum").startswith("not computed: the hinge loss has a kink")
    assert "the shading is the predicted class (this loss gives no probabilities)" in _text(page)


ERRORS = {
    "report is a file": (["fit", "two.csv", "-t", "species", "--loss", "log_loss", "--report", "afile"],
                         ["--report", "is a file"]),
    "report is foreign": (["fit", "two.csv", "-t", "species", "--loss", "log_loss", "--report", "foreign"],
                          ["--report", "not a gdlab report"]),
    "report on a stream": (["fit", "two.csv", "-t", "species", "--loss", "log_loss", "--stream", "--report", "r"],
                           ["--report", "--stream", "not supported yet"]),
    "report closed form": (["fit", "two.csv", "-t", "species", "--loss", "hinge", "--report", "r", "--solver",
                            "closed-form"], ["--solver closed-form", "--loss hinge"]),
}


def test_mistakes_are_one_line_exit_2_and_leave_nothing(data, outcomes):
    before = sorted(p.name for p in data.iterdir())
    results = run_cli_batch([(argv, data) for argv, _ in ERRORS.values()], ENV)
    for (name, (argv, words)), o in zip(ERRORS.items(), results):
        lines = o.stderr.strip().splitlines()
        assert o.returncode == 2, (name, o.stderr)
        assert len(lines) == 1 and lines[0].startswith("gdlab fit: error: "), (name, o.stderr)
        assert o.stdout == "" and "Traceback" not in o.stderr, name
        for word in words:
            assert word in lines[0], (name, word, lines[0])
    assert sorted(p.name for p in data.iterdir()) == before


def test_a_failure_while_drawing_leaves_no_report_and_says_so(data, tmp_path, monkeypatch, capsys):
    import gdlab.cli
    from gdlab import fit_plots

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "two.csv").write_bytes((data / "two.csv").read_bytes())
    monkeypatch.setattr(fit_plots, "decision_boundary_figure", full_disk)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        gdlab.cli.main(["fit", "two.csv", "-t", "species", "--loss", "log_loss", "--report", "rep", "-q"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on the device" in err[0] and "--report" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.csv"]  # no report, no temporary folder
