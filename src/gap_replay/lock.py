"""One run per output folder: `OUT/.lock`, an flock held for the whole command.

The kernel releases an flock when its holder dies, so the lock of a killed run (SIGKILL, a
crash, a reboot) is taken over by the next run without any clean-up. The file holds the
holder's PID, command and start time, so a second run can say who has the folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

EXIT_LOCKED = 75  # EX_TEMPFAIL: try again later


class LockHeld(RuntimeError):
    """Another process is running in this output folder."""


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"PID {info['pid']} ({info['command']}) since {info['since']}"
    except (ValueError, KeyError, OSError):
        return "another process"


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike, command: str) -> Iterator[None]:
    """Hold `folder/.lock` while the block runs; raise LockHeld at once if another run has it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise LockHeld(f"{folder} is in use by {_holder(fd)}; wait for it to finish "
                               "(a killed run's lock is released by itself)") from exc
            raise
        since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": since}).encode(), 0)
        yield
    finally:
        os.close(fd)
