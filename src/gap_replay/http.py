"""The one polite HTTP client every source uses.

Per-host rate limit, robots.txt, a User-Agent with a contact, bounded retries with exponential
backoff that honour Retry-After, conditional requests (ETag / Last-Modified) through a SQLite
cache, `--base-url` rewriting, and resumable file downloads.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import sqlite3
import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urljoin, urlsplit

import requests
import requests_cache
import urllib3

from gap_replay import __version__
from gap_replay.urls import rewrite_base_url

log = logging.getLogger(__name__)

DEFAULT_CONTACT = os.environ.get("GAP_REPLAY_CONTACT", "https://github.com/gap-replay/gap-replay")
USER_AGENT = f"gap-replay/{__version__} (+{DEFAULT_CONTACT}; corpus research crawler)"
RETRY_STATUSES = {429, 500, 502, 503, 504}
CACHE_BUSY_TIMEOUT_MS = 60_000  # as long as gap_replay.state waits for its SQLite file


class FetchError(RuntimeError):
    """A URL that still failed after bounded retries; `reason` says why, for the state file."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class RobotsDisallowed(FetchError):
    pass


class HostUnreachable(FetchError):
    """The host cannot be reached at all (name not resolved, connection refused, no route):
    retrying every URL of it would only delay the failure, so the whole source stops."""

    def __init__(self, url: str, host: str, cause: str) -> None:
        super().__init__(url, f"cannot reach {host} ({cause}; no network?)")
        self.host = host


_SECRET_WORDS = ("auth", "key", "token", "secret", "cookie", "password", "session")


def is_secret_header(name: str) -> bool:
    """Authorization, Cookie, x-api-key, X-Auth-Token, ...: never sent to another host."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def unreachable_cause(exc: BaseException) -> str | None:
    """Why a connection could not even be opened, or None for errors worth retrying (a reset,
    a read timeout, a cut body). requests wraps urllib3's error in MaxRetryError.reason."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "name not resolved"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError too
        cause = reason.__cause__ or reason.__context__
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        return "connection failed"
    if isinstance(exc, requests.ConnectTimeout) or isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return "connection timed out"
    return None


@dataclass
class RetryPolicy:
    max_retries: int = 4
    backoff: float = 0.5
    max_wait: float = 60.0
    timeout: float = 30.0
    # Opening a connection: a host that does not answer within this is tried once more, then
    # the source stops (see HostUnreachable) instead of waiting out every retry of every URL.
    connect_timeout: float = 10.0
    unreachable_retry_wait: float = 1.0


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _UnreachableHosts:
    """Hosts found unreachable in the last `ttl` seconds, shared by every client of the
    process: without network, each host costs one failed retry, not one per source or URL."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self.hosts: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()

    def add(self, host: str, cause: str) -> None:
        with self.lock:
            self.hosts[host] = (cause, time.monotonic())

    def recent(self, host: str) -> str | None:
        with self.lock:
            cause, when = self.hosts.get(host, ("", -1e18))
            if time.monotonic() - when > self.ttl:
                self.hosts.pop(host, None)
                return None
            return cause

    def clear(self) -> None:
        with self.lock:
            self.hosts.clear()


_UNREACHABLE = _UnreachableHosts()


class _HostLimiter:
    """At most `rate` requests per second per host, shared by all threads of a client."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_slot: dict[str, float] = {}
        self.lock = threading.Lock()

    def wait(self, host: str) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot.get(host, 0.0))
            self.next_slot[host] = slot + self.interval
        delay = slot - now
        if delay > 0:
            time.sleep(delay)


class BodyTooLarge(Exception):
    """A response body over the client's limit for its content type (never read past it)."""

    def __init__(self, size: int, limit: int, ctype: str, announced: bool) -> None:
        how = "announces" if announced else "has more than"
        super().__init__(f"body {how} {size:,} bytes; the limit for {ctype or 'this type'} is "
                         f"{limit:,} (raise limits.http_page_bytes / http_pdf_bytes in the run config)")


@dataclass
class BodyLimits:
    """Bytes one response may hold in memory, by content type. Data files never come through
    here: they are streamed to disk (`PoliteClient.download`) or line by line (io.stream)."""

    page: int = 64 << 20        # HTML, JSON, XML, text
    pdf: int = 256 << 20
    other: int = 64 << 20

    @classmethod
    def configured(cls) -> "BodyLimits":
        """From the run's limits (gap_replay.limits: http_page_bytes, http_pdf_bytes)."""
        from gap_replay import limits

        cur = limits.current()
        return cls(page=cur.http_page_bytes, pdf=cur.http_pdf_bytes, other=cur.http_page_bytes)

    def for_type(self, ctype: str) -> int:
        ctype = ctype.lower()
        return self.pdf if "pdf" in ctype else self.page if any(
            t in ctype for t in ("html", "json", "xml", "text")) else self.other


