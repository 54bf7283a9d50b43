"""The command line on a sparse X (issue 12): ``gdlab fit X.npz --target y.npy`` where X.npz is written by
scipy.sparse.save_npz, its target in a separate .npy or one-column CSV, its columns named f0 ... or by
--feature-names; fit and predict give what descend and the model give on the same matrix dense; bad input is one
line naming the flag, exit 2, no traceback, nothing written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import gdlab
from cli_driver import run_cli_batch

_SCRIPT = Path(sys.executable).with_name("gdlab")
GDLAB = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gdlab"]
ENV = {**os.environ, "COLUMNS": "200"}
ENV.pop("PYTHONWARNINGS", None)


def run_batch(cases):
    return run_cli_batch(cases, ENV, timeout=300)


@pytest.fixture
def files(tmp_path):
    """A raw sparse X (80% zeros, columns of scale 0.1 to 30), its real target, its labels, and the same X dense."""
    rng = np.random.default_rng(0)
    m, d = 200, 9
    D = rng.standard_normal((m, d)) * (rng.random((m, d)) < 0.25) * rng.uniform(0.1, 30.0, d)
    y = D @ (rng.standard_normal(d) / np.abs(D).max(axis=0)) * 4 + 1.5 + 0.1 * rng.standard_normal(m)
    labels = np.where(D[:, 0] + D[:, 1] + rng.standard_normal(m) > 0, "spam", "ham")
    sp.save_npz(tmp_path / "X.npz", sp.csr_matrix(D))
    sp.save_npz(tmp_path / "Xcsc.npz", sp.csc_matrix(D))
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "labels.csv").write_text("label\n" + "\n".join(labels) + "\n")
    (tmp_path / "names.txt").write_text("\n".join(f"word_{j}" for j in range(d)) + "\n")
    np.save(tmp_path / "dense.npy", np.column_stack([D, y]))
    return tmp_path, D, y, labels


def test_fit_on_a_sparse_file_is_descend_on_the_dense_matrix(files):
    d, D, y, labels = files
    out = run_batch([
        (["fit", "X.npz", "--target", "y.npy", "--format", "json"], d),
        (["fit", "Xcsc.npz", "--target", "y.npy", "--format", "json", "--penalty", "l1", "--alpha", "0.01"], d),
        (["fit", "X.npz", "--target", "labels.csv", "--loss", "log_loss", "--penalty", "l2", "--alpha", "0.01",
          "--format", "json"], d),
        (["fit", "X.npz", "--target", "y.npy", "--solver", "closed-form", "--format", "json"], d),
    ])
    for o in out:
        assert o.returncode == 0, o.stderr
    ref = gdlab.descend(D, y, max_iter=1000, tol=1e-10, warn=False)
    got = json.loads(out[0].stdout)
    np.testing.assert_allclose(got["coef"], ref.coef, rtol=1e-10, atol=1e-12)
    assert got["intercept"] == pytest.approx(ref.intercept, rel=1e-10)
    ref_l1 = gdlab.descend(D, y, penalty="l1", alpha=0.01, warn=False)
    got_l1 = json.loads(out[1].stdout)
    np.testing.assert_allclose(got_l1["coef"], ref_l1.coef, rtol=1e-10, atol=1e-12)
    assert np.array_equal(np.asarray(got_l1["coef"]) == 0, ref_l1.coef == 0)
    ref_log = gdlab.descend(D, (labels == "spam").astype(float), loss="log_loss", penalty="l2", alpha=0.01,
                            warn=False)
    got_log = json.loads(out[2].stdout)
    np.testing.assert_allclose(got_log["coef"], ref_log.coef, rtol=1e-6, atol=1e-8)
    assert got_log["classification"]["classes"] == ["ham", "spam"]
    exact = gdlab.closed_form(D, y)
    np.testing.assert_allclose(json.loads(out[3].stdout)["coef"], exact.coef, rtol=1e-9, atol=1e-12)


def test_the_table_names_the_columns_f0_or_from_the_names_file(files):
    d, D, y, _ = files
    out = run_batch([(["fit", "X.npz", "--target", "y.npy", "-q"], d),
                     (["fit", "X.npz", "--target", "y.npy", "--feature-names", "names.txt", "-q"], d)])
    assert out[0].returncode == 0 and out[1].returncode == 0
    assert "y ~ f0, f1, f2" in out[0].stdout and "│ f8 " in out[0].stdout
    assert "y ~ word_0, word_1" in out[1].stdout and "│ word_8 " in out[1].stdout and "f0" not in out[1].stdout


def test_predict_on_a_sparse_file_is_the_models_prediction_of_the_dense_rows(files):
    d, D, y, labels = files
    out = run_batch([
        (["fit", "X.npz", "--target", "y.npy", "--save", "m.json", "-q"], d),
        (["predict", "m.json", "Xcsc.npz", "--out", "p.csv"], d),
        (["fit", "dense.npy", "--target", "9", "--save", "dense.json", "-q"], d),
        (["predict", "dense.json", "dense.npy"], d),
        (["fit", "X.npz", "--target", "labels.csv", "--loss", "log_loss", "--save", "c.json", "-q"], d),
        (["predict", "c.json", "X.npz"], d),
    ])
    for o in out:
        assert o.returncode == 0, o.stderr
    model = json.loads((d / "m.json").read_text())
    assert model["target"] == "y" and model["features"] == [f"f{j}" for j in range(D.shape[1])]
    lines = (d / "p.csv").read_text().splitlines()
    assert lines[0] == "y_predicted"
    want = D @ np.asarray(model["coef"]) + model["intercept"]
    np.testing.assert_allclose(np.asarray(lines[1:], dtype=float), want, rtol=1e-12, atol=1e-12)
    # the same fit as the dense file's (the target there is column 9), to the descent's tolerance
    dense_pred = np.asarray(out[3].stdout.splitlines()[1:], dtype=float)
    np.testing.assert_allclose(np.asarray(lines[1:], dtype=float), dense_pred, rtol=1e-8, atol=1e-8)
    header, *rows = out[5].stdout.splitlines()
    assert header.split(",")[0] == "label_predicted" and len(rows) == D.shape[0]
    assert {r.split(",")[0] for r in rows} <= {"ham", "spam"}


def test_bad_sparse_input_is_one_line_naming_the_flag(files):
    d, D, y, _ = files
    np.savez(d / "dense.npz", a=np.arange(200.0), b=np.ones(200))
    np.save(d / "short.npy", y[:150])
    np.save(d / "two.npy", np.column_stack([y, y]))
    bad = sp.lil_matrix(D)
    bad[17, 4] = np.nan
    sp.save_npz(d / "nan.npz", bad.tocsr())
    (d / "few.txt").write_text("a\nb\n")
    (d / "twice.txt").write_text("\n".join(["a"] * D.shape[1]))
    cases = [
        (["fit", "dense.npz", "--target", "y.npy", "--save", "out.json"], "--target y.npy is a file"),
        (["fit", "X.npz", "--target", "short.npy", "--save", "out.json"], "--target short.npy has 150 rows but "
                                                                           "DATA has 200"),
        (["fit", "X.npz", "--target", "two.npy"], "--target two.npy has 2 columns"),
        (["fit", "nan.npz", "--target", "y.npy", "--save", "out.json"], "DATA nan.npz holds a missing value (NaN) at "
                                                                         "row 17, column 4"),
        (["fit", "X.npz", "--target", "y"], "--target y: X.npz is a sparse matrix"),
        (["fit", "X.npz"], "--target is missing: a sparse X"),
        (["fit", "X.npz", "--target", "y.npy", "--features", "f0,f1"], "--features selects columns of a table"),
        (["fit", "X.npz", "--target", "y.npy", "--feature-names", "few.txt"], "--feature-names few.txt holds 2 "
                                                                              "names but X has 9 columns"),
        (["fit", "X.npz", "--target", "y.npy", "--feature-names", "twice.txt"], "--feature-names twice.txt names "
                                                                                "'a' twice"),
        (["fit", "dense.npy", "--target", "9", "--feature-names", "names.txt"], "--feature-names names the columns "
                                                                                 "of a sparse X"),
        (["fit", "X.npz", "--target", "y.npy", "--stream"], "--stream is not supported for a sparse X"),
        (["fit", "X.npz", "--target", "y.npy", "--report", "rep"], "--report is not supported for a sparse X"),
        (["compare", "X.npz", "--target", "y.npy", "--methods", "gd,bogus"], "unknown method 'bogus' in --methods"),
        (["compare", "X.npz", "--target", "y.npy", "--penalty", "l1", "--methods", "closed_form"], "--penalty"),
        (["compare", "dense.npy", "--target", "9", "--feature-names", "names.txt"], "--feature-names names the "
                                                                                    "columns of a sparse X"),
        (["predict", "m9.json", "few.npz", "--out", "p.csv"], "DATA few.npz has 3 columns but the model"),
    ]
    sp.save_npz(d / "few.npz", sp.csr_matrix(D[:, :3]))
    assert run_batch([(["fit", "X.npz", "--target", "y.npy", "--save", "m9.json", "-q"], d)])[0].returncode == 0
    before = sorted(p.name for p in d.iterdir())
    out = run_batch([(argv, d) for argv, _ in cases])
    for (argv, message), o in zip(cases, out):
        assert o.returncode == 2, (argv, o.stdout, o.stderr)
        lines = o.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in o.stderr, (argv, o.stderr)
        assert message in lines[0], (argv, lines[0])
    assert sorted(p.name for p in d.iterdir()) == before  # nothing written, not even half


def test_sweep_reads_the_sparse_layout_as_the_dense_table(files):
    d, _, _, _ = files
    args = ["--lr", "1e-3:1:4", "--iters", "10,100", "--format", "json"]
    sparse, dense = run_batch([(["sweep", "X.npz", "--target", "y.npy", *args], d),
                               (["sweep", "dense.npy", "--target", "9", *args], d)])
    assert sparse.returncode == 0 and dense.returncode == 0, (sparse.stderr, dense.stderr)
    got, want = json.loads(sparse.stdout), json.loads(dense.stdout)
    assert got["diverged"] == want["diverged"] and got["diverged"][-1] == [True, True]
    np.testing.assert_allclose(np.array(got["final_loss"], dtype=float), np.array(want["final_loss"], dtype=float),
                               rtol=1e-10)
    assert got["stable_step"] == pytest.approx(want["stable_step"], rel=1e-12)


def test_the_installed_command_fits_a_sparse_file(files):
    d, _, _, _ = files
    proc = subprocess.run(GDLAB + ["fit", "X.npz", "--target", "y.npy", "-q"], capture_output=True, text=True,
                          cwd=d, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "y ~ f0" in proc.stdout


def test_compare_on_a_sparse_file_is_compare_on_the_matrix(files):
    """gdlab compare X.npz: the library's compare on the CSR matrix (never densified), with the penalty and the
    rows named on the command line, the columns named by --feature-names."""
    d, D, y, labels = files
    argv = ["compare", "X.npz", "--target", "y.npy", "--penalty", "l2", "--alpha", "0.01", "--methods",
            "closed_form,gd,SGDRegressor", "--feature-names", "names.txt", "--format", "json"]
    (o,) = run_batch([(argv, d)])
    assert o.returncode == 0, o.stderr
    rows = json.loads(o.stdout)
    ref = gdlab.compare(sp.csr_matrix(D), y, methods=["closed_form", "gd", "SGDRegressor"], penalty="l2",
                        alpha=0.01, feature_names=[f"word_{j}" for j in range(D.shape[1])])
    assert [r["method"] for r in rows] == [r.method for r in ref.rows]
    for got, want in zip(rows, ref.rows):
        np.testing.assert_allclose([got[f"word_{j}"] for j in range(D.shape[1])], want.coef, rtol=1e-8,
                                   atol=1e-10)
    exact = gdlab.closed_form(D, y, l2=0.01)
    np.testing.assert_allclose([rows[0][f"word_{j}"] for j in range(D.shape[1])], exact.coef, rtol=1e-8)
