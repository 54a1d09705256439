"""Parsing untrusted XML (MEDLINE, JATS) without ever expanding an entity or touching the network.

lxml runs with `resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False`, and
before any record is parsed the whole prolog is checked: NCBI files reference an external DTD
but never declare entities, so a document whose DOCTYPE declares `<!ENTITY ...>` (XXE, billion
laughs) is refused with a reason for the quarantine instead of being expanded.
"""

from __future__ import annotations

import gzip
import re
from typing import IO

from lxml import etree

PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
PROLOG_LIMIT = 1 << 20  # bytes of prolog (declaration, comments, DOCTYPE) before the root element
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.I)


class HostileXML(ValueError):
    """The file declares entities or cannot be parsed safely; the message is the reason."""


class NotThisFormat(ValueError):
    """Well-formed XML whose root element is not one the format has (an HTML page, say)."""


def refuse_declarations(prolog: bytes) -> None:
    """Raise HostileXML when the prolog (everything before the root element, walked construct
    by construct by the record scanner) declares entities or has an internal DTD subset."""
    if _ENTITY_DECL.search(prolog):
        raise HostileXML("DOCTYPE declares entities (XXE / entity expansion refused)")
    doctype = prolog.find(b"<!DOCTYPE")
    if doctype >= 0 and b"[" in prolog[doctype:]:
        raise HostileXML("DOCTYPE has an internal subset (refused: NCBI files never have one)")


def open_xml(path: str) -> IO[bytes]:
    """A binary stream of the (possibly gzipped) XML file; `iter_records` checks its prolog."""
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


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


# -- per-record recovery -----------------------------------------------------------------------
# lxml's iterparse stops at the first syntax error, losing every record after it. A set is
# instead cut at record boundaries by a byte scanner and each record is parsed on its own, so a
# malformed record costs only itself (reported with its byte offset) and its neighbours survive.

