"""Failed URLs of a source: retried on the next run, or given up when they are gone for good.

A transient failure (5xx, 429, timeout, reset, truncated body, an unreadable page) is retried on
every run. A permanent one (HTTP 404 Not Found / 410 Gone) is retried too, but after
`give_up_after` consecutive runs that all answered 404/410 the URL is *given up*: no more
requests. It stays in the `failures` table with its status and count, and `guidelines list`
and the scrape summary report it, so nothing disappears silently. `give_up_after=0` never
gives up (and so retries given-up URLs again).
"""

from __future__ import annotations

from dataclasses import dataclass

from gap_replay.http import FetchError
from gap_replay.state import State

PERMANENT_STATUSES = frozenset({404, 410})
DEFAULT_GIVE_UP_AFTER = 3


def is_permanent(status: int | None) -> bool:
    return status in PERMANENT_STATUSES


@dataclass(frozen=True)
class Failure:
    url: str
    source: str
    error: str
    status: int | None
    attempts: int    # consecutive runs that failed this way (reset when transient <-> permanent)

    @property
    def listing(self) -> bool:
        return self.source.endswith(":listing")

    def given_up(self, give_up_after: int) -> bool:
        return bool(give_up_after) and is_permanent(self.status) and self.attempts >= give_up_after


class FailureBook:
    """The failures of one source (articles as `tag`, listing pages as `tag:listing`)."""

    def __init__(self, state: State, tag: str, give_up_after: int = DEFAULT_GIVE_UP_AFTER) -> None:
        self.state, self.tag, self.give_up_after = state, tag, give_up_after

    def all(self) -> list[Failure]:
        rows = self.state.execute(
            "SELECT url, source, error, status, attempts FROM failures WHERE source IN (?, ?) "
            "ORDER BY url", (self.tag, f"{self.tag}:listing"))
        return [Failure(*row) for row in rows]

    def get(self, url: str) -> Failure | None:
        rows = self.state.execute("SELECT url, source, error, status, attempts FROM failures "
                                  "WHERE url=?", (url,))
        return Failure(*rows[0]) if rows else None

    def to_retry(self) -> list[str]:
        """Article URLs to try first this run (everything not given up)."""
        return [f.url for f in self.all() if not f.listing and not f.given_up(self.give_up_after)]

    def given_up(self) -> list[Failure]:
        return [f for f in self.all() if not f.listing and f.given_up(self.give_up_after)]

    def record(self, url: str, exc: FetchError, listing: bool = False) -> Failure:
        """Count one more failed run; a switch between transient and permanent starts over."""
        previous = self.get(url)
        if previous is not None and is_permanent(previous.status) != is_permanent(exc.status):
            self.state.clear_failure(url)
        self.state.record_failure(url, f"{self.tag}:listing" if listing else self.tag,
                                  exc.reason, exc.status)
        failure = self.get(url)
        assert failure is not None
        return failure

    def clear(self, url: str) -> None:
        self.state.clear_failure(url)

    def counts(self) -> dict[str, int]:
        failures = self.all()
        return {"failures": len(failures),
                "permanent": sum(is_permanent(f.status) for f in failures),
                "given_up": sum(f.given_up(self.give_up_after) for f in failures if not f.listing)}
