"""Ctrl-C (SIGINT), SIGTERM and SIGKILL during the long commands (issue 13): exit 130 / 143 with one line, no
temporary file or folder left; after a SIGKILL (which nothing can catch) the next run cleans up and succeeds.

Sending a signal to a running ``gdlab`` only lands where the timing happens to put it, so the moments that matter
(a few microseconds between making a temporary folder and recording its name, the first line of a cleanup) are
hit once in a while under load. ``test_a_sigterm_at_every_moment_of_writing_leaves_nothing_behind`` hits each of
them on purpose, one after the other."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

_EVERY_MOMENT = r'''
# Run in a fresh interpreter (argv[1]: a folder): each scenario is run once per point where CPython could run a
# signal handler (a Python function starting, a built-in returning) in the files named, with SIGTERM sent at that
# point; what it left behind is checked after each run. The JSON answer goes to <folder>/result.json.
import contextlib, errno, io, json, os, shutil, signal, sys, tempfile
from pathlib import Path

import typer.main

import gdlab.cli
import gdlab.workshop
from gdlab import _io, report

root = Path(sys.argv[1])
GDLAB = ("gdlab/_io.py", "gdlab/report.py", "tempfile.py", "shutil.py")
LIB = GDLAB + ("<string>",)  # and this script's lines
CLI = GDLAB + ("gdlab/cli.py", "contextlib.py")


class Injector:
    def __init__(self, at, files):
        self.at, self.files, self.n, self.where = at, files, 0, None

    def __call__(self, frame, event, arg):
        if event not in ("call", "c_return") or not frame.f_code.co_filename.endswith(self.files):
            return
        if signal.getsignal(signal.SIGTERM) is not _io._on_signal:  # not yet (or no longer) gdlab's handler
            return
        if self.n == self.at:
            sys.setprofile(None)
            after = "" if event == "call" else f" after {getattr(arg, '__name__', arg)}"
            self.where = f"{frame.f_code.co_name}{after} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, as if at that point of the code
        self.n += 1


def old_report(d):
    (d / "rep").mkdir()
    (d / "rep" / report.MARKER).write_text("x")
    (d / "rep" / "index.html").write_text("old")


def check_report(d, pages):  # pages: what its index.html may hold (None: no report; pages=None: any)
    rep = d / "rep"
    left = [p.name for p in d.iterdir() if p.name.startswith(".")]
    if rep.is_dir():
        left += [f"rep/{p.name}" for p in rep.iterdir() if p.name.startswith(".gdlab-report.")]
        names = sorted(p.name for p in rep.iterdir() if not p.name.startswith(".gdlab-report."))
        page = (rep / "index.html").read_text() if (rep / "index.html").exists() else None
        if names != [report.MARKER, "index.html"] or (pages is not None and page not in pages):
            left.append(f"rep holds {names} ({page!r})")
    elif pages is not None and None not in pages:
        left.append("rep is gone")
    return left


def check_file(d, name):
    left = [p.name for p in d.iterdir() if p.name.startswith(".")]
    if (d / name).exists() and (d / name).read_bytes() not in (b"old", b"new"):
        left.append(f"{name} holds {(d / name).read_bytes()!r}")
    return left


def write_report(d):
    with report.report_folder(d / "rep") as tmp:
        (tmp / "index.html").write_text("new")


def full_disk(d):
    with report.report_folder(d / "rep") as tmp:
        (tmp / "index.html").write_text("new")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "01_data.png"))


def in_place(d):  # a mount point: its files are replaced, not the folder
    real = os.path.ismount
    os.path.ismount = lambda p: Path(p) == d / "rep" or real(p)
    try:
        write_report(d)
    finally:
        os.path.ismount = real


def write_bytes(d):
    _io.atomic_write_bytes(d / "m.json", b"new")


def write_path(d):
    with _io.atomic_path(d / "f.png") as tmp:
        tmp.write_bytes(b"new")


def workshop(d):  # the command line itself, the computing and the figures left out
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = gdlab.cli.main(["workshop", "--out", str(d / "rep"), "--quiet", "--no-gif"])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


SCENARIOS = {  # name: (setup, run, check, files whose points are tried)
    "a new report": (None, write_report, lambda d: check_report(d, (None, "new")), LIB),
    "a report replacing an earlier one": (old_report, write_report, lambda d: check_report(d, ("old", "new")), LIB),
    "a report written in place": (old_report, in_place, lambda d: check_report(d, ("old", "new")), LIB),
    "a report on a full disk": (None, full_disk, lambda d: check_report(d, (None,)), LIB),
    "atomic_write_bytes": (lambda d: (d / "m.json").write_bytes(b"old"), write_bytes,
                           lambda d: check_file(d, "m.json"), LIB),
    "atomic_path": (None, write_path, lambda d: check_file(d, "f.png"), LIB),
    "gdlab workshop": (None, workshop, lambda d: check_report(d, None), CLI),
}

gdlab.workshop.run_workshop = lambda **kw: None
report._workshop_sections = lambda ws, add_png, gif_html: [("a", "A", "<p>a</p>")]
command = typer.main.get_command(gdlab.cli.app)  # typer would build it again on every run
typer.main.get_command = lambda app: command
tempfile._get_candidate_names()  # its first call takes a lock that an interrupt there would leave taken

failures, points = [], {}
for name, (setup, run, check, files) in SCENARIOS.items():
    at = 0
    while True:
        d = root / f"{len(points)}-{at}"
        d.mkdir()
        if setup:
            setup(d)
        if files is CLI:  # gdlab.cli.main installs its handlers itself
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        else:
            handlers = _io.install_signal_handlers()
            handlers.__enter__()
        inj, outcome, answer = Injector(at, files), "returned", None
        sys.setprofile(inj)
        try:
            answer = run(d)
        except KeyboardInterrupt:
            outcome = "KeyboardInterrupt"
        except BaseException as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            sys.setprofile(None)
            if files is not CLI:
                handlers.__exit__(None, None, None)
        if inj.where is None:  # it ran to the end: every point has been tried
            points[name] = at
            break
        problems = check(d)
        if files is CLI:
            done = f"{(d / 'rep' / 'index.html').resolve()}\n" if (d / "rep" / "index.html").exists() else ""
            if answer not in ((143, "", "gdlab workshop: terminated\n"), (143, done, "gdlab workshop: terminated\n")):
                problems.append(f"ended with {answer!r} ({outcome})")
        elif outcome != "KeyboardInterrupt":
            problems.append(f"ended with {outcome}")
        if _io._state["depth"] or _io._state["pending"] is not None:
            problems.append(f"left the signal state at {_io._state}")
        if problems:
            failures.append(f"{name}, SIGTERM at {inj.where}: {'; '.join(problems)}")
        at += 1
(root / "result.json").write_text(json.dumps({"failures": failures, "points": points}))
'''

_SCRIPT = Path(sys.executable).with_name("gdlab")
GDLAB = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gdlab"]
ENV = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}


def _start(args, cwd):
    return subprocess.Popen(GDLAB + [str(a) for a in args], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the command ended before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline, "timed out waiting for the command to get going"
        time.sleep(0.02)


def _cpu_seconds(pid):
    """CPU time used by a process so far (Linux /proc; elsewhere: seconds since this was first asked)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        start = _cpu_seconds.__dict__.setdefault(pid, time.monotonic())
        return time.monotonic() - start + 0.5


