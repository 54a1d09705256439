"""A RedPajama-shaped site generated at test time (deterministic), laid out like the release:

  <root>/redpajama/redpajama-data-1T/v1.0.0/urls.txt, urls/<subset>.txt, <subset>/<file>

(without `book` by default, as the real site since 2024), or like RedPajama-Data-1T-Sample:
JSONL files `<subset>_sample[_NNNN].jsonl` at one folder's root (`build_sample_layout`).

Text is recombined from the sentences of the bundled sample so it reads like each subset.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from gap_replay.hashing import stable_hash
from gap_replay.resources import sample_sites_dir

BASE = "https://data.together.xyz/redpajama-data-1T/v1.0.0"
SAMPLE = sample_sites_dir() / "redpajama" / "redpajama-data-1T" / "v1.0.0"
SUFFIXES = {"wikipedia": ".jsonl", "arxiv": ".jsonl.gz", "book": ".jsonl.zst",
            "stackexchange": ".jsonl.gz"}


def _sample_sentences() -> dict[str, list[str]]:
    from gap_replay.io import Quarantine
    from gap_replay.sources.replay.ingest import iter_redpajama_file

    out: dict[str, list[str]] = {}
    for path in sorted(SAMPLE.glob("*/*.jsonl*")):
        for doc in iter_redpajama_file(path, Quarantine()):
            parts = re.split(r"(?<=[.!?])\s+", doc.text.replace("\n", " "))
            out.setdefault(doc.subset, []).extend(p for p in parts if len(p) > 20)
    return out


@dataclass
class SiteSpec:
    files_per_subset: int = 4
    docs_per_file: int = 40
    sentences_per_doc: tuple[int, int] = (6, 18)
    subsets: tuple[str, ...] = ("wikipedia", "arxiv", "stackexchange")  # book: gone since 2024
    malformed: dict[str, int] = field(default_factory=dict)   # file key -> line to corrupt
    bad_utf8: dict[str, int] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)           # file keys cut in half on disk


def _record(subset: str, key: str, i: int, text: str) -> dict:
    if subset == "wikipedia":
        return {"text": text, "meta": {"title": f"{key} {i}", "language": ["en", "de", "fr"][i % 3],
                                       "url": f"https://en.wikipedia.org/wiki/X{i}"}}
    if subset == "arxiv":
        return {"text": text, "meta": json.dumps({"arxiv_id": f"2101.{i:05d}", "language": "en"})}
    if subset == "stackexchange":
        return {"text": text, "url": f"https://superuser.com/questions/{i}", "language": "en"}
    return {"text": text} if i % 4 == 0 else {"text": text, "meta": {"short_book_title": key}}


def build_site(root: Path, spec: SiteSpec | None = None) -> dict[str, list[str]]:
    """Write the site under `root/redpajama/`; return {subset: [original data file URLs]}."""
    spec = spec or SiteSpec()
    sentences = _sample_sentences()
    top = root / "redpajama" / "redpajama-data-1T" / "v1.0.0"
    urls: dict[str, list[str]] = {}
    for subset in spec.subsets:
        for f in range(spec.files_per_subset):
            rel = f"{subset}/{subset}_{f:04d}{SUFFIXES[subset]}"
            path = top / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_file_bytes(subset, rel, spec, sentences))
            urls.setdefault(subset, []).append(f"{BASE}/{rel}")
    (top / "urls").mkdir(parents=True, exist_ok=True)
    for subset, subset_urls in urls.items():
        (top / "urls" / f"{subset}.txt").write_text("".join(u + "\n" for u in subset_urls))
    (top / "urls.txt").write_text("".join(u + "\n" for us in urls.values() for u in us))
    return urls


SAMPLE_BASE = ("https://huggingface.co/datasets/togethercomputer/RedPajama-Data-1T-Sample"
               "/resolve/main")


def build_sample_layout(folder: Path, spec: SiteSpec | None = None) -> list[str]:
    """`<subset>_sample_NNNN.jsonl` files at `folder`'s root (the -Sample repository's layout,
    whose files are `<subset>_sample.jsonl`, `cc_2023-06_sample.jsonl`, ...) and a `urls.txt`
    naming them by their hub URLs; returns those URLs."""
    spec = spec or SiteSpec()
    sentences = _sample_sentences()
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for subset in spec.subsets:
        for f in range(spec.files_per_subset):
            name = f"{subset}_sample_{f:04d}.jsonl"
            (folder / name).write_bytes(_file_bytes(subset, name, spec, sentences))
            urls.append(f"{SAMPLE_BASE}/{name}")
    (folder / "urls.txt").write_text("".join(u + "\n" for u in urls))
    return urls


def _file_bytes(subset: str, rel: str, spec: SiteSpec, sentences: dict[str, list[str]]) -> bytes:
    pool = sentences[subset]
    lines = []
    for i in range(spec.docs_per_file):
        lo, hi = spec.sentences_per_doc
        n = lo + stable_hash(7, rel, str(i)) % (hi - lo + 1)
        text = " ".join(pool[stable_hash(7, rel, str(i), str(k)) % len(pool)]
                        for k in range(n))
        line = json.dumps(_record(subset, rel, i, text), ensure_ascii=False).encode()
        if spec.malformed.get(rel) == i + 1:
            line = line[: len(line) // 2]
        if spec.bad_utf8.get(rel) == i + 1:
            line = line.replace(b'"text": "', b'"text": "\xff\xfe', 1)
        lines.append(line + b"\n")
    data = b"".join(lines)
    if rel.endswith(".gz"):
        data = gzip.compress(data, compresslevel=1, mtime=0)
    elif rel.endswith(".zst"):
        data = zstandard.ZstdCompressor(level=1).compress(data)
    if rel in spec.truncate:
        data = data[: len(data) // 2]
    return data


def all_text(root: Path) -> str:
    """Every document text of the generated site (to train a test tokenizer)."""
    from gap_replay.io import Quarantine
    from gap_replay.sources.replay.ingest import iter_redpajama_file

    texts = []
    for path in sorted((root / "redpajama").rglob("*.jsonl*")):
        texts.extend(d.text for d in iter_redpajama_file(path, Quarantine()))
    return "\n".join(texts)
