"""URL helpers shared by every source: `--base-url` rewriting and canonical URLs."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def rewrite_base_url(url: str, base_url: str | None) -> str:
    """Replace scheme and host of `url` with those of `base_url`.

    A path in `base_url` becomes a prefix, so one local server can host several sites:
    rewrite_base_url("https://www.who.int/a?b=1", "http://127.0.0.1:8000/who")
    == "http://127.0.0.1:8000/who/a?b=1".
    """
    if not base_url:
        return url
    target = urlsplit(url)
    base = urlsplit(base_url)
    prefix = base.path.rstrip("/")
    return urlunsplit((base.scheme, base.netloc, prefix + (target.path or "/"), target.query, ""))


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, drop the fragment and a trailing slash: one article, one URL."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))
