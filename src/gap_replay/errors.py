"""Expected failures as one line that names the path or URL and the fix.

A full disk, a read-only output folder or a host that cannot be reached is not a bug: the
user needs to know which file or URL and what to do, not a traceback. `describe` gives that
line (the CLI prints it, `-v` adds the traceback); `is_storage_error` tells the loops over
many items (guideline sites, files) that no item can succeed, so the run stops once.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
import sys

# errno -> (what happened, what to do); the path is put in front.
_OS_REASONS = {
    errno.ENOSPC: ("no space left on the device", "free some space there or choose an output "
                   "folder on another disk, then rerun (completed work is kept)"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another output folder, then "
                   "rerun (completed work is kept)"),
    errno.EACCES: ("permission denied", "fix its permissions or choose another folder"),
    errno.EPERM: ("operation not permitted", "fix its permissions or choose another folder"),
    errno.EROFS: ("read-only file system", "choose a folder on a writable disk"),
    errno.ENOTDIR: ("a part of this path is a file, not a folder", "remove that file or choose another path"),
    errno.EEXIST: ("a file is in the way (a folder is needed here)", "remove it or choose another path"),
    errno.EISDIR: ("is a folder, not a file", "give a file path"),
    errno.ENOENT: ("not found", "check the path"),
    errno.EMFILE: ("too many open files", "raise `ulimit -n` or use fewer --workers"),
}
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS,
                  errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.EIO}
# SQLite result codes meaning the database file cannot be opened or written (not "locked").
_SQLITE_STORAGE = ("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_PERM")
_SQLITE_MESSAGES = ("unable to open database file", "readonly database", "database or disk is full",
                    "disk i/o error")
_ADDRESS = "the network and the address (--base-url, --endpoint-url or HF_ENDPOINT)"


class StorageError(Exception):
    """A file of the output folder cannot be opened or written; every item would fail alike."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # raised in worker processes, re-raised in the parent
        return type(self), (self.path, self.reason)


def _network_types() -> tuple[type, ...]:
    """Exception classes of the HTTP libraries already imported (never imported here)."""
    types: list[type] = []
    if "requests" in sys.modules:
        types.append(sys.modules["requests"].RequestException)
    for name in ("httpx2", "httpx"):
        if name in sys.modules:
            types.append(sys.modules[name].HTTPError)
    return tuple(types)


def _is_sqlite_storage(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.Error):
        return False
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(_SQLITE_STORAGE) or any(m in str(exc).lower() for m in _SQLITE_MESSAGES)


def is_storage_error(exc: BaseException) -> bool:
    """True when the output folder itself is the problem (read-only, full, a file in the way)."""
    if isinstance(exc, StorageError) or _is_sqlite_storage(exc):
        return True
    network = _network_types()
    return (isinstance(exc, OSError) and not (network and isinstance(exc, network))
            and exc.errno in STORAGE_ERRNOS)


def describe(exc: BaseException) -> str | None:
    """One line for an expected failure, or None for an unexpected one (a bug: keep its traceback)."""
    from gap_replay.http import FetchError, HostUnreachable

    network = _network_types()
    if network and isinstance(exc, network):
        return _network_line(exc)
    if isinstance(exc, FetchError):
        what = f"check {_ADDRESS}" if isinstance(exc, HostUnreachable) else "rerun to retry it"
        return f"{exc}; {what} (completed work is kept)"
    if isinstance(exc, StorageError):
        return (f"cannot write {exc.path}: {exc.reason}; choose another output folder, or free "
                "space / fix its permissions, then rerun")
    if _is_sqlite_storage(exc):
        return (f"cannot open or write a database ({exc}); check that the output folder is "
                "writable and has free space, then rerun")
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)) and exc.errno != errno.EPIPE:
        return f"network error ({_short(exc)}); check {_ADDRESS}, then rerun"
    if isinstance(exc, OSError) and exc.errno != errno.EPIPE:  # a closed pipe: click handles it
        return _os_line(exc)
    return None


def _os_line(exc: OSError) -> str | None:
    reason, fix = _OS_REASONS.get(exc.errno, (exc.strerror or str(exc), "check the path"))
    if exc.errno is None and not exc.filename:
        return None
    if exc.filename is None:
        return f"{reason}; {fix}" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else f"{exc}; {fix}"
    path = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else exc.filename
    return f"{path}: {reason}; {fix}"


def _url_of(exc: BaseException) -> str | None:
    for attr in ("request", "response"):
        try:
            obj = getattr(exc, attr, None)
        except RuntimeError:  # httpx: .request unset
            obj = None
        url = getattr(obj, "url", None)
        if url:
            return str(url)
    return None


def _network_line(exc: BaseException) -> str:
    from gap_replay.http import unreachable_cause

    url = _url_of(exc) or "the server"
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        hint = {401: "check the token (HF_TOKEN / `hf auth login`)",
                403: "check the token's permissions", 404: "check the name and the URL",
                429: "wait and rerun"}.get(status, "rerun later, or check the URL")
        said = (getattr(exc, "server_message", None) or "").strip().splitlines()
        return f"{url}: HTTP {status}{f' ({said[0][:200]})' if said else ''}; {hint}"
    cause = None
    if "requests" in sys.modules and isinstance(exc, sys.modules["requests"].RequestException):
        cause = unreachable_cause(exc)
    if cause is None:
        cause = _short(exc)
    return f"cannot reach {url} ({cause}); check {_ADDRESS}, then rerun"


def _short(exc: BaseException) -> str:
    """The innermost OS reason ("connection refused", "timed out"), else the class name."""
    seen: BaseException | None = exc
    for _ in range(10):  # the chain of causes, bounded
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return "timed out"
    if "] " in text:  # "[Errno 111] Connection refused"
        return text.split("] ", 1)[1].lower()
    return text[:120] or type(exc).__name__
