"""A real HTTP server on 127.0.0.1 that serves fixture sites from a folder.

Used by `gap-replay download --sample` (the real scrapers and clients run against it) and by the
tests. Site `tag` lives in `root/tag/` and is reached with `--base-url http://127.0.0.1:PORT/tag`.

URL → file: `/tag/a/b` is `root/tag/a/b` (a folder serves its `index.html`). A query string
selects `root/tag/a/b@<query>` when such variants exist (pagination, API offsets); otherwise it
is ignored. A query too long for a file name (or containing `/`) is stored as
`b@sha1-<16 hex of the unquoted query>` (see `variant_name`). Responses carry a content-derived ETag and Last-Modified and answer conditional
requests with 304; Range requests get 206. Tests inject faults per path (429 with Retry-After,
5xx, hangs, connection resets, truncated bodies) and read the request log.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import mimetypes
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

# A fixed date: fixture bytes, not checkout times, decide whether a page changed.
_LAST_MODIFIED = email.utils.formatdate(1_700_000_000, usegmt=True)


@dataclass
class Fault:
    """One injected misbehaviour for the next request to a path."""

    kind: str  # "status", "hang", "reset", "truncate"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    keep_bytes: int = 0


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]
    status: int


def _sniff_type(path: Path, body: bytes) -> str:
    guessed, _ = mimetypes.guess_type(path.name.split("@", 1)[0])
    if guessed:
        return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")
    head = body[:64].lstrip()
    if head.startswith((b"{", b"[")):
        return "application/json"
    if head.startswith(b"%PDF"):
        return "application/pdf"
    if head.startswith(b"<?xml"):
        return "application/xml"
    return "text/html; charset=utf-8"


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (a sampler that has read enough) are normal, not errors."""

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class SiteServer:
    """Serve `root` on 127.0.0.1; use as a context manager or call start()/stop()."""

    def __init__(self, root: str | Path, port: int = 0) -> None:
        self.root = Path(root).resolve()
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: the request log is kept in memory
                pass

            def do_HEAD(self) -> None:
                server._handle(self, head=True)

            def do_GET(self) -> None:
                server._handle(self, head=False)

        self._httpd = _QuietServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_url(self, site: str) -> str:
        return f"{self.url}/{site}"

    def start(self) -> "SiteServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "SiteServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test helpers --------------------------------------------------------------------------
    def inject(self, path: str, *faults: Fault) -> None:
        """Queue faults for the next requests to `path` (path without query, e.g. '/who/x')."""
        with self._lock:
            self.faults[path].extend(faults)

    def requests_to(self, prefix: str = "/", method: str = "GET") -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log if r.path.startswith(prefix) and r.method == method]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- serving -------------------------------------------------------------------------------
    def resolve(self, raw_path: str) -> Path | None:
        parts = urlsplit(raw_path)
        rel = unquote(parts.path).lstrip("/")
        target = (self.root / rel).resolve()
        if not str(target).startswith(str(self.root)):
            return None
        if target.is_dir():
            target = target / "index.html"
        if parts.query:
            variant = target.with_name(variant_name(target.name, unquote(parts.query)))
            if variant.is_file():
                return variant
            if any(target.parent.glob(f"{glob_escape(target.name)}@*")):
                return None
        return target if target.is_file() else None

    def _handle(self, req: BaseHTTPRequestHandler, head: bool) -> None:
        path_only = urlsplit(req.path).path
        with self._lock:
            queue = self.faults.get(path_only)
            fault = queue.pop(0) if queue else None
        if not self._respond(req, head, fault):  # hang or reset: no response, logged here
            self._log(req, 0)

    def _log(self, req: BaseHTTPRequestHandler, status: int) -> None:
        with self._lock:
            self.log.append(LoggedRequest(req.command, req.path, dict(req.headers.items()), status))

    def _respond(self, req: BaseHTTPRequestHandler, head: bool, fault: Fault | None) -> int:
        if fault and fault.kind == "hang":
            time.sleep(fault.seconds)
            with contextlib.suppress(OSError):
                req.connection.shutdown(socket.SHUT_RDWR)
            req.close_connection = True
            return 0
        if fault and fault.kind == "reset":
            with contextlib.suppress(OSError):
                req.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                req.connection.close()
            req.close_connection = True
            return 0
        if fault and fault.kind == "status":
            return self._send(req, fault.status, b"fault injected\n", "text/plain", head,
                              extra=fault.headers)
        file = self.resolve(req.path)
        if file is None:
            return self._send(req, 404, b"not found\n", "text/plain", head)
        body = file.read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        ctype = _sniff_type(file, body)
        validators = {"ETag": etag, "Last-Modified": _LAST_MODIFIED, "Accept-Ranges": "bytes"}
        if req.headers.get("If-None-Match") == etag:
            return self._send(req, 304, b"", ctype, True, extra=validators)
        rng = req.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(body) - 1
            if start >= len(body):
                return self._send(req, 416, b"", ctype, head,
                                  extra={"Content-Range": f"bytes */{len(body)}"})
            chunk = body[start:end + 1]
            validators["Content-Range"] = f"bytes {start}-{start + len(chunk) - 1}/{len(body)}"
            return self._send(req, 206, chunk, ctype, head, extra=validators, fault=fault)
        return self._send(req, 200, body, ctype, head, extra=validators, fault=fault)

    def _send(self, req, status: int, body: bytes, ctype: str, head: bool, extra: dict | None = None,
              fault: Fault | None = None) -> int:
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            req.send_header(key, value)
        self._log(req, status)  # before the client can see the answer: tests read the log then
        req.end_headers()
        if not head and status != 304:
            if fault and fault.kind == "truncate":
                req.wfile.write(body[:fault.keep_bytes])
                req.wfile.flush()
                with contextlib.suppress(OSError):
                    req.connection.shutdown(socket.SHUT_RDWR)
                req.close_connection = True
            else:
                req.wfile.write(body)
        return status


MAX_VARIANT_NAME = 200


def variant_name(name: str, query: str) -> str:
    """File name serving `name?query`: `name@query`, or `name@sha1-<16 hex>` of the (unquoted)
    query when that would exceed file-name limits (long JSON/OData queries)."""
    full = f"{name}@{query}"
    if len(full.encode("utf-8")) <= MAX_VARIANT_NAME and "/" not in query:
        return full
    return f"{name}@sha1-{hashlib.sha1(query.encode('utf-8')).hexdigest()[:16]}"


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextlib.contextmanager
def serve(root: str | Path) -> Iterator[SiteServer]:
    with SiteServer(root) as server:
        yield server