def test_workshop_interrupted_terminated_or_killed_then_a_clean_rerun(tmp_path):
    """The three signals are sent while the report is being written (its temporary folder exists)."""
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        d = tmp_path / sig.name
        d.mkdir()
        runs[sig] = (d, _start(["workshop", "--out", "rep", "--quiet"], d))
    waiting, deadline = dict(runs), time.monotonic() + 90
    while waiting:  # each is signalled as soon as its temporary folder appears
        for sig, (d, proc) in list(waiting.items()):
            if any(p.name.startswith(".rep.") for p in d.iterdir()):
                proc.send_signal(sig)
                del waiting[sig]
            else:
                assert proc.poll() is None, f"{sig.name}: ended before it could be signalled: {proc.communicate()}"
        assert time.monotonic() < deadline, "timed out waiting for the report to be written"
        time.sleep(0.01)
    outcome = {sig: (proc.wait(timeout=60), proc.communicate()) for sig, (d, proc) in runs.items()}

    code, (out, err) = outcome[signal.SIGINT]
    assert (code, err, out) == (130, "gdlab workshop: interrupted\n", "")
    code, (out, err) = outcome[signal.SIGTERM]
    assert (code, err, out) == (143, "gdlab workshop: terminated\n", "")
    for sig in (signal.SIGINT, signal.SIGTERM):
        assert list(runs[sig][0].iterdir()) == [], f"{sig.name} left {list(runs[sig][0].iterdir())}"

    d, _ = runs[signal.SIGKILL]
    assert outcome[signal.SIGKILL][0] == -signal.SIGKILL
    assert [p.name for p in d.iterdir() if p.name.startswith(".rep.")], "SIGKILL left nothing to clean up?"
    rerun = subprocess.run(GDLAB + ["workshop", "--out", "rep", "--quiet", "--no-gif"], cwd=d, env=ENV,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in d.iterdir()) == ["rep"]  # the killed run's temporary folder is gone
    assert (d / "rep" / "index.html").exists()


def test_a_sigterm_at_every_moment_of_writing_leaves_nothing_behind(tmp_path):
    """SIGTERM at each point where CPython could act on it while a report folder, a file or ``gdlab workshop``'s
    report is written (a few hundred runs, a few seconds): KeyboardInterrupt every time (exit 143 with its one
    line for the command), no temporary file or folder left, the destination either as it was or complete."""
    run = subprocess.run([sys.executable, "-c", _EVERY_MOMENT, str(tmp_path)], env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert not result["failures"], f"{len(result['failures'])} moments went wrong:\n" + "\n".join(
        result["failures"][:12])
    assert len(result["points"]) == 7 and min(result["points"].values()) >= 30, result["points"]


def test_ctrl_c_and_sigterm_stop_a_long_sweep_with_no_partial_plot(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    pd.DataFrame(X, columns=["a", "b"]).assign(y=X @ [1.0, -2.0] + 0.5).to_csv(tmp_path / "d.csv", index=False)
    long_sweep = ["sweep", "d.csv", "-t", "y", "--lr", "1e-4:1e-2:50", "--iters", "1000000", "--plot", "s.png",
                  "--quiet"]
    procs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        d = tmp_path / sig.name
        d.mkdir()
        (d / "d.csv").write_bytes((tmp_path / "d.csv").read_bytes())
        procs[sig] = (d, _start(long_sweep, d))
    for sig, (d, proc) in procs.items():  # past its imports, into the runs (minutes of work in all)
        _wait_for(lambda: _cpu_seconds(proc.pid) > 2.5, proc)
    for sig, (d, proc) in procs.items():
        proc.send_signal(sig)
    for sig, (d, proc) in procs.items():
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 10, "the sweep did not stop promptly"
        word, code = ("interrupted", 130) if sig == signal.SIGINT else ("terminated", 143)
        assert proc.returncode == code and err == f"gdlab sweep: {word}\n" and out == ""
        assert sorted(p.name for p in d.iterdir()) == ["d.csv"]
