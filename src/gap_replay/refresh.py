"""Unattended refresh: re-fetch every source conditionally, reprocess only what changed, swap in
a complete new version atomically.

Layout under ROOT:

    ROOT/.lock                       fcntl lock: a second refresh exits 75 at once
    ROOT/state/                      the acquirers' output directory, kept across versions:
                                     raw/ shards, state.sqlite (scrape state, failures to retry),
                                     cache/http.sqlite (requests-cache, ETag revalidation)
    ROOT/versions/<UTC timestamp>/   complete versions (an OUT directory each + index.sqlite)
    ROOT/versions/.partial-<ts>/     the version being built (removed by the next refresh if killed)
    ROOT/current -> versions/<ts>    the newest complete version, swapped with os.replace

A refresh runs every acquirer (revalidating, not skipping, what it has), fingerprints every raw
document (id -> hash of its content, volatile fields like `fetched_at` left out) and compares
with `current/index.sqlite`. Nothing new, changed or removed: the temporary version is deleted
and `current` stays (exit 0). Otherwise the unchanged documents' cleaned text is reused from
`current/clean/` (one pass), and only the new and changed documents go through the shared
stages (`process` on a delta folder) with the reused shards as exact dedup's prior winners: a
delta document that duplicates a published one is dropped by the `dedup` stage under the
recipe's kinds and reasons (`duplicate_id`/`_content`/`_title`), so there is one dedup, not a
second one here. The mix runs over the union. The document index lives inside each version so
it can never disagree with the data it describes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from gap_replay.docindex import DocIndex, fingerprint  # noqa: F401  (fingerprint: re-exported)
from gap_replay.document import Document
from gap_replay.executors import make_executor
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.versions import (LockHeld, current_version, fsync_dir, new_version_name,  # noqa: F401
                                 prune_versions, refresh_lock, swap_current, versions)

log = logging.getLogger("gap_replay.refresh")

EXIT_OK, EXIT_FAILED, EXIT_LOCKED = 0, 1, 75
DOCS_PER_CLEAN_SHARD = 50_000


class RefreshError(RuntimeError):
    """A refresh that cannot run or finish; `problems` holds one line per problem (cron logs
    each as its own line)."""

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems = [str(p) for p in problems]

    def __str__(self) -> str:
        return "\n".join(self.problems)


# -- configuration ---------------------------------------------------------------------------
@dataclass
class RefreshConfig:
    output: Path
    sources: list[str] = field(default_factory=lambda: ["guidelines", "abstracts", "papers", "replay"])
    recipe: str | None = None  # a recipe file, or None / "default" for gap_replay/recipe.yaml
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"
    address: str | None = None
    keep_versions: int = 3
    workers: int = 1
    formats: list[str] = field(default_factory=lambda: ["jsonl"])
    sample: bool = False
    sample_sites: str | None = None
    base_url: str | None = None
    acquirers: dict[str, str] = field(default_factory=dict)  # source -> "module:function" override
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    @classmethod
    def load(cls, path: str | os.PathLike, output: str | os.PathLike | None = None) -> "RefreshConfig":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RefreshError(f"{path}: cannot read the refresh config: {exc}") from exc
        if not isinstance(data, dict):
            raise RefreshError(f"{path}: the refresh config must be a mapping")
        known = {"output", "sources", "recipe", "recipe_overrides", "keep_versions", "workers", "executor",
                 "address", "format", "sample", "sample_sites", "base_url", "acquirers", "options", "seed"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RefreshError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        root = output or data.get("output")
        if not root:
            raise RefreshError(f"{path}: output: missing (or pass --output ROOT)")
        base = path.parent

        def rel(value):  # recipe and sample_sites are relative to the config file, output to the cwd
            return str((base / value).resolve()) if value and not os.path.isabs(str(value)) and "://" not in str(value) else value

        fmt = data.get("format", "jsonl")
        formats = [f.strip() for f in (fmt.split(",") if isinstance(fmt, str) else fmt) if f.strip()]
        bad = sorted(set(formats) - {"jsonl", "megatron"})
        if bad:
            raise RefreshError(f"{path}: format: unknown {', '.join(bad)} (jsonl, megatron)")
        keep = data.get("keep_versions", 3)
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise RefreshError(f"{path}: keep_versions: must be an integer >= 1, got {keep!r}")
        sources = data.get("sources", cls.__dataclass_fields__["sources"].default_factory())
        if isinstance(sources, str):
            sources = [s.strip() for s in sources.split(",") if s.strip()]
        sample_sites = os.environ.get("GAP_REPLAY_SAMPLE_SITES") or rel(data.get("sample_sites"))
        return cls(output=Path(root).resolve(), sources=list(sources),
                   recipe=None if data.get("recipe") in (None, "default") else rel(data["recipe"]),
                   recipe_overrides=dict(data.get("recipe_overrides") or {}),
                   executor=data.get("executor", "local"), address=data.get("address"),
                   keep_versions=keep, workers=int(data.get("workers", 1)),
                   formats=formats, sample=bool(data.get("sample", False)), sample_sites=sample_sites,
                   base_url=data.get("base_url"), acquirers=dict(data.get("acquirers") or {}),
                   options=dict(data.get("options") or {}), seed=data.get("seed"))


# -- the refresh -----------------------------------------------------------------------------
@dataclass
class RefreshResult:
    status: str  # "new-version", "unchanged", "locked", "failed"
    version: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return {"new-version": EXIT_OK, "unchanged": EXIT_OK, "locked": EXIT_LOCKED}.get(self.status, EXIT_FAILED)

    def summary_line(self) -> str:
        parts = [f"refresh {self.status}", f"version={self.version or '-'}"]
        parts += [f"{k}={v}" for k, v in self.counts.items()]
        if self.pruned:
            parts.append(f"pruned={','.join(self.pruned)}")
        parts.append(f"seconds={self.seconds:.1f}")
        line = " ".join(parts)
        if self.error:  # last, as written, on the same line (newlines folded: one line for cron)
            line += f" error: {' '.join(self.error.split())}"
        return line


def load_refresh_recipe(cfg: RefreshConfig):
    from gap_replay.recipe import RecipeError, load_recipe

    overrides = dict(cfg.recipe_overrides)
    if cfg.seed is not None:
        overrides["seed"] = cfg.seed
    try:
        return load_recipe(cfg.recipe, overrides or None)
    except RecipeError as exc:  # the bad key may be in the config, not in the recipe file
        where = " (with the config recipe_overrides)" if cfg.recipe_overrides else ""
        problems = exc.prefixed("invalid recipe: ", where).problems
        from gap_replay.preflight import check_tokenizer_of_invalid

        problems += check_tokenizer_of_invalid(exc)  # when its own section is valid
        raise RefreshError(*(f"nothing was fetched; fix first: {p}" for p in problems)) from None


def check_before_fetching(cfg: RefreshConfig, recipe, state_dir: Path) -> None:
    """What `download` checks before its first request (gap_replay.preflight), as one error:
    a refresh that would fail at `mix` fails here, before fetching anything."""
    from gap_replay.plan import routes
    from gap_replay.preflight import preflight

    builtin = [s for s in cfg.sources if s not in cfg.acquirers]  # overridden ones are custom
    problems = preflight(str(state_dir), recipe, builtin,
                         routes(recipe, builtin, cfg.sample, cfg.base_url, cfg.options),
                         cfg.options.get("api_key_file"))
    if problems:
        raise RefreshError(*(f"nothing was fetched; fix first: {p}" for p in problems))


def acquire_all(cfg: RefreshConfig, recipe, state_dir: Path) -> dict[str, dict]:
    """Call every source's acquirer with `ROOT/state` as its output directory.

    Acquirers keep their raw shards, scrape state (`state.sqlite`) and HTTP cache
    (`cache/http.sqlite`, requests-cache: conditional requests, 304 -> cached body) in their
    output directory, so at ROOT/state all three outlive every version, and a killed refresh
    resumes where it stopped. `options["refresh"] = True` asks them to revalidate what they
    already have instead of skipping it.
    """

    from gap_replay.resources import sample_sites_dir
    from gap_replay.sources import AcquireError, run_acquirers

    sample_sites = (cfg.sample_sites or sample_sites_dir()) if cfg.sample else None
    try:
        return run_acquirers(cfg.sources, str(state_dir), recipe.data, seed=recipe.seed,
                             workers=cfg.workers, sample_sites=sample_sites, base_url=cfg.base_url,
                             options={"refresh": True, **cfg.options}, overrides=cfg.acquirers,
                             allow_partial=bool(cfg.options.get("allow_partial", False)))
    except (AcquireError, ImportError, ValueError) as exc:
        raise RefreshError(*(f"cannot acquire: {p}" for p in getattr(exc, "problems", [str(exc)]))) from exc


def _fetch_failed_since(state_dir: Path, since: float) -> bool:
    """Did any URL fail during this refresh? Then missing documents are not treated as removed."""
    path = state_dir / "state.sqlite"
    if not path.exists():
        return False
    from gap_replay.state import State

    return bool(State(path).execute("SELECT 1 FROM failures WHERE last_attempt >= ? LIMIT 1", (since,)))


def link_raw(state_dir: Path, out: Path, sources: list[str]) -> None:
    """The version's raw/: hard links to the acquired shards (copies across filesystems).

    Acquirers replace shards by rename, so a later refresh never changes a linked file."""
    for source in sources:
        for shard in _raw_shards(state_dir, source):
            dest = out / Path(shard).relative_to(state_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(shard, dest)
            except OSError:
                shutil.copyfile(shard, dest)


def _raw_shards(out: Path, source: str) -> list[str]:
    return list_shards(out / "raw" / source)


def index_raw(out: Path, index: DocIndex, sources: list[str], quarantine: Quarantine) -> int:
    n = 0
    for source in sources:
        for shard in _raw_shards(out, source):
            batch = []
            for doc in iter_documents(shard, quarantine, source):
                batch.append((doc.id, doc.source, fingerprint(doc)))
                if len(batch) >= 5000:
                    index.put_many(batch)
                    n += len(batch)
                    batch = []
            index.put_many(batch)
            n += len(batch)
    return n


class _RollingWriter:
    """Documents into `dir/<prefix>-NNNNN.jsonl.gz`, a new file every DOCS_PER_CLEAN_SHARD."""

    def __init__(self, directory: Path, prefix: str) -> None:
        self.directory, self.prefix = directory, prefix
        self.writer: ShardWriter | None = None
        self.index = 0
        self.count = 0
        self.paths: list[str] = []  # the shards written

    def write(self, doc: Document) -> None:
        if self.writer is None:
            path = self.directory / f"{self.prefix}-{self.index:05d}.jsonl.gz"
            self.writer = ShardWriter(path).__enter__()
            self.paths.append(str(path))
        self.writer.write(doc)
        self.count += 1
        if self.writer.count >= DOCS_PER_CLEAN_SHARD:
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.__exit__(None, None, None)
            self.writer = None
            self.index += 1


def write_delta_raw(out: Path, delta: Path, index: DocIndex, sources: list[str]) -> int:
    """Copy the new and changed raw documents into `delta/raw/`, keeping each shard's relative path."""
    n = 0
    for source in sources:
        for shard in _raw_shards(out, source):
            rel = Path(shard).relative_to(out / "raw")
            writer = None
            for batch in _batched(iter_documents(shard, Quarantine(), source), 2000):
                wanted = index.in_delta([d.id for d in batch], ("new", "changed"))
                for doc in batch:
                    if doc.id in wanted:
                        if writer is None:
                            name = rel.name.split(".jsonl")[0] + ".jsonl.gz"
                            writer = ShardWriter(delta / "raw" / rel.parent / name).__enter__()
                        writer.write(doc)
                        n += 1
            if writer is not None:
                writer.__exit__(None, None, None)
    return n


