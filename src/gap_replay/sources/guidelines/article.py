"""One article page → `Extracted` text, shared by the scraper and `guidelines check`.

HTML pages are read with the spec's selectors. When the content selector matches nothing on an
HTML page (the site changed its markup), the text comes from a maintained main-content
extractor instead (fallback.py) and `Extracted.extraction` says "fallback", so the document is
kept but the drift is counted and reported (drift.py). PDFs (linked or answered) are read with
pypdf.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from gap_replay.http import FetchError, PoliteClient
from gap_replay.sources.guidelines.discover import Link, article_key
from gap_replay.sources.guidelines.extract import Extracted, extract_content, extract_page, parse_html
from gap_replay.sources.guidelines.fallback import main_text
from gap_replay.sources.guidelines.spec import Spec

# meta.extraction values
BY_SELECTOR, BY_FALLBACK, BY_PDF = "selector", "fallback", "pdf"


class Fetcher:
    """Page-level fetches for one source; decodes HTML and checks PDFs."""

    def __init__(self, client: PoliteClient) -> None:
        self.client = client

    def get(self, url: str):
        return self.client.get(url)

    def pdf(self, url: str) -> bytes:
        resp = self.client.get(url)
        data = resp.content
        if not data.lstrip()[:5].startswith(b"%PDF"):
            raise FetchError(url, f"not a PDF (Content-Type {resp.headers.get('Content-Type', '?')})")
        return data


def is_pdf_response(resp) -> bool:
    """A PDF answer, whatever the link looked like: Content-Type application/pdf, or a body
    starting with the %PDF signature (servers often say application/octet-stream)."""
    ctype = (resp.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    return ctype in ("application/pdf", "application/x-pdf") or resp.content.lstrip()[:5].startswith(b"%PDF")


def extraction_of(page: Extracted) -> str:
    """How the page's text was obtained: "selector", "fallback" or "pdf"."""
    return getattr(page, "extraction", "") or (BY_PDF if page.pages else BY_SELECTOR)


class ArticleReader:
    """Fetch one article of a spec and extract its title and text (see the module docstring)."""

    def __init__(self, spec: Spec, fetcher: Fetcher, hook) -> None:
        self.spec = spec
        self.fetcher = fetcher
        self.hook = hook

    def read(self, link: Link) -> Extracted:
        art = self.spec.article
        fmt = art.format
        if fmt == "pdf" and not art.pdf_link:
            target = link.fields.get("pdf_url") or link.url
            return self._pdf(target, link.title)
        resp = self.fetcher.get(link.url)
        body = resp.content
        if fmt == "auto" and is_pdf_response(resp):
            # a mixed source (CMA's linked PDFs beside canada.ca pages): the answer decides
            return self._pdf(link.url, link.title, data=body)
        if fmt == "json":
            body = self.hook.to_html(body, link.url).encode("utf-8")
        page = extract_page(body, link.url, art, link.title)
        if art.require_title and not page.title:
            raise FetchError(link.url, "no title found (selector "
                             + ", ".join(art.title) + ")")
        if art.pdf_link and not page.pdf_link and link.fields.get("pdf_url"):
            # the listing named the file (WHO's DownloadUrl): use it when the page shows none
            page.pdf_link = urljoin(link.url, link.fields["pdf_url"])
            page.matched["pdf_link"] = len(art.pdf_link)   # counted as a later alternative
        if art.pdf_link and (page.pdf_link or fmt != "auto"):   # auto: no PDF link → the page
            if not page.pdf_link:
                raise FetchError(link.url, f"no PDF link ({' | '.join(_alts(art.pdf_link))})")
            pdf = self._pdf(page.pdf_link, page.title)
            pdf.title = page.title or pdf.title
            pdf.canonical, pdf.language = page.canonical, page.language or pdf.language
            pdf.overview = page.overview
            pdf.matched = dict(page.matched)
            return pdf
        if art.sections:
            page.text = self._sections(link, page, body)
        page.extraction = BY_SELECTOR
        if not page.text.strip() and "content" not in page.matched and not art.fallback:
            page.extraction = "none"  # a listed page without the content (AAFP topic pages
            return page               # with no recommendations): the clean rules reject it
        if not page.text.strip() and "content" not in page.matched and fmt in ("html", "auto"):
            page.text = main_text(body, link.url, art.drop)
            page.extraction = BY_FALLBACK
        if not page.text.strip():
            raise FetchError(link.url, "no content found (selectors " + ", ".join(art.content) + ")")
        return page

    def _pdf(self, url: str, hint_title: str, data: bytes | None = None) -> Extracted:
        from gap_replay.sources.guidelines import pdf as pdf_module  # lazy: pypdf only when needed

        if data is None:
            data = self.fetcher.pdf(url)
        result = pdf_module.extract_pdf(data, url)
        out = Extracted(title=hint_title or result.title, text=result.text, pdf_link=url,
                        pages=result.pages)
        out.extraction = BY_PDF
        if not out.text.strip():
            raise FetchError(url, "PDF has no extractable text")
        return out

    def _sections(self, link: Link, page: Extracted, body: bytes) -> str:
        """Articles spread over tabs/chapters: each wanted section's content under `# Name`."""
        rules = self.spec.article.sections
        assert rules is not None
        chosen: list[tuple[str, str]] = []
        seen: set[str] = set()
        for i, (url, name) in enumerate(page.links):
            if rules.skip_first and i == 0:
                continue
            name = re.sub(r"&(?=\S)", "& ", name)  # "Symptoms &causes" (Mayo's markup)
            if rules.strip_numbering:
                name = re.sub(r"^\s*\d+(\.\d+)*\.?\s+", "", name).strip()
            if rules.include_text and not any(re.search(p, name, re.I) for p in rules.include_text):
                continue
            if any(re.search(p, name, re.I) for p in rules.exclude_text) and not any(
                    re.search(p, name, re.I) for p in rules.keep_text):
                continue
            key = article_key(url)
            if key in seen:
                continue
            seen.add(key)
            chosen.append((url, name))
        if not chosen:
            return page.text
        parts = []
        own = article_key(link.url)
        for url, name in chosen:
            if article_key(url) == own:
                text = extract_content(parse_html(body), self.spec.article)
            else:
                text = extract_content(parse_html(self.fetcher.get(url).content), self.spec.article)
            if text.strip():
                parts.append(f"# {name}\n\n{text}")
        return "\n\n".join(parts)


def _alts(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())
