"""Sample replay documents to a token budget: file choice, then document choice, then trim.

Budgets: target x weight share over the chosen subsets that have data files; a chosen subset
without any (book today: absent from urls.txt, 404) fails the run or, by default, has its share
re-spread by weight over the others (`replay.missing_subsets`), recorded in the summary's `plan`
and `notes`. A subset that still ends more than 5% short of its budget is a `problems` line.

Per subset:
1. Files are ordered by unit_interval(seed, "replay-file", key): a fixed, seed-dependent order,
   so reading "the first n files" is the file-level choice, and a larger budget only extends it.
2. A probe reads the first documents of the first file: tokens per character (a tokenizer on
   that sample, else the chars-per-token constant) and tokens per raw byte, which with the
   file's size gives tokens per file and, times the file count, the subset's size.
3. Document rate r = 1 if the subset fits the budget, else max(1.25 x budget/size,
   1/read_multiplier):
   a document is kept when unit_interval(seed, "replay-doc", key, line) < r. The floor keeps
   the reads to about read_multiplier x budget instead of the whole subset.
4. Rounds: request only as many next files as the remaining budget needs at the observed
   kept-tokens-per-file (never more than floor(remaining / per file), at least one), in
   parallel; stop when the kept estimate reaches the budget. Inside a file, reading stops
   once the file alone has kept the remaining budget (single-file subsets such as wikipedia).
   If every file was read at r < 1 and the budget is still not kept (the size estimate was
   high), the subset is read again at r = 1 (a superset of the same documents).
5. Merge in file order and cut at the first document where the running estimate reaches the
   budget; write `raw/replay/<subset>/part-NNNNN.jsonl.gz`. The core's mix later trims or tops
   up exactly by repeat counts.
The result depends on (seed, budget, files, ratio) only, never on the worker count or batching.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gap_replay.executors import make_executor
from gap_replay.io import Quarantine, atomic_write
from gap_replay.sources.replay.settings import ReplaySettings
from gap_replay.sources.replay.shards import ShardSeries
from gap_replay.sources.replay.source import RedPajamaRelease
from gap_replay.sources.replay.file_task import (FileTask, HTTPSettings, file_unit,
                                             iter_part, open_documents, sample_file)
from gap_replay.sources.replay.tokens import (TokenCounter, estimate_tokens,
                                              load_token_counter, tokens_per_char)
from gap_replay.sources.replay.urllists import DataFile, checked_location

log = logging.getLogger(__name__)
PROBE_CHUNK = 4096
# The document rate aims this much above budget/size: the kept total of a hash sample is random
# and the size is an estimate, and running short would mean reading every file. The surplus is
# simply not read (files) or trimmed (documents).
RATE_MARGIN = 1.25
# A subset (and so the run) ending further than this below its budget is a problem, not a note.
SHORT_TOLERANCE = 0.05


class ReplayError(RuntimeError):
    """The sample could not be completed (the message names the files); a rerun resumes."""


@dataclass
class Probe:
    ratio: float          # estimated tokens per character
    file_tokens: float    # estimated tokens in one data file of the subset
    documents: int


@dataclass
class SubsetRun:
    subset: str
    files: list[DataFile]
    budget: int
    probe: Probe | None = None
    rate: float = 1.0
    results: list[dict] = field(default_factory=list)
    kept_tokens: float = 0.0
    done: bool = False

    @property
    def next_index(self) -> int:
        return len(self.results)


def order_files(files: list[DataFile], seed: int) -> list[DataFile]:
    return sorted(files, key=lambda f: (file_unit(seed, f.key), f.key))


def probe_file(file: DataFile, settings: ReplaySettings, http: HTTPSettings,
               counter: TokenCounter | None) -> Probe:
    """Tokens per character and per file from the first `probe_documents` documents."""
    texts: list[str] = []
    exhausted = True
    position = length = None
    stats: dict = {}
    with open_documents(file, Quarantine(), http, settings.text_field,
                        chunk_size=PROBE_CHUNK, stats=stats) as (docs, stream):
        for doc in docs:
            texts.append(doc.text)
            if len(texts) >= settings.probe_documents:
                exhausted = False
                break
        if stream is not None:
            position, length = stream.position, stream.length
    if not texts:
        raise ReplayError(f"{file.url}: no readable documents in the first file of "
                          f"{file.subset!r} (see the quarantine)")
    ratio = tokens_per_char(texts, counter, settings.chars_per_token)
    sample_tokens = sum(estimate_tokens(t, ratio) for t in texts)
    if exhausted:
        file_tokens = sample_tokens
    elif file.kind == "parquet":
        from gap_replay.sources.replay.hub import parquet_rows

        file_tokens = sample_tokens / len(texts) * parquet_rows(file.url)
    elif length and position and stats.get("yielded"):
        # tokens per decompressed byte of the lines read x decompressed bytes per raw byte
        file_tokens = sample_tokens / stats["yielded"] * stats["decoded"] / position * length
    else:
        file_tokens = math.inf  # size unknown: fall back to the rate floor
    log.info("%s: probe of %d documents: %.3f tokens/char, ~%.3g tokens per file",
             file.subset, len(texts), ratio, file_tokens)
    return Probe(ratio=ratio, file_tokens=file_tokens, documents=len(texts))


def _cached_probe(run: SubsetRun, settings: ReplaySettings, http: HTTPSettings,
                  counter: TokenCounter | None, work: Path) -> Probe:
    key = orjson.dumps([run.files[0].key, settings.probe_documents, settings.chars_per_token,
                        str(settings.tokenizer or "")]).decode()
    path = work / run.subset / f"probe-{_short(key)}.json"
    if path.is_file():
        cached = orjson.loads(path.read_bytes())
        return Probe(cached["ratio"], cached["file_tokens"] or math.inf, cached["documents"])
    probe = probe_file(run.files[0], settings, http, counter)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        finite = math.isfinite(probe.file_tokens)
        fh.write(orjson.dumps({"ratio": probe.ratio, "documents": probe.documents,
                               "file_tokens": probe.file_tokens if finite else None}))
    return probe


def _short(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def choose_rate(budget: int, subset_tokens: float, read_multiplier: float) -> float:
    """Document keep probability: all of a subset smaller than its budget, else budget/size with
    a margin, but never below 1/read_multiplier (which caps reads at ~read_multiplier x budget)."""
    if subset_tokens <= budget:
        return 1.0
    return min(1.0, max(RATE_MARGIN * budget / subset_tokens, 1.0 / read_multiplier))


def list_files(settings: ReplaySettings, http: HTTPSettings) -> dict[str, list[DataFile]]:
    """The chosen subsets' data files (the source's `discover`), by subset ([] for none)."""
    files: dict[str, list[DataFile]] = {s: [] for s in settings.subsets}
    for file in RedPajamaRelease(settings, http).discover(settings.subsets):
        files[file.subset].append(file)
    return files


def plan_budgets(settings: ReplaySettings, listed: dict[str, list[DataFile]]
                 ) -> tuple[dict[str, int], dict[str, Any]]:
    """Budgets of the subsets that have files, and the plan that explains them.

    A chosen subset without data files (absent from urls.txt, its list answering 404, an empty
    folder) either fails the run (`missing_subsets: fail`) or has its share re-spread over the
    others by weight (`respread`, the default), so the total budget is still the target.
    """
    missing = {s: _where(settings, s) for s in settings.subsets if not listed.get(s)}
    available = tuple(s for s in settings.subsets if s not in missing)
    if not available:
        raise ReplayError(f"no data files for {', '.join(settings.subsets)} in the URL lists "
                          f"({settings.url_lists}); check --subsets and --url-lists")
    if missing and settings.missing_subsets == "fail":
        raise ReplayError("replay subsets without data files (replay.missing_subsets: fail): "
                          + "; ".join(f"{s!r} (checked {where})" for s, where in missing.items())
                          + ". Drop them from replay.subsets, or set replay.missing_subsets: "
                          "respread to give their budget to the other subsets.")
    budgets = settings.budgets(available)
    plan = {"subsets_requested": list(settings.subsets), "subsets_sampled": list(available),
            "subsets_missing": missing, "missing_subsets": settings.missing_subsets,
            "respread": bool(missing), "budgets": budgets,
            "budgets_without_respread": {s: b for s, b in settings.budgets().items()
                                         if s in budgets}}
    return budgets, plan


def _where(settings: ReplaySettings, subset: str) -> str:
    if subset in settings.hub:
        return settings.hub[subset]
    return checked_location(settings.url_lists, subset)


def run_sample(settings: ReplaySettings, output: str | Path, *, http: HTTPSettings,
               workers: int = 1, executor: str = "local", address: str | None = None
               ) -> dict[str, Any]:
    """Sample to `output/raw/replay/<subset>/`; returns (and writes) the summary, with `notes`
    (a re-spread budget) and `problems` (a subset more than 5% short of its budget)."""
    out = Path(output)
    work = out / "work" / "replay"
    quarantine_dir = out / "quarantine" / "replay"
    counter = load_token_counter(settings.tokenizer) if settings.tokenizer else None
    listed = list_files(settings, http)
    budgets, plan = plan_budgets(settings, listed)
    notes = []
    if plan["respread"]:
        note = (f"subset(s) {', '.join(plan['subsets_missing'])} have no data files (checked "
                f"{', '.join(sorted(set(plan['subsets_missing'].values())))}); their budget share "
                f"was re-spread over {', '.join(plan['subsets_sampled'])} by weight "
                "(replay.missing_subsets: respread)")
        log.warning("replay: %s", note)
        notes.append(note)
    runs = [SubsetRun(s, order_files(listed[s], settings.seed), budgets[s])
            for s in plan["subsets_sampled"]]
    for run in runs:
        run.probe = _cached_probe(run, settings, http, counter, work)
        run.rate = choose_rate(run.budget, run.probe.file_tokens * len(run.files),
                               settings.read_multiplier)
        log.info("%s: %d files, budget %d tokens, document rate %.6f", run.subset,
                 len(run.files), run.budget, run.rate)
    pool = make_executor(executor, workers, address)
    try:
        while True:
            _sample_rounds(runs, settings, http, pool, work, quarantine_dir)
            rerun = [r for r in runs if r.kept_tokens < r.budget and r.rate < 1.0]
            if not rerun:
                break
            for run in rerun:  # every file read and still short: the estimate was off
                log.info("%s: all %d files read at rate %.4f kept ~%d of %d tokens; reading "
                         "them again keeping every document", run.subset, len(run.files),
                         run.rate, run.kept_tokens, run.budget)
                _drop_quarantine(run, quarantine_dir)  # the second pass records them again
                run.rate, run.results, run.kept_tokens, run.done = 1.0, [], 0.0, False
    finally:
        pool.close()
    summary = _merge(runs, settings, out)
    summary["plan"] = plan
    summary["notes"] = notes
    summary["problems"] = shortfalls(summary)
    for line in summary["problems"]:
        log.error("replay: %s", line)
    work.mkdir(parents=True, exist_ok=True)
    with atomic_write(work / "summary.json") as fh:
        fh.write(orjson.dumps(summary, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))
    return summary


def _drop_quarantine(run: SubsetRun, quarantine_dir: Path) -> None:
    for result in run.results:
        if result.get("quarantined"):
            name = Path(result["part"]).name.removesuffix(".jsonl.gz")
            (quarantine_dir / run.subset / f"{name}.jsonl").unlink(missing_ok=True)


def _sample_rounds(runs: list[SubsetRun], settings: ReplaySettings, http: HTTPSettings, pool,
                   work: Path, quarantine_dir: Path) -> None:
    """Read next files in parallel rounds until every subset kept its budget or ran out."""
    while active := [r for r in runs if not r.done]:
        batch: list[tuple[SubsetRun, FileTask]] = []
        for run in active:
            remaining = run.budget - run.kept_tokens
            for file in run.files[run.next_index:run.next_index + _files_needed(run)]:
                batch.append((run, FileTask(file, settings.seed, run.rate, run.probe.ratio,
                                            str(work), str(quarantine_dir), http,
                                            settings.text_field, cap_tokens=remaining)))
        results = pool.map(sample_file, [t for _, t in batch], desc="replay files")
        failed = [r for r in results if r.get("error")]
        if failed:
            raise ReplayError("could not read: " + "; ".join(
                f"{r['file']} ({r['error']})" for r in failed))
        for (run, _), result in zip(batch, results):
            if run.done:
                result["beyond_budget"] = True  # fetched in the last round, not needed
            run.results.append(result)
            run.kept_tokens += result["kept_tokens"]
            if run.kept_tokens >= run.budget or run.next_index >= len(run.files):
                run.done = True


def shortfalls(summary: dict[str, Any], tolerance: float = SHORT_TOLERANCE) -> list[str]:
    """One problem line per subset that ran out of documents more than `tolerance` short of its
    budget (a subset that reached it is off by less than half a document: not a problem)."""
    lines = []
    for name, s in summary["subsets"].items():
        budget, got = s["budget_tokens"], s["estimated_tokens"]
        if s["short"] and budget and (budget - got) / budget > tolerance:
            lines.append(f"subset {name!r} ended at ~{got:,} of its {budget:,}-token budget "
                         f"({100 * (budget - got) / budget:.0f}% short) with all "
                         f"{s['files_listed']} listed files read: the source is smaller than "
                         "asked; lower sources.replay.target_tokens or change replay.subsets / "
                         "replay.weights")
    return lines


def _files_needed(run: SubsetRun) -> int:
    """How many next files the remaining budget needs at the kept tokens per file seen so far
    (the probe's estimate before any file is read); never more than that, at least one."""
    remaining = run.budget - run.kept_tokens
    read = [r for r in run.results if not r.get("beyond_budget")]
    per_file = (sum(r["kept_tokens"] for r in read) / len(read) if read and run.kept_tokens
                else run.rate * run.probe.file_tokens)
    if not math.isfinite(per_file) or per_file <= 0:
        return 1
    return max(1, int(remaining // per_file))


def _merge(runs: list[SubsetRun], settings: ReplaySettings, out: Path) -> dict[str, Any]:
    """Write the kept documents in file order up to each subset's budget; return the summary."""
    subsets: dict[str, Any] = {}
    for run in runs:
        documents = used_files = 0
        tokens = 0.0
        full = False
        ratio = run.probe.ratio if run.probe else 0.0
        with ShardSeries(out / "raw" / "replay" / run.subset, settings.docs_per_shard) as series:
            for result in run.results:
                if result.get("beyond_budget") or full:
                    continue
                used_files += 1
                for doc in iter_part(result["part"]):
                    doc_tokens = estimate_tokens(doc.text, ratio)
                    if tokens + doc_tokens >= run.budget:
                        full = True
                        # the document that crosses the budget is kept if that lands nearer it
                        if tokens + doc_tokens - run.budget > run.budget - tokens:
                            break
                    series.write(doc)
                    documents += 1
                    tokens += doc_tokens
                    if full:
                        break
        shard_index = series.shards
        used = [r for r in run.results if not r.get("beyond_budget")][:used_files]
        subsets[run.subset] = {
            "budget_tokens": run.budget,
            "documents": documents,
            "estimated_tokens": round(tokens),
            "files_listed": len(run.files),
            "files_read": used_files,
            "files_fetched": len(run.results),
            "document_rate": run.rate,
            "tokens_per_char": ratio,
            "documents_seen": sum(r["documents"] for r in used),
            "documents_sampled": sum(r["kept"] for r in used),
            "quarantined": sum(r["quarantined"] for r in run.results),
            "shards": shard_index,
            "short": not full,
        }
    return {
        "source": "replay",
        "seed": settings.seed,
        "target_tokens": settings.target_tokens,
        "documents": sum(s["documents"] for s in subsets.values()),
        "estimated_tokens": sum(s["estimated_tokens"] for s in subsets.values()),
        "quarantined": sum(s["quarantined"] for s in subsets.values()),
        "subsets": subsets,
    }