def _batched(docs, size: int):
    batch = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def reuse_clean(previous: Path | None, out: Path, index: DocIndex, sources: list[str]
                ) -> tuple[int, list[str]]:
    """`out/clean/<source>/reused-*` = the previous version's cleaned documents that did not
    change (streamed, one pass). Returns (documents, shards): the shards are the delta's exact
    dedup prior, so they win every duplicate and are never dropped (they are published)."""
    n, shards = 0, []
    for source in sources:
        writer = _RollingWriter(out / "clean" / source, "reused")
        for shard in list_shards(previous / "clean" / source) if previous is not None else []:
            for batch in _batched(iter_documents(shard, Quarantine(), source), 2000):
                stale = index.in_delta([d.id for d in batch])
                for doc in batch:
                    if doc.id not in stale:
                        writer.write(doc)
        writer.close()
        n += writer.count
        shards += writer.paths
    return n, shards


def copy_delta_clean(out: Path, delta: Path, sources: list[str]) -> None:
    """`out/clean/<source>/delta-*` = the delta's cleaned documents, already deduplicated
    (against the reused ones too) by `process`."""
    for source in sources:
        writer = _RollingWriter(out / "clean" / source, "delta")
        for shard in list_shards(delta / "clean" / source):
            for doc in iter_documents(shard, Quarantine(), source):
                writer.write(doc)
        writer.close()


