"""Read back `OUT/megatron/<split>.{bin,idx}` (the layout formats/megatron.py writes) with numpy.

Why not megatron-core's `IndexedDataset`: it needs torch, which `gap-replay decode` should not
pull in just to print a few sequences. Only the fields decoding needs are parsed; a file that
is not this layout is an error naming it.
"""

from __future__ import annotations

import os
import struct
from typing import Iterator

import numpy as np

from gap_replay.formats.megatron import DTYPE_CODES, INDEX_HEADER, INDEX_VERSION

_DTYPES = {code: np.dtype(t) for t, code in DTYPE_CODES.items()}


class MegatronIndexError(ValueError):
    """An `.idx` file that is not the mmap indexed-dataset layout (version 1)."""


def iter_megatron(prefix: str | os.PathLike) -> Iterator[np.ndarray]:
    """The token ids of each sequence of `<prefix>.bin`, in order (memory-mapped)."""
    prefix = str(prefix)
    with open(prefix + ".idx", "rb") as fh:
        head = fh.read(len(INDEX_HEADER) + 8 + 1 + 8 + 8)
    if len(head) < 34 or not head.startswith(INDEX_HEADER):
        raise MegatronIndexError(f"{prefix}.idx: not a Megatron index (bad header); rewrite it with "
                                 "`gap-replay mix --format megatron`")
    version, code, count, _documents = struct.unpack("<QBQQ", head[len(INDEX_HEADER):])
    if version != INDEX_VERSION or code not in _DTYPES:
        raise MegatronIndexError(f"{prefix}.idx: unsupported version {version} or dtype code {code}")
    if count == 0:
        return
    lengths = np.memmap(prefix + ".idx", dtype="<i4", mode="r", offset=len(head), shape=(count,))
    pointers = np.memmap(prefix + ".idx", dtype="<i8", mode="r", offset=len(head) + 4 * count, shape=(count,))
    dtype = _DTYPES[code]
    tokens = np.memmap(prefix + ".bin", dtype=dtype, mode="r")
    for length, pointer in zip(lengths, pointers):
        start = int(pointer) // dtype.itemsize
        yield np.asarray(tokens[start:start + int(length)])