_CHUNK = 1 << 20
RECORD_LIMIT = 256 << 20  # a single record larger than this is refused, not buffered
_XMLNS = re.compile(rb"""\sxmlns(?::[\w.-]+)?\s*=\s*(?:"[^"]*"|'[^']*')""")
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*>")
_XMLNS_NAME = re.compile(rb"xmlns(?::[\w.-]+)?")
_WELL_KNOWN_NS = (b' xmlns:xlink="http://www.w3.org/1999/xlink"'
                  b' xmlns:mml="http://www.w3.org/1998/Math/MathML"'
                  b' xmlns:ali="http://www.niso.org/schemas/ali/1.0/"'
                  b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')


def _declarations(context: bytes) -> bytes:
    """The namespace declarations in scope: well-known prefixes, overridden by the file's own
    (outer first, inner last), one per prefix."""
    by_name: dict[bytes, bytes] = {}
    for decl in _XMLNS.findall(_WELL_KNOWN_NS + b" " + context):
        by_name[_XMLNS_NAME.search(decl).group(0)] = b" " + decl.strip()
    return b"".join(by_name[k] for k in sorted(by_name))


class RecordError(ValueError):
    """One record that cannot be parsed; `offset` is its byte offset in the (decompressed) stream."""

    def __init__(self, reason: str, offset: int, raw: bytes = b"") -> None:
        super().__init__(f"at byte {offset}: {reason}")
        self.offset = offset
        self.raw = raw


def iter_records(stream: IO[bytes], tags: tuple[str, ...], *, roots: tuple[str, ...],
                 kind: str = "XML"):
    """Yield (byte offset, element or RecordError) for each `<tag>...</tag>` record in file order.

    The text before the root element is read whole (bounded) and refused when it declares
    entities; the root must be one of `roots` (NotThisFormat otherwise). Namespace declarations
    of the enclosing elements are carried over to each record, and the DOCTYPE (external id
    only) too, so a record parses as it would in place. Memory: one record at a time."""
    scanner = _Scanner(stream)
    root, head = scanner.root_start()
    if root is None:
        if scanner.error:
            raise NotThisFormat(f"not a {kind} file ({scanner.error})")
        return
    if root not in roots:
        raise NotThisFormat(f"not a {kind} file (root element <{root}>, expected "
                            + " or ".join(f"<{r}>" for r in roots) + ")")
    doctype = _DOCTYPE.search(head)
    prefix = (doctype.group(0) + b"\n" if doctype else b"") + b"<gap-records"
    parser = etree.XMLParser(**PARSER_OPTIONS)
    names = b"|".join(re.escape(t.encode()) for t in tags)
    start_re = re.compile(rb"<(?:[\w.-]+:)?(" + names + rb")(?=[\s>/])")
    for offset, name, data, error in scanner.records(start_re):
        if error:
            yield offset, RecordError(error, offset, data)
            continue
        decls = _declarations(scanner.context)
        try:
            wrapper = etree.fromstring(prefix + decls + b">" + data + b"</gap-records>", parser)
        except etree.XMLSyntaxError as exc:
            yield offset, RecordError(f"XML syntax error: {exc}", offset, data)
            continue
        el = wrapper[0] if len(wrapper) else None
        if el is None or localname(el.tag) != name:
            yield offset, RecordError(f"<{name}> record is not one element", offset, data)
            continue
        yield offset, el


class _Scanner:
    """Cuts a byte stream into records: a rolling buffer, never more than one record held."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.buf = b""
        self.base = 0  # stream offset of buf[0]
        self.eof = False
        self.root_tag = b""  # the root's start tag and the latest start tags between records:
        self.recent = b""  # namespace declarations live there
        self.error = ""

    @property
    def context(self) -> bytes:
        return self.root_tag + self.recent

    def _note(self, region: bytes) -> None:
        tags = b"".join(re.findall(rb"<[\w.:-]+[^<>]*>", region))
        if tags:
            self.recent = (self.recent + tags)[-4096:]

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self.stream.read(_CHUNK)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _drop(self, n: int) -> None:
        self.buf = self.buf[n:]
        self.base += n

    def root_start(self) -> tuple[str | None, bytes]:
        """The root element's local name and everything up to its start tag. The prolog is
        walked construct by construct (declaration, comments, PIs, DOCTYPE), so a tag-like
        comment cannot hide an entity declaration behind it; one is refused wherever it sits."""
        pos = 0
        while True:
            while pos < len(self.buf) and self.buf[pos:pos + 1].isspace():
                pos += 1
            if len(self.buf) - pos < 10 and self._more():
                continue
            if pos >= len(self.buf):
                self.error = "no root element" if self.buf.strip() else "empty file"
                return None, self.buf
            end = self._prolog_item_end(pos)
            if end is None:  # the root start tag (or not XML at all)
                break
            pos = end
            if pos > PROLOG_LIMIT:
                raise HostileXML("prolog larger than 1 MiB before the root element (refused)")
        prolog = self.buf[:pos]
        refuse_declarations(prolog)
        tag = re.match(rb"<([\w.:-]+)", self.buf[pos:])
        if not tag:
            self.error = "no root element"
            return None, prolog
        gt = self.buf.find(b">", pos)
        while gt < 0 and self._more():
            gt = self.buf.find(b">", pos)
        self.root_tag = self.buf[pos: gt + 1] if gt >= 0 else b""
        return tag.group(1).decode("utf-8", "replace").split(":")[-1], prolog

    def _prolog_item_end(self, pos: int) -> int | None:
        """End of the prolog construct at `pos`, or None when the root element starts there."""
        for opener, closer in ((b"<?", b"?>"), (b"<!--", b"-->")):
            if self.buf.startswith(opener, pos):
                return self._find_end(closer, pos + len(opener))
        if self.buf.startswith(b"<!", pos):  # DOCTYPE (with an internal subset: to its "]>")
            gt = self._find_end(b">", pos)
            bracket = self.buf.find(b"[", pos, gt)
            return self._find_end(b">", self._find_end(b"]", bracket)) if bracket >= 0 else gt
        return None

    def _find_end(self, closer: bytes, start: int) -> int:
        i = self.buf.find(closer, start)
        while i < 0 and self._more():
            i = self.buf.find(closer, start)
        if i < 0:
            return len(self.buf)
        return i + len(closer)

    def records(self, start_re):
        """(offset, local name, bytes, error) per record; error is '' for a complete one."""
        pos = 0
        while True:
            m = start_re.search(self.buf, pos)
            if not m:
                comment = self.buf.rfind(b"<!--", pos)
                if comment >= 0 and self.buf.find(b"-->", comment) < 0:
                    keep = comment  # an open comment may hide a start tag: keep it
                else:
                    keep = max(len(self.buf) - 64, pos)
                self._note(self.buf[pos:keep])
                self._drop(keep)
                pos = 0
                if not self._more():
                    return
                continue
            between = self.buf[pos: m.start()]
            open_comment = between.rfind(b"<!--")
            if open_comment >= 0 and between.find(b"-->", open_comment) < 0:
                close = self.buf.find(b"-->", m.start())
                while close < 0 and self._more():
                    close = self.buf.find(b"-->", m.start())
                pos = close + 3 if close >= 0 else len(self.buf)
                continue  # "<article" inside a comment is no record
            self._note(between)
            self._drop(m.start())
            pos = 0
            qname = self.buf[1: m.end() - m.start()]
            name = m.group(1).decode()
            offset = self.base
            end = self._record_end(qname)
            if end is None:
                data = self.buf[: min(len(self.buf), 1 << 16)]
                if self.eof:
                    self._drop(len(self.buf))
                    yield offset, name, data, f"XML syntax error: <{name}> not closed before the end of the file (truncated?)"
                    return
                yield offset, name, data, f"<{name}> larger than {RECORD_LIMIT} bytes (refused)"
                self._skip_past(b"</" + qname)
                continue
            data = self.buf[:end]
            self._drop(end)
            yield offset, name, data, ""

    def _record_end(self, qname: bytes) -> int | None:
        """End of the record starting at buf[0]: after its end tag, or after '/>'."""
        first = self.buf.find(b">")
        while first < 0 and self._more():
            first = self.buf.find(b">")
        if first > 0 and self.buf[first - 1: first] == b"/":
            return first + 1
        close_re = re.compile(rb"</" + re.escape(qname) + rb"\s*>")
        pos = 0
        while True:
            m = close_re.search(self.buf, pos)
            if m:
                return m.end()
            pos = max(len(self.buf) - len(qname) - 8, 0)
            if len(self.buf) > RECORD_LIMIT or not self._more():
                return None

    def _skip_past(self, marker: bytes) -> None:
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                j = self.buf.find(b">", i)
                if j >= 0:
                    self._drop(j + 1)
                    return
            self._drop(max(len(self.buf) - len(marker) - 64, 0))
            if not self._more():
                self._drop(len(self.buf))
                return
