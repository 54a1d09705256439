"""`guidelines`: list, scrape and re-clean the clinical guideline sources (one spec per site)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from gap_replay import __version__
from gap_replay.cli.errors import OneLineErrors
from gap_replay.http import RetryPolicy
from gap_replay.sources.guidelines.failures import DEFAULT_GIVE_UP_AFTER
from gap_replay.sources.guidelines.spec import SpecError, load_specs
from gap_replay.state import State

log = logging.getLogger(__name__)


def _specs(folder: str | None):
    try:
        return load_specs(folder)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(cls=OneLineErrors,
             context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="guidelines")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Folder of source specs (default: the bundled guidelines/).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, specs_dir: str | None) -> None:
    """Scrape clinical practice guidelines from 16 sites, one YAML spec per site.

    \b
    Examples:
        guidelines list
        guidelines scrape --source who --output out/
        guidelines scrape --all --output out/ --rate 0.5
        guidelines scrape --source mayo --output out/ --base-url http://127.0.0.1:8000/mayo
        guidelines clean --output out/ --source aafp
        guidelines check --live
    """
    from gap_replay import progress

    progress.configure()
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    ctx.obj = {"specs_dir": specs_dir}


GIVE_UP_HELP = ("Runs answering 404/410 after which a URL is given up (no more requests; still "
                "listed as a failure). 0 = never give up, which also retries given-up URLs.")


@cli.command("list")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="An output folder: adds documents, failures and the last run from its state.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--give-up-after", type=click.IntRange(min=0), default=DEFAULT_GIVE_UP_AFTER,
              help=GIVE_UP_HELP)
@click.pass_context
def list_sources(ctx: click.Context, output: str | None, as_json: bool, give_up_after: int) -> None:
    """List the sources: tag, name, audience, licence, redistributable, documents, failures
    (failed URLs still recorded, "(N given up)" for permanent 404/410 ones), last run
    ("BROKEN" when it ended with a problem; --json gives the lines under "problems").

    \b
    Examples:
        guidelines list
        guidelines list --output out/ --json
    """
    specs = _specs(ctx.obj["specs_dir"])
    state = State(Path(output) / "state.sqlite") if output and (Path(output) / "state.sqlite").exists() else None
    rows = []
    for tag, spec in specs.items():
        docs, last, failures, given_up, problems = "", "", "", "", []
        if state is not None:
            from gap_replay.sources.guidelines.failures import FailureBook
            from gap_replay.sources.guidelines.store import RecordStore
            docs = RecordStore(state, tag).count()
            run = state.get(f"guidelines/{tag}/last_run")
            last = json.loads(run)["finished_at"] if run else "never"
            problems = json.loads(run).get("problems", []) if run else []
            counts = FailureBook(state, tag, give_up_after).counts()
            failures, given_up = counts["failures"], counts["given_up"]
        rows.append({"tag": tag, "name": spec.name, "audience": spec.audience, "license": spec.license,
                     "redistributable": spec.redistributable, "documents": docs,
                     "failures": failures, "given_up": given_up, "last_run": last,
                     "problems": problems})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if row["given_up"]:
            row["failures"] = f"{row['failures']} ({row['given_up']} given up)"
        if row["problems"]:
            row["last_run"] = f"{row['last_run']} BROKEN"
    headers = ["tag", "name", "audience", "license", "redistributable", "documents", "failures",
               "last_run"]
    table = [[str(r[h]) if not isinstance(r[h], bool) else ("yes" if r[h] else "no") for h in headers]
             for r in rows]
    widths = [min(48, max(len(h), *(len(row[i]) for row in table))) if table else len(h)
              for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in table:
        click.echo("  ".join(c[:w].ljust(w) for c, w in zip(row, widths)).rstrip())


@cli.command()
@click.option("--source", "sources", multiple=True, metavar="TAG", help="A source tag (repeatable).")
@click.option("--all", "all_sources", is_flag=True, help="Every source with a spec.")
@click.option("--output", required=True, type=click.Path(file_okay=False),
              help="Output folder: raw/guidelines/<tag>/, state.sqlite, cache/http.sqlite.")
@click.option("--base-url", default=None,
              help="Replace scheme and host of every URL (mirrors, tests, the sample server).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="At most N new articles per source.")
@click.option("--rate", type=click.FloatRange(min=0), default=1.0,
              help="Requests per second per host (0 = no limit; only for local mirrors).")
@click.option("--refresh", is_flag=True,
              help="Revalidate articles already scraped (conditional GETs; unchanged ones stay identical).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, help="Seconds per request.")
@click.option("--retries", type=click.IntRange(min=0), default=4, help="Retries per URL before it is recorded as failed.")
@click.option("--workers", type=click.IntRange(min=1), default=1,
              help="Sources scraped side by side (each site still gets at most --rate).")
@click.option("--give-up-after", type=click.IntRange(min=0), default=DEFAULT_GIVE_UP_AFTER,
              help=GIVE_UP_HELP)
@click.option("--no-robots", is_flag=True, hidden=True, help="Ignore robots.txt (local mirrors only).")
@click.option("--allow-partial", is_flag=True,
              help="Exit 0 even when a source is broken (its problem lines become warnings).")
@click.pass_context
def scrape(ctx: click.Context, sources: tuple[str, ...], all_sources: bool, output: str,
           base_url: str | None, limit: int | None, rate: float, refresh: bool, timeout: float,
           retries: int, workers: int, give_up_after: int, no_robots: bool,
           allow_partial: bool) -> None:
    """Scrape sources into OUTPUT/raw/guidelines/<tag>/part-NNNNN.jsonl.gz.

    Resumable: a rerun skips articles already scraped and retries the ones that failed.
    Exit code 0 when every source worked (individual failed URLs are listed and retried next
    run); 1 when a source is broken: it could not run, a listing page failed, it found no links
    or no documents, fewer than half of its last good run, or its content selector matched
    nothing on most pages. Each broken source gets one line naming the URL, the selector or HTTP
    status and the spec key to change (see `guidelines check`). --allow-partial makes those
    lines warnings and exits 0.

    \b
    Examples:
        guidelines scrape --source who --output out/
        guidelines scrape --source aafp --source idsa --output out/ --limit 10
        guidelines scrape --all --output out/ --workers 4
        guidelines scrape --source who --output out/ --base-url http://127.0.0.1:8000/who
    """
    from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_sources

    specs = _specs(ctx.obj["specs_dir"])
    if all_sources == bool(sources):
        raise click.UsageError("give --source TAG (repeatable) or --all, not both or neither")
    tags = list(specs) if all_sources else list(dict.fromkeys(sources))
    unknown = [t for t in tags if t not in specs]
    if unknown:
        raise click.UsageError(f"unknown source {', '.join(unknown)}; known: {', '.join(specs)}")
    if base_url and len(tags) > 1:
        log.warning("--base-url applies to every selected source: %s", base_url)
    options = ScrapeOptions(base_url=base_url, rate=rate, limit=limit, refresh=refresh,
                            retry=RetryPolicy(max_retries=retries, timeout=timeout),
                            progress=sys.stderr.isatty(), respect_robots=not no_robots,
                            give_up_after=give_up_after)
    if workers > 1 and base_url and len(tags) > 1:
        raise click.UsageError("--workers > 1 with --base-url would send several sources to one host "
                               "at once (exceeding --rate); use --workers 1")
    from gap_replay.cli.core import fail_before_fetching
    from gap_replay.preflight import check_output

    fail_before_fetching(check_output(output))  # before any request (gap_replay.preflight)
    problems: list[str] = []
    for tag, summary in scrape_sources([specs[t] for t in tags], output, options, workers):
        if isinstance(summary, Exception):
            click.echo(f"{tag}: FAILED: {summary}", err=True)
            problems.append(f"{tag}: could not run: {summary}")
            continue
        c = summary.counts
        click.echo(f"{tag}: {summary.records} records ({summary.scraped} new/changed, "
                   f"{summary.unchanged} unchanged, {summary.skipped} already done, "
                   f"{summary.duplicates} duplicate URLs, {summary.rejected} rejected by rules, "
                   f"{summary.failed} failed, {summary.listing_failed} listing pages failed, "
                   f"{summary.given_up} given up, "
                   f"{summary.removed} no longer listed), "
                   f"{summary.requests} requests, {summary.seconds:.1f}s")
        click.echo(f"  selectors: {c.listing_pages} listing pages, {c.listing_links} links, "
                   f"{c.articles_fetched} articles fetched, {c.content_hits} content selector hits, "
                   f"{c.fallback_extractions} fallback extractions, "
                   f"{c.alternative_fallbacks} later alternatives, {c.documents} documents")
        for url, reason in summary.failures:
            click.echo(f"  failed: {url}: {reason}", err=True)
        for url, reason in summary.given_up_urls:
            click.echo(f"  given up (not requested; --give-up-after 0 retries it): {url}: {reason}",
                       err=True)
        for note in summary.notes:
            click.echo(f"  note: {note}", err=True)
        problems.extend(summary.problems)
    if problems:
        label = "warning" if allow_partial else "BROKEN"
        click.echo(f"{len(problems)} source(s) broken:" if not allow_partial else
                   f"{len(problems)} source(s) broken (--allow-partial: exit 0):", err=True)
        for line in problems:
            click.echo(f"{label}: {line}", err=True)
        if not allow_partial:
            raise SystemExit(1)


@cli.command()
@click.option("--source", "sources", multiple=True, metavar="TAG",
              help="Only these sources (repeatable; default: all).")
@click.option("--live", is_flag=True, help="Check the real sites (default: the bundled fixture sites).")
@click.option("--base-url", default=None,
              help="Check a mirror: replaces scheme and host of every URL (like `scrape`).")
@click.option("--rate", type=click.FloatRange(min=0), default=1.0,
              help="Requests per second per host with --live.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=20.0, help="Seconds per request.")
@click.pass_context
def check(ctx: click.Context, sources: tuple[str, ...], live: bool, base_url: str | None,
          rate: float, timeout: float) -> None:
    """Check each source with a few requests: robots.txt, the first listing page of each
    discovery step, one article. Prints a table (reachable, listing links, content selector
    hit, sample title, verdict) and, for each broken source, one line naming the URL, the
    selector or HTTP status and the spec key to change. Exit 1 when a source is broken.

    Without --live or --base-url it runs against the bundled fixture sites (served on
    127.0.0.1, like `gap-replay download --sample`), which checks the specs against the pages
    they were written for; --live asks the real sites, which checks the sites against the specs.

    \b
    Examples:
        guidelines check
        guidelines check --live --source who --source mayo
        guidelines check --source idsa --base-url http://127.0.0.1:8000/idsa
    """
    import contextlib

    from gap_replay.http import RetryPolicy as _Retry
    from gap_replay.resources import sample_sites_dir
    from gap_replay.sample.server import SiteServer
    from gap_replay.sources.guidelines.check import check_source, format_table

    specs = _specs(ctx.obj["specs_dir"])
    tags = list(dict.fromkeys(sources)) or list(specs)
    unknown = [t for t in tags if t not in specs]
    if unknown:
        raise click.UsageError(f"unknown source {', '.join(unknown)}; known: {', '.join(specs)}")
    if live and base_url:
        raise click.UsageError("give --live or --base-url, not both")
    retry = _Retry(max_retries=1, timeout=timeout)
    with contextlib.ExitStack() as stack:
        if live or base_url:
            urls = {t: base_url for t in tags}
            pace = rate
        else:
            server = stack.enter_context(SiteServer(sample_sites_dir()))
            urls = {t: server.base_url(t) for t in tags}
            pace = 0.0
        rows = [check_source(specs[t], urls[t], pace, retry) for t in tags]
    for line in format_table(rows):
        click.echo(line)
    for row in rows:
        if row.diagnosis:
            click.echo(f"{'BROKEN' if row.broken else 'note'}: {row.diagnosis}",
                       err=row.broken)
    broken = [r for r in rows if r.broken]
    if broken:
        click.echo(f"{len(broken)} of {len(rows)} sources broken", err=True)
        raise SystemExit(1)


@cli.command()
@click.option("--output", required=True, type=click.Path(file_okay=False, exists=True),
              help="An output folder written by `guidelines scrape`.")
@click.option("--source", "sources", multiple=True, metavar="TAG", help="Only these sources (repeatable).")
@click.pass_context
def clean(ctx: click.Context, output: str, sources: tuple[str, ...]) -> None:
    """Re-derive `text` from `meta.raw_text` with the current spec rules; nothing is fetched.

    \b
    Examples:
        guidelines clean --output out/
        guidelines clean --output out/ --source aafp --source idsa
    """
    from gap_replay.sources.guidelines.scrape import reclean_source

    specs = _specs(ctx.obj["specs_dir"])
    tags = list(dict.fromkeys(sources)) or [t for t in specs
                                            if (Path(output) / "raw" / "guidelines" / t).is_dir()]
    unknown = [t for t in tags if t not in specs]
    if unknown:
        raise click.UsageError(f"unknown source {', '.join(unknown)}; known: {', '.join(specs)}")
    if not (Path(output) / "state.sqlite").exists():
        raise click.ClickException(f"{output}: no state.sqlite; run `guidelines scrape` first")
    for tag in tags:
        counts = reclean_source(specs[tag], output)
        click.echo(f"{tag}: {counts['records']} records, {counts['changed']} changed, "
                   f"{counts['rejected']} rejected by rules")
        if counts["removed"]:
            by_rule = ", ".join(f"{rule} {chars}" for rule, chars in
                                sorted(counts["removed"].items(), key=lambda kv: -kv[1]))
            click.echo(f"  characters removed by rule: {by_rule}")


if __name__ == "__main__":
    cli()
