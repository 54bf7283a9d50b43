"""The command line against careless and hostile input (issue 13): bounded work, model files validated as strictly
as data files, one-line errors for what used to print warnings or tracebacks, clean failures on a full disk, onto a
mount point and after killed runs."""

import contextlib
import errno
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_driver import run_cli_batch

_SCRIPT = Path(sys.executable).with_name("gdlab")
GDLAB = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gdlab"]
ENV = {**os.environ, "COLUMNS": "200"}
ENV.pop("PYTHONWARNINGS", None)  # warnings shown as the user sees them: each must be one line

LINE = "x,y\n1,2\n2,4\n3,7\n4,8\n"


def run_batch(cases):
    return [vars(o) for o in run_cli_batch(cases, ENV, timeout=300)]


def run(*args, cwd, timeout=120):
    return subprocess.run(GDLAB + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=ENV,
                          timeout=timeout)


def _model(**over):
    spec = {"format": "gdlab-model", "version": 1, "target": "y", "features": ["x"], "coef": [2.0],
            "intercept": 0.5}
    spec.update(over)
    return spec


def _write_model(d, **over):
    text = json.dumps(_model(**over))  # json writes NaN/Infinity for non-finite floats, as gdlab fit --save did
    (d / "m.json").write_text(text)


def _parquet_parts(d, order):
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.5]})
    b = pd.DataFrame({"x": [4.0, 5.0, 6.0], "z": [0.1, 0.2, 0.3], "y": [8.0, 10.0, 12.5]})
    (d / "parts").mkdir()
    first, second = (a, b) if order == "extra last" else (b, a)
    first.to_parquet(d / "parts" / "part-0.parquet")
    second.to_parquet(d / "parts" / "part-1.parquet")


