"""WikiDoc: an "X overview" page stands for X and supersedes X's microchapter pages.

The rule needs every page name of the source, so it runs over the scraped records after a scrape
(and after `guidelines clean`), not page by page. Names come from the record URL
(`/index.php/Asthma_causes` → "Asthma causes"), not the title, because the title of an overview
page is already shortened to its subject. Only X's known microchapters are superseded
(`clean.wikidoc_superseded`); the original's prefix match also deleted "Asthmatic bronchitis" and
"Asthma in pregnancy" (sources.md §2.17, defect 9). A superseded record stays in raw with text ""
and `meta.rejected` naming its overview page, like every other rejection, so counts reconcile.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from gap_replay.document import Document
from gap_replay.sources.guidelines.clean import microchapter_names, wikidoc_superseded
from gap_replay.sources.guidelines.store import RecordStore


def page_name(url: str) -> str:
    """MediaWiki page name of an article URL: last path segment, underscores as spaces."""
    path = urlsplit(url).path
    return " ".join(unquote(path.rsplit("/", 1)[-1]).replace("_", " ").split())


def _overview_for(name: str, overviews: list[str]) -> str:
    lowered = name.lower()
    for overview in overviews:
        subject = re.sub(r"\s+overview$", "", overview, flags=re.I)
        if lowered in microchapter_names(subject):
            return overview
    return ""


def supersede_microchapters(store: RecordStore) -> int:
    """Mark the records superseded by an overview page; returns how many were (newly) marked."""
    names: dict[str, str] = {}  # page name -> record URL (names only: memory stays small)
    for doc in store.iter_records():
        names[page_name(doc.url)] = doc.url
    drop = wikidoc_superseded(names)
    if not drop:
        return 0
    overviews = sorted(n for n in names if n.lower().endswith(" overview"))
    marked = 0
    for name in sorted(drop):
        doc = store.get(names[name])
        if doc is None:
            continue
        reason = f"superseded by {_overview_for(name, overviews) or 'its overview page'!r}"
        if doc.meta.get("rejected") == reason and doc.text == "":
            continue
        meta = dict(doc.meta)
        meta["rejected"] = reason
        store.put(Document(doc.id, doc.source, "", doc.subset, doc.title, doc.url, meta))
        marked += 1
    return marked
