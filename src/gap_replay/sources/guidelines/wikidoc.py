"""WikiDoc: an "X overview" page stands for X and supersedes X's microchapter pages.

The rule needs every page name of the source, so it runs over the scraped records after a scrape
(and after `guidelines clean`), not page by page. Names come from the record URL
(`/index.php/Asthma_causes` → "Asthma causes"), not the title, because the title of an overview
page is already shortened to its subject. Only X's known microchapters are superseded
(`wikidoc_superseded`); the original's prefix match also deleted "Asthmatic bronchitis" and
"Asthma in pregnancy" (docs/guidelines.md, defect 9). A superseded record stays in the state
with text "" and `meta.rejected` naming its overview page, like every other rejection: it is not
written to raw, and the acquisition ledger counts it (store.write_shards).
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import unquote, urlsplit

from gap_replay.document import Document
from gap_replay.sources.guidelines.store import RecordStore

MICROCHAPTERS = (
    "historical perspective", "classification", "pathophysiology", "causes",
    "differentiating {x} from other diseases", "differential diagnosis",
    "epidemiology and demographics", "risk factors", "screening",
    "natural history, complications and prognosis", "natural history", "complications", "prognosis",
    "diagnostic study of choice", "history and symptoms", "physical examination",
    "laboratory findings", "electrocardiogram", "chest x ray", "x ray", "ct", "mri",
    "echocardiography or ultrasound", "echocardiography", "ultrasound", "other imaging findings",
    "other diagnostic studies", "biopsy", "treatment", "medical therapy", "surgery",
    "interventions", "primary prevention", "secondary prevention", "cost-effectiveness of therapy",
    "future or investigational therapies", "diagnostic criteria", "case study one",
    "case study two", "case study three", "resident survival guide",
)


def microchapter_names(subject: str) -> set[str]:
    """The lower-cased page names WikiDoc uses for the microchapters of `subject`."""
    s = " ".join(subject.lower().split())
    names = set()
    for chapter in MICROCHAPTERS:
        if "{x}" in chapter:
            names.add(chapter.replace("{x}", s))
        else:
            names.add(f"{s} {chapter}")
    return names


def wikidoc_superseded(names: Iterable[str]) -> set[str]:
    """Names to drop because an "X overview" page covers them: only X's known microchapters.

    The original deleted every page whose name merely *started with* X, so "Asthma overview"
    removed "Asthmatic bronchitis" and "Asthma in pregnancy" (docs/sources.md §2.17, defect 9).
    """
    all_names = {" ".join(n.split()): n for n in names}
    lowered = {k.lower(): v for k, v in all_names.items()}
    drop: set[str] = set()
    for key in lowered:
        if key.endswith(" overview"):
            subject = key[: -len(" overview")].strip()
            for chapter in microchapter_names(subject):
                if chapter in lowered and chapter != key:
                    drop.add(lowered[chapter])
    return drop


def wikidoc_overview_title(name: str) -> str:
    """"Asthma overview" → "Asthma" (the overview page stands for its subject)."""
    return re.sub(r"\s+overview\s*$", "", name, flags=re.I).strip() or name


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
