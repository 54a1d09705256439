"""PMC Open Access JATS (`.nxml`/`.xml`, `.tar.gz` packages, efetch `pmc-articleset`) → Documents.

Structure comes from the DOM: `<sec>` → `# Title`, nested → `## Title`, deeper → `### Title`;
citations (`xref ref-type="bibr"`) → `[bib_ref] cited title, First-author [/bib_ref]`;
figure/table references → `[fig_ref] Figure N: caption [/fig_ref]`; `<fig>`/`<table-wrap>` →
`[fig]`/`[table]` caption lines (cell contents are dropped); display formulas →
`[formula] ... [/formula]` on a line of their own, inline formulas stay inline as plain linear
text (mathml.py has the one renderer and its convention). No author block, affiliations,
bibliography, footnotes or object-id DOIs; link elements (`<uri>`, an `<ext-link>` whose text is
a URL or DOI) are dropped as markup, and a URL written in the text stays (the `clean` stage
removes it, docs/pubmed.md "Text rules"). An article without `<body>` becomes an
abstract-only record (source `abstracts`, `meta.abstract_only`). A non-English article is read
in English when it has an English sub-article (or, failing that, an English trans-abstract).
A set is cut into records by xmlsafe.iter_records, so one malformed article costs only itself.
"""

from __future__ import annotations

import re
import tarfile
from typing import IO, Iterator

from gap_replay.document import Document
from gap_replay.sources.pubmed.ids import article_url, document_id, norm_doi, norm_pmcid, norm_pmid
from gap_replay.sources.pubmed.mathml import formula_text, math_text, render_inline
from gap_replay.sources.pubmed.textutil import (
    any_line_has_words,
    header_line,
    short_caption,
    squash,
    tidy_lines,
    truncate_words,
)
from gap_replay.sources.pubmed.xmlsafe import (
    HostileXML,
    NotThisFormat,
    RecordError,
    iter_records,
    strip_namespaces,
    xml_lang,
)

ARTICLE_TYPES = {  # JATS @article-type → PubMed publication type (for rules and up-sampling)
    "research-article": "Journal Article", "review-article": "Review",
    "systematic-review": "Systematic Review", "meta-analysis": "Meta-Analysis",
    "case-report": "Case Reports", "editorial": "Editorial", "letter": "Letter",
    "reply": "Letter", "article-commentary": "Comment", "retraction": "Retraction of Publication",
    "correction": "Published Erratum", "expression-of-concern": "Expression of Concern",
    "practice-guideline": "Practice Guideline", "guideline": "Guideline",
    "clinical-trial": "Clinical Trial", "news": "News", "brief-report": "Journal Article",
    "rapid-communication": "Journal Article", "other": None,
}
_SKIP_ABSTRACT_TYPES = {"graphical", "teaser", "toc", "web-summary"}
_DROP_INLINE = {"fn", "email", "graphic", "inline-graphic", "media", "alternatives-skip",
                "object-id", "uri"}
_BLOCKS = {"fig", "fig-group", "table-wrap", "table-wrap-group", "disp-formula", "list",
           "def-list", "disp-quote", "boxed-text", "statement", "preformat", "code"}
_SKIP_BLOCKS = {"ref-list", "fn-group", "supplementary-material", "glossary", "notes-skip",
                "table-wrap-foot", "permissions", "label", "title", "sec-meta", "graphic", "media",
                "object-id", "caption", "alternatives"}
_BRACKETED = re.compile(
    r"[\[(]\s*((?:\[(bib|fig)_ref\](?:(?!\[/?(?:bib|fig)_ref\]).)*\[/(?:bib|fig)_ref\][\s,;–-]*)+?)\s*[\])]")
_LABEL_BEFORE_TOKEN = re.compile(r"\b(?:Figs?|Figures?|Tables?|Tabs?)\.?\s*\[fig_ref\]")
_BLOCK_BREAK = "\x01"  # where a block nested in a paragraph is cut out onto lines of its own
_CAPTION_SKIP = {"supplementary-material", "object-id", "label"}
_DOI_TAIL = re.compile(r"(?:^|\s)(?:DOI|doi)\s*:\s*(?:10\.\d{4,9}/\S+)?\s*$")
_LABEL_WORD = re.compile(r"^(fig(?:ure)?s?|tab(?:le)?s?)\.?\s*", re.I)


