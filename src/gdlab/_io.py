"""Small file helpers: every file gdlab writes goes to a temporary name first, then is renamed into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_path"]


def atomic_write_bytes(path: Any, data: bytes) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: Any, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


class atomic_path:
    """Context manager giving a temporary path beside ``path``; renamed onto ``path`` only if the block succeeds.

    >>> with atomic_path("fig.png") as tmp:   # doctest: +SKIP
    ...     figure.savefig(tmp)
    """

    def __init__(self, path: Any, suffix: str | None = None):
        self.path = Path(path)
        self.suffix = suffix if suffix is not None else self.path.suffix

    def __enter__(self) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.suffix, dir=self.path.parent or ".")
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
