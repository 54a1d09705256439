"""Semantic Scholar dataset rows (`papers`, `abstracts`, `s2orc`) → metadata dicts and Documents.

Key spelling differs per dataset (see docs/sources.md §5.2): papers use CamelCase inside
`externalids` (`PubMed`, `PubMedCentral`, `DOI`), s2orc rows use lowercase, abstracts keep
their ids under `openaccessinfo.externalids`. Everything is read through `_ext` so a renamed
case never silently drops a record. Texts are extracted, not cleaned: URLs stay for the `clean`
stage.
"""

from __future__ import annotations

from typing import Any

from gap_replay.document import Document
from gap_replay.sources.pubmed.ids import (
    article_url,
    document_id,
    norm_corpusid,
    norm_doi,
    norm_pmcid,
    norm_pmid,
)
from gap_replay.sources.pubmed.s2orc import S2orcFormatError, format_s2orc
from gap_replay.sources.pubmed.s2orc_legacy import format_legacy, is_legacy
from gap_replay.sources.pubmed.s2orc_v2 import is_v2_row, row_title, to_content_row
from gap_replay.sources.pubmed.textutil import any_line_has_words, squash


class RecordError(ValueError):
    """A row that cannot become a document; the message is the quarantine reason."""


def _ext(ids: Any, *names: str) -> Any:
    if not isinstance(ids, dict):
        return None
    lowered = {str(k).lower(): v for k, v in ids.items()}
    for name in names:
        value = lowered.get(name.lower())
        if value not in (None, "", []):
            return value
    return None


def external_ids(row: dict) -> dict[str, str | None]:
    """pmid / pmcid / doi / corpusid of any of the three row kinds, normalised."""
    ids = row.get("externalids")
    if ids is None and isinstance(row.get("openaccessinfo"), dict):
        ids = row["openaccessinfo"].get("externalids")
    return {
        "pmid": norm_pmid(_ext(ids, "PubMed")),
        "pmcid": norm_pmcid(_ext(ids, "PubMedCentral")),
        "doi": norm_doi(_ext(ids, "DOI")),
        "corpusid": norm_corpusid(row.get("corpusid") if row.get("corpusid") is not None
                                  else _ext(ids, "CorpusId")),
    }


def is_pubmed_row(row: dict) -> bool:
    """papers and s2orc rows: kept when they carry a PMID or a PMCID."""
    ids = external_ids(row)
    return bool(ids["pmid"] or ids["pmcid"])


# Semantic Scholar's publication types → MEDLINE's names, so the recipe's up-sampling weights
# (written in MEDLINE names) reach S2 papers too. S2's "Study" and "BookSection" have no MEDLINE
# counterpart and stay as they are (no weight); "LettersAndComments" becomes "Letter" only, so
# one S2 type never earns two weights. The S2 names stay in `meta.s2_publication_types`.
S2_TO_MEDLINE_TYPES = {
    "JournalArticle": "Journal Article",
    "Review": "Review",
    "MetaAnalysis": "Meta-Analysis",
    "ClinicalTrial": "Clinical Trial",
    "CaseReport": "Case Reports",
    "Editorial": "Editorial",
    "LettersAndComments": "Letter",
    "News": "News",
    "Conference": "Congress",
    "Dataset": "Dataset",
    "Book": "Book",
}
_S2_TYPES_LOWER = {k.lower(): v for k, v in S2_TO_MEDLINE_TYPES.items()}


def medline_publication_types(types: list[str]) -> list[str]:
    """S2 publication types in MEDLINE's names, order kept, duplicates removed; a name S2 does
    not define (or one already in MEDLINE's spelling) passes through unchanged."""
    out: list[str] = []
    for t in types:
        name = _S2_TYPES_LOWER.get(t.strip().lower(), t.strip())
        if name and name not in out:
            out.append(name)
    return out


def paper_meta(row: dict) -> dict:
    """The metadata of a `papers` row, under the meta names of docs/contract.md."""
    ids = external_ids(row)
    journal = row.get("journal") if isinstance(row.get("journal"), dict) else {}
    types = row.get("publicationtypes") or []
    if not isinstance(types, list):
        types = [types]
    date = row.get("publicationdate") or (str(row["year"]) if row.get("year") else None)
    fields = row.get("s2fieldsofstudy") or []
    return {
        **ids,
        "title": squash(row.get("title") or ""),
        "journal": squash(journal.get("name") or row.get("venue") or "") or None,
        "venue": squash(row.get("venue") or "") or None,
        "publication_types": medline_publication_types([str(t) for t in types if t]),
        "s2_publication_types": [str(t) for t in types if t],
        "pub_date": date,
        "year": row.get("year"),
        "citation_count": row.get("citationcount"),
        "fields_of_study": sorted({f.get("category") for f in fields
                                   if isinstance(f, dict) and f.get("category")}),
        "is_open_access": row.get("isopenaccess"),
    }


