"""`mix`: tokenize `clean/` and write shuffled, budgeted shards plus `manifest.json`.

Three task phases, each one task per shard with a marker, then the manifest:

1. tokenize: each clean shard -> tokenized rows + per-source token totals (train/validation,
   weighted by `meta.quality_weight`);
2. (reduce) plan: per-source repeat multipliers from the recipe budgets (mix_plan.py);
3. bucket: each tokenized shard -> per-output-shard bucket files, one line per repeat;
4. write: each output shard sorts its bucket lines in memory and writes
   `shards/<split>/shard-NNNNN.jsonl.gz`; its marker holds sha256 and counts.

Intermediates go as soon as their consumer's marker is written: a shard's tokenized rows once
its bucket marker is, an output shard's buckets once its write marker is. Markers stay, so a
rerun after success does nothing; an output shard deleted since is rebuilt from scratch
(`_reset_if_consumed`), because the buckets it was made of are gone.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from isal import igzip

from gap_replay.executors import map_largest_first
from gap_replay.formats.megatron import write_megatron
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.io.jsonl import shard_key
from gap_replay.io.paths import atomic_write, exists, filesystem, join, remove
from gap_replay.recipe import SPLITS, Recipe, recipe_from_dict
from gap_replay.redistribution import is_restricted
from gap_replay.mix_plan import (bucket_line, parse_bucket_line, placement, plan_sources,
                                   quality_weight, repeat_count, shard_counts, shard_row)
from gap_replay.tasks import (file_fingerprint, fingerprint, key_file, prepare_workdir, read_marker,
                              run_once)
from gap_replay.tokenizer import Tokenizer

log = logging.getLogger(__name__)

BUCKET_FLUSH_BYTES = 32 << 20
_TOKENIZERS: dict[tuple, Tokenizer] = {}


def load_tokenizer(recipe: Recipe) -> Tokenizer:
    """The recipe's tokenizer, loaded once per process."""
    tok = recipe.tokenizer
    key = (tok["path"], recipe.tokenizer_base_dir(), tuple(tok.get("extra_tokens", [])),
           bool(tok.get("append_eod", True)))
    if key not in _TOKENIZERS:  # keyed on the spelling: a Hub id is resolved (and fetched) once
        _TOKENIZERS[key] = Tokenizer(key[0], key[2], key[3], base_dir=key[1])
    return _TOKENIZERS[key]


@dataclass
class MixTask:
    recipe: dict[str, Any]
    recipe_origin: str | None
    key: str
    input: str
    workdir: str
    quarantine: str = ""
    plan: dict | None = None
    shards: dict[str, int] | None = None  # output shards per split (stages/mix.shard_counts)
    need_tokens: bool = True  # the bucket phase still has to read this shard's tokenized rows


def _tokenize(task: MixTask) -> dict:
    recipe = recipe_from_dict(task.recipe, task.recipe_origin)
    tokenizer = load_tokenizer(recipe)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    quarantine = Quarantine()
    out = tokens_path(task)
    n = 0
    with ShardWriter(out, fast=True) as writer:
        for doc in iter_documents(task.input, quarantine, source=task.key.split("/", 1)[0]):
            split = doc.meta.get("split")
            if split not in SPLITS:
                quarantine.add(file=task.input, line=None, reason=f"document {doc.id!r} has no meta.split "
                               "(run `gap-replay process` first)", source=doc.source)
                continue
            ids = tokenizer.encode(doc.text)
            weight = quality_weight(doc.meta)
            writer.write(orjson.dumps([doc.id, doc.source, split, weight, ids, is_restricted(doc)]))
            t = totals[doc.source]
            t[f"{split}_tokens"] += len(ids)
            t[f"{split}_documents"] += 1
            if split == "train":
                t["weighted_tokens"] += weight * len(ids)
            n += 1
    if len(quarantine):
        quarantine.flush(task.quarantine)
    return {"key": task.key, "documents": n, "quarantined": len(quarantine),
            "totals": {s: dict(v) for s, v in totals.items()}}


def tokens_path(task: MixTask) -> str:
    return join(task.workdir, "tokens", task.key + ".jsonl.gz")


def tokenize_task(task: MixTask) -> dict:
    return run_once(join(task.workdir, "markers", "tokenize", key_file(task.key) + ".json"),
                    lambda: _tokenize(task), outputs=(tokens_path(task),) if task.need_tokens else ())