def load_body(resp: requests.Response, limits: BodyLimits) -> None:
    """Read a streamed response's body into `resp.content`, at most its type's limit; a body
    announcing or reaching more raises BodyTooLarge before it fills memory."""
    if getattr(resp, "from_cache", False) or resp._content_consumed:  # noqa: SLF001
        return
    ctype = resp.headers.get("Content-Type", "")
    limit = limits.for_type(ctype)
    announced = int(resp.headers.get("Content-Length") or 0)
    if announced > limit:
        resp.close()
        raise BodyTooLarge(announced, limit, ctype, True)
    parts, size = [], 0
    for part in resp.iter_content(1 << 20):
        size += len(part)
        if size > limit:
            resp.close()
            raise BodyTooLarge(limit, limit, ctype, False)
        parts.append(part)
    resp._content = b"".join(parts)  # noqa: SLF001 - what requests itself fills on .content


def _cached_session(path: Path, limits: BodyLimits, uncached: threading.local) -> requests.Session:
    """A session that revalidates through the SQLite cache at `path`; a plain one (with a
    warning) when that file is damaged, since the cache only saves requests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Several clients (guideline sources scraped side by side) share one file: WAL keeps
        # readers from waiting on a writer, and a lock is waited for as long as the state's.
        return requests_cache.CachedSession(
            str(path), backend="sqlite", expire_after=requests_cache.EXPIRE_IMMEDIATELY,
            always_revalidate=True, allowable_codes=(200,), stale_if_error=False,
            wal=True, busy_timeout=CACHE_BUSY_TIMEOUT_MS,
            filter_fn=lambda resp: _bounded_for_cache(resp, limits, uncached))
    except sqlite3.Error as exc:
        log.warning("HTTP cache %s is unreadable (%s: %s); running without it (delete the file "
                    "to start a new cache)", path, type(exc).__name__, exc)
        return requests.Session()


def _bounded_for_cache(resp, limits: BodyLimits, uncached: threading.local) -> bool:
    """requests-cache reads a body whole to store it: read it here first, within the limit.
    It asks even with the cache disabled; then (streamed downloads, `cache=False`) the body is
    left unread for the caller, and True is answered: False would make requests-cache delete
    the URL's cached copy, touching the database the caller meant to bypass."""
    if getattr(uncached, "on", False):
        return True
    try:
        load_body(resp, limits)
    except BodyTooLarge as exc:
        resp.gap_too_large = exc
        return False
    return True


