"""Versioned output roots: ROOT/versions/<UTC timestamp>/, an atomically swapped ROOT/current
symlink, pruning to the newest K, and the ROOT/.lock that keeps two refreshes apart."""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from gap_replay.lock import LockHeld, output_lock  # noqa: F401  (LockHeld: refresh's callers)


@contextlib.contextmanager
def refresh_lock(root: Path) -> Iterator[None]:
    """Hold ROOT/.lock for the whole refresh (see gap_replay.lock); LockHeld if another has it."""
    with output_lock(root, "refresh"):
        yield


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def versions(root: Path) -> list[Path]:
    vdir = root / "versions"
    if not vdir.is_dir():
        return []
    return sorted(p for p in vdir.iterdir() if p.is_dir() and not p.name.startswith("."))


def current_version(root: Path) -> Path | None:
    link = root / "current"
    if not link.is_symlink():
        return None
    target = (link.parent / os.readlink(link)).resolve()
    return target if target.is_dir() else None


def swap_current(root: Path, version: Path) -> None:
    """Point ROOT/current at `version`: a temporary symlink renamed over the old one (atomic)."""
    tmp = root / f".current.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(os.path.relpath(version, root), tmp)
    os.replace(tmp, root / "current")
    fsync_dir(root)


def prune_versions(root: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` versions; never the one `current` points to."""
    cur = current_version(root)
    removed = []
    for old in versions(root)[:-keep] if keep else versions(root):
        if cur is not None and old.resolve() == cur:
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    return removed


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_version_name(root: Path) -> str:
    name = utc_stamp()
    taken = {p.name for p in versions(root)}
    suffix = 1
    candidate = name
    while candidate in taken:
        candidate = f"{name}-{suffix}"
        suffix += 1
    return candidate
