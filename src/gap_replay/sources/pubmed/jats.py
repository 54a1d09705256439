"""PMC Open Access JATS (`.nxml`/`.xml`, `.tar.gz` packages, efetch `pmc-articleset`) → Documents.

Structure comes from the DOM: top-level `<sec>` → `# Title`, nested → `## Title`; citations
(`xref ref-type="bibr"`) → `[bib_ref] cited title, First-author [/bib_ref]`; figure/table
references → `[fig_ref] Figure N: caption [/fig_ref]`; `<fig>`/`<table-wrap>` → `[fig]`/`[table]`
caption lines (cell contents are dropped); MathML/TeX → `[formula] ... [/formula]`. No author
block, affiliations, bibliography, footnotes or URLs. An article without `<body>` becomes an
abstract-only record (source `abstracts`, `meta.abstract_only`).
"""

from __future__ import annotations

import re
import tarfile
from typing import IO, Iterator

from lxml import etree

from gap_replay.document import Document
from gap_replay.sources.pubmed.ids import article_url, document_id, norm_doi, norm_pmcid, norm_pmid
from gap_replay.sources.pubmed.textutil import (
    header_line,
    remove_urls,
    short_caption,
    squash,
    tidy_lines,
    truncate_words,
)
from gap_replay.sources.pubmed.xmlsafe import (
    HostileXML,
    NotThisFormat,
    check_prolog,
    iter_elements,
    localname,
    release,
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
                "table-wrap-foot", "permissions", "label", "title", "sec-meta", "graphic", "media"}
_BRACKETED = re.compile(
    r"[\[(]\s*((?:\[(bib|fig)_ref\](?:(?!\[/?(?:bib|fig)_ref\]).)*\[/(?:bib|fig)_ref\][\s,;–-]*)+?)\s*[\])]")
_LABEL_BEFORE = re.compile(r"(?:\b(?:Figs?|Figures?|Tables?|Tabs?)\.?\s*)$")
_LABEL_WORD = re.compile(r"^(fig(?:ure)?s?|tab(?:le)?s?)\.?\s*", re.I)


class JatsError(ValueError):
    """The article cannot become a document; the message is the quarantine reason."""


def _text(el) -> str:
    return squash("".join(el.itertext())) if el is not None else ""


def _math_text(el) -> str:
    """MathML → a compact linear text: x^{2}, a_{i}, (a)/(b), sqrt(x)."""
    tag = el.tag if isinstance(el.tag, str) else ""
    tag = tag.rsplit("}", 1)[-1].split(":")[-1]
    kids = [k for k in el if isinstance(k.tag, str)]
    if tag in ("annotation", "annotation-xml"):
        return ""
    if tag == "semantics":
        return _math_text(kids[0]) if kids else ""
    if tag in ("mi", "mn", "mtext", "ms"):
        return (el.text or "").strip()
    if tag == "mo":
        op = (el.text or "").strip()
        return f" {op} " if op in ("=", "+", "-", "−", "<", ">", "≤", "≥", "×", "±", "→") else op
    parts = [_math_text(k) for k in kids]
    if tag == "msup" and len(parts) == 2:
        return f"{parts[0]}^{{{parts[1]}}}"
    if tag == "msub" and len(parts) == 2:
        return f"{parts[0]}_{{{parts[1]}}}"
    if tag == "msubsup" and len(parts) == 3:
        return f"{parts[0]}_{{{parts[1]}}}^{{{parts[2]}}}"
    if tag == "mfrac" and len(parts) == 2:
        return f"({parts[0]})/({parts[1]})"
    if tag == "msqrt":
        return f"sqrt({''.join(parts)})"
    if tag == "mroot" and len(parts) == 2:
        return f"root[{parts[1]}]({parts[0]})"
    if tag == "mfenced":
        return f"{el.get('open', '(')}{', '.join(parts)}{el.get('close', ')')}"
    return "".join(parts) if parts else (el.text or "").strip()