class JatsError(ValueError):
    """The article cannot become a document; the message is the quarantine reason, `offset`
    the article's byte offset in its file when known."""

    def __init__(self, reason: str, offset: int | None = None, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.offset = offset
        self.raw = raw


def _text(el) -> str:
    return squash("".join(el.itertext())) if el is not None else ""


class _Article:
    """Lookup tables of one article: bibliography, figures and tables by id."""

    def __init__(self, root) -> None:
        self.refs: dict[str, str | None] = {}
        self.ref_els = {r.get("id"): r for r in root.iter("ref") if r.get("id")}
        self.figs = {f.get("id"): f for tag in ("fig", "table-wrap") for f in root.iter(tag)
                     if f.get("id")}
        self.counts = {"bib_refs": 0, "fig_refs": 0, "formulas": 0, "figures": 0}

    def bib_token(self, rid: str) -> str | None:
        if rid not in self.refs:
            token = None
            ref = self.ref_els.get(rid)
            if ref is not None:
                title_el = next((e for tag in ("article-title", "chapter-title", "source",
                                               "data-title") for e in ref.iter(tag)), None)
                title = truncate_words(_text(title_el).strip(" ."), 12) if title_el is not None else ""
                surname = next((_text(e) for e in ref.iter("surname")), "") or next(
                    (_text(e) for e in ref.iter("collab")), "")
                if title:
                    token = (f"[bib_ref] {title}, {surname} [/bib_ref]" if surname
                             else f"[bib_ref] {title} [/bib_ref]")
            self.refs[rid] = token
        return self.refs[rid]

    def fig_name_caption(self, fig) -> tuple[str, str]:
        is_table = fig.tag.startswith("table")
        label = _text(fig.find("label"))
        m = _LABEL_WORD.match(label)
        if m:
            word = "Table" if m.group(1).lower().startswith("tab") else "Figure"
            name = f"{word} {label[m.end():]}".strip(" .:")
        elif label:
            name = f"{'Table' if is_table else 'Figure'} {label}".strip(" .:")
        else:
            name = "Table" if is_table else "Figure"
        cap = fig.find("caption")
        pieces = []
        for child in (cap if cap is not None else []):
            if not isinstance(child.tag, str) or child.tag in _CAPTION_SKIP:
                continue
            piece = _strip_doi(squash(_inline(child, self)))
            if piece and child.tag == "title" and piece[-1] not in ".!?:;":
                piece += "."  # "Title" + "Text" must not read as one sentence
            if piece:
                pieces.append(piece)
        return name, " ".join(pieces).strip()

    def fig_token(self, rid: str) -> str | None:
        fig = self.figs.get(rid)
        if fig is None:
            return None
        name, caption = self.fig_name_caption(fig)
        short = short_caption(caption)
        return f"[fig_ref] {name}: {short} [/fig_ref]" if short else f"[fig_ref] {name} [/fig_ref]"


def _inline(el, art: _Article, blocks: list[str] | None = None) -> str:
    """Inline text of an element through the one renderer (mathml.render_inline): tokens for
    references, inline formulas as plain linear text. Block children (figures, display
    formulas, lists) are dropped, or, with `blocks`, rendered in place on lines of their own."""

    def hook(child, tag: str) -> str | None:
        if tag in _BLOCKS:
            if blocks is None:
                return ""
            lines: list[str] = []
            _blocks([child], art, 1, lines)
            return _BLOCK_BREAK + _BLOCK_BREAK.join(lines) + _BLOCK_BREAK if lines else ""
        if tag in _DROP_INLINE or tag == "ext-link" and _looks_like_url(child):
            return ""
        if tag == "xref":
            return _xref(child, art)
        if tag in ("inline-formula", "math", "tex-math"):
            body = formula_text(child) if tag != "math" else math_text(child)
            if body:
                art.counts["formulas"] += 1
            return f" {body} " if body else ""
        return None

    out = render_inline(el, hook)
    if "[fig_ref]" in out:  # "Table <xref>1</xref>": no "Table [fig_ref] Table 1"
        out = _LABEL_BEFORE_TOKEN.sub(" [fig_ref]", out)
    return out


def _looks_like_url(el) -> bool:
    text = _text(el)
    return not text or bool(re.match(r"^(https?://|ftp://|www\.|doi:|10\.\d)", text, re.I))


def _xref(el, art: _Article) -> str:
    ref_type = el.get("ref-type") or ""
    rids = (el.get("rid") or "").split()
    shown = _inline(el, art)
    if ref_type == "bibr" and rids:
        tokens = [t for t in (art.bib_token(r) for r in rids) if t]
        if tokens:
            art.counts["bib_refs"] += len(tokens)
            return " " + " ".join(tokens) + " "
        return " "
    if ref_type in ("fig", "table") and rids:
        token = art.fig_token(rids[0])
        if token:
            art.counts["fig_refs"] += 1
            return f" {token} "
    if ref_type in _DROP_XREF_TYPES:
        return " "
    return shown


_DROP_XREF_TYPES = {"fn", "table-fn", "aff", "corresp", "author-notes", "contrib"}


def _header(title: str, depth: int) -> str:
    """Section depth 0, 1, 2+ → `#`, `##`, `###`: a parent keeps its header even when it opens
    with a sub-section."""
    return f"{'#' * min(depth + 1, 3)} {' '.join(title.split()).rstrip(':').strip()}"


def _strip_doi(text: str) -> str:
    """eLife-style "DOI: 10.7554/eLife.1.003" (or a bare "DOI:" once its link is gone) removed."""
    return _DOI_TAIL.sub("", text).strip() if "doi" in text.lower() else text


def _blocks(el, art: _Article, depth: int, lines: list[str]) -> None:
    """Block-level rendering of `el`'s children into `lines`."""
    for child in el:
        tag = child.tag if isinstance(child.tag, str) else ""
        if not tag or tag in _SKIP_BLOCKS:
            continue
        if tag in ("sec", "app", "ack", "abstract", "boxed-text", "bio-skip"):
            title = _text(child.find("title")) or _text(child.find("caption/title"))
            if not title and tag == "ack":
                title = "Acknowledgments"
            if title:
                lines += ["", _header(title, depth), ""]
            _blocks(child, art, depth + 1, lines)
        elif tag in ("p", "statement", "disp-quote", "preformat", "code", "def", "term"):
            for line in _inline(child, art, blocks=lines).split(_BLOCK_BREAK):
                text = _strip_doi(squash(line))
                if text:
                    lines.append(text)
        elif tag in ("fig", "table-wrap"):
            name, caption = art.fig_name_caption(child)
            kind = "table" if tag == "table-wrap" else "fig"
            if caption:
                art.counts["figures"] += 1
                lines.append(f"[{kind}] {name}: {caption} [/{kind}]")
        elif tag in ("fig-group", "table-wrap-group", "app-group", "sec-group", "body", "back"):
            _blocks(child, art, depth, lines)
        elif tag == "disp-formula":
            body = formula_text(child)
            if body:
                art.counts["formulas"] += 1
                lines.append(f"[formula] {body} [/formula]")
        elif tag in ("list", "def-list"):
            for item in child:
                if isinstance(item.tag, str) and item.tag in ("list-item", "def-item"):
                    text = squash(" ".join(squash(_inline(p, art)) for p in item
                                           if isinstance(p.tag, str) and p.tag != "label"))
                    if text:
                        lines.append(f"- {text}")
        else:
            text = _strip_doi(squash(_inline(child, art)))
            if text:
                lines.append(text)


def _meta(root) -> dict:
    front = root.find("front")
    meta_el = front.find("article-meta") if front is not None else None
    jmeta = front.find("journal-meta") if front is not None else None
    ids = {}
    if meta_el is not None:
        for aid in meta_el.findall("article-id"):
            kind = (aid.get("pub-id-type") or "").lower()
            value = _text(aid)
            if kind == "pmid":
                ids["pmid"] = norm_pmid(value)
            elif kind in ("pmc", "pmcid"):
                ids["pmcid"] = norm_pmcid(value)
            elif kind == "doi":
                ids["doi"] = norm_doi(value)
    journal = None
    if jmeta is not None:
        journal = _text(jmeta.find(".//journal-title")) or _text(jmeta.find("journal-id"))
    pub_date = None
    if meta_el is not None:
        dates = meta_el.findall("pub-date")
        order = ("epub", "ppub", "pub", "collection", "epub-ppub")
        dates.sort(key=lambda d: order.index(d.get("pub-type") or d.get("date-type") or "pub")
                   if (d.get("pub-type") or d.get("date-type") or "pub") in order else 9)
        for d in dates:
            year = _text(d.find("year"))
            if year.isdigit():
                month = _text(d.find("month"))
                day = _text(d.find("day"))
                pub_date = year
                if month.isdigit():
                    pub_date += f"-{int(month):02d}"
                    if day.isdigit():
                        pub_date += f"-{int(day):02d}"
                break
    article_type = root.get("article-type") or ""
    ptype = ARTICLE_TYPES.get(article_type)
    subjects = [_text(s) for s in meta_el.iter("subject")] if meta_el is not None else []
    keywords = [_text(k) for k in meta_el.iter("kwd")] if meta_el is not None else []
    meta = {**{k: v for k, v in ids.items() if v}, "journal": journal or None,
            "pub_date": pub_date, "article_type": article_type or None,
            "publication_types": [ptype] if ptype else [],
            "subjects": [s for s in subjects if s], "keywords": [k for k in keywords if k]}
    meta.update(_license(meta_el))
    return meta


_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_CC_URL = re.compile(r"creativecommons\.org/licen[cs]es/([a-z-]+)(?:/(\d(?:\.\d)?))?", re.I)
_CC0 = re.compile(r"creativecommons\.org/publicdomain/zero|\bCC0\b|public domain dedication", re.I)
_PD = re.compile(r"creativecommons\.org/publicdomain/mark|\bpublic domain\b", re.I)
_CC_SHORT = re.compile(r"\bCC[ -]?(BY(?:[ -](?:NC|ND|SA))*)(?:[ -]v?(\d\.\d))?\b", re.I)
_CC_WORDS = re.compile(r"Creative\s+Commons\s+Attribution((?:[\s-]+(?:Non-?Commercial|No-?Deriv\w*|"
                       r"Share-?Alike|No\s+Derivatives|Share\s+Alike))*)(?:\s+(?:International\s+)?"
                       r"(?:License|Licence)?\s*(?:\(?CC[ -]BY[\w -]*\)?)?\s*v?(\d\.\d))?", re.I)


def license_id(text: str | None) -> str | None:
    """A licence URL, type or sentence → an SPDX-like id ("CC-BY-4.0", "CC-BY-NC", "CC0-1.0",
    "public-domain"), or None when it names no licence (e.g. license-type="open-access")."""
    if not text:
        return None
    m = _CC_URL.search(text)
    if m:
        kind = m.group(1).strip("-").upper()
        return f"CC-{kind}" + (f"-{m.group(2)}" if m.group(2) else "") if kind.startswith("BY") else None
    if _CC0.search(text):
        return "CC0-1.0"
    m = _CC_SHORT.search(text)
    if m:
        kind = "-".join(m.group(1).upper().replace(" ", "-").split("-"))
        return f"CC-{kind}" + (f"-{m.group(2)}" if m.group(2) else "")
    m = _CC_WORDS.search(text)
    if m:
        words = m.group(1).lower()
        kind = "BY" + ("-NC" if "commercial" in words else "") + (
            "-ND" if "deriv" in words else "") + ("-SA" if "share" in words else "")
        return f"CC-{kind}" + (f"-{m.group(2)}" if m.group(2) else "")
    if _PD.search(text):
        return "public-domain"
    return None


def _license(meta_el) -> dict:
    """meta.license (normalised id, else the licence URL) and meta.license_url, from the
    `<license>` link, `ali:license_ref`, a licence-naming type attribute, or its text."""
    if meta_el is None:
        return {}
    for lic in meta_el.iter("license"):
        url = lic.get(_XLINK_HREF) or _text(lic.find("license_ref")) or next(
            (v for k, v in lic.attrib.items() if k.endswith("resource")), None)
        found = license_id(url) or license_id(lic.get("license-type")) or license_id(_text(lic))
        out = {"license": found or url} if (found or url) else {}
        if url and url.startswith(("http://", "https://")):
            out["license_url"] = url
        if out:
            return out
    return {}


def _abstract_lines(abstracts: list, art: _Article) -> list[str]:
    """`# Abstract` for the first plain abstract, `## Title` for the others (author summary...)."""
    lines: list[str] = []
    main_done = False
    for ab in abstracts:
        kind = ab.get("abstract-type") or ""
        if kind in _SKIP_ABSTRACT_TYPES:
            continue
        title = _text(ab.find("title"))
        if not main_done and not kind:
            lines += ["# Abstract", ""]
            main_done = True
        else:
            lines += ["", header_line(title or kind.replace("-", " ").capitalize() or "Abstract", 2), ""]
        _blocks(ab, art, 1, lines)
    return lines


def _lang_of(el, default: str) -> str:
    return (xml_lang(el) or default).split("-")[0].lower()


class _Parts:
    """What the document is made of: title, abstracts, body, back matter and floats, all in
    one language (English when the article has it: a translated sub-article, else an English
    translated abstract of a non-English article)."""

    def __init__(self, root, meta_el) -> None:
        self.declared = _lang_of(root, "")
        self.lang = self.declared or "en"
        self.translated_from: str | None = None
        self.body_language_dropped: str | None = None
        self.title_el = meta_el.find("title-group/article-title") if meta_el is not None else None
        self.body = root.find("body")
        self.back = root.find("back")
        self.floats = root.find("floats-group")
        abstracts = meta_el.findall("abstract") if meta_el is not None else []
        self.abstracts = [a for a in abstracts if _lang_of(a, self.lang) == self.lang]
        if self.lang != "en":
            self._prefer_english(root, meta_el, abstracts)

    def _prefer_english(self, root, meta_el, abstracts) -> None:
        subs = [s for s in root.findall("sub-article") if _lang_of(s, "") == "en"]
        subs.sort(key=lambda s: s.get("article-type") != "translation")
        english_abstracts = [a for a in abstracts if _lang_of(a, "") == "en"] + (
            [a for a in meta_el.findall("trans-abstract") if _lang_of(a, "") == "en"]
            if meta_el is not None else [])
        trans_title = meta_el.find("title-group/trans-title-group[@{http://www.w3.org/XML/1998/"
                                   "namespace}lang='en']/trans-title") if meta_el is not None else None
        sub = next((s for s in subs if s.find("body") is not None), None)
        if sub is not None:
            stub = sub.find("front-stub")
            stub = stub if stub is not None else sub.find("front")
            sub_abstracts = stub.findall(".//abstract") if stub is not None else []
            self.translated_from, self.lang = self.lang, "en"
            sub_title = stub.find(".//article-title") if stub is not None else None
            self.title_el = next((t for t in (sub_title, trans_title) if t is not None), self.title_el)
            self.abstracts = sub_abstracts or english_abstracts
            self.body, self.back, self.floats = sub.find("body"), sub.find("back"), sub.find("floats-group")
        elif english_abstracts:
            # the main text is in another language: keep the English abstract, not the body
            self.body_language_dropped, self.lang = self.lang, "en"
            self.title_el = trans_title if trans_title is not None else self.title_el
            self.abstracts = english_abstracts
            self.body = self.back = self.floats = None


def article_document(root, source_name: str = "") -> Document:
    """One `<article>` element → a Document (papers, or abstracts when there is no body)."""
    strip_namespaces(root)
    meta = _meta(root)
    front = root.find("front")
    meta_el = front.find("article-meta") if front is not None else None
    parts = _Parts(root, meta_el)
    art = _Article(root)
    title = _strip_doi(squash(_inline(parts.title_el, art))) if parts.title_el is not None else ""
    art.counts = dict.fromkeys(art.counts, 0)  # the title's references are not counted
    lines: list[str] = [title, ""] if title else []
    lines += _abstract_lines(parts.abstracts, art)
    body = parts.body
    has_body = body is not None and len(body)
    if has_body:
        for part in (body, parts.back, parts.floats):  # floats: PMC "floats-group"
            if part is not None:
                _blocks(part, art, 0, lines)
    text = _unbracket("\n".join(lines))
    text = tidy_lines([" ".join(line.split()) for line in text.split("\n")])
    if not any_line_has_words(text[len(title):] if text.startswith(title) else text):  # URLs only
        raise JatsError("article without body and abstract text")
    meta["language"] = parts.lang
    meta["language_declared"] = parts.declared or None
    if parts.translated_from:
        meta["translated_from"] = parts.translated_from
    if parts.body_language_dropped:
        meta["body_language_dropped"] = parts.body_language_dropped
    meta.update(art.counts)
    doc_id = document_id(pmid=meta.get("pmid"), pmcid=meta.get("pmcid"), doi=meta.get("doi"))
    if doc_id is None:
        raise JatsError("article without pmid, pmcid or doi")
    source, subset = "papers", "pmc"
    if not has_body:
        source = "abstracts"
        meta["abstract_only"] = True
    if source_name:
        meta["source_file"] = source_name
    return Document(id=doc_id, source=source, subset=subset, title=title, text=text, meta=meta,
                    url=article_url(pmid=meta.get("pmid"), pmcid=meta.get("pmcid"),
                                    doi=meta.get("doi")))


def _unbracket(text: str) -> str:
    """'[ [bib_ref] ... [/bib_ref] ]' → the tokens without the source's brackets."""
    if "_ref]" not in text:
        return text
    return _BRACKETED.sub(lambda m: " " + m.group(1).strip(" ,;") + " ", text)


# Where an <article> record can sit: the root itself, an efetch/OA `pmc-articleset`, Europe
# PMC's `articles`, an OAI-PMH record's `metadata`. Any other root is not a JATS file.
ROOT_TAGS = ("article", "pmc-articleset", "articles", "OAI-PMH")
CONTAINER_TAGS = frozenset({"pmc-articleset", "articles", "metadata"})


def iter_stream(stream: IO[bytes], name: str) -> Iterator[Document | JatsError]:
    """Documents of one JATS stream (an article, or a set of them in any container above); a
    bad article yields a JatsError (with its byte offset) in its place and the next articles
    are still read."""
    for offset, el in iter_records(stream, ("article",), roots=ROOT_TAGS, kind="JATS"):
        if isinstance(el, RecordError):
            yield JatsError(str(el), offset=offset, raw=el.raw)
            continue
        try:
            yield article_document(el, name)
        except (JatsError, ValueError, TypeError) as exc:
            yield JatsError(f"at byte {offset}: {type(exc).__name__}: {exc}", offset=offset)


def iter_file(path: str) -> Iterator[tuple[str, Document | JatsError]]:
    """(member name, Document or error) for a .nxml/.xml file or a .tar.gz OA package."""
    path = str(path)
    if path.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path, mode="r|*") as tar:  # streamed: members read in order
            for member in tar:
                if not member.isfile() or not member.name.endswith((".nxml", ".xml")):
                    continue
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                name = f"{path}!{member.name}"
                yield from ((name, d) for d in _guarded(fh, name))
        return
    with open(path, "rb") as fh:
        yield from ((path, d) for d in _guarded(fh, path))


def iter_bytes(data: bytes, name: str) -> Iterator[Document | JatsError]:
    """Documents (or errors) of one JATS object already in memory (e.g. one HTTP answer)."""
    import io

    return _guarded(io.BytesIO(data), name)


def _guarded(fh, name: str) -> Iterator[Document | JatsError]:
    try:
        yield from iter_stream(fh, name)
    except (HostileXML, NotThisFormat) as exc:  # entity declarations; an HTML page
        yield JatsError(str(exc))