# (case id, setup(d), argv, words the one line must hold)
BAD = [
    # bounded work
    ("sweep 1e9 learning rates", None, ["sweep", "d.csv", "-t", "y", "--lr", "1e-3:1:1000000000"],
     ["--lr", "at most 1,000"]),
    ("sweep iteration count 1e12", None, ["sweep", "d.csv", "-t", "y", "--iters", "1e12"],
     ["--iters", "10,000,000"]),
    ("sweep too many counts", None, ["sweep", "d.csv", "-t", "y", "--iters", ",".join(map(str, range(1, 102)))],
     ["--iters", "at most 100"]),
    ("sweep too much work", None, ["sweep", "d.csv", "-t", "y", "--lr", "1e-3:1:1000", "--iters", "1000000"],
     ["--lr and --iters", "100,000,000"]),
    ("fit iters 1e12", None, ["fit", "d.csv", "-t", "y", "--iters", "1000000000000", "--tol", "0"],
     ["--iters", "at most 10,000,000"]),
    # model files
    ("model NaN coefficient", lambda d: _write_model(d, coef=[float("nan")]), ["predict", "m.json", "d.csv"],
     ["m.json", "coefficient of 'x'", "nan", "diverged"]),
    ("model inf intercept", lambda d: _write_model(d, intercept=float("inf")), ["predict", "m.json", "d.csv"],
     ["m.json", "intercept", "inf"]),
    ("model coefficient list too long", lambda d: _write_model(d, coef=[1.0, 2.0]), ["predict", "m.json", "d.csv"],
     ["m.json", "2 values", "1 columns"]),
    ("model null coefficient", lambda d: _write_model(d, coef=[None]), ["predict", "m.json", "d.csv"],
     ["m.json", "null, not a number"]),
    ("model string coefficient", lambda d: _write_model(d, coef=["2.0"]), ["predict", "m.json", "d.csv"],
     ["m.json", '"2.0", not a number']),
    ("model features a number", lambda d: _write_model(d, features=5), ["predict", "m.json", "d.csv"],
     ["m.json", '"features" must be a list of column names']),
    ("model features not names", lambda d: _write_model(d, features=[1]), ["predict", "m.json", "d.csv"],
     ["m.json", '"features"']),
    ("model feature twice", lambda d: _write_model(d, features=["x", "x"], coef=[1.0, 1.0]),
     ["predict", "m.json", "d.csv"], ["m.json", "'x' twice"]),
    ("model coef not a list", lambda d: _write_model(d, coef=2.0), ["predict", "m.json", "d.csv"],
     ["m.json", '"coef" must be a list']),
    ("model newer version", lambda d: _write_model(d, version=7), ["predict", "m.json", "d.csv"],
     ["m.json", "version 7"]),
    ("model is a folder", lambda d: (d / "m.json").mkdir(), ["predict", "m.json", "d.csv"],
     ["m.json is a folder"]),
    ("model is a FIFO", lambda d: os.mkfifo(d / "m.json"), ["predict", "m.json", "d.csv"],
     ["m.json is a named pipe"]),
    # silent wrong answers
    ("complex npy", lambda d: np.save(d / "c.npy", np.array([[1 + 2j, 1.0], [2, 2], [3, 3.5]])),
     ["fit", "c.npy", "-t", "1"], ["c.npy", "column '0'", "complex", "(1+2j)"]),
    ("extra column in the later file", lambda d: _parquet_parts(d, "extra last"), ["fit", "parts", "-t", "y"],
     ["part-1.parquet", "'z'", "--features"]),
    ("extra column in the first file", lambda d: _parquet_parts(d, "extra first"), ["fit", "parts", "-t", "y"],
     ["part-1.parquet", "'z'", "--features"]),
    # one-line errors
    ("overflow 1e308 fit", lambda d: (d / "big.csv").write_text("x,y\n1e308,2\n1.5e308,4\n-1e308,7\n"),
     ["fit", "big.csv", "-t", "y"], ["big.csv", "column 'x'", "overflow", "rescale"]),
    ("overflow 1e308 target", lambda d: (d / "big.csv").write_text("x,y\n1,1e308\n2,1.5e308\n3,-1e308\n"),
     ["sweep", "big.csv", "-t", "y"], ["big.csv", "column 'y'", "overflow"]),
    ("overflow 1e308 compare", lambda d: (d / "big.csv").write_text("x,y\n1e308,2\n1.5e308,4\n-1e308,7\n"),
     ["compare", "big.csv", "-t", "y"], ["big.csv", "overflow"]),
    ("overflow 1e308 stream", lambda d: (d / "big.csv").write_text("x,y\n1e308,2\n1.5e308,4\n-1e308,7\n"),
     ["fit", "big.csv", "-t", "y", "--stream"], ["big.csv", "column 'x'", "overflow"]),
    ("compare one row", lambda d: (d / "one.csv").write_text("x,y\n1,2\n"), ["compare", "one.csv", "-t", "y"],
     ["one.csv", "1 row", "at least 2"]),
    ("FIFO data", lambda d: os.mkfifo(d / "pipe.csv"), ["fit", "pipe.csv", "-t", "y"],
     ["pipe.csv", "named pipe (FIFO)", "not a regular file"]),
    ("FIFO data streamed", lambda d: os.mkfifo(d / "pipe.csv"), ["fit", "pipe.csv", "-t", "y", "--stream"],
     ["pipe.csv", "named pipe (FIFO)"]),
    ("random state -1", None, ["fit", "d.csv", "-t", "y", "--random-state", "-1", "--batch-size", "2"],
     ["--random-state", "non-negative"]),
    ("scheduler not a url", None, ["fit", "d.csv", "-t", "y", "--scheduler", "not a url"],
     ["'not a url'", "not a Dask scheduler address", "tcp://"]),
]


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    dirs, argvs = [], []
    for i, (_, setup, argv, _) in enumerate(BAD):
        d = tmp_path_factory.mktemp(f"robust{i}")
        (d / "d.csv").write_text(LINE)
        if setup is not None:
            setup(d)
        dirs.append(d)
        argvs.append(argv)
    before = [sorted(str(p.relative_to(d)) for p in d.rglob("*")) for d in dirs]
    results = run_batch(list(zip(argvs, dirs)))
    return {c[0]: (r, d, b) for c, r, d, b in zip(BAD, results, dirs, before)}


@pytest.mark.parametrize("case", [c[0] for c in BAD])
def test_bad_input_gets_one_line_naming_what_where_and_how(bad, case):
    r, d, before = bad[case]
    words = next(c[3] for c in BAD if c[0] == case)
    assert r["returncode"] == 2, (case, r["stdout"][-500:], r["stderr"][-2000:])
    err = r["stderr"].strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in err and err.startswith("gdlab"), err
    for w in words:
        assert w in err, (w, err)
    assert r["stdout"] == ""
    assert sorted(str(p.relative_to(d)) for p in d.rglob("*")) == before, "files were left behind"
    assert r["seconds"] < 10, f"{case} took {r['seconds']:.1f} s to refuse"


