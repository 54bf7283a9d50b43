"""``gdlab fit FOLDER --loss log_loss --stream`` (and --scheduler): a binary classifier fitted from files in row
batches gives the in-memory fit's coefficients to 1e-8, the same iterations, accuracy and log-loss, for labels coded
0/1 and -1/+1, Parquet and CSV; what a streamed classifier does not take (class names, other codes, more than two
classes, the softmax, mini-batches, --report) is one line naming the flag, exit code 2."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import accuracy_score, log_loss

from cli_driver import run_cli_batch

pytest.importorskip("pyarrow")
ENV = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
FEATURES = ["mean_radius", "mean_texture", "mean_smoothness", "worst_area"]  # raw: areas in the thousands


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("classifier_stream")
    cancer = load_breast_cancer(as_frame=True).frame
    cancer.columns = [c.replace(" ", "_") for c in cancer.columns]
    frame = cancer[FEATURES + ["target"]].rename(columns={"target": "label"})
    frame.to_csv(d / "cancer.csv", index=False)
    (d / "parquet").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):  # three files
        frame.iloc[rows].to_parquet(d / "parquet" / f"part{i}.parquet", index=False)
    signed = frame.assign(label=2 * frame["label"] - 1)  # the same classes coded -1/+1
    signed.to_csv(d / "signed.csv", index=False)
    (d / "csv").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(signed)), 2)):
        signed.iloc[rows].to_csv(d / "csv" / f"part{i}.csv", index=False)
    frame.assign(label=np.where(frame["label"] == 1, "benign", "malignant")).to_csv(d / "names.csv", index=False)
    frame.assign(label=frame["label"] + 1).to_csv(d / "onetwo.csv", index=False)
    frame.assign(label=np.arange(len(frame)) % 3).to_csv(d / "three.csv", index=False)
    return d


def _fit(path, *extra):
    return ["fit", path, "-t", "label", "--penalty", "l2", "--alpha", "0.01", "--format", "json", "-q", *extra]


#: a constant step: the descent's path is a contraction, so the streamed and in-memory runs (the same sums, added in
#: another order) stay within rounding of each other iterate by iterate. The default 'auto' step (Barzilai-Borwein)
#: feeds rounding back into the step, so there the two runs agree as far as their convergence claim goes.
STEP = ("--lr", "0.03", "--standardize", "--iters", "300")
CASES = {
    "memory": _fit("cancer.csv", "--loss", "log_loss", *STEP),
    "parquet folder": _fit("parquet", "--loss", "log_loss", *STEP),
    "parquet file": _fit("parquet/part0.parquet", "--loss", "log_loss", "--stream", *STEP),
    "memory part": _fit("parquet/part0.parquet", "--loss", "log_loss", *STEP),
    "signed memory": _fit("signed.csv", "--loss", "log_loss", *STEP),
    "csv folder": _fit("csv", "--loss", "log_loss", *STEP),
    "memory squared hinge": _fit("cancer.csv", "--loss", "squared_hinge", *STEP),
    "stream squared hinge": _fit("cancer.csv", "--loss", "squared_hinge", "--stream", *STEP),
    "memory hinge": _fit("cancer.csv", "--loss", "hinge", "--iters", "200"),
    "stream hinge": _fit("cancer.csv", "--loss", "hinge", "--iters", "200", "--stream"),
    "auto memory": _fit("cancer.csv", "--loss", "log_loss"),
    "auto stream": _fit("parquet", "--loss", "log_loss"),
    "stream save": _fit("parquet", "--loss", "log_loss", "--save", "stream.json", *STEP),
    "memory save": _fit("cancer.csv", "--loss", "log_loss", "--save", "memory.json", *STEP),
    "stream predict": ["predict", "stream.json", "cancer.csv", "--out", "stream_pred.csv"],
    "memory predict": ["predict", "memory.json", "cancer.csv", "--out", "memory_pred.csv"],
}


@pytest.fixture(scope="module")
def outcomes(data):
    results = run_cli_batch([(argv, data) for argv in CASES.values()], ENV)
    out = dict(zip(CASES, results))
    for name, o in out.items():
        assert o.returncode == 0 and "Traceback" not in o.stderr, (name, o.stderr)
    return out


def _json(outcomes, name):
    return json.loads(outcomes[name].stdout)


@pytest.mark.parametrize("streamed,in_memory", [("parquet folder", "memory"), ("parquet file", "memory part"),
                                                ("csv folder", "signed memory"),
                                                ("stream squared hinge", "memory squared hinge"),
                                                ("stream hinge", "memory hinge")])
def test_a_streamed_classifier_gives_the_in_memory_coefficients(outcomes, streamed, in_memory):
    s, m = _json(outcomes, streamed), _json(outcomes, in_memory)
    assert s["source"] == "stream" and m["source"] == "memory"
    np.testing.assert_allclose(s["coef"], m["coef"], rtol=1e-8, atol=1e-10)
    assert s["intercept"] == pytest.approx(m["intercept"], rel=1e-8)
    assert s["n_iter"] == m["n_iter"] and s["converged"] == m["converged"]
    assert s["classification"]["classes"] == m["classification"]["classes"]
    assert s["classification"]["accuracy"] == pytest.approx(m["classification"]["accuracy"], abs=1e-15)
    if m["classification"]["log_loss"] is None:
        assert s["classification"]["log_loss"] is None
    else:
        assert s["classification"]["log_loss"] == pytest.approx(m["classification"]["log_loss"], rel=1e-10)


def test_the_default_streamed_fit_converges_with_the_certificate_to_the_in_memory_minimum(outcomes):
    s, m = _json(outcomes, "auto stream"), _json(outcomes, "auto memory")
    assert s["source"] == "stream" and s["converged"] and m["converged"] and "Newton decrement" in s["message"]
    assert s["loss"] == pytest.approx(m["loss"], rel=1e-12)  # both within tol = 1e-10 of the minimum, and more
    np.testing.assert_allclose(s["coef"], m["coef"], rtol=1e-4)  # the objective is flat along mean_smoothness
    assert s["classification"]["accuracy"] == pytest.approx(m["classification"]["accuracy"], abs=1e-15)


def test_the_streamed_accuracy_and_log_loss_are_sklearns(data, outcomes):
    s = _json(outcomes, "auto stream")
    frame = pd.read_csv(data / "cancer.csv")
    eta = frame[FEATURES].to_numpy() @ np.asarray(s["coef"]) + s["intercept"]
    y = frame["label"].to_numpy()
    assert s["classification"]["accuracy"] == pytest.approx(accuracy_score(y, eta > 0), abs=1e-15)
    p = 1 / (1 + np.exp(-eta))
    assert s["classification"]["log_loss"] == pytest.approx(log_loss(y, np.column_stack([1 - p, p])), rel=1e-9)
    assert _json(outcomes, "csv folder")["classification"]["classes"] == [-1, 1]


def test_a_streamed_model_predicts_as_the_in_memory_one(data, outcomes):
    s, m = pd.read_csv(data / "stream_pred.csv"), pd.read_csv(data / "memory_pred.csv")
    assert list(s.columns) == ["label_predicted", "p_0", "p_1"]
    assert (s["label_predicted"] == m["label_predicted"]).all()
    np.testing.assert_allclose(s[["p_0", "p_1"]], m[["p_0", "p_1"]], rtol=1e-8, atol=1e-12)


def test_with_a_dask_scheduler_it_is_the_in_memory_fit(data, outcomes):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  dashboard_address=":0") as cluster:
        (o,) = run_cli_batch([(_fit(data / "parquet", "--loss", "log_loss", "--scheduler", cluster.scheduler_address,
                                    *STEP), data)], ENV, timeout=300)
    assert o.returncode == 0, o.stderr
    s, m = json.loads(o.stdout), _json(outcomes, "memory")
    assert s["source"] == "dask"
    np.testing.assert_allclose(s["coef"], m["coef"], rtol=1e-8, atol=1e-10)
    assert s["intercept"] == pytest.approx(m["intercept"], rel=1e-8)
    assert s["classification"]["accuracy"] == pytest.approx(m["classification"]["accuracy"], abs=1e-15)


ERRORS = {
    "class names": (["fit", "names.csv", "-t", "label", "--loss", "log_loss", "--stream"],
                    ["names.csv", "--target label", "class names", "0 and 1", "without --stream"]),
    "other codes": (["fit", "onetwo.csv", "-t", "label", "--loss", "log_loss", "--stream"],
                    ["--target label", "the classes 1 and 2", "coded 0 and 1", "2 as 1, 1 as 0"]),
    "three classes": (["fit", "three.csv", "-t", "label", "--loss", "log_loss", "--stream"],
                      ["--target label", "3 classes (0, 1, 2)", "two classes only", "multinomial"]),
    "three classes hinge": (["fit", "three.csv", "-t", "label", "--loss", "hinge", "--stream"],
                            ["3 classes", "one-vs-rest"]),
    "softmax": (["fit", "parquet", "-t", "label", "--loss", "multinomial"],
                ["--loss multinomial", "not supported yet", "--stream"]),
    "mini-batches": (["fit", "parquet", "-t", "label", "--loss", "log_loss", "--batch-size", "32"],
                     ["--batch-size", "not supported yet", "streamed classifier"]),
    "report": (["fit", "parquet", "-t", "label", "--loss", "log_loss", "--report", "rep"],
               ["--report", "not supported yet", "--stream"]),
}


def test_what_a_streamed_classifier_does_not_take_is_one_line(data, outcomes):
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
