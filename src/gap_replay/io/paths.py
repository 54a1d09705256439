"""Paths that may be local or any fsspec URL, and writes that appear only when complete."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import IO, Iterator

import fsspec


def join(base: str | os.PathLike, *parts: str) -> str:
    out = str(base).rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def filesystem(path: str | os.PathLike):
    fs, fs_path = fsspec.core.url_to_fs(str(path))
    return fs, fs_path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Write bytes to a temporary sibling and rename it to `path` only if the block succeeds.

    A killed process leaves at most a `.tmp-*` file, never a half-written `path`.
    """
    fs, fs_path = filesystem(path)
    parent = fs._parent(fs_path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{fs_path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(tmp, "wb") as fh:
            yield fh
            if hasattr(fh, "flush"):
                fh.flush()
            if hasattr(fh, "fileno"):
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    os.fsync(fh.fileno())
        fs.mv(tmp, fs_path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(tmp)
        raise


def remove_stale_temporaries(directory: str | os.PathLike) -> int:
    """Delete `.tmp-*` leftovers of a killed run below `directory`; returns how many."""
    fs, fs_path = filesystem(directory)
    if not fs.exists(fs_path):
        return 0
    stale = [p for p in fs.find(fs_path) if ".tmp-" in p.rsplit("/", 1)[-1]]
    for p in stale:
        fs.rm(p)
    return len(stale)
