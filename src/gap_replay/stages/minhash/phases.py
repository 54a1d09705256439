"""The disk-based phases of near-duplicate detection, each a task function any executor can run.

(a) `ShardSigner`: the documents a `process` task writes -> signatures, sorted per-band bucket
    hashes and a doc table (near_dedup.py observes them).
(b) `reduce_band`: one band over all shards -> candidate pairs (docs sharing a bucket: every pair of
    a bucket up to `max_bucket_all_pairs` members, a bounded window beyond), scanning the hash
    space in windows so the bucket records in memory stay under `reduce_memory_mb`.
(c) `cluster`: candidate pairs -> verified pairs (estimated Jaccard >= threshold) -> union-find
    clusters -> the keep rule -> per-shard removal lists and a report.
Pairs are held at most `limits.near_dedup_pairs_bytes` at a time in (b) and (c): beyond that, (b)
spills sorted runs to disk and merges them, and (c) reads the band files in (a, b) windows.
Each task writes its outputs atomically and its completion marker last, so a killed run resumes.
Map outputs are named per task (`names`, in a fixed order); doc keys are uint64:
index of the task name << 32 | position among that task's signed documents.
"""

from __future__ import annotations

import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import orjson

from gap_replay.document import Document
from gap_replay.io import atomic_write, join
from gap_replay.io.paths import exists, filesystem, read_json
from gap_replay.stages.minhash.config import NearDedupConfig
from gap_replay.stages.minhash.pairruns import DocUnion, pair_bound, windows as pair_windows
from gap_replay.stages.minhash.signatures import Signer, estimated_jaccard
from gap_replay.tasks import key_file

_LOW32 = np.uint64(0xFFFFFFFF)


# ---------------------------------------------------------------- small array/file helpers

def save_array(path: str, array: np.ndarray) -> None:
    with atomic_write(path) as fh:
        np.save(fh, array, allow_pickle=False)


def load_array(path: str, mmap: bool = True) -> np.ndarray:
    """Memory-mapped when the work directory is local; read whole from other fsspec stores."""
    fs, p = filesystem(path)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if mmap and protocol in ("file", "local"):
        return np.load(p, mmap_mode="r", allow_pickle=False)
    with fs.open(p, "rb") as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


def write_json(path: str, obj) -> None:
    with atomic_write(path) as fh:
        fh.write(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))


def shard_dir(work: str, name: str) -> str:
    return join(work, "map", key_file(name))


def removal_path(work: str, name: str) -> str:
    return join(work, "remove", f"{key_file(name)}.jsonl")


# ---------------------------------------------------------------- (a) map: signatures and buckets

class ShardSigner:
    """Collects signatures of one shard's documents and writes the phase-(a) files for it."""

    def __init__(self, config: NearDedupConfig) -> None:
        self.signer = Signer(config)
        self.config = config
        self.signatures: list[np.ndarray] = []
        self.bands: list[np.ndarray] = []
        self.table: list[bytes] = []
        self.seen: Counter[str] = Counter()
        self._ids: set[str] = set()

    def add(self, doc: Document, ordinal: int) -> None:
        """`ordinal` = the document's position in the stream the filter of phase (d) will see."""
        self.seen[doc.source] += 1
        if doc.id in self._ids:  # a repeated id is the exact dedup's business, never signed twice
            return
        self._ids.add(doc.id)
        signature = self.signer.signature(doc.text)
        if signature is None:  # no words: never a near-duplicate of anything
            return
        self.signatures.append(signature)
        self.bands.append(self.signer.band_hashes(signature))
        self.table.append(orjson.dumps([doc.id, doc.source, doc.subset, ordinal]))

    def write(self, out_dir: str, quarantined: int = 0) -> dict:
        n = len(self.signatures)
        sigs = (np.stack(self.signatures) if n else np.zeros((0, self.config.num_perm), np.uint32))
        bands = (np.stack(self.bands, axis=1) if n else np.zeros((self.config.bands, 0), np.uint64))
        order = np.argsort(bands, axis=1, kind="stable").astype(np.uint32)
        save_array(join(out_dir, "signatures.npy"), sigs)
        save_array(join(out_dir, "bucket_hashes.npy"), np.take_along_axis(bands, order.astype(np.int64), axis=1))
        save_array(join(out_dir, "bucket_docs.npy"), order)
        with atomic_write(join(out_dir, "docs.jsonl")) as fh:
            for line in self.table:
                fh.write(line + b"\n")
        summary = {"documents": sum(self.seen.values()), "signed": n,
                   "by_source": dict(sorted(self.seen.items())), "quarantined": quarantined}
        write_json(join(out_dir, "done.json"), summary)  # the marker, last
        return summary


