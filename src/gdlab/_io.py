"""Small file helpers: every file gdlab writes goes to a temporary name first, then is renamed into place.

Temporary names carry their writer: ``.<name>.gdlab-<host>-<pid>-<random>.tmp`` (host: a short hash of the host
name). A run that is killed outright (SIGKILL, a power cut) cannot clean up after itself, so the next write to the
same destination removes the leftovers of runs that are gone: those of this host whose process no longer exists,
those of another host (a shared folder) older than a day, and those of gdlab versions that did not tag their
temporary names, once older than an hour. A running writer's temporary files are never touched.

The steps that make a temporary file or folder and record its name, the renames that put it in place and the
cleaning up after a failure hold SIGINT and SIGTERM (see :func:`holds_signals` and :func:`signals_deferred`) when
the command line's handlers are installed (:func:`install_signal_handlers`): a Ctrl-C then lands just before or
just after them, never half-way, so that no exit path leaves a temporary name behind.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, TypeVar

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_path", "temp_prefix", "clean_stale",
           "signals_deferred", "holds_signals", "install_signal_handlers", "received_signal", "SPACE_ERRORS"]

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


# ---- signals: Ctrl-C and SIGTERM become KeyboardInterrupt, held over the steps that must not be cut ---------------
#
# CPython runs a signal handler in the main thread between two bytecodes, at the start of a Python function or just
# after a built-in returns, so a KeyboardInterrupt can surface at nearly any point, including the first line of a
# ``finally`` or of a cleanup function, or between ``mkdtemp`` returning and its name being stored. Two ways to
# hold it: ``with signals_deferred():`` (a depth counter, for a block) and ``@holds_signals`` (for a whole
# function: the handler sees the function on the call stack, so the hold starts with its first instruction, before
# it has done anything). A held signal is raised as KeyboardInterrupt when the outermost hold ends; the command
# line also checks :func:`received_signal` on its way out, so a signal is never lost.

_state: dict[str, Any] = {"depth": 0, "pending": None, "received": None}
_HOLDING: set[CodeType] = set()  # the code of the wrappers made by holds_signals (one code object for them all)
_F = TypeVar("_F", bound=Callable[..., Any])


def received_signal() -> int | None:
    """The signal (SIGINT or SIGTERM) that interrupted this command, or None."""
    return _state["received"]


def _held(frame: FrameType | None) -> bool:
    """Whether signals are held at ``frame``: inside ``signals_deferred`` or a function under ``holds_signals``."""
    if _state["depth"]:
        return True
    while frame is not None:
        if frame.f_code in _HOLDING:
            return True
        frame = frame.f_back
    return False


def _on_signal(signum: int, frame: Any) -> None:
    _state["received"] = _state["received"] or signum
    if _held(frame):
        _state["pending"] = signum
        return
    _state["pending"] = None
    raise KeyboardInterrupt


def _act_on_held(frame: FrameType | None) -> None:
    """Raise KeyboardInterrupt for a held signal once nothing at ``frame`` holds signals any more."""
    if _state["pending"] is not None and not _held(frame):
        _state["pending"] = None
        raise KeyboardInterrupt


def holds_signals(func: _F) -> _F:
    """Decorator: SIGINT/SIGTERM that arrive while ``func`` runs, from its first instruction to its last, are held
    and raised as KeyboardInterrupt when it returns (or when the outermost holding function or block ends).

    For the short steps that must not be cut: making a temporary name and recording it, renaming it into place,
    removing it. (Without the handlers of :func:`install_signal_handlers` it is an ordinary call.)"""

    @functools.wraps(func)
    def holding(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            _act_on_held(sys._getframe(1))

    _HOLDING.add(holding.__code__)
    return holding  # type: ignore[return-value]


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM that arrive inside the block are acted on when it ends (with the handlers of
    :func:`install_signal_handlers`; without them the block is an ordinary one). A signal may still land just
    before the block starts: what must be undone then is undone by a function under :func:`holds_signals`."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        _act_on_held(sys._getframe())


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
    try:
        for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(sig) is default:
                previous[sig] = default
                signal.signal(sig, _on_signal)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---- atomic files --------------------------------------------------------------------------------------------------

@holds_signals  # a signal between the two calls would leave the umask at 0
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _named(exc: OSError, path: Path) -> OSError:
    """The same error, naming the destination instead of its temporary name."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write_bytes(path: Any, data: bytes) -> Path:
    path = Path(path)
    target = _atomic_fd(path, suffix=".tmp")
    with target:
        fd, target.fd = target.fd, None  # this block closes it from here on (os.fdopen)
        assert fd is not None
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes a private file; what gdlab writes is for reading
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())  # a full disk shows here, not after the rename
        except OSError as exc:
            raise _named(exc, path) from None
    return path


def atomic_write_text(path: Any, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


class atomic_path:
    """Context manager giving a temporary path beside ``path``; renamed onto ``path`` only if the block succeeds.

    The temporary file is removed on every other way out (an error, Ctrl-C, SIGTERM), wherever the signal lands.

    >>> with atomic_path("fig.png") as tmp:   # doctest: +SKIP
    ...     figure.savefig(tmp)
    """

    _keep_fd = False

    def __init__(self, path: Any, suffix: str | None = None):
        self.path = Path(path)
        self.suffix = suffix if suffix is not None else self.path.suffix
        self.tmp: Path | None = None
        self.fd: int | None = None
        self._names = (self.path.name, self.path.stem)  # an older gdlab named them .<stem>.<random><suffix>

    def __enter__(self) -> Path:
        parent = self.path.parent if str(self.path.parent) else Path(".")
        for name in self._names:
            clean_stale(parent, name)
        try:
            self._make(parent)
        except BaseException:
            self._discard()
            raise
        assert self.tmp is not None
        return self.tmp

    @holds_signals
    def _make(self, parent: Path) -> None:
        """Make the temporary file and record its name, with no signal in between."""
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(self.path.name), suffix=self.suffix, dir=parent)
        self.fd, self.tmp = fd, Path(tmp)
        if not self._keep_fd:
            self.fd = None
            os.close(fd)

    @holds_signals
    def _discard(self) -> None:
        """Remove the temporary file (idempotent; a failure to remove it does not hide the error being raised)."""
        fd, tmp, self.fd, self.tmp = self.fd, self.tmp, None, None
        if fd is not None:
            with suppress(OSError):
                os.close(fd)
        if tmp is not None:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)

    @holds_signals
    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        tmp = self.tmp
        if exc_type is None and tmp is not None:
            try:
                if self.fd is not None:
                    fd, self.fd = self.fd, None
                    os.close(fd)
                os.replace(tmp, self.path)
            except BaseException:
                self._discard()
                raise
            self.tmp = None
            return
        self._discard()
        if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) == str(tmp):
            raise _named(exc, self.path) from None


class _atomic_fd(atomic_path):
    """:class:`atomic_path` whose temporary file is left open: ``fd`` (closed on the way out unless taken)."""

    _keep_fd = True

    def __init__(self, path: Any, suffix: str | None = None):
        super().__init__(path, suffix)
        self._names = (self.path.name,)
