"""Small named hooks for the few sources whose pages need code, referenced as `hook: NAME`.

A hook is a class with any of these optional methods; the engine calls what exists:

* `to_html(body: bytes, url: str) -> str`: turn a non-HTML article answer (JSON) into HTML
  that the spec's `article` rules then read like any page.
* `clean(text: str, title: str) -> str`: source-specific text rules the YAML cannot express,
  run after the spec's rules and before the common rules.
* `after_records(store: RecordStore) -> None`: a rule that needs every record of the source
  (WikiDoc's "X overview" supersedes X's microchapters); runs after a scrape and after
  `guidelines clean`, before the shards are written; it updates records through the store.

Register with `@register("name")`. Keep hooks short: a hook replaces a rule, not a scraper.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

HOOKS: dict[str, type] = {}


def register(name: str):
    def deco(cls: type) -> type:
        HOOKS[name] = cls
        return cls
    return deco


def get_hook(name: str | None) -> Any:
    if name is None:
        return None
    return HOOKS[name]()


# ---------------------------------------------------------------------------------------------
@register("magicapp")
class MagicApp:
    """MAGICapp serves guidelines to its single-page app as JSON; render that JSON as HTML.

    The guideline JSON (the catalogue's `jsonPath`, api/v1 era, 2024–2026) is `{"name",
    "sections": [{"heading", "text" (HTML), "recommendations": [...], "subSections": [...]}]}`;
    a recommendation object has `heading`, `text`, `remarks`, `rational` (sic: MAGICapp's
    spelling; the older `rationale` is read too) and `strength` (STRONG, WEAK, ... ; INFO marks
    an editorial box, not advice). Nested sections become nested headings, and each
    recommendation keeps its strength (which the original scraper collected and threw away).
    """

    STRENGTHS = {"STRONG": "Strong recommendation", "WEAK": "Weak recommendation",
                 "CONDITIONAL": "Conditional recommendation"}
    NO_LABEL = {"", "NOTSET", "NO_STRENGTH", "INFO"}

    def to_html(self, body: bytes, url: str) -> str:
        data = json.loads(body)
        parts = [f"<html lang=\"{html.escape(data.get('language', 'en'))}\"><head>"
                 f"<title>{html.escape(data.get('name', ''))}</title></head><body><main>",
                 f"<h1>{html.escape(data.get('name', ''))}</h1>"]

        def recommendation(rec: dict, level: int) -> None:
            strength = str(rec.get("strength") or "").strip()
            if rec.get("heading") and strength != "INFO":
                parts.append(f"<h{level}>{rec['heading']}</h{level}>")
            label = ("" if strength.upper() in self.NO_LABEL
                     else self.STRENGTHS.get(strength.upper(), strength))
            parts.append("<div class=\"recommendation\">"
                         + (f"<p><strong>{html.escape(label)}</strong></p>" if label else "")
                         + str(rec.get("text") or ""))
            if rec.get("remarks"):
                parts.append(f"<div class=\"remarks\">{rec['remarks']}</div>")
            rationale = rec.get("rational") or rec.get("rationale")
            if rationale:
                parts.append(f"<div class=\"rationale\">{rationale}</div>")
            parts.append("</div>")

        def section(sec: dict, level: int) -> None:
            level = min(level, 6)
            heading = sec.get("heading") or sec.get("title") or ""
            if heading:
                parts.append(f"<h{level}>{html.escape(heading)}</h{level}>")
            if sec.get("text"):
                parts.append(f"<div>{sec['text']}</div>")
            for rec in sec.get("recommendations", []) or []:
                recommendation(rec, min(level + 1, 6))
            for sub in (sec.get("subSections") or []) + (sec.get("sections") or []):
                section(sub, level + 1)

        for sec in data.get("sections", []) or []:
            section(sec, 2)
        parts.append("</main></body></html>")
        return "".join(parts)

    PLACEHOLDER = re.compile(r"^(write (remark|header|general section text) here|loading data\.\.\.)$",
                             re.I)

    def clean(self, text: str, title: str) -> str:
        """Drop editor placeholders ("Write remark here") that leak into the exported text."""
        return "\n".join(l for l in text.split("\n") if not self.PLACEHOLDER.match(l.strip()))


@register("wikidoc")
class WikiDoc:
    """WikiDoc: an "X overview" page supersedes X's microchapters (and nothing else), a rule over
    all the source's records; the rule itself lives in supersede.py / clean.wikidoc_superseded."""

    def after_records(self, store) -> None:
        from gap_replay.sources.guidelines.supersede import supersede_microchapters

        supersede_microchapters(store)