# ---------------------------------------------------------------- (b) reduce: buckets -> candidate pairs

@dataclass(frozen=True)
class ReduceTask:
    work: str
    band: int
    names: tuple[str, ...]
    config: NearDedupConfig


def _window_bounds(windows: int) -> list[tuple[int, int | None]]:
    step = (1 << 64) // windows
    return [(w * step, None if w == windows - 1 else (w + 1) * step) for w in range(windows)]


def bucket_pairs(hashes: np.ndarray, keys: np.ndarray, all_pairs: int) -> np.ndarray:
    """Candidate pairs (smaller key first) of the buckets in `hashes`, sorted by (hash, key).

    A bucket of up to `all_pairs` members yields every pair. In a larger bucket each member is
    paired with the `all_pairs - 1` members before it and with the bucket's first member: linear
    in the bucket size, and a chain of near-identical members still links up. `all_pairs=1` gives
    star edges only (each member to the first), which misses B~C when both fail against A.
    """
    n = int(hashes.shape[0])
    if n < 2:
        return np.zeros((0, 2), np.uint64)
    starts_mask = np.concatenate(([True], hashes[1:] != hashes[:-1]))
    starts = np.flatnonzero(starts_mask)
    first = starts[np.cumsum(starts_mask) - 1]
    rank = np.arange(n) - first  # position of each record inside its bucket
    reach = all_pairs - 1
    edges = []
    idx = np.flatnonzero(rank >= 1)
    for d in range(1, reach + 1):  # member i with member i-d; stops at the largest bucket
        idx = idx[rank[idx] >= d]
        if not idx.size:
            break
        edges.append(np.stack([keys[idx - d], keys[idx]], axis=1))
    far = np.flatnonzero(rank > reach)  # beyond the window: to the bucket's first member
    if far.size:
        edges.append(np.stack([keys[first[far]], keys[far]], axis=1))
    return np.concatenate(edges) if edges else np.zeros((0, 2), np.uint64)


def _save_pairs(path: str, edges: list[np.ndarray]) -> int:
    pairs = np.unique(np.concatenate(edges), axis=0) if edges else np.zeros((0, 2), np.uint64)
    save_array(path, pairs.astype(np.uint64))
    return int(pairs.shape[0])


def _merge_runs(path: str, runs: list[str], bound: int) -> int:
    """Sorted runs -> one sorted .npy, written a window at a time (a band's pairs are distinct)."""
    total = sum(int(load_array(r).shape[0]) for r in runs)
    written = 0
    with atomic_write(path) as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint64)),
                                                  "fortran_order": False, "shape": (total, 2)})
        for block in pair_windows(lambda: [load_array(r) for r in runs], bound):
            fh.write(np.ascontiguousarray(block, dtype=np.uint64).tobytes())
            written += int(block.shape[0])
    if written != total:
        raise RuntimeError(f"{path}: merged {written} pairs from runs holding {total}; delete it and rerun")
    return total


