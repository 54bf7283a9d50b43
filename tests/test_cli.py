"""The installed ``gdlab`` command, run in subprocesses: its output equals the library call, and every kind of bad
input gets one line on stderr, exit code 2, no traceback and no partial files."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import gdlab
from cli_driver import run_cli_batch

_SCRIPT = Path(sys.executable).with_name("gdlab")
GDLAB = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gdlab"]
ENV = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}


def run(*args, cwd=None, timeout=120):
    return subprocess.run(GDLAB + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=ENV,
                          timeout=timeout)


# Starting Python and importing gdlab (numpy, scipy, scikit-learn) costs seconds per process, so most cases run
# through one subprocess that imports the entry point once and calls it per case, exactly as the installed
# script does (``sys.exit(gdlab.cli.main())``), with each case's stdout, stderr and exit code captured. A few tests
# below run the installed script itself.
def run_batch(cases):
    """cases: list of (argv, cwd) -> list of Outcome, all in one subprocess."""
    return run_cli_batch(cases, ENV, timeout=600)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    ds = gdlab.datasets.workshop_line()
    pd.DataFrame({"x": ds.X[:, 0], "y": ds.y}).to_csv(d / "line.csv", index=False)
    syn = gdlab.datasets.make_regression(200, 3, noise=0.5, intercept=2.0, random_state=1)
    frame = pd.DataFrame(syn.X, columns=["a", "b", "c"]).assign(target=syn.y)
    frame.to_csv(d / "three.csv", index=False)
    frame.to_parquet(d / "three.parquet")
    return d


def _read(path, target, features):
    """The same numbers the command reads, as C-ordered arrays (the layout changes the last bits of BLAS sums)."""
    frame = pd.read_csv(path)
    return np.ascontiguousarray(frame[features].to_numpy(dtype=float)), frame[target].to_numpy(dtype=float)


@pytest.fixture(scope="module")
def work(data_dir, tmp_path_factory):
    """A folder for the outputs of the batched good-path cases."""
    return tmp_path_factory.mktemp("work")


def _good_cases(d, w):
    three, line, parquet = d / "three.csv", d / "line.csv", d / "three.parquet"
    parts = d / "parts"
    cases = {
        "help " + c: [c, "--help"] for c in ("workshop", "fit", "predict", "sweep", "compare", "explore")
    }
    cases.update({
        "version": ["--version"],
        "fit default": ["fit", three, "--target", "target", "--format", "json"],
        "fit momentum": ["fit", three, "--target", "target", "--format", "json", "--optimizer", "momentum", "--lr",
                         "0.05", "--iters", "200"],
        "fit features": ["fit", three, "--target", "target", "--format", "json", "--lr", "0.01", "--iters", "300",
                         "--tol", "0", "--features", "a,c"],
        "fit closed form": ["fit", three, "-t", "target", "--solver", "closed-form", "--format", "json"],
        "fit table": ["fit", line, "--target", "y", "--lr", "0.1", "--iters", "10", "--tol", "0"],
        "fit diverges": ["fit", line, "--target", "y", "--lr", "2"],
        "fit standardize": ["fit", d / "scaled.csv", "-t", "target", "--standardize", "--format", "json"],
        "fit save": ["fit", three, "-t", "target", "--save", w / "model.json", "--report", w / "rep", "--quiet"],
        "sweep json": ["sweep", line, "-t", "y", "--lr", "1e-3:1:6", "--iters", "10,100", "--format", "json"],
        "sweep table": ["sweep", line, "-t", "y", "--lr", "0.1,0.6", "--iters", "10", "--plot", w / "sweep.png"],
        "compare json": ["compare", three, "-t", "target", "--format", "json"],
        "compare table": ["compare", three, "-t", "target"],
        "stream file": ["fit", parquet, "-t", "target", "--stream", "--format", "json"],
        "stream folder": ["fit", parts, "-t", "target", "--format", "json", "--iters", "2000"],
        "stream closed form": ["fit", parts, "-t", "target", "--solver", "closed-form", "--format", "json"],
    })
    return cases


@pytest.fixture(scope="module")
def good(data_dir, work):
    frame = pd.read_csv(data_dir / "three.csv")
    frame["a"] *= 1000.0  # badly scaled: plain GD would crawl
    frame.to_csv(data_dir / "scaled.csv", index=False)
    (data_dir / "parts").mkdir()
    whole = pd.read_parquet(data_dir / "three.parquet")
    whole.iloc[:120].to_parquet(data_dir / "parts" / "part-0.parquet")
    whole.iloc[120:].to_parquet(data_dir / "parts" / "part-1.parquet")
    cases = _good_cases(data_dir, work)
    first = run_batch([(argv, work) for argv in cases.values()])
    results = dict(zip(cases, first))
    # predict needs the model saved above
    model = work / "model.json"
    second = run_batch([(["predict", model, data_dir / "three.parquet", "--out", work / "pred.csv"], work),
                        (["predict", model, data_dir / "three.csv"], work)])
    results["predict to file"], results["predict to stdout"] = second
    return results


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r


# ---- what it prints equals what the library returns ---------------------------------------------------------

def test_version(good):
    assert _ok(good["version"]).stdout.strip() == f"gdlab {gdlab.__version__}"


@pytest.mark.parametrize("command", ["workshop", "fit", "predict", "sweep", "compare", "explore"])
def test_every_help_shows_an_example(good, command):
    r = _ok(good["help " + command])
    assert "Example" in r.stdout and f"gdlab {command}" in r.stdout


@pytest.mark.parametrize("case,features,kwargs", [
    ("fit default", ["a", "b", "c"], {}),
    ("fit momentum", ["a", "b", "c"], {"optimizer": "momentum", "learning_rate": 0.05, "max_iter": 200}),
    ("fit features", ["a", "c"], {"learning_rate": 0.01, "max_iter": 300, "tol": 0.0}),
])
def test_fit_json_equals_the_library_call(good, data_dir, case, features, kwargs):
    r = _ok(good[case])
    X, y = _read(data_dir / "three.csv", "target", features)
    settings = {"learning_rate": "auto", "max_iter": 1000, "tol": 1e-10, **kwargs}
    expected = gdlab.descend(X, y, warn=False, **settings).to_dict(trajectory=False)
    assert json.loads(r.stdout) == json.loads(json.dumps(expected))


def test_fit_json_through_the_installed_script(data_dir):
    r = run("fit", data_dir / "line.csv", "-t", "y", "--lr", "0.1", "--iters", "10", "--tol", "0", "--format",
            "json")
    assert r.returncode == 0, r.stderr
    X, y = _read(data_dir / "line.csv", "y", ["x"])
    expected = gdlab.descend(X, y, learning_rate=0.1, max_iter=10, tol=0, warn=False).to_dict(trajectory=False)
    assert json.loads(r.stdout) == json.loads(json.dumps(expected))


def test_fit_closed_form_json_equals_the_normal_equation(good, data_dir):
    r = _ok(good["fit closed form"])
    X, y = _read(data_dir / "three.csv", "target", ["a", "b", "c"])
    expected = gdlab.closed_form(X, y).to_dict(trajectory=False)
    assert json.loads(r.stdout) == json.loads(json.dumps(expected))


def test_fit_table_shows_coefficients_loss_and_the_stable_bound(good):
    out = _ok(good["fit table"]).stdout
    ds = gdlab.datasets.workshop_line()
    res = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=10, tol=0, warn=False)
    assert f"{res.intercept:.8g}" in out and f"{res.coef[0]:.8g}" in out and f"{res.loss:.8g}" in out
    assert f"{res.curvature.stable_step:.6g}" in out and "stable bound 2/L" in out and "gram" in out


def test_diverging_fit_says_why_and_exits_1(good):
    r = good["fit diverges"]
    assert r.returncode == 1
    assert "diverged" in r.stdout and "2/L = 0.5115" in r.stdout.replace("\n", " ")


def test_standardize_reports_coefficients_in_the_original_units(good, data_dir):
    out = json.loads(_ok(good["fit standardize"]).stdout)
    frame = pd.read_csv(data_dir / "scaled.csv")
    cf = gdlab.closed_form(frame[["a", "b", "c"]].to_numpy(), frame["target"].to_numpy())
    assert out["scaling"] == "standardize" and out["converged"]
    # converged means the default tol=1e-10 of the minimum loss; coefficients to about its square root
    assert out["loss"] - cf.loss <= 1e-10 * cf.loss
    np.testing.assert_allclose(out["coef"], cf.coef, rtol=1e-4)
    assert out["intercept"] == pytest.approx(cf.intercept, rel=1e-4)


def test_save_then_predict_gives_the_models_predictions(good, data_dir, work):
    _ok(good["fit save"])
    spec = json.loads((work / "model.json").read_text())
    assert spec["features"] == ["a", "b", "c"] and spec["target"] == "target"
    assert len(spec["result"]["trajectory"]["loss"]) == spec["result"]["n_iter"] + 1
    assert (work / "rep" / "index.html").exists() and (work / "rep" / "loss.png").exists()
    _ok(good["predict to file"])
    p2 = _ok(good["predict to stdout"])
    X, _ = _read(data_dir / "three.csv", "target", ["a", "b", "c"])
    expected = X @ np.array(spec["coef"]) + spec["intercept"]
    np.testing.assert_allclose(pd.read_csv(work / "pred.csv")["target_predicted"], expected, rtol=1e-15)
    np.testing.assert_allclose(np.array(p2.stdout.split()[1:], dtype=float), expected, rtol=1e-15)
    assert not [p.name for p in work.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_sweep_json_equals_the_library_call_and_draws_the_heatmap(good, data_dir, work):
    r = _ok(good["sweep json"])
    X, y = _read(data_dir / "line.csv", "y", ["x"])
    expected = gdlab.sweep(X, y, np.geomspace(1e-3, 1, 6), [10, 100]).to_dict()
    assert json.loads(r.stdout) == json.loads(json.dumps(expected))
    table = _ok(good["sweep table"]).stdout
    assert "diverged" in table and "2/L = 0.5115" in table
    assert Image.open(work / "sweep.png").format == "PNG"


def test_compare_json_equals_the_library_table(good, data_dir):
    got = pd.DataFrame(json.loads(_ok(good["compare json"]).stdout))
    X, y = _read(data_dir / "three.csv", "target", ["a", "b", "c"])
    # the command names the coefficients after the file's columns
    expected = gdlab.compare(pd.DataFrame(X, columns=["a", "b", "c"]), y).to_frame()
    timing = [c for c in expected.columns if "time" in c.lower() or "second" in c.lower()]
    assert list(got.columns) == [str(c) for c in expected.columns]
    for c in expected.columns:
        if c in timing:
            continue
        if pd.api.types.is_numeric_dtype(expected[c]):
            # (the gap is a difference of two MSEs: an ulp of the MSE, absolute)
            np.testing.assert_allclose(got[c].to_numpy(dtype=float), expected[c].to_numpy(dtype=float),
                                       rtol=1e-12, atol=1e-15 if c == "gap" else 0, equal_nan=True, err_msg=c)
        else:
            assert got[c].astype(str).tolist() == expected[c].astype(str).tolist(), c
    table = _ok(good["compare table"]).stdout
    assert "LinearRegression" in table and "SGDRegressor" in table


def test_fit_stream_gives_the_in_memory_answer(good, data_dir):
    pytest.importorskip("gdlab.scale", reason="gdlab.scale (streaming) is not available")
    frame = pd.read_parquet(data_dir / "three.parquet")
    X, y = frame[["a", "b", "c"]].to_numpy(), frame["target"].to_numpy()
    cf = gdlab.closed_form(X, y)
    for case in ("stream file", "stream folder", "stream closed form"):
        out = json.loads(_ok(good[case]).stdout)
        np.testing.assert_allclose(out["coef"], cf.coef, rtol=1e-5, atol=1e-7, err_msg=case)
    assert json.loads(good["stream file"].stdout)["source"] != "memory"
    mem = gdlab.descend(X, y, warn=False)
    assert json.loads(good["stream file"].stdout)["n_iter"] == pytest.approx(mem.n_iter, abs=2)


def test_workshop_writes_the_report_and_ends_with_its_path(tmp_path):
    r = run("workshop", "--out", "report", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    index = (tmp_path / "report" / "index.html").resolve()
    assert r.stdout.strip().splitlines()[-1] == f"Report: {index}"
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"index.html", "descent.gif", "01_data.png", "02_error_curve.png", "03_line_iterations.png",
            "04a_learning_rate.png", "04b_learning_rate_panels.png", "05_iterations.png", "06_contour.png"} <= names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folder left behind


# ---- bad input: one line, exit code 2, no traceback, no partial files ------------------------------------------

def _bad_inputs(d):
    """(case id, files to create {name: text}, argv)."""
    line = "x,y\n1,2\n2,4\n3,7\n"
    return [
        ("missing file", {}, ["fit", "nope.csv", "-t", "y"]),
        ("corrupt parquet", {"bad.parquet": "garbage"}, ["fit", "bad.parquet", "-t", "y"]),
        ("corrupt npz", {"bad.npz": "garbage"}, ["sweep", "bad.npz", "-t", "y"]),
        ("unknown column", {"d.csv": line}, ["fit", "d.csv", "-t", "price"]),
        ("unknown feature", {"d.csv": line}, ["compare", "d.csv", "-t", "y", "--features", "z"]),
        ("non-numeric column", {"d.csv": "x,y\n1,2\nabc,3\n"}, ["fit", "d.csv", "-t", "y"]),
        ("NaN", {"d.csv": "x,y\n1,2\n2,\n"}, ["fit", "d.csv", "-t", "y"]),
        ("inf", {"d.csv": "x,y\n1,2\ninf,3\n"}, ["fit", "d.csv", "-t", "y"]),
        ("empty file", {"d.csv": ""}, ["fit", "d.csv", "-t", "y"]),
        ("header only", {"d.csv": "x,y\n"}, ["fit", "d.csv", "-t", "y"]),
        ("ragged rows", {"d.csv": "x,y\n1,2\n3\n"}, ["fit", "d.csv", "-t", "y"]),
        ("eta zero", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--lr", "0"]),
        ("eta negative", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--lr", "-0.1"]),
        ("eta not a number", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--lr", "fast"]),
        ("iterations zero", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--iters", "0"]),
        ("iterations not a number", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--iters", "ten"]),
        ("unknown optimizer", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--optimizer", "sgdx"]),
        ("unknown option", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--speed", "3"]),
        ("missing target", {"d.csv": line}, ["fit", "d.csv"]),
        ("unknown format", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--format", "xml"]),
        ("save folder missing", {"d.csv": line}, ["fit", "d.csv", "-t", "y", "--save", "no/where/m.json"]),
        ("report folder unwritable", {"d.csv": line, "afile": "x"}, ["fit", "d.csv", "-t", "y", "--report",
                                                                      "afile/rep"]),
        ("workshop out is a file", {"afile": "x"}, ["workshop", "--out", "afile"]),
        ("workshop out is foreign", {"mine/notes.txt": "keep"}, ["workshop", "--out", "mine"]),
        ("sweep eta negative", {"d.csv": line}, ["sweep", "d.csv", "-t", "y", "--lr", "-1:1:3"]),
        ("sweep iterations zero", {"d.csv": line}, ["sweep", "d.csv", "-t", "y", "--iters", "0,10"]),
        ("predict not a model", {"m.json": "{}", "d.csv": line}, ["predict", "m.json", "d.csv"]),
        ("predict model missing", {"d.csv": line}, ["predict", "m.json", "d.csv"]),
        ("predict out not csv", {"d.csv": line}, ["predict", "m.json", "d.csv", "--out", "p.parquet"]),
        ("unknown command", {}, ["fitt"]),
        ("explore missing data", {}, ["explore", "missing.csv", "--target", "y", "--no-browser"]),
        ("explore bad port", {}, ["explore", "--port", "70000", "--no-browser"]),
    ]


@pytest.fixture(scope="module")
def bad_results(tmp_path_factory):
    cases = _bad_inputs(None)
    dirs, argvs = [], []
    for i, (_, files, argv) in enumerate(cases):
        d = tmp_path_factory.mktemp(f"bad{i}")
        for name, text in files.items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_text(text)
        dirs.append(d)
        argvs.append(argv)
    results = run_batch(list(zip(argvs, dirs)))
    return {c[0]: (r, d, c[1]) for c, r, d in zip(cases, results, dirs)}


EXPECTED_WORDS = {
    "missing file": "no such file", "corrupt parquet": "Parquet", "corrupt npz": ".npz",
    "unknown column": "'price' not found", "unknown feature": "'z' not found", "non-numeric column": "not numeric",
    "NaN": "NaN", "inf": "inf", "empty file": "empty", "header only": "no rows", "ragged rows": "ragged",
    "eta zero": "--lr must be > 0", "eta negative": "--lr must be > 0", "eta not a number": "--lr",
    "iterations zero": "--iters", "iterations not a number": "--iters", "unknown optimizer": "optimizer",
    "unknown option": "--speed", "missing target": "--target", "unknown format": "--format",
    "save folder missing": "does not exist", "report folder unwritable": "--report",
    "workshop out is a file": "is a file", "workshop out is foreign": "not a gdlab report",
    "sweep eta negative": "--lr", "sweep iterations zero": "--iters", "predict not a model": "not a gdlab model",
    "predict model missing": "no such model", "predict out not csv": "CSV", "unknown command": "No such command",
    "explore missing data": "missing.csv", "explore bad port": "--port",
}


@pytest.mark.parametrize("case", [c[0] for c in _bad_inputs(None)])
def test_bad_input_gets_one_line_and_exit_code_2(bad_results, case):
    r, d, files = bad_results[case]
    assert r.returncode == 2, (case, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in r.stderr and err.startswith("gdlab")
    assert EXPECTED_WORDS[case] in err, err
    assert r.stdout == ""
    created = {str(p.relative_to(d)) for p in d.rglob("*")}
    expected = set(files) | {str(Path(f).parent) for f in files if "/" in f}
    assert created == expected, f"{case}: left {created - expected}"


def test_bad_input_through_the_installed_script(tmp_path):
    (tmp_path / "d.csv").write_text("x,y\n1,2\n3\n")
    r = run("fit", "d.csv", "-t", "y", "--save", "m.json", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip() == ("gdlab fit: error: d.csv: line 3 has 1 fields but the header has 2 (ragged rows); "
                                "give every row one value per column.")
    assert [p.name for p in tmp_path.iterdir()] == ["d.csv"]


# ---- streaming, Dask, the explorer, the progress bar ------------------------------------------------------------

def test_fit_with_a_dask_scheduler_gives_the_in_memory_answer(data_dir):
    pytest.importorskip("gdlab.scale", reason="gdlab.scale (streaming) is not available")
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  dashboard_address=":0") as cluster:
        r = run("fit", data_dir / "three.parquet", "-t", "target", "--scheduler", cluster.scheduler_address,
                "--solver", "closed-form", "--format", "json", timeout=180)
    assert r.returncode == 0, r.stderr
    frame = pd.read_parquet(data_dir / "three.parquet")
    cf = gdlab.closed_form(frame[["a", "b", "c"]].to_numpy(), frame["target"].to_numpy())
    np.testing.assert_allclose(json.loads(r.stdout)["coef"], cf.coef, rtol=1e-9)


def test_explore_serves_the_page(data_dir):
    pytest.importorskip("gdlab.explorer.server", reason="the explorer is not available")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(GDLAB + ["explore", str(data_dir / "line.csv"), "--target", "y", "--port", str(port),
                                     "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "the explorer did not start"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert f"gdlab explorer at http://127.0.0.1:{port}/" in proc.stderr.read().decode()


def test_progress_bar_appears_only_after_a_second(monkeypatch):
    from gdlab import cli
    from gdlab.descent import IterationInfo

    bar = cli._ProgressCallback(100, "fit", enabled=True)
    info = IterationInfo(1, np.zeros(1), 0.0, 1.0, 1.0, 0.1)
    bar(info)
    assert bar.progress is None  # a quick fit shows nothing
    bar.t0 -= 2.0
    bar(info)
    assert bar.progress is not None
    bar.close()
    quiet = cli._ProgressCallback(100, "fit", enabled=False)
    quiet.t0 -= 2.0
    quiet(info)
    assert quiet.progress is None


def test_python_dash_m_gdlab_is_the_same_command():
    r = subprocess.run([sys.executable, "-m", "gdlab", "--version"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0 and r.stdout.strip() == f"gdlab {gdlab.__version__}"
    assert shutil.which("gdlab") is None or Path(shutil.which("gdlab")).exists()


def test_rows_per_second_bar_follows_the_stream_and_appears_only_after_a_second(tmp_path):
    from gdlab import cli
    from gdlab.scale import open_source

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((5000, 2)), columns=["a", "b"]).assign(y=lambda f: f.a - f.b)
    frame.to_csv(tmp_path / "d.csv", index=False)
    seen = []
    bar = cli._RowsProgress("reading d.csv", enabled=True)
    bar.t0 -= 2.0  # as if the pass had been running for two seconds

    def on_rows(done, total):
        seen.append(done)
        bar(done, total)

    src = open_source(str(tmp_path / "d.csv"), "y", batch_rows=1000, progress=on_rows)
    src.gram_stats()
    assert bar.progress is not None and seen[-1] == 5000
    task = bar.progress.tasks[0]
    assert task.completed == 5000 and float(task.fields["rate"].replace(",", "")) > 0
    bar.close()
    quiet = cli._RowsProgress("reading", enabled=False)
    quiet.t0 -= 2.0
    quiet(10, 100)
    assert quiet.progress is None
