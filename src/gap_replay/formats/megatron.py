"""Megatron `.bin/.idx` (the mmap indexed dataset megatron-core and Megatron-LLM read), per split.

Why our own writer rather than megatron-core's `IndexedDatasetBuilder`: the builder needs torch
tensors, keeps every sequence length in Python lists until `finalize`, computes pointers in a
Python loop and writes straight to the final path. This writer needs only numpy, spills the
lengths to a side file while streaming (memory stays flat whatever the corpus size), computes
pointers with a chunked cumulative sum and publishes both splits at once by renaming a finished
temporary folder — a killed run never leaves a `.bin` without its matching `.idx`. The byte
layout is the builder's (`_IndexWriter`):

    .idx  b"MMIDIDX\\x00\\x00" | <Q version=1 | <B dtype code | <Q sequence count
          | <Q document count | int32 lengths[seq] | int64 byte pointers[seq]
          | int64 document indices[doc]     (document indices = 0, 1, ..., n: one sequence per document)
    .bin  the token ids of every sequence back to back, in dtype (uint16 if vocab < 65500 else int32)

Each JSONL line of `shards/<split>/` (one document repeat, EOD already appended by `tokenize`)
becomes one sequence and one document, in manifest shard order then line order.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gap_replay.formats.shards import ShardError, iter_shard_records, manifest_shards, shard_path
from gap_replay.io.paths import replace_dir
from gap_replay.recipe import SPLITS

log = logging.getLogger(__name__)

INDEX_HEADER = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
# numeric dtype codes of megatron.core.datasets.indexed_dataset.DType
DTYPE_CODES = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5, np.float64: 6,
               np.float32: 7, np.uint16: 8}
_CHUNK = 1 << 20  # sequences per chunk when computing pointers


def token_dtype(vocab_size: int | None) -> type[np.number]:
    """megatron-core's `DType.optimal_dtype`: uint16 below 65,500 ids, int32 otherwise."""
    return np.uint16 if vocab_size is not None and vocab_size < 65500 else np.int32


def vocab_size_of(manifest: dict) -> int | None:
    tok = manifest.get("tokenizer")
    if isinstance(tok, dict):
        for key in ("vocab_size", "n_vocab"):
            if isinstance(tok.get(key), int):
                return tok[key]
    return None


class MegatronWriter:
    """Stream sequences into `<prefix>.bin` and write `<prefix>.idx` on `close()`."""

    def __init__(self, prefix: str | os.PathLike, dtype: type[np.number]) -> None:
        self.prefix = str(prefix)
        self.dtype = np.dtype(dtype)
        self.limit = np.iinfo(self.dtype).max
        self._bin = open(self.prefix + ".bin", "wb")
        self._lengths = open(self.prefix + ".lengths", "wb")  # int32 spill file, removed on close
        self.sequences = 0
        self.tokens = 0

    def add(self, token_ids: list[int], where: str = "") -> None:
        arr = np.asarray(token_ids, dtype=np.int64)
        if arr.ndim != 1:
            raise ShardError(f"{where}: input_ids must be a flat list of integers")
        if arr.size and (arr.min() < 0 or arr.max() > self.limit):
            raise ShardError(f"{where}: token id {int(arr.max() if arr.max() > self.limit else arr.min())} "
                             f"does not fit {self.dtype.name}; is the manifest's tokenizer vocab_size right?")
        self._bin.write(arr.astype(self.dtype).tobytes(order="C"))
        self._lengths.write(struct.pack("<i", arr.size))
        self.sequences += 1
        self.tokens += int(arr.size)

    def close(self) -> None:
        self._bin.close()
        self._lengths.close()
        lengths_path = self.prefix + ".lengths"
        count = self.sequences
        with open(self.prefix + ".idx", "wb") as idx:
            idx.write(INDEX_HEADER)
            idx.write(struct.pack("<Q", INDEX_VERSION))
            idx.write(struct.pack("<B", DTYPE_CODES[self.dtype.type]))
            idx.write(struct.pack("<Q", count))
            idx.write(struct.pack("<Q", count + 1))
            lengths = np.memmap(lengths_path, dtype="<i4", mode="r", shape=(count,)) if count else np.zeros(0, "<i4")
            for start in range(0, count, _CHUNK):
                idx.write(np.ascontiguousarray(lengths[start:start + _CHUNK]).tobytes())
            offset = 0
            for start in range(0, count, _CHUNK):
                chunk = lengths[start:start + _CHUNK].astype(np.int64) * self.dtype.itemsize
                pointers = np.cumsum(chunk) - chunk + offset
                offset += int(chunk.sum())
                idx.write(pointers.astype("<i8").tobytes())
            for start in range(0, count + 1, _CHUNK):
                idx.write(np.arange(start, min(start + _CHUNK, count + 1), dtype="<i8").tobytes())
            idx.flush()
            os.fsync(idx.fileno())
            del lengths
        os.remove(lengths_path)


def write_megatron(out_dir: str | os.PathLike, manifest: dict, tokenizer=None, *,
                   dest: str | os.PathLike | None = None) -> dict:
    """Write `OUT/megatron/{train,validation}.{bin,idx}` from the manifest's shards, atomically.

    The token dtype follows the vocabulary size (`tokenizer.vocab_size` if a tokenizer is
    given, else the manifest's `tokenizer.vocab_size`). Returns a summary per split
    (sequences, tokens, dtype). The previous `megatron/` folder is replaced only once both
    splits are complete.
    """
    out_dir = str(out_dir)
    if "://" in out_dir:
        raise ValueError(f"{out_dir}: Megatron output needs a local directory (it is memory-mapped)")
    final = Path(dest) if dest else Path(out_dir) / "megatron"
    final.parent.mkdir(parents=True, exist_ok=True)
    vocab = getattr(tokenizer, "vocab_size", None) or vocab_size_of(manifest)
    dtype = token_dtype(vocab)
    if vocab is None:
        log.warning("manifest has no tokenizer vocab_size; writing int32 token ids")
    for stale in final.parent.glob(f"{final.name}.tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}.tmp-", dir=final.parent))
    summary: dict[str, dict] = {}
    try:
        for split in SPLITS:
            writer = MegatronWriter(tmp / split, dtype)
            entries = manifest_shards(manifest, split)
            for entry in tqdm(entries, desc=f"megatron {split}", unit="shard", disable=None):
                path = shard_path(out_dir, entry)
                for lineno, record in iter_shard_records(path, entry.get("sha256")):
                    ids = record.get("input_ids")
                    if not isinstance(ids, list):
                        raise ShardError(f"{path}:{lineno}: record has no input_ids list")
                    writer.add(ids, where=f"{path}:{lineno}")
            writer.close()
            summary[split] = {"sequences": writer.sequences, "tokens": writer.tokens,
                              "dtype": np.dtype(dtype).name, "shards": len(entries)}
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("megatron: %s", ", ".join(f"{s} {v['sequences']} sequences / {v['tokens']} tokens"
                                       for s, v in summary.items()))
    return summary


def megatron_prefix(out_dir: str | os.PathLike, split: str) -> str:
    """The path prefix to give Megatron's `--data-path` for `split`."""
    return str(Path(out_dir) / "megatron" / split)
