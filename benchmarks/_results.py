"""Write one benchmark's section of benchmarks/RESULTS.md, leaving the other sections as they are."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nRatios against peers measured in the same run on the same machine. Regenerate with `make bench`.\n"


def machine() -> str:
    try:
        import threadpoolctl

        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('num_threads')} threads)"
                         for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")
    except Exception:  # pragma: no cover
        blas = "unknown BLAS"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {blas}"


def write_section(heading: str, body: str) -> None:
    """Replace the section that starts with ``## heading`` (up to the next ``## ``) or append it."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    section = f"## {heading}\n\n{body.strip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(RESULTS)
