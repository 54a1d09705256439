"""Small named hooks for the few sources whose pages need code, referenced as `hook: NAME`.

A hook subclasses `Hook` and overrides what its site needs:

* `to_html(body: bytes, url: str) -> str`: turn a non-HTML article answer (JSON) into HTML
  that the spec's `article` rules then read like any page (needed by `format: json`).
* `clean(text: str, title: str) -> str`: site rules the YAML cannot express, run after the
  spec's site rules at extraction (site_rules.py); the shared text rules run later, in the
  `clean` stage.
* `after_records(store: RecordStore) -> None`: a rule that needs every record of the source
  (WikiDoc's "X overview" supersedes X's microchapters, wikidoc.py); runs after a scrape and
  after `guidelines clean`, before the shards are written; it updates records through the store.

Register with `@register("name")`. Keep hooks short: a hook replaces a rule, not a scraper.
"""

from __future__ import annotations

import html
import json
import re

from gap_replay.sources.guidelines.store import RecordStore
from gap_replay.sources.guidelines.wikidoc import supersede_microchapters


class Hook:
    """The no-op hook: every method leaves the page, text or records as they are."""

    def to_html(self, body: bytes, url: str) -> str:
        raise NotImplementedError(f"{type(self).__name__} cannot read the non-HTML answer of {url}; "
                                  "give the spec a hook with to_html()")

    def clean(self, text: str, title: str) -> str:
        return text

    def after_records(self, store: RecordStore) -> None:
        return None


HOOKS: dict[str, type[Hook]] = {}


def register(name: str):
    def deco(cls: type[Hook]) -> type[Hook]:
        HOOKS[name] = cls
        return cls
    return deco


def get_hook(name: str | None) -> Hook:
    """The hook named by a spec, or the no-op `Hook` when it names none."""
    return Hook() if name is None else HOOKS[name]()


def reads_non_html(name: str) -> bool:
    """Whether the hook can turn a JSON answer into HTML (overrides `Hook.to_html`)."""
    return HOOKS[name].to_html is not Hook.to_html


# ---------------------------------------------------------------------------------------------
@register("magicapp")
class MagicApp(Hook):
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
class WikiDoc(Hook):
    """WikiDoc: an "X overview" page supersedes X's microchapters (and nothing else), a rule over
    all the source's records (wikidoc.py)."""

    def after_records(self, store: RecordStore) -> None:
        supersede_microchapters(store)
