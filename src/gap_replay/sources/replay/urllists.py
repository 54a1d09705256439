"""RedPajama-1T's published URL lists -> the data files of each subset.

Two layouts are read: the master list `.../v1.0.0/urls.txt` (every data file; the subset is
the first path segment under the list's folder, e.g. `.../v1.0.0/arxiv/arxiv_0237.jsonl`), and
per-subset lists given as a template with `{subset}` (e.g. `.../urls/{subset}.txt`, the layout
the hub loading script used). Lines are data file URLs; blank lines and `#` comments are skipped.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from gap_replay.http import PoliteClient


@dataclass(frozen=True)
class DataFile:
    """One data file: `key` (subset + path below the subset folder) names it in ids and hashes,
    so neither the host nor `--base-url` changes which documents are chosen."""

    subset: str
    url: str
    key: str
    kind: str = "http"  # "http" (RedPajama raw file) or "parquet" (hub/local parquet)


def file_key(subset: str, url: str) -> str:
    segments = [s for s in urlsplit(url).path.split("/") if s]
    if subset in segments:
        rest = segments[segments.index(subset) + 1:]
        if rest:
            return f"{subset}/{'/'.join(rest)}"
    return f"{subset}/{posixpath.basename(urlsplit(url).path) or url}"


def _lines(text: str, list_url: str) -> list[str]:
    urls = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            urls.append(urljoin(list_url, line))
    return urls


def subset_of(url: str, list_url: str) -> str | None:
    """The first path segment of `url` below the folder of the master list, if it is below it."""
    folder = posixpath.dirname(urlsplit(list_url).path).rstrip("/") + "/"
    path = urlsplit(url).path
    if not path.startswith(folder):
        return None
    rest = path[len(folder):].split("/")
    return rest[0] if len(rest) > 1 else None


def list_data_files(client: PoliteClient, url_lists: str, subsets: tuple[str, ...]
                    ) -> dict[str, list[DataFile]]:
    """Data files per subset, in list order (the sampler reorders them by hash)."""
    found: dict[str, list[DataFile]] = {s: [] for s in subsets}
    if "{subset}" in url_lists:
        for subset in subsets:
            list_url = url_lists.format(subset=subset)
            for url in _lines(client.get_text(list_url, cache=False), list_url):
                found[subset].append(DataFile(subset, url, file_key(subset, url)))
    else:
        for url in _lines(client.get_text(url_lists, cache=False), url_lists):
            subset = subset_of(url, url_lists)
            if subset in found:
                found[subset].append(DataFile(subset, url, file_key(subset, url)))
    for subset, files in found.items():
        keys = [f.key for f in files]
        if len(set(keys)) != len(keys):
            raise ValueError(f"URL list for {subset!r} names the same file twice")
    return found
