"""Raw RedPajama-1T lines -> Documents, with every bad line quarantined by file and line.

Raw records are `{"text": ..., "meta": ...}` where `meta` is a dict, a JSON string, or absent;
when absent (common_crawl) the metadata keys sit beside `text` at the top level. The hub loader
also added `red_pajama_subset`. Whatever the shape, a Document's `meta` is a dict:

  meta.redpajama_meta   the original metadata as a dict, always (parsed from a JSON string, or
                        from a Python-repr string such as "{'title': 'X'}" that hub exports
                        hold; the top-level keys other than `text` when `meta` is absent; a
                        string that parses as neither is kept as {"unparsed": "<the string>"})
  meta.meta_format      "dict" | "json" | "python" | "flattened" | "unparsed" | "none": what the
                        raw line had
  meta.redpajama_file   the data file URL (original host, before --base-url rewriting)
  meta.line             the 1-based line number in that (decompressed) file
  meta.language         copied from the original metadata when it names one
  meta.source_url       the original document URL (e.g. the Wikipedia page) when present

`id` = `redpajama:<subset>:<path below the subset's root>:<line>` (the file's key, see
urllists.file_key: unique per file, so ids are unique by construction),
`url` = file URL + `#L<line>`, `title` = the original metadata's `title` (Wikipedia, books)
when present.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Iterator

import orjson

from gap_replay.document import Document
from gap_replay.io import Quarantine
from gap_replay.io.jsonl import parse_json_lines
from gap_replay.io.lines import TruncatedInput, iter_lines

HUB_FIELDS = ("red_pajama_subset",)


class BadRecord(ValueError):
    pass


def _python_literal(text: str) -> dict[str, Any] | None:
    """A dict written as a Python repr (`{'title': 'X'}`), as hub exports that stored a dict in
    a string column have it; literal_eval only reads literals, it runs nothing. The result is
    made JSON-safe (a set or bytes inside would not serialise)."""
    import ast

    if not text.lstrip().startswith("{"):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


def normalise_meta(obj: dict[str, Any], text_field: str = "text") -> tuple[dict[str, Any], str]:
    """(original metadata as a dict, the shape it came in)."""
    if "meta" in obj:
        meta = obj["meta"]
        if meta is None:
            return {}, "none"
        if isinstance(meta, dict):
            return meta, "dict"
        if isinstance(meta, str):
            if not meta.strip():
                return {}, "none"
            try:
                parsed = orjson.loads(meta)
            except orjson.JSONDecodeError:
                parsed = _python_literal(meta)
                if parsed is not None:
                    return parsed, "python"
                return {"unparsed": meta}, "unparsed"
            if isinstance(parsed, dict):
                return parsed, "json"
            return {"unparsed": meta}, "unparsed"
        return {"unparsed": orjson.dumps(meta).decode()}, "unparsed"
    rest = {k: v for k, v in obj.items() if k != text_field and k not in HUB_FIELDS}
    return rest, ("flattened" if rest else "none")


def to_document(obj: Any, *, subset: str, key: str, file_url: str, line: int,
                text_field: str = "text") -> Document:
    """One raw record as a replay Document; raises BadRecord with the reason."""
    if not isinstance(obj, dict):
        raise BadRecord("JSON line is not an object")
    text = obj.get(text_field)
    if not isinstance(text, str):
        raise BadRecord(f"field {text_field!r} missing or not a string")
    if not text.strip():
        raise BadRecord(f"field {text_field!r} is empty")
    original, shape = normalise_meta(obj, text_field)
    meta: dict[str, Any] = {"redpajama_meta": original, "meta_format": shape,
                            "redpajama_file": file_url, "line": line}
    if isinstance(original.get("language"), str):
        meta["language"] = original["language"]
    if isinstance(original.get("url"), str):
        meta["source_url"] = original["url"]
    title = original.get("title")
    rel = key.split("/", 1)[1] if "/" in key else key
    return Document(id=f"redpajama:{subset}:{rel}:{line}", source="replay", subset=subset,
                    title=title if isinstance(title, str) else "", text=text,
                    url=f"{file_url}#L{line}", meta=meta)


def iter_file_records(raw: BinaryIO, *, name: str, quarantine: Quarantine,
                      stats: dict | None = None) -> Iterator[tuple[int, Any]]:
    """(line, parsed JSON) for every well-formed line; the rest are quarantined with `name`:line.

    Invalid UTF-8 and malformed JSON are quarantined per line; a truncated or corrupt file is
    quarantined once with its reason after the records before the damage were yielded.
    """
    try:
        yield from parse_json_lines(iter_lines(raw, name, stats), quarantine, file=name,
                                    source="replay")
    except TruncatedInput as exc:
        quarantine.add(file=name, line=exc.line, reason=f"truncated: {exc.reason}", raw=exc.partial,
                       source="replay")


def iter_documents(raw: BinaryIO, *, subset: str, key: str, file_url: str,
                   quarantine: Quarantine, text_field: str = "text", stats: dict | None = None
                   ) -> Iterator[Document]:
    """Documents of one raw data file stream (records that are not documents are quarantined)."""
    for line, obj in iter_file_records(raw, name=file_url, quarantine=quarantine, stats=stats):
        try:
            yield to_document(obj, subset=subset, key=key, file_url=file_url, line=line,
                              text_field=text_field)
        except BadRecord as exc:
            quarantine.add(file=file_url, line=line, reason=f"invalid record: {exc}",
                           raw=orjson.dumps(obj), source="replay")