def prior_duplicates(stats: dict) -> int:
    """Delta documents the `dedup` stage dropped as twins of reused ones (the reduce's report)."""
    return sum(stats.get("dedup", {}).get("prior", {}).values())


def run_refresh(cfg: RefreshConfig, *, full: bool = False) -> RefreshResult:
    """One refresh under the lock; raises LockHeld if another refresh runs, anything else on failure
    (the temporary version is removed and `current` is untouched)."""
    from gap_replay.mix import run_mix
    from gap_replay.process import recipe_for_output, run_process

    started = time.monotonic()
    root = cfg.output
    with refresh_lock(root):
        vdir = root / "versions"
        vdir.mkdir(parents=True, exist_ok=True)
        for stale in vdir.glob(".partial-*"):  # a killed refresh's leftovers; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        state_dir = root / "state"  # acquisition output: raw/, state.sqlite, cache/http.sqlite
        state_dir.mkdir(exist_ok=True)
        recipe = load_refresh_recipe(cfg)
        check_before_fetching(cfg, recipe, state_dir)
        previous = current_version(root)
        name = new_version_name(root)
        tmp = vdir / f".partial-{name}"
        delta = vdir / f".partial-{name}-delta"  # outside the version: `mix` sees only the version
        tmp.mkdir()
        try:
            fetch_started = time.time()
            summaries = acquire_all(cfg, recipe, state_dir)
            quarantine = Quarantine()
            index = DocIndex(tmp / "index.sqlite")
            n_raw = index_raw(state_dir, index, cfg.sources, quarantine)
            failed = _fetch_failed_since(state_dir, fetch_started) or any(
                isinstance(v, dict) and v.get("failed") for v in summaries.values())
            carry = set(cfg.sources) if failed else set()  # a failed fetch never removes documents
            base = None if (full or previous is None) else previous / "index.sqlite"
            counts = {"documents": n_raw, **index.diff(base, carry)}
            if base is not None and not any(counts[k] for k in ("new", "changed", "removed")):
                index.close()
                shutil.rmtree(tmp, ignore_errors=True)
                return RefreshResult("unchanged", previous.name, counts, seconds=time.monotonic() - started)
            counts["processed"] = write_delta_raw(state_dir, delta, index, cfg.sources)
            link_raw(state_dir, tmp, cfg.sources)
            counts["reused"], reused = reuse_clean(None if full else previous, tmp, index, cfg.sources)
            counts["duplicates"] = 0
            with contextlib.closing(make_executor(cfg.executor, cfg.workers, cfg.address)) as ex:
                if counts["processed"]:
                    stats = run_process(str(delta), str(delta), recipe, ex, cfg.sources, prior=reused)
                    counts["duplicates"] = prior_duplicates(stats)
                    copy_delta_clean(tmp, delta, cfg.sources)
                (tmp / "recipe.json").write_bytes(recipe_for_output(recipe) + b"\n")
                manifest = run_mix(str(tmp), str(tmp), recipe, ex, tuple(cfg.formats))
            counts["tokens"] = int(manifest.get("totals", {}).get("tokens", 0))
            _write_version_stats(tmp, delta, counts, summaries, index, previous)
            if len(quarantine):
                quarantine.flush(tmp / "quarantine" / "refresh-raw.jsonl")
            index.close()
            shutil.rmtree(delta, ignore_errors=True)
            final = vdir / name
            os.replace(tmp, final)
            fsync_dir(vdir)
            swap_current(root, final)
            pruned = prune_versions(root, cfg.keep_versions)
            return RefreshResult("new-version", name, counts, pruned, time.monotonic() - started)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(delta, ignore_errors=True)
            raise


def _write_version_stats(out: Path, delta: Path, counts: dict, summaries: dict, index: DocIndex,
                         previous: Path | None) -> None:
    """stats.json of the version = the stage counts of the documents processed in this refresh,
    plus a `refresh` section (what changed, what was reused, from which version)."""
    stats = {}
    if (delta / "stats.json").exists():
        stats = orjson.loads((delta / "stats.json").read_bytes())
    stats["refresh"] = {"previous_version": previous.name if previous else None, "counts": counts,
                        "delta": "refresh-delta.jsonl.gz", "acquisition": summaries}
    with ShardWriter(out / "refresh-delta.jsonl.gz") as writer:  # which ids went through the stages
        for doc_id, source, kind in index.delta_rows():
            writer.write({"id": doc_id, "source": source, "kind": kind})
    (out / "stats.json").write_bytes(orjson.dumps(stats, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
                                                  default=str))