def formula_text(el) -> str:
    """Text of a formula element: TeX when given, else MathML, else its plain text."""
    tex = next((e for e in el.iter() if isinstance(e.tag, str) and e.tag.endswith("tex-math")), None)
    if tex is not None and _text(tex):
        return squash(re.sub(r"\\documentclass.*?\\begin\{document\}|\\end\{document\}|\$", " ",
                             _text(tex), flags=re.S))
    math = next((e for e in el.iter() if isinstance(e.tag, str)
                 and e.tag.rsplit("}", 1)[-1].split(":")[-1] == "math"), None)
    if math is not None:
        return squash(_math_text(math))
    return squash(" ".join(t for e in el if isinstance(e.tag, str) and e.tag != "label"
                           for t in e.itertext()))


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
        caption = ""
        if cap is not None:
            caption = " ".join(_text(c) for c in cap if isinstance(c.tag, str))
        return name, remove_urls(squash(caption))

    def fig_token(self, rid: str) -> str | None:
        fig = self.figs.get(rid)
        if fig is None:
            return None
        name, caption = self.fig_name_caption(fig)
        short = short_caption(caption)
        return f"[fig_ref] {name}: {short} [/fig_ref]" if short else f"[fig_ref] {name} [/fig_ref]"


def _inline(el, art: _Article) -> str:
    """Inline text of an element, tokens substituted, block children skipped (rendered apart)."""
    out = [el.text or ""]
    for child in el:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in _BLOCKS or tag in _DROP_INLINE or tag == "ext-link" and _looks_like_url(child):
            pass
        elif tag == "xref":
            piece = _xref(child, art)
            if piece.startswith(" [fig_ref]") and out and _LABEL_BEFORE.search(out[-1]):
                out[-1] = _LABEL_BEFORE.sub("", out[-1])  # "Table <xref>1</xref>": no "Table [fig_ref] Table 1"
            out.append(piece)
        elif tag in ("inline-formula", "tex-math") or tag.endswith("math"):
            body = formula_text(child) if tag == "inline-formula" else (
                squash(_math_text(child)) if tag.endswith("math") else _text(child))
            if body:
                art.counts["formulas"] += 1
                out.append(f" [formula] {body} [/formula] ")
        elif tag == "break":
            out.append(" ")
        elif tag:
            out.append(_inline(child, art))
        out.append(child.tail or "")
    return "".join(out)


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


def _blocks(el, art: _Article, depth: int, lines: list[str]) -> None:
    """Block-level rendering of `el`'s children into `lines`."""
    for child in el:
        tag = child.tag if isinstance(child.tag, str) else ""
        if not tag or tag in _SKIP_BLOCKS:
            continue
        if tag in ("sec", "app", "ack", "abstract", "boxed-text", "bio-skip"):
            title = _text(child.find("title"))
            if not title and tag == "ack":
                title = "Acknowledgments"
            if title:
                lines += ["", header_line(title, 1 if depth == 0 else 2), ""]
            _blocks(child, art, depth + 1, lines)
        elif tag in ("p", "statement", "disp-quote", "preformat", "code", "def", "term"):
            text = squash(_inline(child, art))
            if text:
                lines.append(text)
            _nested_blocks(child, art, depth, lines)
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
            text = squash(_inline(child, art))
            if text:
                lines.append(text)


def _nested_blocks(p, art: _Article, depth: int, lines: list[str]) -> None:
    nested = [c for c in p if isinstance(c.tag, str) and c.tag in _BLOCKS]
    if nested:
        _blocks(nested, art, depth, lines)


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
    license_el = meta_el.find(".//license") if meta_el is not None else None
    license_url = None
    if license_el is not None:
        license_url = license_el.get("{http://www.w3.org/1999/xlink}href") or license_el.get(
            "license-type")
    meta = {**{k: v for k, v in ids.items() if v}, "journal": journal or None,
            "pub_date": pub_date, "article_type": article_type or None,
            "publication_types": [ptype] if ptype else [],
            "subjects": [s for s in subjects if s], "keywords": [k for k in keywords if k]}
    if license_url:
        meta["license"] = license_url
    return meta