def _bucket(task: MixTask) -> dict:
    recipe = recipe_from_dict(task.recipe, task.recipe_origin)
    seed = recipe.seed
    n_shards = task.shards
    pending: dict[tuple[str, int], list[bytes]] = defaultdict(list)
    parts: dict[tuple[str, int], int] = defaultdict(int)
    pending_bytes = 0
    name = key_file(task.key)

    def flush() -> None:
        nonlocal pending_bytes
        for (split, shard), lines in sorted(pending.items()):
            path = join(task.workdir, "buckets", split, f"{shard:05d}", f"{name}.{parts[split, shard]:04d}.jsonl.gz")
            with ShardWriter(path, fast=True) as writer:
                for line in lines:
                    writer.write(line)
            parts[split, shard] += 1
        pending.clear()
        pending_bytes = 0

    repeats = 0
    # tokens `push` withholds (licence), so the dataset card counts only what it publishes
    restricted: dict[str, dict[str, int]] = {split: defaultdict(int) for split in SPLITS}
    for line in _read_lines(tokens_path(task)):
        doc_id, source, split, weight, ids, *flag = orjson.loads(line)
        if split == "validation":
            count = 1
        else:
            count = repeat_count(seed, doc_id, task.plan[source]["multiplier"] * weight)
        if not count:
            continue
        row = shard_row(doc_id, source, split, ids)
        for r in range(count):
            shard, order = placement(seed, doc_id, r, n_shards[split])
            line = bucket_line(order, source, len(ids), row)
            pending[split, shard].append(line)
            pending_bytes += len(line)
        repeats += count
        if flag and flag[0]:
            restricted[split][source] += count * len(ids)
        if pending_bytes > BUCKET_FLUSH_BYTES:
            flush()
    flush()
    return {"key": task.key, "repeats": repeats,
            "restricted_tokens": {split: dict(by_source) for split, by_source in restricted.items()}}


def bucket_task(task: MixTask) -> dict:
    """Bucket one tokenized shard; its rows are deleted once the marker is written."""
    result = run_once(join(task.workdir, "markers", "bucket", key_file(task.key) + ".json"),
                      lambda: _bucket(task))
    remove(tokens_path(task))
    return result


@dataclass
class WriteTask:
    workdir: str
    output: str
    split: str
    shard: int


def _write_shard(task: WriteTask) -> dict:
    fs, bucket_dir = filesystem(bucket_path(task))
    lines: list[bytes] = []
    if fs.exists(bucket_dir):
        for path in sorted(fs.find(bucket_dir)):
            if ".tmp-" in path:
                continue
            lines.extend(line.rstrip(b"\n") for line in _read_lines(path))
    lines.sort()  # in place: the shard's lines are the only large thing held
    rel = f"shards/{task.split}/shard-{task.shard:05d}.jsonl.gz"
    out = join(task.output, rel)
    tokens_by_source: dict[str, int] = defaultdict(int)
    documents_by_source: dict[str, int] = defaultdict(int)  # sequences, repeats included
    with ShardWriter(out) as writer:
        for line in lines:
            source, n_tokens, row = parse_bucket_line(line)
            tokens_by_source[source] += n_tokens
            documents_by_source[source] += 1
            writer.write(row)
        documents = writer.count
    del lines
    digest = hashlib.sha256()
    fs_out, out_path = filesystem(out)
    with fs_out.open(out_path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": rel, "sha256": digest.hexdigest(), "documents": documents,
            "tokens": sum(tokens_by_source.values()), "tokens_by_source": dict(sorted(tokens_by_source.items())),
            "documents_by_source": dict(sorted(documents_by_source.items()))}


def _read_lines(path: str):
    """Lines of an intermediate gzip file this module wrote itself."""
    fs, fs_path = filesystem(path)
    with fs.open(fs_path, "rb") as raw, igzip.IGzipFile(fileobj=raw) as fh:  # ISA-L: ~3x zlib
        for line in fh:
            if line.strip():
                yield line


def bucket_path(task: WriteTask) -> str:
    return join(task.workdir, "buckets", task.split, f"{task.shard:05d}")


def write_task(task: WriteTask) -> dict:
    """Write one output shard; its buckets are deleted once the marker is written."""
    rel = f"shards/{task.split}/shard-{task.shard:05d}.jsonl.gz"
    result = run_once(join(task.workdir, "markers", "write", f"{task.split}-{task.shard:05d}.json"),
                      lambda: _write_shard(task), outputs=(join(task.output, rel),))
    remove(bucket_path(task))
    return result


def _reset_if_consumed(workdir: str, output_dir: str) -> None:
    """An output shard with a write marker but no file must be written again, and its buckets
    (and the tokenized rows they came from) were deleted when the marker was written: drop the
    bucket markers so every tokenized shard is made and bucketed again (same bytes)."""
    fs, markers = filesystem(join(workdir, "markers", "write"))
    if not fs.exists(markers):
        return
    for path in fs.ls(markers, detail=False):
        split, shard = path.rsplit("/", 1)[-1].removesuffix(".json").rsplit("-", 1)
        if not exists(join(output_dir, "shards", split, f"shard-{shard}.jsonl.gz")):
            log.info("mix: output shard %s/%s is missing; bucketing again", split, shard)
            remove(join(workdir, "markers", "bucket"))
            return


