"""Hugging Face export: parquet of the cleaned text per source and split, plus a dataset card.

`build_export` writes the exact folder that `upload_export` sends, so `push --dry-run DIR` is
what the Hub receives, byte for byte. Guideline subsets whose licence forbids redistribution
are withheld unless `include_restricted`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from tqdm import tqdm

from gap_replay.document import SOURCES, Document
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.io.paths import join, read_json, replace_dir
from gap_replay.recipe import SPLITS
from gap_replay.redistribution import is_restricted

log = logging.getLogger(__name__)

SCHEMA = pa.schema([
    ("id", pa.string()), ("source", pa.string()), ("subset", pa.string()), ("title", pa.string()),
    ("text", pa.string()), ("url", pa.string()), ("license", pa.string()),
    ("meta", pa.string()),  # JSON object (sorted keys): heterogeneous per source, so one string column
])
DROPPED_META = ("raw_text",)  # the pre-cleaning text would double the size; `text` is what we publish
MANAGED_FILE = re.compile(r"^(%s)/(%s)-\d{5}\.parquet$" % ("|".join(SOURCES), "|".join(SPLITS)))
ROW_GROUP_ROWS = 5_000
FILE_ROWS = 200_000

ADVISORY = (
    "**Not for clinical use.** This corpus is pretraining data for language models. It is not "
    "medical advice, it is not curated for clinical decision making, it may contain outdated or "
    "wrong recommendations, and models trained on it must not be used to make or support clinical "
    "decisions without independent validation by qualified professionals."
)


@dataclass
class ExportSummary:
    files: list[str] = field(default_factory=list)
    rows: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # source -> split -> n
    chars: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    subsets: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    licenses: dict[tuple[str, str], set] = field(default_factory=lambda: defaultdict(set))
    withheld: dict[tuple[str, str], int] = field(default_factory=Counter)
    quarantined: int = 0


class _SplitWriter:
    """Parquet files `<source>/<split>-NNNNN.parquet`, row groups of ROW_GROUP_ROWS, rolled at FILE_ROWS."""

    def __init__(self, root: Path, source: str, split: str, summary: ExportSummary) -> None:
        self.root, self.source, self.split, self.summary = root, source, split, summary
        self.buffer: list[dict] = []
        self.writer: pq.ParquetWriter | None = None
        self.file_rows = 0
        self.file_index = 0

    def add(self, row: dict) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        if self.writer is None:
            rel = f"{self.source}/{self.split}-{self.file_index:05d}.parquet"
            (self.root / self.source).mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.root / rel, SCHEMA, compression="zstd",
                                           write_statistics=True)
            self.summary.files.append(rel)
        self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=SCHEMA),
                                row_group_size=ROW_GROUP_ROWS)
        self.file_rows += len(self.buffer)
        self.buffer = []
        if self.file_rows >= FILE_ROWS:
            self._close_file()

    def _close_file(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.file_index += 1
            self.file_rows = 0

    def close(self) -> None:
        self._flush()
        self._close_file()


def _row(doc: Document) -> dict:
    meta = {k: v for k, v in doc.meta.items() if k not in DROPPED_META}
    return {"id": doc.id, "source": doc.source, "subset": doc.subset, "title": doc.title,
            "text": doc.text, "url": doc.url, "license": str(doc.meta.get("license") or ""),
            "meta": orjson.dumps(meta, option=orjson.OPT_SORT_KEYS).decode()}


def _clean_sources(out_dir: str) -> list[str]:
    present = []
    for source in SOURCES:
        if list_shards(join(out_dir, "clean", source)):
            present.append(source)
    return present


def build_export(out_dir: str | os.PathLike, dest: str | os.PathLike, *, include_restricted: bool = False,
                 repo_id: str = "ORG/NAME") -> ExportSummary:
    """Write the parquet files and README.md that a push would upload into `dest` (replaced atomically)."""
    out_dir = str(out_dir)
    dest = Path(dest)
    sources = _clean_sources(out_dir)
    if not sources:
        raise FileNotFoundError(f"{join(out_dir, 'clean')}: no cleaned shards; run `gap-replay process` first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{dest.name}.tmp-", dir=dest.parent))
    summary = ExportSummary()
    try:
        for source in sources:
            writers = {split: _SplitWriter(tmp, source, split, summary) for split in SPLITS}
            quarantine = Quarantine()
            for shard in tqdm(list_shards(join(out_dir, "clean", source)), desc=f"export {source}",
                              unit="shard", disable=None):
                for doc in iter_documents(shard, quarantine, source):
                    subset_key = (source, doc.subset)
                    if not include_restricted and is_restricted(doc):
                        summary.withheld[subset_key] += 1
                        continue
                    split = doc.meta.get("split")
                    if split not in writers:
                        quarantine.add(file=shard, line=None, reason=f"document {doc.id}: meta.split is "
                                       f"{split!r}, expected train or validation", source=source)
                        continue
                    writers[split].add(_row(doc))
                    summary.rows[source][split] += 1
                    summary.chars[source][split] += len(doc.text)
                    summary.subsets[subset_key][split] += 1
                    summary.licenses[subset_key].add(str(doc.meta.get("license") or "unspecified"))
            for writer in writers.values():
                writer.close()
            if len(quarantine):
                summary.quarantined += len(quarantine)
                log.warning("%s: %d cleaned records could not be exported; see %s", source,
                            len(quarantine), join(out_dir, "quarantine", f"push-{source}.jsonl"))
                quarantine.flush(join(out_dir, "quarantine", f"push-{source}.jsonl"))
        manifest = read_json(Path(out_dir) / "manifest.json", missing={})
        recipe = read_json(Path(out_dir) / "recipe.json", missing={}) or manifest.get("recipe") or {}
        card = dataset_card(summary, manifest, recipe, repo_id=repo_id, include_restricted=include_restricted)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        summary.files.append("README.md")
        summary.files.sort()
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def card_configs(summary: ExportSummary) -> list[dict]:
    configs = []
    for source in SOURCES:
        splits = [s for s in SPLITS if summary.rows.get(source, {}).get(s)]
        if not splits:
            continue
        configs.append({"config_name": source,
                        "data_files": [{"split": s, "path": f"{source}/{s}-*.parquet"} for s in splits]})
    return configs


def _public_recipe(recipe: dict) -> dict:
    """The recipe as published: a local tokenizer path is reduced to its file name."""
    recipe = json.loads(json.dumps(recipe))
    tok = recipe.get("tokenizer")
    if isinstance(tok, dict) and isinstance(tok.get("path"), str) and os.path.isabs(tok["path"]):
        tok["path"] = os.path.basename(tok["path"])
    return recipe


def recipe_name(manifest: dict, recipe: dict) -> str:
    """The recipe's `name` (the sample run's config names it gap-replay-sample), with its scale if not 1."""
    name = recipe.get("name") or (manifest.get("recipe") or {}).get("name") or "recipe"
    scale = recipe.get("scale", (manifest.get("recipe") or {}).get("scale", 1))
    return name if float(scale) == 1 else f"{name}, scale {scale:g}"


def published_train_tokens(summary: ExportSummary, manifest: dict,
                           include_restricted: bool) -> tuple[dict[str, int], set[str]]:
    """Per published source, the train shards' tokens minus those of withheld documents (which `mix`
    records), and the sources whose withheld tokens an older manifest did not record."""
    train: Counter = Counter()
    for shard in manifest.get("shards") or []:
        if shard.get("path", "").startswith("shards/train/"):
            train.update(shard.get("tokens_by_source") or {})
    restricted = ((manifest.get("totals") or {}).get("restricted_tokens_by_split") or {})
    withheld_sources = {source for source, _ in summary.withheld}
    tokens, unknown = {}, set()
    for source in SOURCES:
        if source not in train or not sum(summary.rows.get(source, {}).values()):
            continue  # nothing of this source is published
        tokens[source] = train[source]
        if include_restricted:
            continue
        if "train" in restricted:
            tokens[source] -= restricted["train"].get(source, 0)
        elif source in withheld_sources:
            unknown.add(source)
    return tokens, unknown


def dataset_card(summary: ExportSummary, manifest: dict, recipe: dict, *, repo_id: str,
                 include_restricted: bool) -> str:
    """README.md: YAML metadata with one config per source, then recipe, counts, licences, advisory."""
    total = sum(sum(c.values()) for c in summary.rows.values())
    size = next(label for limit, label in ((1e3, "n<1K"), (1e4, "1K<n<10K"), (1e5, "10K<n<100K"),
                                           (1e6, "100K<n<1M"), (1e7, "1M<n<10M"), (1e8, "10M<n<100M"),
                                           (float("inf"), "n>100M")) if total < limit)
    front = {"pretty_name": "GAP-Replay", "language": ["en"], "license": "other",
             "task_categories": ["text-generation"], "tags": ["medical", "clinical-guidelines", "pubmed"],
             "size_categories": [size], "configs": card_configs(summary)}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# GAP-Replay ({repo_id})", "",
             "Medical pretraining text rebuilt with [gap-replay](https://github.com/gap-replay/gap-replay): "
             "clinical **G**uidelines, PubMed **A**bstracts, PubMed Central full-text **P**apers and a "
             "general-domain **Replay** sample, the mix behind MEDITRON. Text is cleaned and "
             "deduplicated; each row carries its `split` in `meta`.", "",
             "> " + ADVISORY, "",
             "## Loading", "", "```python", "from datasets import load_dataset",
             f'guidelines = load_dataset("{repo_id}", "guidelines", split="train")', "```", "",
             "## Contents", "", "| source | train documents | validation documents | characters |",
             "| --- | ---: | ---: | ---: |"]
    for source in SOURCES:
        rows = summary.rows.get(source)
        if rows:
            lines.append(f"| {source} | {rows['train']:,} | {rows['validation']:,} | "
                         f"{sum(summary.chars[source].values()):,} |")
    tokens, unknown = published_train_tokens(summary, manifest, include_restricted)
    targets = (manifest.get("totals") or {}).get("target_tokens_by_source") or {}
    if tokens:
        lines += ["", f"Train tokens in the mixed training shards of recipe `{recipe_name(manifest, recipe)}` "
                  "(after repeats; validation not counted), for the documents published here, against "
                  "the recipe's target (which includes withheld documents):", "",
                  "| source | train tokens | recipe target |", "| --- | ---: | ---: |"]
        for source in SOURCES:
            if source in tokens:
                target = targets.get(source)
                mark = " (incl. withheld)" if source in unknown else ""
                lines.append(f"| {source} | {tokens[source]:,}{mark} | {f'{target:,}' if target else '-'} |")
    lines += ["", "## Subsets and licences", "",
              "| source | subset | train | validation | licence |", "| --- | --- | ---: | ---: | --- |"]
    for (source, subset), counts in sorted(summary.subsets.items()):
        licence = ", ".join(sorted(summary.licenses[(source, subset)]))
        lines.append(f"| {source} | {subset or '-'} | {counts['train']:,} | {counts['validation']:,} | {licence} |")
    if summary.withheld:
        lines += ["", "### Withheld", "",
                  "These subsets are not published here because their licence does not allow "
                  "redistribution; rebuild them locally with `guidelines scrape`:", ""]
        for (source, subset), n in sorted(summary.withheld.items()):
            lines.append(f"- {source}/{subset or '-'}: {n:,} documents")
    elif include_restricted:
        lines += ["", "This export includes every subset (`--include-restricted`): check each licence "
                  "before sharing it further."]
    if recipe:
        tok = manifest.get("tokenizer") or {}
        tok_text = ", ".join(f"{k} {tok[k]}" for k in ("vocab_size", "eod_id") if k in tok)
        lines += ["", "## Recipe", "",
                  f"Recipe `{recipe_name(manifest, recipe)}`, seed `{manifest.get('seed', recipe.get('seed'))}`"
                  + (f", tokenizer: {tok_text}" if tok_text else "")
                  + ". The recipe as run (token budgets are train tokens after the shared stages):", "",
                  "```yaml", yaml.safe_dump(_public_recipe(recipe), sort_keys=False).rstrip(), "```"]
    lines += ["", "## Columns", "",
              "`id`, `source`, `subset`, `title`, `text`, `url`, `license`, and `meta`: a JSON object with "
              "the source-specific fields (`split`, `pmid`, `pmcid`, `doi`, `mesh`, `pub_date`, ...; "
              "`raw_text` is left out).", ""]
    return "\n".join(lines)


def upload_export(export_dir: str | os.PathLike, repo_id: str, *, private: bool = False,
                  max_files_per_commit: int = 100, max_bytes_per_commit: int = 8 << 30,
                  token: str | None = None) -> list[str]:
    """Create the dataset repo if needed and upload every file of `export_dir` in a few large commits.

    The data goes first and README.md in the last commit, so the card never describes files that
    are not there yet. Parquet files this tool wrote on an earlier push (`<source>/<split>-NNNNN
    .parquet`) that the export no longer has are deleted in the first commit; other files in the
    repo are left alone. Returns the commit URLs. The token comes from `token`, HF_TOKEN or the
    saved login, and is never logged.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    root = Path(export_dir)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    data = [f for f in files if f != "README.md"]
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for rel in data:
        nbytes = (root / rel).stat().st_size
        if current and (len(current) >= max_files_per_commit or size + nbytes > max_bytes_per_commit):
            batches.append(current)
            current, size = [], 0
        current.append(rel)
        size += nbytes
    if "README.md" in files:
        current.append("README.md")
    if current:
        batches.append(current)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    stale = sorted(f for f in api.list_repo_files(repo_id, repo_type="dataset")
                   if MANAGED_FILE.match(f) and f not in files)
    if stale:
        log.info("deleting %d parquet file(s) of an earlier push that this export no longer has", len(stale))
    urls = []
    for i, batch in enumerate(batches, 1):
        ops = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(root / rel)) for rel in batch]
        if i == 1:
            ops += [CommitOperationDelete(path_in_repo=rel, is_folder=False) for rel in stale]
        info = api.create_commit(repo_id, ops, repo_type="dataset",
                                 commit_message=f"gap-replay push ({i}/{len(batches)})",
                                 commit_description=f"{len(batch)} files")
        log.info("commit %d/%d: %d files -> %s", i, len(batches), len(batch), info.commit_url)
        urls.append(info.commit_url)
    return urls