def reduce_band(task: ReduceTask) -> dict:
    out = join(task.work, "pairs", f"band-{task.band:02d}.npy")
    if exists(out):
        return {"band": task.band, "pairs": int(load_array(out).shape[0]), "skipped": True}
    runs: list[str] = []  # sorted runs spilled whenever the held pairs pass the bound
    held = 0
    total = 0
    for name in task.names:  # header only: the record count of this band in every shard
        total += int(load_array(join(shard_dir(task.work, name), "bucket_hashes.npy")).shape[1])
    # ~128 bytes per record in a window: slices, keys, sorted copies, sort order, group arrays.
    # ... and at least one window per `bound` records, so that a corpus of mostly pairs keeps the
    # pairs of one window under the bound too (a bucket never straddles two windows)
    bound = pair_bound()
    windows = max(1, math.ceil(total * 128 / (task.config.reduce_memory_mb * 1024 * 1024)),
                  math.ceil(total / bound))
    edges: list[np.ndarray] = []
    for lo, hi in _window_bounds(windows):
        part_h, part_k = [], []
        for s, name in enumerate(task.names):
            # mapped per window and released: touched pages of a mapping count as resident memory
            h = load_array(join(shard_dir(task.work, name), "bucket_hashes.npy"))[task.band]
            i0 = int(np.searchsorted(h, np.uint64(lo), side="left"))
            i1 = int(h.shape[0]) if hi is None else int(np.searchsorted(h, np.uint64(hi), side="left"))
            if i1 > i0:
                d = load_array(join(shard_dir(task.work, name), "bucket_docs.npy"))[task.band]
                part_h.append(np.array(h[i0:i1]))
                part_k.append((np.uint64(s) << np.uint64(32)) | np.array(d[i0:i1]).astype(np.uint64))
                del d
            del h
        if not part_h:
            continue
        h = np.concatenate(part_h)
        k = np.concatenate(part_k)
        order = np.lexsort((k, h))
        window_pairs = bucket_pairs(h[order], k[order], task.config.max_bucket_all_pairs)
        del h, k, order
        if window_pairs.shape[0]:
            edges.append(window_pairs)
            held += int(window_pairs.shape[0])
        if held > bound:
            runs.append(join(task.work, "pairs", f"band-{task.band:02d}.run-{len(runs):04d}.npy"))
            _save_pairs(runs[-1], edges)
            edges, held = [], 0
    if runs:
        if edges:
            runs.append(join(task.work, "pairs", f"band-{task.band:02d}.run-{len(runs):04d}.npy"))
            _save_pairs(runs[-1], edges)
        edges = []
        count = _merge_runs(out, runs, bound)
        for run in runs:
            fs, p = filesystem(run)
            fs.rm(p)
    else:
        count = _save_pairs(out, edges)
    return {"band": task.band, "pairs": count, "records": total, "windows": windows, "runs": len(runs)}


# ---------------------------------------------------------------- (c) cluster: pairs -> keep/remove

@dataclass(frozen=True)
class ClusterTask:
    work: str
    names: tuple[str, ...]
    config: NearDedupConfig


class _Signatures:
    """Looks up signatures by doc key in the per-shard files, mapping each file only for one
    lookup: touched pages of a mapping count as resident memory, so none are kept around."""

    def __init__(self, work: str, names: tuple[str, ...]) -> None:
        self.work = work
        self.names = names

    def get(self, keys: np.ndarray, width: int) -> np.ndarray:
        shard = (keys >> np.uint64(32)).astype(np.int64)
        pos = (keys & _LOW32).astype(np.int64)
        out = np.empty((keys.shape[0], width), dtype=np.uint32)
        for s in np.unique(shard).tolist():
            sigs = load_array(join(shard_dir(self.work, self.names[s]), "signatures.npy"))
            mask = shard == s
            out[mask] = sigs[pos[mask]]
            del sigs
        return out


def _verify(pairs: np.ndarray, signatures: _Signatures, width: int, chunk: int = 32768) -> np.ndarray:
    """Estimated Jaccard of each pair, a chunk of pairs at a time (memory bounded by `chunk`)."""
    jac = np.empty(pairs.shape[0], dtype=np.float64)
    for i in range(0, pairs.shape[0], chunk):
        block = pairs[i:i + chunk]
        jac[i:i + chunk] = estimated_jaccard(signatures.get(block[:, 0], width),
                                             signatures.get(block[:, 1], width))
    return jac


class _DocIndex:
    """Doc key (shard << 32 | position) <-> dense index 0..documents-1, in the same order."""

    def __init__(self, work: str, names: tuple[str, ...]) -> None:
        signed = [int(load_array(join(shard_dir(work, n), "signatures.npy")).shape[0]) for n in names]
        self.offsets = np.concatenate(([0], np.cumsum(signed, dtype=np.int64)))

    @property
    def documents(self) -> int:
        return int(self.offsets[-1])

    def index(self, keys: np.ndarray) -> np.ndarray:
        return self.offsets[(keys >> np.uint64(32)).astype(np.int64)] + (keys & _LOW32).astype(np.int64)

    def key(self, index: np.ndarray) -> np.ndarray:
        shard = np.searchsorted(self.offsets, index, side="right") - 1
        return (shard.astype(np.uint64) << np.uint64(32)) | (index - self.offsets[shard]).astype(np.uint64)


