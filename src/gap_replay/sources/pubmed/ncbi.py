"""The keyless NCBI file server: list the FTP-over-HTTPS directory pages, download with resume.

`https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/` (and `updatefiles/`) hold the MEDLINE XML, as
plain HTML index pages of links. Where NCBI publishes a `<file>.md5` next to a file, the
download is verified against it. (PMC full text no longer comes from here: the legacy
`/pub/pmc/oa_bulk/` packages moved to `deprecated/` on 2026-04-13 and were removed in August
2026; see `pmc_cloud.py`.)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable
from urllib.parse import urljoin

from bs4 import BeautifulSoup

from gap_replay.http import FetchError, PoliteClient
from gap_replay.sources.pubmed.pmc_inventory import md5_of
from gap_replay.state import State

log = logging.getLogger(__name__)

NCBI_ROOT = "https://ftp.ncbi.nlm.nih.gov"
BASELINE_DIRS = ("/pubmed/baseline/",)
UPDATE_DIRS = ("/pubmed/updatefiles/",)
_MD5 = re.compile(r"\b([0-9a-f]{32})\b", re.I)


def list_directory(client: PoliteClient, url: str, suffixes: tuple[str, ...]) -> list[str]:
    """Absolute URLs of the files in an HTML directory listing whose names end in `suffixes`."""
    html = client.get_text(url, cache=True)
    soup = BeautifulSoup(html, "lxml")
    found = set()
    for a in soup.find_all("a", href=True):
        href = a["href"].split("?", 1)[0]
        if href.startswith(("?", "#", "../")) or href.endswith("/"):
            continue
        if href.endswith(suffixes):
            found.add(urljoin(url, href))
    return sorted(found)


def download_listed(client: PoliteClient, urls: list[str], dest_dir: Path, state: State, *,
                    md5_available: set[str] | None = None,
                    progress: Callable | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Download each URL into `dest_dir` (resume, atomic); skip files already complete.

    Returns (downloaded paths, [(url, error)]). Failures are recorded in the state file and
    retried on the next run; the other files go on."""
    done: list[Path] = []
    failed: list[tuple[str, str]] = []
    for url in (progress(urls) if progress else urls):
        dest = dest_dir / url.rsplit("/", 1)[-1]
        if dest.exists() and state.done("ncbi-download", url) is not None:
            done.append(dest)
            continue
        try:
            client.download(url, dest)
            if md5_available and url + ".md5" in md5_available:
                text = client.get_text(url + ".md5", cache=False)
                m = _MD5.search(text)
                if m and m.group(1).lower() != md5_of(dest):
                    dest.unlink(missing_ok=True)
                    raise FetchError(url, f"MD5 mismatch (expected {m.group(1)})")
            state.mark_done("ncbi-download", url, str(dest))
            state.clear_failure(url)
            done.append(dest)
        except FetchError as exc:
            log.error("%s: %s", url, exc.reason)
            state.record_failure(url, "pubmed", exc.reason, exc.status)
            failed.append((url, exc.reason))
    return done, failed


def baseline_urls(client: PoliteClient, *, updates: bool = False, limit: int | None = None
                  ) -> tuple[list[str], set[str]]:
    urls: list[str] = []
    md5s: set[str] = set()
    for folder in BASELINE_DIRS + (UPDATE_DIRS if updates else ()):
        listing = list_directory(client, NCBI_ROOT + folder, (".xml.gz", ".xml.gz.md5"))
        urls += [u for u in listing if u.endswith(".xml.gz")]
        md5s |= {u for u in listing if u.endswith(".md5")}
    urls = sorted(urls, key=lambda u: u.rsplit("/", 1)[-1])
    return (urls[:limit] if limit else urls), md5s
