"""Task bookkeeping shared by `process` and `mix`: markers, fingerprints, work directories.

A task writes its outputs atomically, then its marker (a small JSON file holding the task's
result, e.g. its stage counts). A rerun returns the marker instead of redoing the work. Markers
live in a work directory named after a fingerprint of the inputs and the recipe, so a changed
input or recipe starts clean instead of mixing old and new results.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Callable

import orjson

from gap_replay.io.paths import atomic_write, exists, filesystem, join, read_json, remove_stale_temporaries

log = logging.getLogger(__name__)


def read_marker(path: str) -> dict | None:
    """A finished task's recorded result; None when the task has not finished."""
    return read_json(path, missing=None)


def write_marker(path: str, result: dict) -> None:
    with atomic_write(path) as fh:
        fh.write(orjson.dumps(result))  # insertion order kept: stage order matters


def run_once(marker: str, work: Callable[[], dict], outputs: tuple[str, ...] = ()) -> dict:
    """Return the recorded result of a completed task, or do the work and record it.

    A marker whose `outputs` have since disappeared does not count: the task runs again.
    """
    done = read_marker(marker)
    if done is not None and all(exists(p) for p in outputs):
        return {**done, "skipped": True}
    result = work()
    write_marker(marker, result)
    return {**result, "skipped": False}


def file_fingerprint(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of each file: cheap change detection without re-reading data."""
    out = []
    for path in paths:
        fs, fs_path = filesystem(path)
        info = fs.info(fs_path)
        mtime = info.get("mtime") or info.get("LastModified") or 0
        mtime_ns = int(float(mtime.timestamp() if hasattr(mtime, "timestamp") else mtime) * 1e9)
        out.append((path, int(info.get("size") or 0), mtime_ns))
    return out


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def prepare_workdir(output: str, kind: str, fp: str, clear_on_change: list[str]) -> tuple[str, bool]:
    """`OUT/work/<kind>-<fp>`; removes `.tmp-*` leftovers, other fingerprints' work dirs and,
    when the fingerprint is new, the outputs in `clear_on_change`. Returns (workdir, resumed)."""
    for sub in ("work", *clear_on_change):
        removed = remove_stale_temporaries(join(output, sub))
        if removed:
            log.info("removed %d stale temporary file(s) below %s", removed, join(output, sub))
    workdir = join(output, "work", f"{kind}-{fp}")
    fs, work_root = filesystem(join(output, "work"))
    resumed = fs.exists(filesystem(workdir)[1])
    if fs.exists(work_root):
        for entry in fs.ls(work_root, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(f"{kind}-") and name != f"{kind}-{fp}":
                fs.rm(entry, recursive=True)
    if not resumed:
        for sub in clear_on_change:
            fs_sub, path = filesystem(join(output, sub))
            if fs_sub.exists(path):
                fs_sub.rm(path, recursive=True)
    fs.makedirs(filesystem(workdir)[1], exist_ok=True)
    return workdir, resumed


def key_file(key: str) -> str:
    """A task key (a relative shard path without suffix) as one file name."""
    return key.replace("/", "__").replace(os.sep, "__")
