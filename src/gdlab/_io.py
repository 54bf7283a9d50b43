"""Small file helpers: every file gdlab writes goes to a temporary name first, then is renamed into place.

Temporary names carry their writer: ``.<name>.gdlab-<host>-<pid>-<random>.tmp`` (host: a short hash of the host
name). A run that is killed outright (SIGKILL, a power cut) cannot clean up after itself, so the next write to the
same destination removes the leftovers of runs that are gone: those of this host whose process no longer exists,
those of another host (a shared folder) older than a day, and those of gdlab versions that did not tag their
temporary names, once older than an hour. A running writer's temporary files are never touched.

The renames that put a file or a folder in place, and the cleaning up after a failure, run with SIGINT and SIGTERM
deferred (see :func:`signals_deferred`) when the command line's handlers are installed
(:func:`install_signal_handlers`): a Ctrl-C then lands just before or just after them, never half-way.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_path", "temp_prefix", "clean_stale",
           "signals_deferred", "install_signal_handlers", "received_signal", "SPACE_ERRORS"]

SPACE_ERRORS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
STALE_OTHER_HOST_S = 24 * 3600  # a leftover of another host (shared folder) is removed after a day
STALE_LEGACY_S = 3600  # a leftover without a writer's tag (an older gdlab) is removed after an hour


# ---- tagged temporary names, and the leftovers of runs that are gone ---------------------------------------------

def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def temp_prefix(name: str) -> str:
    """The prefix of this process's temporary names for the destination ``name``."""
    return f".{name}.gdlab-{_host_tag()}-{os.getpid()}-"


_TAGGED = re.compile(r"gdlab-(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-")
_LEGACY = re.compile(r"[a-z0-9_]{8}(?:\.[A-Za-z0-9]{1,8})?|old-\d+")  # mkstemp's 8 characters, a suffix


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _is_stale(entry: Path, rest: str, now: float) -> bool:
    """Whether the temporary entry ``.<name>.<rest>`` belongs to a run that is gone."""
    try:
        age = now - entry.lstat().st_mtime
    except OSError:
        return False
    m = _TAGGED.match(rest)
    if m is None:  # an older gdlab's mkstemp/mkdtemp name: .<name>.<8 random chars><suffix>
        return bool(_LEGACY.fullmatch(rest)) and age > STALE_LEGACY_S
    if m.group("host") != _host_tag():
        return age > STALE_OTHER_HOST_S
    pid = int(m.group("pid"))
    return pid != os.getpid() and not _pid_alive(pid)


def clean_stale(parent: Path, name: str, *, is_ours: Callable[[Path], bool] | None = None,
                restore: Callable[[Path], bool] | None = None) -> list[Path]:
    """Remove the leftovers ``.<name>.*`` of runs that are gone from ``parent``; returns what was removed.

    Files are removed; folders only when ``is_ours(folder)`` says they are gdlab's (a report's marker). ``restore``
    may move a leftover back into place instead (a report moved aside by a run killed while renaming); it returns
    True when it did. Nothing that cannot be removed stops the caller.
    """
    removed: list[Path] = []
    head = f".{name}."
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(head)]
    except OSError:
        return removed
    now = time.time()
    for e in entries:
        path = Path(e.path)
        rest = e.name[len(head):]
        if not _is_stale(path, rest, now):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                if restore is not None and restore(path):
                    continue
                if is_ours is None or not is_ours(path):
                    continue
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            continue
    return removed


# ---- signals: Ctrl-C and SIGTERM become KeyboardInterrupt, deferred over renames ---------------------------------

_state: dict[str, Any] = {"depth": 0, "pending": None, "received": None}


def received_signal() -> int | None:
    """The signal (SIGINT or SIGTERM) that interrupted this command, or None."""
    return _state["received"]


def _on_signal(signum: int, frame: Any) -> None:
    _state["received"] = _state["received"] or signum
    if _state["depth"]:
        _state["pending"] = signum
        return
    raise KeyboardInterrupt


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM that arrive inside the block are acted on when it ends (with the handlers of
    :func:`install_signal_handlers`; without them the block is an ordinary one)."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0 and _state["pending"] is not None:
            _state["pending"] = None
            raise KeyboardInterrupt


@contextmanager
def install_signal_handlers() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread while the block runs, so that every
    ``finally`` and every cleanup runs on both; :func:`received_signal` tells them apart afterwards. A signal that
    the parent set to be ignored (``nohup``, a background job) stays ignored."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    _state.update(depth=0, pending=None, received=None)
    for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        current = signal.getsignal(sig)
        if current is default:
            previous[sig] = current
            signal.signal(sig, _on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---- atomic files --------------------------------------------------------------------------------------------------

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _named(exc: OSError, path: Path) -> OSError:
    """The same error, naming the destination instead of its temporary name."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write_bytes(path: Any, data: bytes) -> Path:
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    clean_stale(parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=parent)
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes a private file; what gdlab writes is for reading
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())  # a full disk shows here, not after the rename
        except OSError as exc:
            raise _named(exc, path) from None
        with signals_deferred():
            os.replace(tmp, path)
    except BaseException:
        with signals_deferred():
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
        parent = self.path.parent if str(self.path.parent) else Path(".")
        clean_stale(parent, self.path.name)
        clean_stale(parent, self.path.stem)  # an older gdlab named them .<stem>.<random><suffix>
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(self.path.name), suffix=self.suffix, dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        with signals_deferred():
            if exc_type is None:
                try:
                    os.replace(self.tmp, self.path)
                    return
                except BaseException:
                    self.tmp.unlink(missing_ok=True)
                    raise
            self.tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) == str(self.tmp):
            raise _named(exc, self.path) from None
