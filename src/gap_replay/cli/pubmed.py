"""`gap-replay pubmed`: Semantic Scholar datasets (with a key) and the keyless NCBI path."""

from __future__ import annotations

import logging

import click
import yaml
from tqdm import tqdm

from gap_replay.resources import default_recipe_path

log = logging.getLogger(__name__)


def _recipe(path: str | None) -> dict:
    with open(path or default_recipe_path(), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _echo_summary(summary: dict) -> None:
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        click.echo(f"{key:>16}: {value}")


def _bar(desc: str):
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


@click.group()
def pubmed() -> None:
    """PubMed abstracts and full-text papers.

    \b
    With a Semantic Scholar API key:
        S2_API_KEY=... gap-replay pubmed download --dataset papers --output out/
        gap-replay pubmed download --dataset s2orc --api-key-file keys.json --output out/
    Without a key (NCBI, also the refresh path):
        gap-replay pubmed fetch-oa --output out/ --limit 2
        gap-replay pubmed fetch-baseline --output out/ --limit 2
    """


@pubmed.command()
@click.option("--dataset", type=click.Choice(["papers", "abstracts", "s2orc"]), required=True)
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False))
@click.option("--base-url", default=None, help="Replace scheme+host of API and file URLs.")
@click.option("--api-key-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Plain-text key or {\"api_key\": ...}; S2_API_KEY wins when set.")
@click.option("--release", default="latest", help="Release id (e.g. 2023-08-29) or 'latest'.")
@click.option("--since", default=None,
              help="Refresh: apply the diffs from this release to --release instead.")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None)
def download(dataset: str, output: str, base_url: str | None, api_key_file: str | None,
             release: str, since: str | None, recipe: str | None) -> None:
    """Download one S2 dataset, keeping only PubMed/PMC records while streaming.

    \b
    Examples:
        S2_API_KEY=xxxx gap-replay pubmed download --dataset papers --output out/
        gap-replay pubmed download --dataset s2orc --api-key-file keys.json --output out/
        gap-replay pubmed download --dataset abstracts --since 2023-08-01 --output out/

    `papers` builds the metadata index (out/pubmed/papers_index.sqlite) that `s2orc` and
    `abstracts` join by corpusid; `abstracts` fetches papers first when the index is missing.
    """
    from gap_replay.http import FetchError
    from gap_replay.sources.pubmed.acquire import download_dataset, refresh_dataset
    from gap_replay.sources.pubmed.s2api import S2Error, load_api_key

    try:
        key = load_api_key(api_key_file)
        if not key:
            raise click.UsageError("no API key: set S2_API_KEY or pass --api-key-file "
                                   "(without a key use `fetch-oa` / `fetch-baseline`)")
        if since:
            summary = refresh_dataset(output, dataset, since, api_key=key, base_url=base_url,
                                      release=release, recipe=_recipe(recipe))
        else:
            summary = download_dataset(output, dataset, api_key=key, base_url=base_url,
                                       release=release, recipe=_recipe(recipe),
                                       progress=_bar(f"s2 {dataset}"))
    except (S2Error, FetchError) as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_summary(summary)


@pubmed.command("fetch-oa")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False))
@click.option("--base-url", default=None, help="Replace scheme+host of the NCBI URLs.")
@click.option("--subset", type=click.Choice(["oa_comm", "oa_noncomm", "oa_other"]),
              default="oa_comm", help="PMC OA licence group.")
@click.option("--limit", type=int, default=None, help="At most N packages (testing).")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None)
def fetch_oa_cmd(output: str, base_url: str | None, subset: str, limit: int | None,
                 recipe: str | None) -> None:
    """PMC Open Access JATS packages (no key needed) → OUTPUT/raw/papers/pmc/.

    \b
    Example:
        gap-replay pubmed fetch-oa --output out/ --subset oa_comm --limit 2
    """
    from gap_replay.sources.pubmed.acquire import fetch_oa

    _run_ncbi_fetch(fetch_oa, "package", output=output, base_url=base_url, subset=subset,
                    limit=limit, recipe=_recipe(recipe), progress=_bar("pmc oa"))


@pubmed.command("fetch-baseline")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False))
@click.option("--base-url", default=None, help="Replace scheme+host of the NCBI URLs.")
@click.option("--updates/--no-updates", default=True, help="Also the daily update files.")
@click.option("--limit", type=int, default=None, help="At most N files (testing).")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None)
def fetch_baseline_cmd(output: str, base_url: str | None, updates: bool, limit: int | None,
                       recipe: str | None) -> None:
    """PubMed baseline (+ updates) MEDLINE XML (no key needed) → OUTPUT/raw/abstracts/pubmed/.

    \b
    Example:
        gap-replay pubmed fetch-baseline --output out/ --limit 2
    """
    from gap_replay.sources.pubmed.acquire import fetch_baseline

    _run_ncbi_fetch(fetch_baseline, "file", output=output, base_url=base_url, updates=updates,
                    limit=limit, recipe=_recipe(recipe), progress=_bar("pubmed baseline"))
