"""gap_replay.urls: a site's base URL is rewritten to the local mirror keeping path and query."""

from __future__ import annotations

from gap_replay.urls import rewrite_base_url


def test_rewrite_base_url_keeps_path_and_query():
    assert rewrite_base_url("https://www.who.int/a/b?x=1#f", "http://127.0.0.1:9/who") == \
        "http://127.0.0.1:9/who/a/b?x=1"