def _merge(ids: dict, paper: dict | None) -> dict:
    meta = {k: v for k, v in (paper or {}).items() if v not in (None, "", [])}
    if meta.get("publication_types"):  # a papers index written before the mapping existed
        meta["publication_types"] = medline_publication_types(
            [str(t) for t in meta["publication_types"]])
    for key, value in ids.items():
        if value and not meta.get(key):
            meta[key] = value
    return meta


def s2orc_document(row: dict, paper: dict | None = None) -> Document:
    """One S2ORC row (2023 `content`, s2orc_v2 `body`/`bibliography`, or the legacy 2020 JSON)
    → a `papers` Document in the paper's format."""
    try:
        if is_legacy(row):
            text, legacy_meta = format_legacy(row)
            ids = {k: legacy_meta.get(k) for k in ("pmid", "pmcid", "doi", "corpusid")}
            ids = {"pmid": norm_pmid(ids["pmid"]), "pmcid": norm_pmcid(ids["pmcid"]),
                   "doi": norm_doi(ids["doi"]), "corpusid": norm_corpusid(ids["corpusid"])}
            meta = _merge(ids, paper)
            meta.setdefault("journal", legacy_meta.get("journal"))
            meta["s2orc_format"] = "legacy-2020"
            title = (paper or {}).get("title") or legacy_meta.get("title") or ""
        else:
            ids = external_ids(row)
            meta = _merge(ids, paper)
            join_title = (paper or {}).get("title")
            if is_v2_row(row):  # s2orc_v2: mapped onto the 2023 shape (s2orc_v2.py)
                join_title = join_title or row_title(row)
                row = to_content_row(row)
                meta["s2orc_format"] = "s2orc_v2"
            text, info = format_s2orc(row, title=join_title)
            title = info["title"]
            oainfo = ((row.get("content") or {}).get("source") or {}).get("oainfo")
            if isinstance(oainfo, dict) and oainfo.get("license"):
                meta["license"] = oainfo["license"]
    except S2orcFormatError as exc:
        raise RecordError(str(exc)) from exc
    doc_id = document_id(**{k: meta.get(k) for k in ("pmid", "pmcid", "corpusid", "doi")})
    if doc_id is None:
        raise RecordError("S2ORC row without any identifier")
    meta.pop("title", None)
    if not any_line_has_words(text):  # blank, or only URLs (which the `clean` stage removes)
        raise RecordError("S2ORC row formats to an empty text")
    return Document(id=doc_id, source="papers", subset="pmc" if meta.get("pmcid") else "pubmed",
                    title=title, text=text, meta=meta,
                    url=article_url(pmid=meta.get("pmid"), pmcid=meta.get("pmcid"),
                                    doi=meta.get("doi")))


def abstract_document(row: dict, paper: dict | None = None) -> Document:
    """One `abstracts` row (joined with its papers metadata when known) → an `abstracts` Document:
    title, a newline, the abstract."""
    abstract = row.get("abstract")
    if not isinstance(abstract, str) or not abstract.strip():
        raise RecordError("abstracts row without an abstract")
    ids = external_ids(row)
    meta = _merge(ids, paper)
    title = (paper or {}).get("title") or ""
    meta.pop("title", None)
    oa = row.get("openaccessinfo") if isinstance(row.get("openaccessinfo"), dict) else {}
    if oa.get("license"):
        meta["license"] = oa["license"]
    body = squash(abstract)
    text = f"{title}\n{body}" if title else body
    doc_id = document_id(**{k: meta.get(k) for k in ("pmid", "pmcid", "corpusid", "doi")})
    if doc_id is None:
        raise RecordError("abstracts row without any identifier")
    return Document(id=doc_id, source="abstracts", subset="pubmed", title=title, text=text,
                    meta=meta, url=article_url(pmid=meta.get("pmid"), pmcid=meta.get("pmcid"),
                                               doi=meta.get("doi")))
