"""Parsing untrusted XML (MEDLINE, JATS) without ever expanding an entity or touching the network.

lxml runs with `resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False`, and
before parsing, the prolog is checked: NCBI files reference an external DTD but never declare
entities, so a document whose DOCTYPE declares `<!ENTITY ...>` (XXE, billion laughs) is refused
with a reason for the quarantine instead of being expanded.
"""

from __future__ import annotations

import gzip
import re
from typing import IO

from lxml import etree

PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_PROLOG_LIMIT = 1 << 16
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.I)


class HostileXML(ValueError):
    """The file declares entities or cannot be parsed safely; the message is the reason."""


def check_prolog(head: bytes) -> None:
    """Raise HostileXML when the text before the root element declares entities."""
    m = _FIRST_ELEMENT.search(head)
    prolog = head[: m.start()] if m else head
    if _ENTITY_DECL.search(prolog):
        raise HostileXML("DOCTYPE declares entities (XXE / entity expansion refused)")
    if b"<!DOCTYPE" in prolog and b"[" in prolog.split(b"<!DOCTYPE", 1)[1]:
        raise HostileXML("DOCTYPE has an internal subset (refused: NCBI files never have one)")


def open_xml(path: str) -> IO[bytes]:
    """A binary stream of the (possibly gzipped) XML file, prolog already checked."""
    fh: IO[bytes] = gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")
    try:
        check_prolog(fh.peek(_PROLOG_LIMIT)[:_PROLOG_LIMIT] if hasattr(fh, "peek") else b"")
    except BaseException:
        fh.close()
        raise
    return fh


def check_bytes(data: bytes) -> None:
    check_prolog(data[:_PROLOG_LIMIT])


def localname(tag) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


def strip_namespaces(root) -> None:
    """JATS with a default namespace (un-namespaced XPath finds nothing otherwise)."""
    for el in root.iter():
        tag = el.tag
        if isinstance(tag, str) and tag[:1] == "{":
            el.tag = tag.rsplit("}", 1)[-1]


def xml_lang(el) -> str | None:
    return el.get("{http://www.w3.org/XML/1998/namespace}lang") or el.get("lang")


def iter_elements(stream: IO[bytes], tags: tuple[str, ...]):
    """Yield (event element) for complete elements whose local name is in `tags`, clearing
    finished elements so memory stays flat whatever the file size."""
    wanted = tuple(f"{{*}}{t}" for t in tags)  # any namespace, or none
    context = etree.iterparse(stream, events=("end",), tag=wanted, **PARSER_OPTIONS)
    for _event, el in context:
        yield el


def release(el) -> None:
    """Free an element handled by `iter_elements` and its already-processed siblings."""
    el.clear(keep_tail=False)
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]
