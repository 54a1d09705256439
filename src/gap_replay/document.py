"""The one record every stage passes along, and its JSON line form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

SOURCES = ("guidelines", "abstracts", "papers", "replay")
REQUIRED_FIELDS = ("id", "source", "text")


class InvalidDocument(ValueError):
    """A JSON object that cannot become a Document (the reason is the message)."""


@dataclass(slots=True)
class Document:
    """One corpus document; source-specific fields live in ``meta`` (see docs/contract.md)."""

    id: str
    source: str
    text: str
    subset: str = ""
    title: str = ""
    url: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "subset": self.subset,
            "title": self.title,
            "text": self.text,
            "url": self.url,
            "meta": self.meta,
        }

    def to_json(self) -> bytes:
        """One JSON line (no newline); keys in a fixed order so shards are byte-stable."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_dict(cls, obj: Any) -> "Document":
        if not isinstance(obj, dict):
            raise InvalidDocument(f"expected a JSON object, got {type(obj).__name__}")
        for key in REQUIRED_FIELDS:
            value = obj.get(key)
            if not isinstance(value, str):
                raise InvalidDocument(f"field {key!r} must be a string, got {type(value).__name__}")
        if not obj["id"]:
            raise InvalidDocument("field 'id' is empty")
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise InvalidDocument("field 'meta' must be an object")
        return cls(
            id=obj["id"],
            source=obj["source"],
            text=obj["text"],
            subset=obj.get("subset") or "",
            title=obj.get("title") or "",
            url=obj.get("url") or "",
            meta=meta,
        )

    @classmethod
    def from_json(cls, line: bytes | str) -> "Document":
        return cls.from_dict(orjson.loads(line))
