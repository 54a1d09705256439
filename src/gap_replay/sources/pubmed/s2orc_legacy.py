"""The legacy S2ORC 2020 JSON (`paper_id`, `metadata`, `grobid_parse.body_text[]` with
`cite_spans`/`ref_spans`/`eq_spans`, `bib_entries`, `ref_entries`) → the paper's format.

Old dumps and mirrors still carry this layout; it is converted with the same tokens as the v2
formatter rather than rejected. Like it, it keeps URLs for the `clean` stage.
"""

from __future__ import annotations

import re

from gap_replay.sources.pubmed.s2orc import S2orcFormatError
from gap_replay.sources.pubmed.textutil import (
    header_line,
    short_caption,
    squash,
    tidy_lines,
    truncate_words,
)

_LABEL = re.compile(r"^\s*((?:fig(?:ure)?|table|tab)\.?\s*[A-Za-z]?\d+[A-Za-z]?)\s*[.:]?\s*", re.I)


def is_legacy(record: dict) -> bool:
    return "paper_id" in record and ("grobid_parse" in record or "body_text" in record
                                     or "pdf_parse" in record)


def _parse_part(record: dict) -> dict:
    for key in ("grobid_parse", "pdf_parse", "latex_parse"):
        part = record.get(key)
        if isinstance(part, dict) and part.get("body_text"):
            return part
    if isinstance(record.get("body_text"), list):
        return record
    raise S2orcFormatError("legacy S2ORC record without body_text (no grobid/latex parse)")


def _caption_name(entry: dict, default: str) -> tuple[str, str]:
    text = squash(entry.get("text") or "")
    m = _LABEL.match(text)
    if not m:
        return default, text
    name = squash(m.group(1).replace(".", " "))
    name = re.sub(r"^fig(ure)?", "Figure", name, flags=re.I)
    name = re.sub(r"^tab(le)?", "Table", name, flags=re.I)
    return name, text[m.end():]


def format_legacy(record: dict) -> tuple[str, dict]:
    """Returns (text, meta) for one legacy record."""
    meta_in = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    part = _parse_part(record)
    bib = part.get("bib_entries") or {}
    refs = part.get("ref_entries") or {}

    def bib_token(ref_id) -> str | None:
        entry = bib.get(ref_id) if isinstance(ref_id, str) else None
        if not isinstance(entry, dict):
            return None
        title = truncate_words(squash(entry.get("title") or "").strip(" ."), 12)
        authors = entry.get("authors") or []
        last = squash(authors[0].get("last") or "") if authors and isinstance(authors[0], dict) else ""
        if not title:
            return None
        return f"[bib_ref] {title}, {last} [/bib_ref]" if last else f"[bib_ref] {title} [/bib_ref]"

    def fig_token(ref_id) -> str | None:
        entry = refs.get(ref_id) if isinstance(ref_id, str) else None
        if not isinstance(entry, dict):
            return None
        default = "Table" if entry.get("type") == "table" else "Figure"
        name, caption = _caption_name(entry, default)
        short = short_caption(caption)
        return f"[fig_ref] {name}: {short} [/fig_ref]" if short else f"[fig_ref] {name} [/fig_ref]"

    def render(par: dict) -> str:
        text = par.get("text") or ""
        edits = []
        for key, make in (("cite_spans", bib_token), ("ref_spans", fig_token), ("eq_spans", None)):
            for span in par.get(key) or []:
                try:
                    start, end = int(span["start"]), int(span["end"])
                except (KeyError, TypeError, ValueError):
                    continue
                if make is None:
                    body = squash(span.get("text") or text[start:end])
                    token = f"[formula] {body} [/formula]" if body else None
                    keep = False
                else:
                    token = make(span.get("ref_id"))
                    keep = key == "ref_spans"  # an unresolved "Table 1" keeps its words
                if token is None and keep:
                    continue
                edits.append((start, end, token))
        edits.sort()
        pieces, pos = [], 0
        for start, end, token in edits:
            if start < pos:
                continue
            pieces.append(text[pos:start])
            pieces.append(f" {token} " if token else " ")
            pos = end
        pieces.append(text[pos:])
        return squash("".join(pieces))

    title = squash(meta_in.get("title") or "")
    lines: list[str] = [title, ""] if title else []
    abstract = part.get("abstract") or []
    if isinstance(abstract, list) and abstract:
        lines += ["# Abstract", ""]
        for par in abstract:
            body = render(par)
            body = re.sub(r"^Abstract\s*", "", body)
            if body:
                lines.append(body)
    elif isinstance(meta_in.get("abstract"), str) and meta_in["abstract"].strip():
        lines += ["# Abstract", "", squash(re.sub(r"^Abstract\s*", "", meta_in["abstract"]))]
    section = None
    for par in part.get("body_text") or []:
        if not isinstance(par, dict):
            continue
        sec = par.get("section")
        if sec and sec != section:
            lines += ["", header_line(squash(sec)), ""]
        section = sec
        body = render(par)
        if body:
            lines.append(body)
    captions = []
    for ref_id, entry in refs.items():
        if not isinstance(entry, dict):
            continue
        kind = "table" if entry.get("type") == "table" else "fig"
        name, caption = _caption_name(entry, "Table" if kind == "table" else "Figure")
        if caption and _LABEL.match(entry.get("text") or ""):
            captions.append(f"[{kind}] {name}: {caption} [/{kind}]")
    if captions:
        lines += [""] + captions
    text = tidy_lines(lines)
    meta = {
        "pmid": meta_in.get("pubmed_id"), "pmcid": meta_in.get("pmc_id"),
        "doi": meta_in.get("doi"), "corpusid": record.get("paper_id"),
        "journal": meta_in.get("journal") or meta_in.get("venue"),
        "year": meta_in.get("year"), "title": title, "s2orc_format": "legacy-2020",
    }
    return text, meta
