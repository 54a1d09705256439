"""Paths that may be local or any fsspec URL, and writes that appear only when complete."""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import uuid
from pathlib import Path
from typing import IO, Iterator

import fsspec
import orjson


def join(base: str | os.PathLike, *parts: str) -> str:
    out = str(base).rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def filesystem(path: str | os.PathLike):
    fs, fs_path = fsspec.core.url_to_fs(str(path))
    return fs, fs_path


def exists(path: str | os.PathLike) -> bool:
    fs, fs_path = filesystem(path)
    return fs.exists(fs_path)


def remove(path: str | os.PathLike) -> None:
    """Delete a file or a folder tree (local or fsspec) if it is there."""
    fs, fs_path = filesystem(path)
    if fs.exists(fs_path):
        fs.rm(fs_path, recursive=True)


_REQUIRED = object()


def read_json(path: str | os.PathLike, missing=_REQUIRED):
    """The JSON value in `path` (local or fsspec); `missing` instead when the file does not
    exist, if given (otherwise FileNotFoundError). Malformed JSON raises orjson.JSONDecodeError."""
    fs, fs_path = filesystem(path)
    try:
        with fs.open(fs_path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        if missing is _REQUIRED:
            raise
        return missing
    return orjson.loads(data)


def _same_local_file(fs, a: str, b: str) -> bool:
    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        return False
    return os.path.exists(b) and filecmp.cmp(a, b, shallow=False)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, keep_identical: bool = False) -> Iterator[IO[bytes]]:
    """Write bytes to a temporary sibling and rename it to `path` only if the block succeeds.

    A killed process leaves at most a `.tmp-*` file, never a half-written `path`. With
    `keep_identical`, a local `path` that already holds the same bytes is left untouched (its
    mtime too), so rewriting an unchanged shard does not look like a change downstream.
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
        if keep_identical and _same_local_file(fs, tmp, fs_path):
            fs.rm(tmp)
        else:
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


def replace_dir(tmp: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Swap the complete local folder `tmp` in as `dest`: readers see the old folder or the new
    one, never a mix; the old one is removed afterwards."""
    tmp, dest = Path(tmp), Path(dest)
    os.chmod(tmp, 0o755)
    if dest.exists():
        old = dest.with_name(f"{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