def test_good_model_still_predicts_and_a_huge_prediction_is_refused(tmp_path):
    _write_model(tmp_path)
    (tmp_path / "d.csv").write_text(LINE)
    (tmp_path / "big.csv").write_text("x,y\n1e308,1\n")
    ok, overflow = run_batch([(["predict", "m.json", "d.csv"], tmp_path), (["predict", "m.json", "big.csv"],
                                                                            tmp_path)])
    assert ok["returncode"] == 0, ok["stderr"]
    assert [float(v) for v in ok["stdout"].split()[1:]] == [2.5, 4.5, 6.5, 8.5]
    assert overflow["returncode"] == 2 and "overflows" in overflow["stderr"] and "row 0" in overflow["stderr"]
    assert overflow["stderr"].count("\n") == 1 and overflow["stdout"] == ""


# ---- Parquet page checksums: verified when present, one warning line when absent --------------------------------

def _corrupt_a_data_page(path):
    md = pq.ParquetFile(path).metadata
    col = md.row_group(0).column(0)
    raw = bytearray(path.read_bytes())
    raw[col.data_page_offset + col.total_compressed_size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _plain_parquet(path, checksums):
    x = np.arange(200, dtype=float)
    pq.write_table(pa.table({"x": x, "y": 3 * x + 1}), path, write_page_checksum=checksums, compression="none",
                   use_dictionary=False)


def test_parquet_checksums_are_verified_and_a_file_without_them_gets_one_warning_line(tmp_path):
    _plain_parquet(tmp_path / "sum.parquet", checksums=True)
    _plain_parquet(tmp_path / "bad.parquet", checksums=True)
    _corrupt_a_data_page(tmp_path / "bad.parquet")
    _plain_parquet(tmp_path / "plain.parquet", checksums=False)
    fit = ["-t", "y", "--solver", "closed-form", "--format", "json"]
    checked, corrupt, unchecked, streamed = run_batch([
        (["fit", "sum.parquet", *fit], tmp_path), (["fit", "bad.parquet", *fit], tmp_path),
        (["fit", "plain.parquet", *fit], tmp_path), (["fit", "plain.parquet", "--stream", *fit], tmp_path)])
    assert checked["returncode"] == 0 and checked["stderr"] == "", checked["stderr"]
    assert corrupt["returncode"] == 2 and corrupt["stdout"] == ""
    assert corrupt["stderr"].count("\n") == 1 and "bad.parquet" in corrupt["stderr"]
    assert "checksum" in corrupt["stderr"], corrupt["stderr"]
    for r in (unchecked, streamed):
        assert r["returncode"] == 0
        assert json.loads(r["stdout"])["coef"] == pytest.approx([3.0])
        lines = r["stderr"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gdlab fit: warning:"), r["stderr"]
        assert "plain.parquet" in lines[0] and "without page checksums" in lines[0]
        assert "write_page_checksum=True" in lines[0]


# ---- full disk ---------------------------------------------------------------------------------------------------

def _main(argv, cwd):
    """The entry point in this process (for monkeypatched failures): (exit code, stdout, stderr)."""
    from gdlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv]) or 0
            except SystemExit as exc:
                code = exc.code
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_fit_report_leaves_nothing_and_says_so_simulated(tmp_path, monkeypatch):
    """ENOSPC simulated on every text write (the report's marker and page), for machines that cannot mount."""
    (tmp_path / "d.csv").write_text(LINE)
    monkeypatch.setattr(Path, "write_text", _no_space)
    code, out, err = _main(["fit", "d.csv", "-t", "y", "--report", "rep", "--quiet"], tmp_path)
    assert code == 2
    assert err.strip() == ("gdlab fit: error: cannot write the report to rep (--report): no space left on the "
                           "device; free some space, or choose another folder.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


class _FullDiskFile:
    """A file whose writes fail as on a full disk."""

    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        pass

    def fileno(self):
        return self.fh.fileno()


def test_a_full_disk_while_saving_names_the_file_not_its_temporary_name_simulated(tmp_path, monkeypatch):
    (tmp_path / "d.csv").write_text(LINE)
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _FullDiskFile(real_fdopen(fd, *a, **k)))
    code, out, err = _main(["fit", "d.csv", "-t", "y", "--save", "m.json", "--quiet"], tmp_path)
    assert code == 2 and out == ""
    assert err.strip().startswith("gdlab fit: error: m.json: no space left on the device"), err
    assert ".tmp" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


