"""PubMed baseline/update MEDLINE XML (`.xml`/`.xml.gz`) → abstract Documents, streamed.

`iterparse` yields one `PubmedArticle`, `PubmedBookArticle`, bare `MedlineCitation` (old
`MedlineCitationSet` files) or `DeleteCitation` at a time and frees it, so memory is flat in
file size. Version resolution and deletions across files are done by `MedlineResolver`
(SQLite), because an update file deletes or replaces records of earlier files. A Document's
text is the title and the abstract as written, URLs included (the `clean` stage removes them).
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from gap_replay.document import Document
from gap_replay.sources.pubmed.ids import article_url, document_id, norm_doi, norm_pmcid, norm_pmid
from gap_replay.sources.pubmed.mathml import render_inline, strip_escaped_html
from gap_replay.sources.pubmed.textutil import squash
from gap_replay.sources.pubmed.xmlsafe import (
    HostileXML,
    NotThisFormat,
    RecordError,
    iter_records,
    open_xml,
    strip_namespaces,
)

RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "MedlineCitation", "DeleteCitation")
# Root elements of baseline/update files and efetch answers (old files: MedlineCitationSet).
ROOT_TAGS = ("PubmedArticleSet", "PubmedBookArticleSet", "MedlineCitationSet")
# MEDLINE language codes (ISO 639-2) → the ISO 639-1 codes langdetect and the recipe use.
LANGUAGES = {
    "eng": "en", "fre": "fr", "ger": "de", "spa": "es", "ita": "it", "por": "pt", "rus": "ru",
    "jpn": "ja", "chi": "zh", "pol": "pl", "dut": "nl", "swe": "sv", "dan": "da", "nor": "no",
    "fin": "fi", "cze": "cs", "hun": "hu", "tur": "tr", "kor": "ko", "heb": "he", "gre": "el",
    "ara": "ar", "per": "fa", "rum": "ro", "bul": "bg", "hrv": "hr", "scr": "hr", "slo": "sk",
    "slv": "sl", "ukr": "uk", "lit": "lt", "lav": "lv", "est": "et", "ice": "is", "srp": "sr",
    "tha": "th", "vie": "vi", "ind": "id", "may": "ms", "cat": "ca", "afr": "af", "alb": "sq",
    "arm": "hy", "geo": "ka", "hin": "hi", "ben": "bn", "urd": "ur", "mac": "mk", "mul": "mul",
    "und": "und",
}
_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


class MedlineError(ValueError):
    """A record that cannot become a document; the message is the quarantine reason, `offset`
    the record's byte offset in the (decompressed) file when known."""

    def __init__(self, reason: str, offset: int | None = None, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.offset = offset
        self.raw = raw


@dataclass
class Deletion:
    pmids: list[str]


@dataclass
class Citation:
    """One parsed record, with the version needed to resolve duplicates."""

    pmid: str
    version: int
    doc: Document | None  # None: the record has no abstract (counted, not emitted)
    reason: str = ""


def _t(el) -> str:
    return squash("".join(el.itertext())) if el is not None else ""


def _date(el) -> str | None:
    if el is None:
        return None
    year = _t(el.find("Year"))
    if not year.isdigit():
        medline = _t(el.find("MedlineDate"))  # "1998 Dec-1999 Jan"
        return medline[:4] if medline[:4].isdigit() else None
    month = _t(el.find("Month")).lower()
    month_n = int(month) if month.isdigit() else _MONTHS.get(month[:3])
    if not month_n:
        return year
    day = _t(el.find("Day"))
    return f"{year}-{month_n:02d}-{int(day):02d}" if day.isdigit() else f"{year}-{month_n:02d}"


def _rich(el) -> str:
    """Text with inline markup through the one renderer (MathML, <sup>, <sub>: see mathml.py)
    and escaped HTML ("&lt;p&gt;", literal "<p>" once parsed) removed."""
    return squash(strip_escaped_html(render_inline(el))) if el is not None else ""


def _abstract(article) -> str:
    if article is None:
        return ""
    parts = []
    for ab in article.findall("Abstract/AbstractText"):
        text = _rich(ab)
        if not text:
            continue
        label = ab.get("Label")
        parts.append(f"{label.strip().capitalize() if label.isupper() else label.strip()}: {text}"
                     if label else text)
    return "\n".join(parts)


def parse_citation(el, source_name: str = "") -> Citation:
    """A PubmedArticle / PubmedBookArticle / bare MedlineCitation element → Citation."""
    tag = el.tag
    book = tag == "PubmedBookArticle"
    cit = el if tag == "MedlineCitation" else el.find("BookDocument" if book else "MedlineCitation")
    if cit is None:
        raise MedlineError(f"{tag} without MedlineCitation/BookDocument")
    pmid_el = cit.find("PMID")
    pmid = norm_pmid(_t(pmid_el))
    if not pmid:
        raise MedlineError(f"{tag} without PMID")
    version = int(pmid_el.get("Version") or 1) if (pmid_el.get("Version") or "1").isdigit() else 1
    article = cit if book else cit.find("Article")
    if book:
        title = _rich(cit.find("ArticleTitle")) or _t(cit.find("Book/BookTitle"))
        journal = _t(cit.find("Book/BookTitle")) or None
        pub_date = _date(cit.find("Book/PubDate"))
        language_codes = [_t(x) for x in cit.findall("Language")]
    else:
        if article is None:
            raise MedlineError("MedlineCitation without Article")
        title = _rich(article.find("ArticleTitle")) or _rich(article.find("VernacularTitle"))
        journal = _t(article.find("Journal/Title")) or _t(cit.find("MedlineJournalInfo/MedlineTA")) or None
        pub_date = _date(article.find("Journal/JournalIssue/PubDate")) or _date(
            article.find("ArticleDate"))
        language_codes = [_t(x) for x in article.findall("Language")]
    bracketed = re.match(r"^\[(.*)\](\.?)$", title)  # translated titles: "[Titel]."
    if bracketed:
        title = bracketed.group(1).strip() + bracketed.group(2)
    types = [_t(x) for x in (article.findall("PublicationTypeList/PublicationType")
                             if article is not None else [])]
    comments = cit.findall("CommentsCorrectionsList/CommentsCorrections")
    if any(c.get("RefType") == "RetractionIn" for c in comments) and "Retracted Publication" not in types:
        types.append("Retracted Publication")
    mesh = [_t(h.find("DescriptorName")) for h in cit.findall("MeshHeadingList/MeshHeading")]
    ids = {"pmid": pmid, "pmcid": None, "doi": None}
    data = el.find("PubmedData") if not book else el.find("PubmedBookData")
    for aid in (data.findall("ArticleIdList/ArticleId") if data is not None else []):
        kind = aid.get("IdType")
        if kind == "pmc":
            ids["pmcid"] = norm_pmcid(_t(aid))
        elif kind == "doi" and not ids["doi"]:
            ids["doi"] = norm_doi(_t(aid))
    if not ids["doi"] and article is not None:
        for loc in article.findall("ELocationID"):
            if loc.get("EIdType") == "doi":
                ids["doi"] = norm_doi(_t(loc))
    body = _abstract(article)
    languages = [LANGUAGES.get(c.lower(), c.lower()) for c in language_codes if c]
    if not body:
        return Citation(pmid, version, None, "no abstract")
    meta = {
        **{k: v for k, v in ids.items() if v},
        "mesh": [m for m in mesh if m], "publication_types": [t for t in types if t],
        "journal": journal, "language": languages[0] if languages else "und",
        "language_declared": languages[0] if languages else None,
        "languages": languages, "pub_date": pub_date, "pmid_version": version,
    }
    if book:
        meta["book"] = True
    if source_name:
        meta["source_file"] = source_name
    text = f"{title}\n{body}" if title else body
    doc = Document(id=document_id(pmid=pmid), source="abstracts", subset="pubmed", title=title,
                   text=text, url=article_url(pmid=pmid), meta=meta)
    return Citation(pmid, version, doc)


def iter_file(path: str | os.PathLike) -> Iterator[Citation | Deletion | MedlineError]:
    """Records of one MEDLINE file in file order; a bad record yields a MedlineError in its place
    (its `offset` is the record's byte offset in the decompressed file) and the records after it
    are still read.

    Raises HostileXML (prolog declares entities) or NotThisFormat (another root element) for the
    caller to quarantine the whole file; OSError/EOFError when the gzip stream itself breaks."""
    path = str(path)
    with open_xml(path) as fh:
        for offset, el in iter_records(fh, RECORD_TAGS, roots=ROOT_TAGS, kind="MEDLINE"):
            if isinstance(el, RecordError):
                yield MedlineError(str(el), offset=offset, raw=el.raw)
                continue
            strip_namespaces(el)
            try:
                if el.tag == "DeleteCitation":
                    yield Deletion([p for p in (norm_pmid(_t(x)) for x in el.findall("PMID")) if p])
                else:
                    yield parse_citation(el, path)
            except (MedlineError, ValueError) as exc:
                yield MedlineError(f"at byte {offset}: {exc}", offset=offset)


class MedlineResolver:
    """Across a run of MEDLINE files (baseline then updates, in file order): the highest
    (file, Version) of each PMID wins, and a DeleteCitation removes every earlier record.

    Pass 1 (`add`) records candidates in SQLite; pass 2 (`is_winner`) tells which to keep, so
    no record set is ever held in memory."""

    def __init__(self, path: str | os.PathLike) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
            "CREATE TABLE IF NOT EXISTS cand (pmid INTEGER, file INTEGER, pos INTEGER, version INTEGER,"
            " PRIMARY KEY (pmid, file, pos));"
            "CREATE TABLE IF NOT EXISTS del (pmid INTEGER, file INTEGER, pos INTEGER);")
        self._batch: list[tuple] = []
        self._dels: list[tuple] = []

    def add(self, pmid: str, file: int, pos: int, version: int) -> None:
        self._batch.append((int(pmid), file, pos, version))
        if len(self._batch) >= 10000:
            self.flush()

    def delete(self, pmids: list[str], file: int, pos: int) -> None:
        self._dels.extend((int(p), file, pos) for p in pmids)
        if len(self._dels) >= 10000:
            self.flush()

    def flush(self) -> None:
        with self.db:
            if self._batch:
                self.db.executemany("INSERT OR REPLACE INTO cand VALUES (?,?,?,?)", self._batch)
            if self._dels:
                self.db.executemany("INSERT INTO del VALUES (?,?,?)", self._dels)
        self._batch.clear()
        self._dels.clear()

    def finish(self) -> None:
        """Compute the winners once all files are added."""
        self.flush()
        with self.db:
            self.db.executescript("""
                CREATE INDEX IF NOT EXISTS del_pmid ON del(pmid);
                DROP TABLE IF EXISTS win;
                CREATE TABLE win AS
                  SELECT c.pmid, c.file, c.pos FROM cand c
                  WHERE NOT EXISTS (SELECT 1 FROM cand o WHERE o.pmid = c.pmid AND
                        (o.file > c.file OR (o.file = c.file AND (o.version > c.version OR
                         (o.version = c.version AND o.pos > c.pos)))))
                    AND NOT EXISTS (SELECT 1 FROM del d WHERE d.pmid = c.pmid AND
                        (d.file > c.file OR (d.file = c.file AND d.pos > c.pos)));
                CREATE UNIQUE INDEX win_key ON win(pmid, file, pos);
            """)

    def is_winner(self, pmid: str, file: int, pos: int) -> bool:
        return self.db.execute("SELECT 1 FROM win WHERE pmid=? AND file=? AND pos=?",
                               (int(pmid), file, pos)).fetchone() is not None

    def deleted_count(self) -> int:
        return self.db.execute("SELECT COUNT(DISTINCT pmid) FROM del").fetchone()[0]

    def close(self) -> None:
        self.db.close()


__all__ = ["Citation", "Deletion", "HostileXML", "MedlineError", "MedlineResolver", "NotThisFormat", "iter_file",
           "parse_citation"]