def _abstract_lines(meta_el, art: _Article, lang: str) -> list[str]:
    lines: list[str] = []
    if meta_el is None:
        return lines
    main_done = False
    for ab in meta_el.findall("abstract"):
        kind = ab.get("abstract-type") or ""
        if kind in _SKIP_ABSTRACT_TYPES:
            continue
        ab_lang = xml_lang(ab)
        if ab_lang and ab_lang.split("-")[0] != lang:
            continue
        title = _text(ab.find("title"))
        if not main_done and not kind:
            lines += ["# Abstract", ""]
            main_done = True
        else:
            lines += ["", header_line(title or kind.replace("-", " ").capitalize() or "Abstract", 2), ""]
        body: list[str] = []
        _blocks(ab, art, 1, body)
        lines += body
    return lines


def article_document(root, source_name: str = "") -> Document:
    """One `<article>` element → a Document (papers, or abstracts when there is no body)."""
    strip_namespaces(root)
    lang = (xml_lang(root) or "en").split("-")[0].lower()
    meta = _meta(root)
    front = root.find("front")
    meta_el = front.find("article-meta") if front is not None else None
    body = root.find("body")
    title_el = meta_el.find("title-group/article-title") if meta_el is not None else None
    title = squash(_inline(title_el, _Article(root))) if title_el is not None else ""
    translated_from = None
    if lang != "en":
        for sub in root.iter("sub-article"):
            if sub.get("article-type") == "translation" and (xml_lang(sub) or "").startswith("en"):
                sub_body = sub.find("body")
                if sub_body is not None:
                    translated_from, body, lang = lang, sub_body, "en"
                    sub_title = sub.find(".//article-title")
                    title = _text(sub_title) or title
                    break
    art = _Article(root)
    lines: list[str] = [title, ""] if title else []
    lines += _abstract_lines(meta_el, art, lang)
    has_body = body is not None and len(body)
    if has_body:
        _blocks(body, art, 0, lines)
        back = root.find("back")
        if back is not None:
            _blocks(back, art, 0, lines)
        # floats kept outside the body (PMC "floats-group")
        floats = root.find("floats-group")
        if floats is not None:
            _blocks(floats, art, 0, lines)
    text = _unbracket(remove_urls("\n".join(lines)))
    text = tidy_lines([" ".join(line.split()) for line in text.split("\n")])
    if not text or text == title:
        raise JatsError("article without body and abstract text")
    meta["language"] = lang
    if translated_from:
        meta["translated_from"] = translated_from
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
    bad article yields a JatsError in its place so the caller can quarantine it and go on."""
    for el in iter_elements(stream, ("article",), roots=ROOT_TAGS, kind="JATS"):
        parent = el.getparent()
        if parent is not None and localname(parent.tag) not in CONTAINER_TAGS:
            continue  # an <article> nested elsewhere is not a record
        try:
            yield article_document(el, name)
        except (JatsError, ValueError, TypeError) as exc:
            yield JatsError(f"{type(exc).__name__}: {exc}")
        finally:
            release(el)


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
    head = fh.read(1 << 16)
    try:
        check_prolog(head)
    except HostileXML as exc:
        yield JatsError(str(exc))
        return
    stream = _Prepend(head, fh)
    try:
        yield from iter_stream(stream, name)
    except (HostileXML, NotThisFormat) as exc:  # entities past the first 64 KB; an HTML page
        yield JatsError(str(exc))
    except etree.XMLSyntaxError as exc:
        yield JatsError(f"XML syntax error: {exc}")


class _Prepend:
    """A read()-able stream that first returns bytes already read for the prolog check."""

    def __init__(self, head: bytes, rest) -> None:
        self.head = head
        self.rest = rest

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + self.rest.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.rest.read(n)