@contextlib.contextmanager
def _tmpfs(path, size):
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the simulated tests above cover the same paths)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_really_full_disk_fit_report_and_save(tmp_path):
    (tmp_path / "d.csv").write_text(LINE)
    with _tmpfs(tmp_path / "disk", "64k") as disk:
        report = run("fit", "d.csv", "-t", "y", "--report", "disk/rep", "--quiet", cwd=tmp_path)
        assert report.returncode == 2, report.stderr
        assert report.stderr.count("\n") == 1 and "no space left on the device" in report.stderr
        assert "--report" in report.stderr and "Traceback" not in report.stderr
        assert list(disk.iterdir()) == []
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)  # fill the disk to the last byte
        for size in (4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
        os.close(fd)
        save = run("fit", "d.csv", "-t", "y", "--save", "disk/m.json", "--quiet", cwd=tmp_path)
        assert save.returncode == 2, save.stderr
        assert save.stderr.strip().startswith("gdlab fit: error: disk/m.json: no space left on the device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


# ---- a report folder that cannot be renamed (a mount point) ------------------------------------------------------

def test_a_report_onto_a_mount_point_is_written_in_place(tmp_path):
    (tmp_path / "d.csv").write_text(LINE)
    with _tmpfs(tmp_path / "mnt", "16m") as mnt:
        for _ in range(2):  # the second run replaces the first report
            r = run("fit", "d.csv", "-t", "y", "--report", "mnt", "--quiet", cwd=tmp_path)
            assert r.returncode == 0, r.stderr
            assert (mnt / "index.html").exists() and (mnt / ".gdlab-report").exists()
            assert sorted(p.name for p in mnt.iterdir() if p.name.startswith(".")) == [".gdlab-report"]
            assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "mnt"]  # nothing hidden beside it


def test_a_report_folder_that_refuses_renaming_is_written_in_place_simulated(tmp_path, monkeypatch):
    from gdlab import report as report_mod

    out = tmp_path / "rep"
    with report_mod.report_folder(out) as tmp:
        (tmp / "index.html").write_text("first")
    real_replace = os.replace

    def replace(src, dst):  # the destination is busy (a mount point or a bind mount): it cannot be renamed
        if Path(src) == out:
            raise OSError(errno.EBUSY, "Device or resource busy", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with report_mod.report_folder(out) as tmp:
        (tmp / "index.html").write_text("second")
        (tmp / "loss.png").write_bytes(b"png")
    assert (out / "index.html").read_text() == "second" and (out / "loss.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    assert sorted(p.name for p in out.iterdir()) == [".gdlab-report", "index.html", "loss.png"]


# ---- leftovers of killed runs -------------------------------------------------------------------------------------

def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _host():
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def test_leftovers_of_killed_runs_are_removed_and_a_running_ones_kept(tmp_path):
    (tmp_path / "d.csv").write_text(LINE)
    dead, alive = _dead_pid(), os.getpid()
    hour_ago = time.time() - 2 * 3600
    made = {}
    for name, kind, old in [
        (f".rep.gdlab-{_host()}-{dead}-abcd1234.tmp", "report", False),  # killed while writing the report
        (f".rep.gdlab-{_host()}-{alive}-efgh5678.tmp", "report", False),  # another run, still at work
        (".rep.k2j4h5g6.tmp", "report", True),  # an older gdlab's, two hours old
        (f".m.json.gdlab-{_host()}-{dead}-x1y2z3w4.tmp", "file", False),
        (".m.json.a1b2c3d4.tmp", "file", True),
    ]:
        p = tmp_path / name
        if kind == "report":
            p.mkdir()
            (p / ".gdlab-report").write_text("x")
            (p / "index.html").write_text("half")
        else:
            p.write_text("{half")
        if old:
            os.utime(p, (hour_ago, hour_ago))
        made[name] = p
    r = run("fit", "d.csv", "-t", "y", "--report", "rep", "--save", "m.json", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["d.csv", "m.json", "rep", f".rep.gdlab-{_host()}-{alive}-efgh5678.tmp"]), left


def test_a_report_moved_aside_by_a_killed_run_is_put_back(tmp_path):
    from gdlab.report import MARKER, report_folder

    aside = tmp_path / f".rep.gdlab-{_host()}-{_dead_pid()}-old"  # killed between its two renames
    aside.mkdir()
    (aside / MARKER).write_text("x")
    (aside / "index.html").write_text("the earlier report")
    with pytest.raises(RuntimeError):
        with report_folder(tmp_path / "rep"):
            raise RuntimeError("this run fails too")
    assert (tmp_path / "rep" / "index.html").read_text() == "the earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
