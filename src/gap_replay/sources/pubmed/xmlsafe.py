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


class NotThisFormat(ValueError):
    """Well-formed XML whose root element is not one the format has (an HTML page, say)."""


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


def iter_elements(stream: IO[bytes], tags: tuple[str, ...], *,
                  roots: tuple[str, ...] | None = None, kind: str = "XML"):
    """Yield complete elements whose local name is in `tags`, clearing finished elements so
    memory stays flat whatever the file size.

    Before the first element is yielded the parsed prolog is checked: entity declarations are
    refused wherever they sit (after a long comment too), which the byte-level `check_prolog`
    cannot promise. With `roots`, a document whose root element is not one of them raises
    NotThisFormat ("not a MEDLINE file") instead of yielding nothing."""
    wanted = tuple(f"{{*}}{t}" for t in tags)  # any namespace, or none
    context = etree.iterparse(stream, events=("end",), tag=wanted, **PARSER_OPTIONS)
    checked = False
    for _event, el in context:
        if not checked:
            _check_document(el.getroottree(), roots, kind)
            checked = True
        yield el
    if not checked and context.root is not None:
        _check_document(context.root.getroottree(), roots, kind)


def _check_document(tree, roots: tuple[str, ...] | None, kind: str) -> None:
    dtd = tree.docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise HostileXML("DOCTYPE declares entities (XXE / entity expansion refused)")
    root = localname(tree.getroot().tag)
    if roots is not None and root not in roots:
        raise NotThisFormat(f"not a {kind} file (root element <{root}>, expected "
                            + " or ".join(f"<{r}>" for r in roots) + ")")


def release(el) -> None:
    """Free an element handled by `iter_elements` and its already-processed siblings."""
    el.clear(keep_tail=False)
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]
