"""The one document-id rule for PubMed records, so the same article gets the same id whichever
file it came from (S2ORC, JATS, MEDLINE, S2 abstracts).

Rule: the first known of `pmid:<digits>`, `pmcid:PMC<digits>`, `corpusid:<digits>`,
`doi:<lower-cased DOI>`. Abstracts that have a full text are marked by `drop_marks.py` and
dropped by the `filter` stage, so an abstract and a paper never both keep the same id.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d+")


def norm_pmid(value) -> str | None:
    if value is None:
        return None
    m = _DIGITS.search(str(value))
    return m.group(0).lstrip("0") or None if m else None


def norm_pmcid(value) -> str | None:
    """'PMC123', '123', 123 → 'PMC123'."""
    if value is None:
        return None
    m = _DIGITS.search(str(value))
    if not m:
        return None
    digits = m.group(0).lstrip("0")
    return f"PMC{digits}" if digits else None


def norm_doi(value) -> str | None:
    if not value:
        return None
    doi = str(value).strip()
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", doi, flags=re.I)
    return doi.lower() or None


def norm_corpusid(value) -> str | None:
    if value is None:
        return None
    m = _DIGITS.search(str(value))
    return m.group(0) if m else None


def document_id(*, pmid=None, pmcid=None, corpusid=None, doi=None) -> str | None:
    """Apply the id rule; None when the record carries no identifier at all."""
    if (p := norm_pmid(pmid)):
        return f"pmid:{p}"
    if (p := norm_pmcid(pmcid)):
        return f"pmcid:{p}"
    if (c := norm_corpusid(corpusid)):
        return f"corpusid:{c}"
    if (d := norm_doi(doi)):
        return f"doi:{d}"
    return None


def article_url(*, pmid=None, pmcid=None, doi=None) -> str:
    if (p := norm_pmcid(pmcid)):
        return f"https://www.ncbi.nlm.nih.gov/pmc/articles/{p}/"
    if (p := norm_pmid(pmid)):
        return f"https://pubmed.ncbi.nlm.nih.gov/{p}/"
    if (d := norm_doi(doi)):
        return f"https://doi.org/{d}"
    return ""
