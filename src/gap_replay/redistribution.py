"""Which documents may be republished: one rule shared by `push` (what it withholds) and `mix`
(which tokens the dataset card may count as published)."""

from __future__ import annotations

from gap_replay.document import Document


def is_restricted(doc: Document) -> bool:
    """Guidelines need an explicit `meta.redistributable: true`; other sources only a missing `false`."""
    flag = doc.meta.get("redistributable")
    if doc.source == "guidelines":
        return flag is not True
    return flag is False
