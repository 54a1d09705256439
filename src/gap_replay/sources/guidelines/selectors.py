"""Selector alternatives: a spec may name several CSS selectors for one thing, tried in order.

Sites move (Mayo's A–Z index, WHO's download button, IDSA's listing): a spec lists the current
selector first and the older ones after it, so one run works against either shape. Every match
says *which* alternative won (its index), so drift can be counted: index 0 is the expected
shape, a higher index is a fallback that still works but shows the site has changed (or not
yet changed) — see docs/guidelines.md, "Selector alternatives".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bs4 import BeautifulSoup, Tag

Alternatives = tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """The alternative that matched: its position in the spec's list, the selector, the elements."""

    index: int
    selector: str
    elements: list[Tag] = field(default_factory=list)

    @property
    def first(self) -> Tag:
        return self.elements[0]

    @property
    def fallback(self) -> bool:
        """True when an alternative other than the first (the expected shape) matched."""
        return self.index > 0


def alternatives(value: "str | Alternatives | None") -> Alternatives:
    """A selector setting as a tuple of alternatives (a lone string is one alternative)."""
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def select_alternatives(root: BeautifulSoup | Tag, selectors: "str | Alternatives | None",
                        accept=None) -> Match | None:
    """The first alternative that finds at least one (accepted) element, with its index.

    `accept(tag) -> bool` filters candidates (e.g. a link must have an href, a title must have
    text), so an alternative whose elements are all unusable does not win over a later one.
    Returns None when no alternative matches.
    """
    for index, selector in enumerate(alternatives(selectors)):
        found: list[Tag] = list(root.select(selector))
        if accept is not None:
            found = [el for el in found if accept(el)]
        if found:
            return Match(index, selector, found)
    return None


def describe(selectors: "str | Alternatives | None") -> str:
    """Alternatives for a message: 'a.x | b.y' (the order they are tried in)."""
    return " | ".join(alternatives(selectors)) or "(none)"