class PoliteClient:
    """HTTP GETs for one crawl: polite, cached, retried, rewritten to `base_url` when given.

    `url` arguments are always the *original* URLs (what documents record); the client
    rewrites them to `base_url` for the actual request.
    """

    def __init__(self, *, base_url: str | None = None, rate: float = 1.0,
                 cache_path: str | os.PathLike | None = None, retry: RetryPolicy | None = None,
                 respect_robots: bool = True, user_agent: str = USER_AGENT,
                 sleep: Callable[[float], None] = time.sleep,
                 follow_redirect: Callable[[str, str], bool] | None = None,
                 max_redirects: int = 10, body_limits: BodyLimits | None = None) -> None:
        self.base_url = base_url
        self.retry = retry or RetryPolicy()
        self.respect_robots = respect_robots
        self.limiter = _HostLimiter(rate)
        self.sleep = sleep
        self.follow_redirect = follow_redirect  # (first URL, other-host URL) -> follow it?
        self.max_redirects = max_redirects
        self.body_limits = body_limits or BodyLimits.configured()
        self._uncached = threading.local()  # set while a request bypasses the cache
        self.session = (_cached_session(Path(cache_path), self.body_limits, self._uncached)
                        if cache_path is not None else requests.Session())
        self.session.headers["User-Agent"] = user_agent
        self._robots: dict[str, urllib.robotparser.RobotFileParser | str | None] = {}
        self._robots_lock = threading.Lock()
        self.network_requests = 0

    # -- public API ---------------------------------------------------------------------------
    def resolve(self, url: str) -> str:
        return rewrite_base_url(url, self.base_url)

    def get(self, url: str, *, params: dict | None = None, headers: dict | None = None,
            cache: bool = True, stream: bool = False, ok_statuses: tuple[int, ...] = (200,)
            ) -> requests.Response:
        """GET with robots, rate limit and bounded retries; raises FetchError when it gives up."""
        reason = self._robots_reason(url, rewrite=True) if self.respect_robots else None
        if reason:
            raise RobotsDisallowed(url, reason)
        target = self.resolve(url)
        return self._get_with_retries(url, target, params=params, headers=headers, cache=cache,
                                      stream=stream, ok_statuses=ok_statuses)

    def get_text(self, url: str, **kwargs) -> str:
        resp = self.get(url, **kwargs)
        if resp.encoding is None or resp.encoding.lower() == "iso-8859-1":
            resp.encoding = resp.apparent_encoding if "html" not in resp.headers.get(
                "Content-Type", "") else "utf-8"
        return resp.text

    def get_json(self, url: str, **kwargs):
        resp = self.get(url, **kwargs)
        try:
            return resp.json()
        except ValueError as exc:
            raise FetchError(url, f"invalid JSON answer: {exc}") from exc

    def download(self, url: str, dest: str | os.PathLike, *, expected_size: int | None = None,
                 chunk_size: int = 1 << 20, on_progress: Callable[[int], None] | None = None) -> Path:
        """Download `url` to `dest` with resume (HTTP Range) and a size check; atomic rename.

        A dropped connection resumes from the bytes already on disk. A 403/400 raises
        FetchError with that status so callers can re-list expired pre-signed links.
        """
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        attempts = 0
        while True:
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                resp = self.get(url, headers=headers, cache=False, stream=True,
                                ok_statuses=(200, 206, 416))
                with resp:
                    if resp.status_code == 416:
                        total = have
                    else:
                        if resp.status_code == 200 and have:
                            have = 0  # server ignored Range: start over
                        mode = "ab" if have else "wb"
                        # Keep the bytes of a cut-off body; the size check below resumes from them.
                        resp.raw.enforce_content_length = False
                        total = have + int(resp.headers.get("Content-Length", 0) or 0)
                        with open(part, mode) as fh:
                            for chunk in resp.iter_content(chunk_size):
                                fh.write(chunk)
                                if on_progress:
                                    on_progress(len(chunk))
                size = part.stat().st_size if part.exists() else 0
                if total and size < total:
                    raise requests.ConnectionError(f"short body: {size} of {total} bytes")
                if expected_size is not None and size != expected_size:
                    part.unlink(missing_ok=True)
                    raise FetchError(url, f"size mismatch: got {size} bytes, expected {expected_size}")
                os.replace(part, dest)
                return dest
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                attempts += 1
                if attempts > self.retry.max_retries:
                    raise FetchError(url, f"download failed after {attempts} attempts: {exc}") from exc
                log.warning("download of %s interrupted (%s); resuming", url, exc)
                self.sleep(self._backoff(attempts))

    def allowed(self, url: str) -> bool:
        return self._robots_reason(url, rewrite=True) is None

    def _robots_reason(self, url: str, rewrite: bool) -> str | None:
        """Why robots.txt forbids `url`, or None. `rewrite`: `url` is an original URL (sent to
        the mirror); else an actual address reached by a redirect, asked as it is."""
        origin = "{0}://{1}".format(*urlsplit(url)[:2])
        key = origin if rewrite else "=" + origin
        with self._robots_lock:
            if key not in self._robots:
                self._robots[key] = self._load_robots(origin, rewrite)
            rules = self._robots[key]
        if isinstance(rules, str):
            return rules
        if rules is not None and not rules.can_fetch(self.session.headers["User-Agent"], url):
            return "disallowed by robots.txt"
        return None

    # -- internals ------------------------------------------------------------------------------
    def _load_robots(self, origin: str, rewrite: bool = True
                     ) -> urllib.robotparser.RobotFileParser | str | None:
        """The host's rules; None (allow all) when robots.txt is absent (any 4xx); a reason to
        disallow everything when it cannot be read (5xx, cut connections), as RFC 9309 says:
        the URLs are recorded as failed and retried next run."""
        robots_url = f"{origin}/robots.txt"
        try:
            resp = self._get_with_retries(robots_url, self.resolve(robots_url) if rewrite else robots_url,
                                          cache=True)
        except HostUnreachable:
            raise
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                return None
            log.warning("robots.txt of %s unreadable (%s): nothing is fetched from it this run "
                        "(RFC 9309)", origin, exc.reason)
            return f"robots.txt of {origin} unreadable ({exc.reason}); retried next run"
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(resp.text.splitlines())
        return parser

    def _backoff(self, attempt: int) -> float:
        return min(self.retry.max_wait, self.retry.backoff * (2 ** (attempt - 1)))

    def _get_with_retries(self, url: str, target: str, *, params=None, headers=None, cache=True,
                          stream=False, ok_statuses=(200,)) -> requests.Response:
        host = urlsplit(target).netloc
        known = _UNREACHABLE.recent(host)
        if known is not None:
            raise HostUnreachable(url, host, known)
        last_reason = ""
        last_status = None
        unreachable_tries = 0
        for attempt in range(self.retry.max_retries + 1):
            if attempt:
                log.info("retrying %s (attempt %d): %s", url, attempt + 1, last_reason)
            self.limiter.wait(host)
            try:
                resp = self._send(target, params, headers, stream, cache)
                if not getattr(resp, "from_cache", False) or getattr(resp, "revalidated", False):
                    self.network_requests += 1
            except BodyTooLarge as exc:
                raise FetchError(url, str(exc)) from None
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                cause = unreachable_cause(exc)
                if cause is not None:
                    unreachable_tries += 1
                    # one second chance for a blip, then stop; the last attempt (--retries 0)
                    # says the host is unreachable too, not just "gave up"
                    if unreachable_tries > 1 or attempt == self.retry.max_retries:
                        _UNREACHABLE.add(host, cause)
                        raise HostUnreachable(url, host, cause) from exc
                    last_reason = f"cannot connect ({cause})"
                    self.sleep(self.retry.unreachable_retry_wait)
                    continue
                last_reason, last_status = f"{type(exc).__name__}: {exc}", None
                self.sleep(self._backoff(attempt + 1))
                continue
            if resp.status_code in ok_statuses:
                return resp
            last_status = resp.status_code
            last_reason = f"HTTP {resp.status_code}"
            if resp.status_code not in RETRY_STATUSES:
                resp.close()
                raise FetchError(url, last_reason, resp.status_code)
            wait = _retry_after_seconds(resp.headers.get("Retry-After"))
            resp.close()
            if wait is not None and wait > self.retry.max_wait:
                raise FetchError(url, f"{last_reason}, Retry-After {wait:.0f}s exceeds the limit",
                                 resp.status_code)
            self.sleep(wait if wait is not None else self._backoff(attempt + 1))
        raise FetchError(url, f"gave up after {self.retry.max_retries + 1} attempts: {last_reason}",
                         last_status)

    def _send(self, target: str, params, headers, stream: bool, cache: bool) -> requests.Response:
        """One GET with its redirects followed here, not by requests, so that every hop is
        checked: secrets are dropped when the host changes, another host is followed only when
        `follow_redirect` allows it (and its robots.txt does), and loops fail naming the URLs."""
        chain = [target]
        hop_headers = dict(headers or {})
        while True:
            resp = self._send_one(chain[-1], params if len(chain) == 1 else None, hop_headers,
                                  stream, cache)
            location = resp.headers.get("Location") if resp.is_redirect else None
            if not location:
                return resp
            resp.close()
            nxt = urljoin(chain[-1], location)
            if nxt in chain:
                raise FetchError(chain[0], "redirect loop: " + " -> ".join(chain + [nxt]), resp.status_code)
            if len(chain) > self.max_redirects:
                raise FetchError(chain[0], f"more than {self.max_redirects} redirects: "
                                 + " -> ".join(chain + [nxt]), resp.status_code)
            if _host(nxt) != _host(chain[-1]):
                hop_headers = {k: v for k, v in hop_headers.items() if not is_secret_header(k)}
                hop_headers.update({k: None for k in self.session.headers if is_secret_header(k)})
                if self.follow_redirect is not None and not self.follow_redirect(chain[0], nxt):
                    raise FetchError(chain[0], f"redirected to another host: {chain[-1]} -> {nxt} "
                                     "(not followed: that host is not allowed)", resp.status_code)
                reason = self._robots_reason(nxt, rewrite=False) if self.respect_robots else None
                if reason:
                    raise RobotsDisallowed(chain[0], f"redirect target {nxt}: {reason}")
            chain.append(nxt)

    def _send_one(self, target: str, params, headers, stream: bool, cache: bool) -> requests.Response:
        """One request, through the cache when asked. The cache only saves requests: if its file
        is locked past the timeout or damaged, the page is fetched without it, never lost."""
        resp = self._request(target, params, headers, cache and not stream)
        too_large = getattr(resp, "gap_too_large", None)  # found while the cache read it
        if too_large is not None:
            resp.close()
            raise too_large
        if not stream:
            load_body(resp, self.body_limits)
        return resp

    def _request(self, target: str, params, headers, cache: bool) -> requests.Response:
        """The body is always streamed here, so that `load_body` can bound what is read."""
        cached = isinstance(self.session, requests_cache.CachedSession)
        kwargs = dict(params=params, headers=headers, timeout=self._timeouts(), stream=True,
                      allow_redirects=False)
        if cache and cached:
            try:
                return self.session.get(target, **kwargs)
            except sqlite3.Error as exc:
                log.warning("HTTP cache unusable (%s: %s); fetching %s without it",
                            type(exc).__name__, exc, target)
        self._uncached.on = True
        try:
            with self.session.cache_disabled() if cached else contextlib.nullcontext():
                return self.session.get(target, **kwargs)
        finally:
            self._uncached.on = False

    def _timeouts(self) -> tuple[float, float]:
        """(connect, read): a host that cannot be reached is known quickly; a slow body is not."""
        return (min(self.retry.connect_timeout, self.retry.timeout), self.retry.timeout)
