"""Main-content extraction without selectors, for pages whose spec selector stopped matching.

A site redesign renames classes long before anyone edits the spec. Rather than lose the page,
the scraper takes its main text from trafilatura (a maintained boilerplate remover) and marks
the document `meta.extraction: "fallback"`; drift.py reports how many pages needed it, so the
spec still gets fixed. Output is markdown-ish like extract.py's (`#` headings, `- ` items).
"""

from __future__ import annotations

import logging
import re

from gap_replay.sources.guidelines.extract import parse_html

log = logging.getLogger(__name__)
# Markdown output marks bold/italic and escapes literal markdown characters; extract.py's text
# has neither, so both are undone: "**bold** snake\\_case" -> "bold snake_case".
EMPHASIS = re.compile(r"(?<!\\)(\*\*|\*)(?=\S)(.+?)(?<=[^\s\\])\1")
ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")


def main_text(body: bytes | str, url: str, drop: tuple[str, ...] = ()) -> str:
    """The page's main content as text, or "" when trafilatura finds none.

    `drop`: the spec's `article.drop` selectors, removed first (breadcrumbs, related links) as
    they are before a selector extraction. Recall is favoured: a guideline page is mostly
    content, and a kept-but-noisy document is better than a lost one.
    """
    import trafilatura

    html = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if drop:
        soup = parse_html(html)
        for selector in drop:
            for el in soup.select(selector):
                el.decompose()
        html = str(soup)
    try:
        text = trafilatura.extract(html, url=url, output_format="markdown", include_formatting=True,
                                   include_tables=False, include_comments=False,
                                   include_images=False, include_links=False, favor_recall=True,
                                   deduplicate=False)
    except Exception as exc:  # noqa: BLE001 - a page it cannot read is simply not rescued
        log.debug("fallback extraction of %s failed: %s", url, exc)
        return ""
    return ESCAPED.sub(r"\1", EMPHASIS.sub(r"\2", text or "")).strip()