def run_mix(input_dir: str, output_dir: str, recipe: Recipe, executor, formats: tuple[str, ...] = ("jsonl",)) -> dict:
    """Tokenize and mix `input_dir/clean` into `output_dir/shards` + `manifest.json`."""
    clean_root = join(input_dir, "clean")
    shards = list_shards(clean_root)
    if not shards:
        raise FileNotFoundError(f"no cleaned shards below {clean_root}: run `gap-replay process` first")
    tokenizer = load_tokenizer(recipe)
    identity = file_fingerprint(shards)
    fp = fingerprint("mix", recipe.fingerprint(), tokenizer.sha256, identity)
    workdir, resumed = prepare_workdir(output_dir, "mix", fp, ["shards", "quarantine/mix"])
    log.info("mix: %d clean shard(s), work dir %s%s", len(shards), workdir, " (resuming)" if resumed else "")
    keys = [shard_key(clean_root, p) for p in shards]
    _reset_if_consumed(workdir, output_dir)
    tasks = [MixTask(recipe.data, recipe.origin, k, p, workdir,
                     join(output_dir, "quarantine", "mix", key_file(k) + ".jsonl"),
                     need_tokens=read_marker(join(workdir, "markers", "bucket", key_file(k) + ".json")) is None)
             for k, p in zip(keys, shards)]

    sizes = [size for _, size, _ in identity]
    tok_results = map_largest_first(executor, tokenize_task, tasks, sizes, desc="mix [tokenize]")
    measured: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for result in tok_results:
        for source, t in result["totals"].items():
            for k, v in t.items():
                measured[source][k] += v
    targets = {s: recipe.target_tokens(s) for s in recipe.sources}
    plan = plan_sources(targets, measured)
    for source in sorted(set(measured) - set(targets)):
        raise ValueError(f"clean/ holds source {source!r} that the recipe does not list")
    for source, p in plan.items():
        if p["target_tokens"] and not p["measured_train_tokens"]:
            # a source with documents but no train tokens is worth a warning; one with no
            # documents at all was simply not part of this run (--sources, a refresh config)
            (log.warning if source in measured else log.info)(
                "source %s: target %d tokens but no train tokens were measured", source, p["target_tokens"])
    with atomic_write(join(workdir, "plan.json")) as fh:
        fh.write(orjson.dumps(plan, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
    n_shards = shard_counts(plan, {split: recipe.shards_per_split(split) for split in SPLITS})
    for t in tasks:
        t.plan = plan
        t.shards = n_shards
    bucket_results = map_largest_first(executor, bucket_task, tasks, sizes, desc="mix [bucket]")
    write_tasks = [WriteTask(workdir, output_dir, split, i) for split in SPLITS for i in range(n_shards[split])]
    shard_results = executor.map(write_task, write_tasks, desc="mix [write shards]")
    manifest = build_manifest(recipe, tokenizer, shard_results, targets, _restricted_tokens(bucket_results))
    with atomic_write(join(output_dir, "manifest.json")) as fh:
        fh.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    with atomic_write(join(output_dir, "mix_plan.json")) as fh:
        fh.write(orjson.dumps(plan, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")
    if "megatron" in formats:
        write_megatron(output_dir, manifest, tokenizer)
    _remove_intermediate(workdir)
    return manifest


def _restricted_tokens(bucket_results: list[dict]) -> dict[str, dict[str, int]] | None:
    """Per split and source, mixed tokens of documents `push` withholds; None if a bucket marker
    of an older version lacks the count (the card then says it cannot tell)."""
    total: dict[str, dict[str, int]] = {split: defaultdict(int) for split in SPLITS}
    for result in bucket_results:
        if "restricted_tokens" not in result:
            return None
        for split, by_source in result["restricted_tokens"].items():
            for source, n in by_source.items():
                total[split][source] += n
    return {split: dict(sorted(by_source.items())) for split, by_source in total.items()}


def build_manifest(recipe: Recipe, tokenizer: Tokenizer, shard_results: list[dict], targets: dict[str, int],
                   restricted_tokens: dict[str, dict[str, int]] | None = None) -> dict:
    shards = [{k: r[k] for k in ("path", "sha256", "documents", "tokens", "tokens_by_source", "documents_by_source")
               if k in r} for r in shard_results]
    by_source: dict[str, int] = defaultdict(int)
    for s in shards:
        for src, n in s["tokens_by_source"].items():
            by_source[src] += n
    return {
        "recipe": {"name": recipe.name, "sha256": recipe.fingerprint(), "scale": recipe.scale},
        "seed": recipe.seed,
        "tokenizer": tokenizer.describe(),
        "shards": shards,
        "totals": {
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "tokens_by_source": dict(sorted(by_source.items())),
            "target_tokens_by_source": dict(sorted(targets.items())),
            **({"restricted_tokens_by_split": restricted_tokens} if restricted_tokens is not None else {}),
        },
    }


def _remove_intermediate(workdir: str) -> None:
    """Tokenized rows and buckets are only needed until every shard is written (markers stay)."""
    for sub in ("tokens", "buckets"):
        remove(join(workdir, sub))
