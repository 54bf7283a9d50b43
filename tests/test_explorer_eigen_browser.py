"""The Eigen-directions view in Chromium (issue 14, item 2): the slow and fast arrows on the contour, the card with
the error along each eigenvector and momentum's stability region, and the Standardise toggle changing both.

The numbers the page draws are compared with numpy.linalg.eigh of the Hessian formed here from the rows."""

from __future__ import annotations

import numpy as np
import pytest

from test_explorer_browser import ARTIFACTS, after_update, browser, context, open_page, page, server, shot  # noqa: F401

pytestmark = pytest.mark.browser


def numpy_hessian(X, standardize=False):
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    if standardize:
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    X_b = np.c_[np.ones(len(X)), X]
    return 2.0 / len(X_b) * X_b.T @ X_b


def arrows(page) -> list[dict]:
    return page.evaluate("""() => document.getElementById('layer-surface').traces.filter((d) => d.eigen)
        .map((d) => ({name: d.name, x: d.x, y: d.y, px: d.px, py: d.py}))""")


def open_card(page) -> None:
    before = page.evaluate("document.body.dataset.eigenShown || ''")
    page.click("#eigen-box summary")
    page.wait_for_function(f"(document.body.dataset.eigenShown || '') !== {before!r}")


def test_arrows_and_card_render_and_standardise_changes_them(page, server):
    from gdlab.explorer.model import builtin_datasets

    X = next(ds for ds in builtin_datasets() if ds.id == "houses").X
    open_page(page, server, "?dataset=houses")
    raw = arrows(page)
    assert [a["name"].split(" (")[0] for a in raw] == ["slow direction", "fast direction"]
    lam = np.linalg.eigvalsh(numpy_hessian(X)[:2, :2])  # the surface shows the intercept and the size weight
    assert raw[0]["name"] == f"slow direction (λ_min = {lam[0]:.4g})"
    assert raw[1]["name"] == f"fast direction (λ_max = {lam[1]:.4g})"
    # both drawn through the optimum (their midpoint), on screen
    for a in raw:
        assert all(np.isfinite(a["px"])) and all(np.isfinite(a["py"]))
    legend = page.inner_text("#legend-surface")
    assert "slow direction (λ_min" in legend and "fast direction (λ_max" in legend

    open_card(page)
    assert page.evaluate("document.body.dataset.eigenShown") != "error"
    # the plot of the components: one measured and one predicted curve per eigen-direction (3 parameters)
    n_curves = page.evaluate("document.getElementById('plot-eigen').data.filter((d) => d.y.length > 1).length")
    assert n_curves == 6
    assert page.evaluate("document.getElementById('plot-region').data[0].type") == "heatmap"
    text = page.inner_text("#eigen-text")
    lam3 = np.linalg.eigvalsh(numpy_hessian(X))
    assert f"κ = L/μ = {lam3[-1] / lam3[0]:.4g}" in text
    assert "2/(L+μ)" in text and "Polyak" in text
    shot(page, "eigen-raw")

    after_update(page, lambda: page.click("#standardize"))
    page.wait_for_function("!document.getElementById('eigen-text').innerText.includes('1.732e+05)')")
    std = arrows(page)
    lam_s = np.linalg.eigvalsh(numpy_hessian(X, True)[:2, :2])
    assert std[0]["name"] == f"slow direction (λ_min = {lam_s[0]:.4g})"
    assert std[1]["name"] == f"fast direction (λ_max = {lam_s[1]:.4g})"
    assert std[0]["x"] != raw[0]["x"]
    lam3s = np.linalg.eigvalsh(numpy_hessian(X, True))
    kappa = f"κ = L/μ = {lam3s[-1] / lam3s[0]:.4g}"
    page.wait_for_function(f"document.getElementById('eigen-text').innerText.includes({kappa!r})")
    shot(page, "eigen-standardised")


def test_momentum_region_marks_the_run_and_fits_400_px(page, server):
    open_page(page, server, "?dataset=line&optimizer=momentum&lr=0.1&beta=0.8&iterations=60")
    open_card(page)
    names = page.evaluate("document.getElementById('plot-region').data.map((d) => d.name || '')")
    assert any(n.startswith("run A: η = 0.1, β = 0.8") for n in names)
    assert any(n.startswith("Polyak") for n in names)
    text = page.inner_text("#eigen-text")
    assert "Here η = 0.1, β = 0.8: radius" in text and "critically damped at β" in text
    shot(page, "eigen-momentum")
    page.set_viewport_size({"width": 400, "height": 900})
    page.wait_for_timeout(500)
    page.evaluate("window.dispatchEvent(new Event('resize'))")
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    for sel in ("#plot-eigen", "#plot-region", "#eigen-text"):
        b = page.locator(sel).bounding_box()
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 400 + 0.5, sel
    page.locator("#eigen-card").screenshot(path=str(ARTIFACTS / "explorer-eigen-400.png"))
    page.set_viewport_size({"width": 1440, "height": 1000})


def test_separable_classes_say_why_there_is_no_view(page, server):
    open_page(page, server, "?dataset=separable")
    open_card(page)
    assert page.evaluate("document.body.dataset.eigenShown") == "error"
    assert "no minimum" in page.inner_text("#eigen-text")
