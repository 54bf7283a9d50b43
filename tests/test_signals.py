"""Ctrl-C (SIGINT), SIGTERM and SIGKILL during the long commands (issue 13): exit 130 / 143 with one line, no
temporary file or folder left; after a SIGKILL (which nothing can catch) the next run cleans up and succeeds."""

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
