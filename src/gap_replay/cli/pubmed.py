"""`gap-replay pubmed`: Semantic Scholar datasets (with a key) and the keyless NCBI path."""

from __future__ import annotations

import logging

import click

log = logging.getLogger(__name__)


def _recipe(path: str | None) -> dict:
    """The recipe, validated before any request (its ingest rules apply to what is fetched)."""
    from gap_replay.recipe import RecipeError, load_recipe

    try:
        return load_recipe(path).data
    except RecipeError as exc:
        from gap_replay.cli.errors import InvalidRecipe

        raise InvalidRecipe(exc) from None


def _echo_summary(summary: dict) -> None:
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        click.echo(f"{key:>16}: {value}")


def _preflight(output: str) -> None:
    """The output folder is writable before the first request (gap_replay.preflight)."""
    from gap_replay.cli.core import fail_before_fetching
    from gap_replay.preflight import check_output

    fail_before_fetching(check_output(output))


def _bar(desc: str):
    from tqdm import tqdm  # imported after the group set TQDM_DISABLE (tqdm reads it at import)

    return lambda it: tqdm(it, desc=desc, unit="file")


def _run_ncbi_fetch(fetch, unit: str, **kwargs) -> None:
    """Run one NCBI fetch: a fetch error or any failed item is a clear CLI error (exit 1)."""
    from gap_replay.http import FetchError

    try:
        summary = fetch(**kwargs)
    except FetchError as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_summary(summary)
    if summary.get("failed"):
        raise click.ClickException(f"{summary['failed']} {unit}(s) failed; rerun to retry them")


def _iso_date(ctx, param, value: str | None) -> str | None:
    import re

    if value is not None and not re.match(r"^\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?$", value):
        raise click.BadParameter(f"expected an ISO date such as 2026-09-01, got {value!r}")
    return value


@click.group()
def pubmed() -> None:
    """PubMed abstracts and full-text papers.

    \b
    With a Semantic Scholar API key:
        S2_API_KEY=... gap-replay pubmed download --dataset papers --output out/
        gap-replay pubmed download --dataset s2orc_v2 --api-key-file keys.json --output out/
    Without a key (also the refresh path):
        gap-replay pubmed fetch-oa --output out/ --limit 2        # PMC Cloud Service (S3)
        gap-replay pubmed fetch-baseline --output out/ --limit 2  # MEDLINE, NCBI file server
    """


@pubmed.command()
@click.option("--dataset", required=True,
              help="A dataset the release lists: papers, abstracts, s2orc_v2 (s2orc on releases "
                   "before it; either name means the full text the release has).")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory OUTPUT; documents go to OUTPUT/raw/ (a rerun resumes).")
@click.option("--base-url", default=None, help="Replace scheme+host of API and file URLs.")
@click.option("--api-key-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Plain-text key or {\"api_key\": ...}; S2_API_KEY wins when set.")
@click.option("--release", default="latest", help="Release id (e.g. 2023-08-29) or 'latest'.")
@click.option("--since", default=None,
              help="Refresh: apply the diffs from this release to --release instead.")
@click.option("--rate", type=float, default=1 / 3, show_default="1/3",
              help="S2 API requests per second (keyed requests 429 below ~3 s spacing).")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Recipe whose rules apply at ingest (default: gap_replay/recipe.yaml).")
def download(dataset: str, output: str, base_url: str | None, api_key_file: str | None,
             release: str, since: str | None, rate: float, recipe: str | None) -> None:
    """Download one S2 dataset, keeping only PubMed/PMC records while streaming.

    \b
    Examples:
        S2_API_KEY=xxxx gap-replay pubmed download --dataset papers --output out/
        gap-replay pubmed download --dataset s2orc_v2 --api-key-file keys.json --output out/
        gap-replay pubmed download --dataset abstracts --since 2023-08-01 --output out/

    `papers` builds the metadata index (out/pubmed/papers_index.sqlite) that the full text
    (`s2orc_v2`, or `s2orc` on old releases) and `abstracts` join by corpusid; `abstracts`
    fetches papers first when the index is missing.
    """
    from gap_replay.http import FetchError
    from gap_replay.sources.pubmed.acquire import download_dataset, refresh_dataset
    from gap_replay.sources.pubmed.s2api import S2Error, load_api_key

    _preflight(output)
    try:
        key = load_api_key(api_key_file)
        if not key:
            raise click.UsageError("no API key: set S2_API_KEY or pass --api-key-file "
                                   "(without a key use `fetch-oa` / `fetch-baseline`)")
        if since:
            summary = refresh_dataset(output, dataset, since, api_key=key, base_url=base_url,
                                      release=release, recipe=_recipe(recipe), rate=rate)
        else:
            summary = download_dataset(output, dataset, api_key=key, base_url=base_url,
                                       release=release, recipe=_recipe(recipe),
                                       progress=_bar(f"s2 {dataset}"), rate=rate)
    except (S2Error, FetchError) as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_summary(summary)


