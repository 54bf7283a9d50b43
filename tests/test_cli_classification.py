"""``gdlab fit/predict/compare/sweep`` with a classification (or Poisson) --loss: the classes named in the output,
the saved model and ``predict`` equal to the library's descent read through the loss (argmax, the inverse link),
probabilities summing to 1; and every mistake one line naming the flag, exit code 2, no traceback, nothing
written."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.preprocessing import LabelEncoder

import gdlab
from cli_driver import run_cli_batch
from gdlab.losses import get_loss

ENV = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
CULTIVARS = np.array(["barolo", "grignolino", "barbera"])  # load_wine's classes 0, 1, 2
ALPHA = "0.1"  # an L2 penalty: the raw wine and breast-cancer classes are (nearly) separable, and then only a
ITERS = "300"  # penalised log-loss has a minimiser


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("classes")
    wine = load_wine(as_frame=True).frame.rename(columns={"od280/od315_of_diluted_wines": "od280"})
    wine.assign(target=CULTIVARS[wine["target"]]).to_csv(d / "wine.csv", index=False)  # raw features, names
    wine.to_csv(d / "wine_int.csv", index=False)  # classes as integers 0, 1, 2
    wine.drop(columns="target").iloc[::7].to_csv(d / "wine_new.csv", index=False)  # new rows, no target
    cancer = load_breast_cancer(as_frame=True).frame
    cancer.columns = [c.replace(" ", "_") for c in cancer.columns]
    cancer.assign(target=np.array(["malignant", "benign"])[cancer["target"]]).to_csv(d / "cancer.csv", index=False)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 2, size=(300, 2))
    counts = rng.poisson(np.exp(0.3 + 0.8 * x[:, 0] - 0.5 * x[:, 1]))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "n": counts}).to_csv(d / "counts.csv", index=False)
    (d / "one.csv").write_text("x,y\n1,a\n2,a\n3,a\n")
    (d / "signed.csv").write_text("x,y\n1,2\n2,-1\n3,0\n4,5\n")
    (d / "real.csv").write_text("x,y\n1,2.5\n2,1\n3,0\n")
    (d / "missing.csv").write_text("x,y\n1,a\n2,\n3,b\n")
    return d


def _features(path, drop="target"):
    frame = pd.read_csv(path)
    return np.ascontiguousarray(frame.drop(columns=[c for c in [drop] if c in frame]).to_numpy(dtype=float)), frame


CASES = {
    "wine fit": ["fit", "wine.csv", "-t", "target", "--loss", "log_loss", "--penalty", "l2", "--alpha", ALPHA,
                 "--iters", ITERS, "--save", "wine.json", "--format", "json", "-q"],
    "wine table": ["fit", "wine.csv", "-t", "target", "--loss", "log_loss", "--penalty", "l2", "--alpha", ALPHA,
                   "--iters", "20", "-q"],
    "wine predict": ["predict", "wine.json", "wine_new.csv", "--out", "wine_pred.csv"],
    "cancer fit": ["fit", "cancer.csv", "-t", "target", "--loss", "log_loss", "--penalty", "l2", "--alpha", ALPHA,
                   "--iters", ITERS, "--save", "cancer.json", "--format", "json", "-q"],
    "cancer table": ["fit", "cancer.csv", "-t", "target", "--loss", "log_loss", "--penalty", "l2", "--alpha",
                     ALPHA, "--iters", "20", "-q"],
    "cancer predict": ["predict", "cancer.json", "cancer.csv"],
    "hinge fit": ["fit", "wine.csv", "-t", "target", "--loss", "hinge", "--penalty", "l2", "--alpha", ALPHA,
                  "--iters", ITERS, "--save", "hinge.json", "-q"],
    "hinge predict": ["predict", "hinge.json", "wine_new.csv"],
    "huber fit": ["fit", "wine_int.csv", "-t", "target", "--loss", "modified_huber", "--penalty", "l2", "--alpha",
                  ALPHA, "--iters", ITERS, "--save", "mh.json", "-q"],
    "huber predict": ["predict", "mh.json", "wine_new.csv"],
    "poisson fit": ["fit", "counts.csv", "-t", "n", "--loss", "poisson", "--iters", ITERS, "--save", "pois.json",
                    "-q"],
    "poisson predict": ["predict", "pois.json", "counts.csv"],
    "compare": ["compare", "wine.csv", "-t", "target", "--features", "alcohol,malic_acid", "--loss", "log_loss",
                "--iters", "200"],
    "compare json": ["compare", "wine.csv", "-t", "target", "--features", "alcohol,malic_acid", "--loss",
                     "log_loss", "--iters", "200", "--format", "json"],
    "sweep": ["sweep", "wine.csv", "-t", "target", "--loss", "log_loss", "--penalty", "l2", "--alpha", ALPHA,
              "--lr", "0.01,0.1", "--iters", "5,20", "--standardize", "--format", "json"],
    "sweep table": ["sweep", "wine.csv", "-t", "target", "--loss", "log_loss", "--lr", "0.1,1", "--iters", "5,200",
                    "--standardize"],
}

ERRORS = {  # argv -> what the one line must say
    "one label": (["fit", "one.csv", "-t", "y", "--loss", "log_loss", "--save", "e.json"],
                  ["--target y", "one label ('a')", "at least two classes"]),
    "one label sweep": (["sweep", "one.csv", "-t", "y", "--loss", "hinge"], ["--target y", "one label"]),
    "poisson negative": (["fit", "signed.csv", "-t", "y", "--loss", "poisson", "--save", "e.json"],
                         ["--loss poisson", "counts", "--target y", "-1 at row 1"]),
    "poisson negative compare": (["compare", "signed.csv", "-t", "y", "--loss", "poisson"], ["--loss poisson", "-1"]),
    "poisson negative sweep": (["sweep", "signed.csv", "-t", "y", "--loss", "poisson"], ["--loss poisson", "-1"]),
    "unknown loss": (["fit", "wine.csv", "-t", "target", "--loss", "logistic"], ["unknown loss 'logistic'",
                                                                              "--loss must be one of", "log_loss"]),
    "unknown loss compare": (["compare", "wine.csv", "-t", "target", "--loss", "logit"], ["--loss must be one of"]),
    "unknown loss sweep": (["sweep", "wine.csv", "-t", "target", "--loss", "logit"], ["--loss must be one of"]),
    "not a label": (["fit", "real.csv", "-t", "y", "--loss", "log_loss"], ["--target y", "2.5 at row 0",
                                                                            "not a class label", "regression --loss"]),
    "missing label": (["fit", "missing.csv", "-t", "y", "--loss", "hinge"], ["column 'y'", "no label at row 1",
                                                                              "line 3"]),
    "closed form": (["fit", "wine.csv", "-t", "target", "--loss", "log_loss", "--solver", "closed-form"],
                    ["--solver closed-form", "least squares only", "--loss log_loss"]),
    "stream": (["fit", "wine.csv", "-t", "target", "--loss", "log_loss", "--stream"],
               ["--target target", "class names", "--stream"]),
    "stream multinomial": (["fit", "wine_int.csv", "-t", "target", "--loss", "multinomial", "--stream"],
                           ["--loss multinomial", "not supported yet", "--stream"]),
    "dpi": (["workshop", "--dpi", "20", "--out", "ws"], ["--dpi", "between 50 and 600", "got 20"]),
    "model without classes": (["predict", "noclasses.json", "wine_new.csv", "--out", "p.csv"],
                              ["noclasses.json", '"classes"']),
    "model wrong coef rows": (["predict", "tworows.json", "wine_new.csv", "--out", "p.csv"],
                              ["tworows.json", '"coef"', "one list of coefficients per class (3)"]),
}


@pytest.fixture(scope="module")
def outcomes(data):
    results = run_cli_batch([(argv, data) for argv in CASES.values()], ENV)
    out = dict(zip(CASES, results))
    for name, o in out.items():
        assert o.returncode == 0 and "Traceback" not in o.stderr, (name, o.stderr)
    return out


def test_multinomial_fit_and_predict_equal_the_library(data, outcomes):
    X, frame = _features(data / "wine.csv")
    encoder = LabelEncoder().fit(frame["target"])
    Y = np.eye(3)[encoder.transform(frame["target"])]
    res = gdlab.descend(X, Y, loss="multinomial", penalty="l2", alpha=float(ALPHA), max_iter=int(ITERS), warn=False)
    printed = json.loads(outcomes["wine fit"].stdout)
    np.testing.assert_allclose(printed["coef"], res.coef, rtol=1e-10, atol=1e-12)
    assert printed["classification"]["classes"] == ["barbera", "barolo", "grignolino"] == list(encoder.classes_)
    assert printed["classification"]["scheme"] == "multinomial" and printed["classification"]["loss"] == "multinomial"
    index = np.argmax(res.predict(X), axis=1)
    assert printed["classification"]["accuracy"] == pytest.approx(np.mean(index == encoder.transform(frame["target"])))
    model = json.loads((data / "wine.json").read_text())
    assert model["version"] == 2 and model["loss"] == "multinomial" and model["classes"] == list(encoder.classes_)
    assert np.shape(model["coef"]) == (3, 13) and len(model["intercept"]) == 3

    X_new, _ = _features(data / "wine_new.csv")
    proba = get_loss("multinomial").predict(res.predict(X_new))
    pred = pd.read_csv(data / "wine_pred.csv")
    assert list(pred.columns) == ["target_predicted", "p_barbera", "p_barolo", "p_grignolino"]
    assert list(pred["target_predicted"]) == list(encoder.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_allclose(pred.iloc[:, 1:].to_numpy(), proba, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pred.iloc[:, 1:].sum(axis=1), 1.0, rtol=1e-12)


def test_the_fit_table_names_the_classes_and_the_scheme(outcomes):
    out = outcomes["wine table"].stdout
    header = next(line for line in out.splitlines() if "term" in line)
    assert all(name in header for name in ("barbera", "barolo", "grignolino"))
    assert "accuracy" in out and "log-loss" in out and "multinomial" in out
    assert "--loss log_loss with more than two classes is the multinomial loss" in out
    binary = outcomes["cancer table"].stdout
    assert "malignant (vs benign)" in binary and "'malignant' the positive class" in binary and "2, binary" in binary


def test_binary_fit_and_predict_equal_the_library(data, outcomes):
    X, frame = _features(data / "cancer.csv")
    y = (frame["target"] == "malignant").to_numpy(dtype=float)  # LabelEncoder: benign 0, malignant 1
    res = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=float(ALPHA), max_iter=int(ITERS), warn=False)
    printed = json.loads(outcomes["cancer fit"].stdout)
    np.testing.assert_allclose(printed["coef"], res.coef, rtol=1e-10, atol=1e-12)
    assert printed["classification"]["classes"] == ["benign", "malignant"]
    assert printed["classification"]["scheme"] == "binary"
    eta = res.predict(X)
    p = get_loss("log_loss").predict(eta)
    from sklearn.metrics import log_loss

    assert printed["classification"]["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)
    model = json.loads((data / "cancer.json").read_text())
    assert model["loss"] == "log_loss" and model["scheme"] == "binary" and len(model["coef"]) == 30
    pred = pd.read_csv(pd.io.common.StringIO(outcomes["cancer predict"].stdout))
    assert list(pred.columns) == ["target_predicted", "p_benign", "p_malignant"]
    assert list(pred["target_predicted"]) == list(np.where(eta > 0, "malignant", "benign"))
    np.testing.assert_allclose(pred["p_malignant"], p, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pred["p_benign"] + pred["p_malignant"], 1.0, rtol=1e-12)


def test_one_vs_rest_hinge_writes_classes_only(data, outcomes):
    X, frame = _features(data / "wine.csv")
    encoder = LabelEncoder().fit(frame["target"])
    Y = np.eye(3)[encoder.transform(frame["target"])]
    res = gdlab.descend(X, Y, loss="hinge", penalty="l2", alpha=float(ALPHA), max_iter=int(ITERS), warn=False)
    assert "one-vs-rest" in outcomes["hinge fit"].stdout
    X_new, _ = _features(data / "wine_new.csv")
    pred = pd.read_csv(pd.io.common.StringIO(outcomes["hinge predict"].stdout))
    assert list(pred.columns) == ["target_predicted"]  # hinge gives no probabilities
    assert list(pred["target_predicted"]) == list(encoder.classes_[np.argmax(res.predict(X_new), axis=1)])


def test_one_vs_rest_modified_huber_probabilities_and_integer_classes(data, outcomes):
    X, frame = _features(data / "wine_int.csv")
    Y = np.eye(3)[frame["target"].to_numpy()]
    res = gdlab.descend(X, Y, loss="modified_huber", penalty="l2", alpha=float(ALPHA), max_iter=int(ITERS),
                        warn=False)
    model = json.loads((data / "mh.json").read_text())
    assert model["classes"] == [0, 1, 2] and model["scheme"] == "one-vs-rest"
    X_new, _ = _features(data / "wine_new.csv")
    eta = res.predict(X_new)
    pred = pd.read_csv(pd.io.common.StringIO(outcomes["huber predict"].stdout))
    assert list(pred.columns) == ["target_predicted", "p_0", "p_1", "p_2"]
    assert list(pred["target_predicted"]) == list(np.argmax(eta, axis=1))
    # scikit-learn's SGDClassifier.predict_proba for modified_huber, one-vs-rest, written out
    p = (np.clip(eta, -1, 1) + 1) / 2
    total = p.sum(axis=1, keepdims=True)
    expected = np.where(total > 0, p / np.where(total > 0, total, 1), 1 / 3)
    np.testing.assert_allclose(pred.iloc[:, 1:].to_numpy(), expected, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pred.iloc[:, 1:].sum(axis=1), 1.0, rtol=1e-12)


def test_poisson_predicts_the_mean(data, outcomes):
    frame = pd.read_csv(data / "counts.csv")
    X = np.ascontiguousarray(frame[["a", "b"]].to_numpy(dtype=float))
    res = gdlab.descend(X, frame["n"].to_numpy(dtype=float), loss="poisson", max_iter=int(ITERS), warn=False)
    model = json.loads((data / "pois.json").read_text())
    assert model["version"] == 2 and model["loss"] == "poisson" and "classes" not in model
    pred = pd.read_csv(pd.io.common.StringIO(outcomes["poisson predict"].stdout))
    np.testing.assert_allclose(pred["n_predicted"], np.exp(res.predict(X)), rtol=1e-9)


def test_compare_takes_the_loss_and_names_the_classes(data, outcomes):
    out = outcomes["compare"].stdout
    assert "multinomial problem" in out and "0 = barbera, 1 = barolo, 2 = grignolino" in out
    rows = json.loads(outcomes["compare json"].stdout)
    assert {"alcohol[barbera]", "alcohol[barolo]", "intercept[grignolino]"} <= set(rows[0])
    X, frame = _features(data / "wine.csv")
    Y = np.eye(3)[LabelEncoder().fit_transform(frame["target"])]
    ref = gdlab.compare(X[:, :2], Y, loss="multinomial", max_iter=200, standardize=True,
                        feature_names=["alcohol", "malic_acid"])
    assert [r["method"] for r in rows] == [r.method for r in ref.rows]
    newton = next(r for r in rows if r["method"].endswith("newton"))
    np.testing.assert_allclose(newton["alcohol[barolo]"], ref["newton"].coef[0, 1], rtol=1e-10)


def test_sweep_takes_the_loss(data, outcomes):
    X, frame = _features(data / "wine.csv")
    Y = np.eye(3)[LabelEncoder().fit_transform(frame["target"])]
    ref = gdlab.sweep(X, Y, [0.01, 0.1], [5, 20], loss="multinomial", penalty="l2", alpha=float(ALPHA),
                      standardize=True)
    printed = json.loads(outcomes["sweep"].stdout)
    np.testing.assert_allclose(printed["final_loss"], ref.final_loss, rtol=1e-12)
    assert printed["classification"]["classes"] == ["barbera", "barolo", "grignolino"]
    table = outcomes["sweep table"].stdout
    assert "Final mean multinomial" in table and "a bound from the largest curvature" in table
    assert "–: the run ended before that iteration without diverging" in table and "--penalty l2" in table


def test_mistakes_are_one_line_naming_the_flag(data, outcomes):
    spec = json.loads((data / "wine.json").read_text())  # the model of the "wine fit" case, broken two ways
    (data / "noclasses.json").write_text(json.dumps({k: v for k, v in spec.items() if k != "classes"}))
    (data / "tworows.json").write_text(json.dumps({**spec, "coef": spec["coef"][:2]}))
    before = sorted(p.name for p in data.iterdir())
    results = run_cli_batch([(argv, data) for argv, _ in ERRORS.values()], ENV)
    for (name, (argv, words)), o in zip(ERRORS.items(), results):
        lines = o.stderr.strip().splitlines()
        assert o.returncode == 2, (name, o.returncode, o.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"gdlab {argv[0]}: error: "), (name, o.stderr)
        assert "Traceback" not in o.stderr and o.stdout == "", name
        for word in words:
            assert word in lines[0], (name, word, lines[0])
    assert sorted(p.name for p in data.iterdir()) == before  # nothing written, nothing half-written


def test_compare_with_a_loss_it_does_not_support_says_so(data, monkeypatch, capsys):
    """A gdlab.compare that fits least squares only (no ``loss`` parameter): one line, exit 2."""
    import importlib

    import gdlab.cli

    def least_squares_only(X, y, *, max_iter=1000, tol=1e-10, standardize="auto", feature_names=None):
        raise AssertionError("not to be called")

    monkeypatch.setattr(importlib.import_module("gdlab.compare"), "compare", least_squares_only)
    monkeypatch.chdir(data)
    with pytest.raises(SystemExit) as exit_info:
        gdlab.cli.main(["compare", "wine.csv", "-t", "target", "--loss", "log_loss"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == ("gdlab compare: error: compare --loss log_loss is not supported yet (this gdlab.compare fits "
                   "least squares only); fit it with gdlab fit --loss log_loss.")


def test_workshop_passes_dpi_to_the_report(tmp_path, monkeypatch, capsys):
    import importlib

    import gdlab.cli

    seen = {}

    class Report:
        index = tmp_path / "index.html"

    def write(ws, out, *, gif=True, dpi=110):
        seen["dpi"] = dpi
        return Report()

    monkeypatch.setattr(importlib.import_module("gdlab.workshop"), "run_workshop", lambda: object())
    monkeypatch.setattr(importlib.import_module("gdlab.report"), "write_workshop_report", write)
    assert gdlab.cli.main(["workshop", "--dpi", "250", "--out", str(tmp_path / "ws"), "--quiet"]) == 0
    assert seen == {"dpi": 250} and capsys.readouterr().out.strip() == str(Report.index.resolve())