def _doc_info(work: str, names: tuple[str, ...], keys: list[int]) -> dict[int, tuple[str, str, str, int]]:
    """(id, source, subset, ordinal) of the given doc keys, streaming only the needed doc tables."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for key in keys:
        wanted[key >> 32].add(key & 0xFFFFFFFF)
    info: dict[int, tuple[str, str, str, int]] = {}
    for shard, positions in sorted(wanted.items()):
        fs, p = filesystem(join(shard_dir(work, names[shard]), "docs.jsonl"))
        with fs.open(p, "rb") as fh:
            for pos, line in enumerate(fh):
                if pos in positions:
                    info[(shard << 32) | pos] = tuple(orjson.loads(line))
    return info


def cluster(task: ClusterTask) -> dict:
    marker = join(task.work, "clusters.json")
    if exists(marker):
        return {**read_json(marker), "skipped": True}
    config = task.config
    signatures = _Signatures(task.work, task.names)
    width = config.num_perm
    docs = _DocIndex(task.work, task.names)
    union = DocUnion(docs.documents)
    candidates = verified = 0
    bands = [join(task.work, "pairs", f"band-{b:02d}.npy") for b in range(config.bands)]
    # distinct pairs of all bands, a bounded (a, b) window at a time: verified, then joined
    for block in pair_windows(lambda: [load_array(p) for p in bands], pair_bound()):
        passed = block[_verify(block, signatures, width) >= config.threshold]
        candidates += int(block.shape[0])
        verified += int(passed.shape[0])
        union.union(docs.index(passed[:, 0]), docs.index(passed[:, 1]))
    clusters = [docs.key(members).tolist() for members in union.clusters()]
    info = _doc_info(task.work, task.names, [k for members in clusters for k in members])

    # the keep rule per cluster, then every removed member's similarity to the kept one at once
    decisions = []
    for members in clusters:
        keep = min(members, key=lambda k: config.keep_key(info[k][1], info[k][2], info[k][0]))
        decisions.extend((keep, k) for k in members if k != keep)
    pairs = np.array(decisions, dtype=np.uint64).reshape(-1, 2)
    sims = _verify(pairs, signatures, width).tolist()
    removals: dict[int, list[dict]] = defaultdict(list)
    removed_by_source: Counter[str] = Counter()
    examples: list[dict] = []
    for (keep, k), sim in zip(decisions, sims):
        doc_id, source, subset, ordinal = info[k]
        removed_by_source[source] += 1
        entry = {"id": doc_id, "source": source, "subset": subset, "ordinal": ordinal,
                 "kept_id": info[keep][0], "kept_source": info[keep][1], "kept_subset": info[keep][2],
                 "jaccard": round(sim, 4)}
        removals[k >> 32].append(entry)
        if len(examples) < 1000:  # bounded; the report shows the first few by id
            examples.append(entry)
    for shard, name in enumerate(task.names):
        if shard in removals:
            with atomic_write(removal_path(task.work, name)) as fh:
                for entry in sorted(removals[shard], key=lambda e: e["id"]):
                    fh.write(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n")
    examples = [{k: v for k, v in e.items() if k != "ordinal"} for e in
                sorted(examples, key=lambda e: (e["kept_id"], e["id"]))[: config.examples]]
    report = {
        "clusters": len(clusters),
        "documents_in_clusters": sum(len(m) for m in clusters),
        "removed": sum(removed_by_source.values()),
        "removed_by_source": dict(sorted(removed_by_source.items())),
        "candidate_pairs": candidates,
        "verified_pairs": verified,
        "threshold": config.threshold,
        "bands": config.bands,
        "rows": config.rows,
        "ngram": config.ngram,
        "examples": examples,
    }
    write_json(marker, report)  # the marker, last
    return report


def load_removals(work: str, name: str) -> dict[str, dict]:
    """Removed doc id -> decision, for one task (empty when nothing in it is a near-duplicate).

    Ids are unique within a task's removals: the map phase signs only an id's first occurrence."""
    path = removal_path(work, name)
    if not exists(path):
        return {}
    fs, p = filesystem(path)
    with fs.open(p, "rb") as fh:
        return {e["id"]: e for e in map(orjson.loads, fh)}
