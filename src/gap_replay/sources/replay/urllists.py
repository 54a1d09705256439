"""RedPajama-1T's published URL lists (or a folder) -> the data files of each subset.

Layouts read (docs/replay.md says where each comes from):
  release   the master list `.../v1.0.0/urls.txt`: every data file, the subset is the first
            path segment under the list's folder (`.../v1.0.0/arxiv/arxiv_0237.jsonl`);
  template  per-subset lists given as a template with `{subset}` (`.../urls/{subset}.txt`, the
            layout the hub loading script used); a list that answers 404 means "no files";
  sample    JSONL files at the root of a folder, the subset given by the file-name prefix
            (`arxiv_sample.jsonl`, `cc_2023-06_sample.jsonl`, `wikipedia_sample.jsonl`: the
            RedPajama-Data-1T-Sample repository). Through HTTP with a list (served, or a local
            file) of those URLs, the lines' own paths deciding (release and sample lines may
            be mixed), or as a folder (local path, file:// or an fsspec URL: hf://datasets/...).
Lines are data file URLs (relative ones are resolved against the list); blank lines and `#`
comments are skipped.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
import posixpath
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from gap_replay.http import FetchError, PoliteClient
from gap_replay.sources.replay.settings import PUBLISHED_BILLION_TOKENS

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json")
# file-name prefixes that are not the subset's own name (RedPajama-Data-1T-Sample `cc_*`,
# the release's `wiki.jsonl`, some exports' `books_*`)
NAME_ALIASES = {"wiki": "wikipedia", "books": "book", "cc": "common_crawl"}


@dataclass(frozen=True)
class DataFile:
    """One data file: `key` (subset + path below the subset's root) names it in ids and hashes,
    so neither the host nor `--base-url` changes which documents are chosen."""

    subset: str
    url: str
    key: str
    kind: str = "http"  # "http" (raw file over HTTP), "fsspec" (local/fsspec path), "parquet"


def subset_from_name(name: str) -> str | None:
    """`arxiv_sample.jsonl` -> arxiv, `cc_2023-06_sample.jsonl` -> common_crawl, else None."""
    stem = posixpath.basename(name).split(".")[0].split("_")[0].split("-")[0].lower()
    if stem in PUBLISHED_BILLION_TOKENS:
        return stem
    return NAME_ALIASES.get(stem)


def file_key(subset: str, url: str) -> str:
    """`subset/<path below the subset's folder>`; a file outside any `<subset>/` folder keys on
    its whole path, so two files named alike in different folders never share a key."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    if subset in segments[:-1]:
        rest = segments[segments.index(subset) + 1:]
        return f"{subset}/{'/'.join(rest)}"
    return f"{subset}/{'/'.join(segments) or url}"


def _lines(text: str, list_url: str) -> list[str]:
    urls = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            urls.append(urljoin(list_url, line))
    return urls


def subset_of(url: str, list_url: str) -> tuple[str, str] | None:
    """(subset, key) of a master-list line, or None when nothing names a subset.

    Below the list's folder: a file in a folder belongs to that folder's subset (release
    layout), a file at the root to its file-name prefix (sample layout). Elsewhere (a local
    copy of a list): the first path folder named like a RedPajama subset, else the file-name
    prefix with the file's own folder as the subset root. Keys are the path below the subset's
    root; a list whose lines give one key twice fails in list_data_files, never collides.
    """
    folder = posixpath.dirname(urlsplit(list_url).path).rstrip("/") + "/"
    path = urlsplit(url).path
    if path.startswith(folder):
        rest = path[len(folder):].split("/")
        if len(rest) > 1:
            return rest[0], f"{rest[0]}/{'/'.join(rest[1:])}"
        subset = subset_from_name(rest[0])
        return (subset, f"{subset}/{rest[0]}") if subset else None
    segments = [s for s in path.split("/") if s]
    for i, segment in enumerate(segments[:-1]):
        if segment in PUBLISHED_BILLION_TOKENS:
            return segment, "/".join(segments[i:])
    subset = subset_from_name(segments[-1]) if segments else None
    return (subset, f"{subset}/{segments[-1]}") if subset else None


def is_folder(url_lists: str) -> bool:
    """A local folder, or an fsspec URL other than http(s) (hf://, s3://, file://)."""
    scheme = urlsplit(url_lists).scheme
    if scheme in ("http", "https"):
        return False
    return os.path.isdir(url_lists) or (len(scheme) > 1 and not url_lists.endswith(".txt"))


def list_folder(folder: str, subsets: tuple[str, ...]) -> dict[str, list[DataFile]]:
    """Data files of a folder: `<subset>_*.jsonl*` at its root (sample layout) and files under
    `<subset>/` folders (release layout), read later with fsspec."""
    import fsspec

    fs, _, _ = fsspec.get_fs_token_paths(folder)
    root = fs._strip_protocol(folder).rstrip("/")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    found: dict[str, list[DataFile]] = {s: [] for s in subsets}
    for path in sorted(fs.find(root)):
        rel = posixpath.relpath(path, root)
        if not rel.endswith(DATA_SUFFIXES):
            continue
        parts = rel.split("/")
        if len(parts) > 1 and parts[0] in found:
            subset, key = parts[0], rel                       # <subset>/... (release layout)
        else:
            subset = subset_from_name(parts[-1])              # <subset>_*.jsonl (sample layout)
            key = f"{subset}/{rel}"
        if subset in found:
            found[subset].append(DataFile(subset, prefix + path, key, kind="fsspec"))
    return found


def _read_list(client: PoliteClient, url_lists: str) -> str:
    """The master list's text: a local file (e.g. your own list of -Sample URLs), else HTTP."""
    local = url_lists.removeprefix("file://")
    if urlsplit(url_lists).scheme in ("", "file") and os.path.isfile(local):
        with open(local, encoding="utf-8") as fh:
            return fh.read()
    return client.get_text(url_lists, cache=False)


def checked_location(url_lists: str, subset: str) -> str:
    """Where the files of `subset` were looked for (named when a subset has none)."""
    return url_lists.format(subset=subset) if "{subset}" in url_lists else url_lists


def list_data_files(client: PoliteClient, url_lists: str, subsets: tuple[str, ...]
                    ) -> dict[str, list[DataFile]]:
    """Data files per subset, in list order (the sampler reorders them by hash); a subset with
    no files maps to []. A missing master list or folder is an error (nothing can be sampled)."""
    found: dict[str, list[DataFile]] = {s: [] for s in subsets}
    if is_folder(url_lists):
        found = list_folder(url_lists, subsets)
    elif "{subset}" in url_lists:
        for subset in subsets:
            list_url = url_lists.format(subset=subset)
            try:
                text = client.get_text(list_url, cache=False)
            except FetchError as exc:
                if exc.status != 404:
                    raise
                log.warning("replay subset %r: %s answered 404 (no such list)", subset, list_url)
                continue
            for url in _lines(text, list_url):
                found[subset].append(DataFile(subset, url, file_key(subset, url)))
    else:
        ignored = 0
        for url in _lines(_read_list(client, url_lists), url_lists):
            named = subset_of(url, url_lists)
            if named is None:
                ignored += 1
            elif named[0] in found:
                found[named[0]].append(DataFile(named[0], url, named[1]))
        if ignored:
            log.warning("%s: %d lines name no RedPajama subset (neither a <subset>/ folder nor "
                        "a <subset>_ file-name prefix); skipped", url_lists, ignored)
    for subset, files in found.items():
        twice = sorted(k for k, n in Counter(f.key for f in files).items() if n > 1)
        if twice:
            raise ValueError(f"URL list for {subset!r} names the same file twice, or two files "
                             f"that share a key ({', '.join(twice[:3])}); use per-subset lists "
                             "or distinct file names")
    return found