@pubmed.command("fetch-oa")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory OUTPUT; documents go to OUTPUT/raw/ (a rerun resumes).")
@click.option("--endpoint-url", default=None,
              help="An S3 API endpoint serving the bucket pmc-oa-opendata path-style (moto, "
                   "MinIO). [default: the public bucket https://pmc-oa-opendata.s3.amazonaws.com]")
@click.option("--since", default=None, metavar="DATE", callback=_iso_date,
              help="Only article versions whose inventory last-modified date is after DATE "
                   "(ISO, e.g. 2026-09-01).")
@click.option("--limit", type=int, default=None, help="At most N article versions this run.")
@click.option("--license", "licenses", multiple=True, metavar="CODE",
              help="Keep only these metadata license_code values (repeatable, e.g. --license "
                   "'CC BY' --license CC0). [default: every open-access licence]")
@click.option("--rate", type=float, default=10.0, show_default=True,
              help="Requests per second to the bucket.")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Recipe whose rules apply at ingest (default: gap_replay/recipe.yaml).")
def fetch_oa_cmd(output: str, endpoint_url: str | None, since: str | None, limit: int | None,
                 licenses: tuple[str, ...], rate: float, recipe: str | None) -> None:
    """PMC open-access full text from the PMC Cloud Service (no key) → OUTPUT/raw/papers/pmc/.

    Lists the bucket's daily inventory, keeps the newest version of each article, and fetches
    its metadata JSON and JATS XML anonymously over HTTPS. A rerun fetches only new or changed
    versions; a new version replaces the old one in raw/. Retracted and non-open-access
    versions are skipped. Local JATS files or old oa_bulk .tar.gz dumps: `gap-replay ingest
    --format jats`.

    \b
    Examples:
        gap-replay pubmed fetch-oa --output out/ --limit 100
        gap-replay pubmed fetch-oa --output out/ --since 2026-11-01 --license 'CC BY'
        gap-replay pubmed fetch-oa --output out/ --endpoint-url http://127.0.0.1:9000
    """
    from gap_replay.sources.pubmed.acquire import fetch_oa

    _preflight(output)
    _run_ncbi_fetch(fetch_oa, "article version", output=output, endpoint_url=endpoint_url,
                    since=since, limit=limit, licenses=licenses or None, rate=rate,
                    recipe=_recipe(recipe), progress=_bar("pmc cloud"))


@pubmed.command("fetch-baseline")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory OUTPUT; documents go to OUTPUT/raw/ (a rerun resumes).")
@click.option("--base-url", default=None, help="Replace scheme+host of the NCBI URLs.")
@click.option("--updates/--no-updates", default=True, help="Also the daily update files.")
@click.option("--limit", type=int, default=None, help="At most N files (testing).")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Recipe whose rules apply at ingest (default: gap_replay/recipe.yaml).")
def fetch_baseline_cmd(output: str, base_url: str | None, updates: bool, limit: int | None,
                       recipe: str | None) -> None:
    """PubMed baseline (+ updates) MEDLINE XML (no key needed) → OUTPUT/raw/abstracts/pubmed/.

    \b
    Example:
        gap-replay pubmed fetch-baseline --output out/ --limit 2
    """
    from gap_replay.sources.pubmed.acquire import fetch_baseline

    _preflight(output)
    _run_ncbi_fetch(fetch_baseline, "file", output=output, base_url=base_url, updates=updates,
                    limit=limit, recipe=_recipe(recipe), progress=_bar("pubmed baseline"))
