"""`mix`: tokenize `clean/` and write shuffled, budgeted shards plus `manifest.json`.

Three task phases, each one task per shard with a marker, then the manifest:

1. tokenize: each clean shard -> tokenized rows + per-source token totals (train/validation,
   weighted by `meta.quality_weight`);
2. (reduce) plan: per-source repeat multipliers from the recipe budgets (stages/mix.py);
3. bucket: each tokenized shard -> per-output-shard bucket files, one line per repeat;
4. write: each output shard sorts its bucket lines in memory and writes
   `shards/<split>/shard-NNNNN.jsonl.gz`; its marker holds sha256 and counts.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson

from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.io.paths import atomic_write, filesystem, join
from gap_replay.recipe import SPLITS, Recipe, recipe_from_dict
from gap_replay.redistribution import is_restricted
from gap_replay.stages.mix import (bucket_line, parse_bucket_line, placement, plan_sources,
                                   quality_weight, repeat_count, shard_row)
from gap_replay.stages.tokenize import Tokenizer
from gap_replay.tasks import file_fingerprint, fingerprint, key_file, prepare_workdir, run_once

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


def _tokenize(task: MixTask) -> dict:
    recipe = recipe_from_dict(task.recipe, task.recipe_origin)
    tokenizer = load_tokenizer(recipe)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    quarantine = Quarantine()
    out = join(task.workdir, "tokens", task.key + ".jsonl.gz")
    n = 0
    with ShardWriter(out, compresslevel=1) as writer:
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


def tokenize_task(task: MixTask) -> dict:
    return run_once(join(task.workdir, "markers", "tokenize", key_file(task.key) + ".json"),
                    lambda: _tokenize(task))


def _bucket(task: MixTask) -> dict:
    recipe = recipe_from_dict(task.recipe, task.recipe_origin)
    seed = recipe.seed
    n_shards = {split: recipe.shards_per_split(split) for split in SPLITS}
    pending: dict[tuple[str, int], list[bytes]] = defaultdict(list)
    parts: dict[tuple[str, int], int] = defaultdict(int)
    pending_bytes = 0
    name = key_file(task.key)

    def flush() -> None:
        nonlocal pending_bytes
        for (split, shard), lines in sorted(pending.items()):
            path = join(task.workdir, "buckets", split, f"{shard:05d}", f"{name}.{parts[split, shard]:04d}.jsonl.gz")
            with ShardWriter(path, compresslevel=1) as writer:
                for line in lines:
                    writer.write(line)
            parts[split, shard] += 1
        pending.clear()
        pending_bytes = 0

    repeats = 0
    # tokens `push` withholds (licence), so the dataset card counts only what it publishes
    restricted: dict[str, dict[str, int]] = {split: defaultdict(int) for split in SPLITS}
    for line in _read_lines(join(task.workdir, "tokens", task.key + ".jsonl.gz")):
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
    return run_once(join(task.workdir, "markers", "bucket", key_file(task.key) + ".json"),
                    lambda: _bucket(task))


@dataclass
class WriteTask:
    workdir: str
    output: str
    split: str
    shard: int


def _write_shard(task: WriteTask) -> dict:
    fs, bucket_dir = filesystem(join(task.workdir, "buckets", task.split, f"{task.shard:05d}"))
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
    with fs.open(fs_path, "rb") as raw, gzip.GzipFile(fileobj=raw) as fh:
        for line in fh:
            if line.strip():
                yield line


def write_task(task: WriteTask) -> dict:
    rel = f"shards/{task.split}/shard-{task.shard:05d}.jsonl.gz"
    return run_once(join(task.workdir, "markers", "write", f"{task.split}-{task.shard:05d}.json"),
                    lambda: _write_shard(task), outputs=(join(task.output, rel),))


def run_mix(input_dir: str, output_dir: str, recipe: Recipe, executor, formats: tuple[str, ...] = ("jsonl",)) -> dict:
    """Tokenize and mix `input_dir/clean` into `output_dir/shards` + `manifest.json`."""
    clean_root = join(input_dir, "clean")
    shards = list_shards(clean_root)
    if not shards:
        raise FileNotFoundError(f"no cleaned shards below {clean_root}: run `gap-replay process` first")
    tokenizer = load_tokenizer(recipe)
    fp = fingerprint("mix", recipe.fingerprint(), tokenizer.sha256, file_fingerprint(shards))
    workdir, resumed = prepare_workdir(output_dir, "mix", fp, ["shards", "quarantine/mix"])
    log.info("mix: %d clean shard(s), work dir %s%s", len(shards), workdir, " (resuming)" if resumed else "")
    keys = [_key(clean_root, p) for p in shards]
    tasks = [MixTask(recipe.data, recipe.origin, k, p, workdir,
                     join(output_dir, "quarantine", "mix", key_file(k) + ".jsonl")) for k, p in zip(keys, shards)]

    tok_results = executor.map(tokenize_task, tasks, desc="mix [tokenize]")
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
    for t in tasks:
        t.plan = plan
    bucket_results = executor.map(bucket_task, tasks, desc="mix [bucket]")
    write_tasks = [WriteTask(workdir, output_dir, split, i)
                   for split in SPLITS for i in range(recipe.shards_per_split(split))]
    shard_results = executor.map(write_task, write_tasks, desc="mix [write shards]")
    manifest = build_manifest(recipe, tokenizer, shard_results, targets, _restricted_tokens(bucket_results))
    with atomic_write(join(output_dir, "manifest.json")) as fh:
        fh.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    with atomic_write(join(output_dir, "mix_plan.json")) as fh:
        fh.write(orjson.dumps(plan, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")
    if "megatron" in formats:
        write_megatron_hook(output_dir, manifest, tokenizer)
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


def write_megatron_hook(output_dir: str, manifest: dict, tokenizer: Tokenizer) -> None:
    """`--format megatron` is written by `gap_replay.formats.megatron.write_megatron`."""
    try:
        from gap_replay.formats.megatron import write_megatron
    except ImportError as exc:
        raise RuntimeError("--format megatron needs gap_replay.formats.megatron, which is not "
                           f"installed in this build ({exc})") from exc
    write_megatron(output_dir, manifest, tokenizer)


def _key(root: str, path: str) -> str:
    rel = path[len(root.rstrip("/")) + 1:]
    for suffix in (".jsonl.gz", ".jsonl.zst", ".jsonl"):
        if rel.endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def _remove_intermediate(workdir: str) -> None:
    """Tokenized rows and buckets are only needed until every shard is written (markers stay)."""
    for sub in ("tokens", "buckets"):
        fs, path = filesystem(join(workdir, sub))
        if fs.exists(path):
            fs.rm(path, recursive=True)
