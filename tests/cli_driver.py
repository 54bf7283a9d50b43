"""One subprocess runs a batch of CLI cases through gdlab's entry point, as the installed script does
(``sys.exit(gdlab.cli.main())``), paying for the imports once; each case's exit code, stdout, stderr and time are
captured. Shared by the CLI test files."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DRIVER = r"""
import contextlib, io, json, os, sys, time, traceback
from gdlab.cli import main
results = []
for argv, cwd in json.load(sys.stdin):
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv) or 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 99
    results.append({"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                    "seconds": time.perf_counter() - t0})
json.dump(results, sys.__stdout__)
"""


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float = 0.0


def run_cli_batch(cases: list[tuple[list[Any], Path | str]], env: dict[str, str], timeout: float = 600
                  ) -> list[Outcome]:
    """cases: (argv, cwd) pairs -> one Outcome each, all in one subprocess."""
    payload = json.dumps([[[str(a) for a in argv], str(cwd)] for argv, cwd in cases])
    proc = subprocess.run([sys.executable, "-c", DRIVER], input=payload, capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return [Outcome(**r) for r in json.loads(proc.stdout)]
