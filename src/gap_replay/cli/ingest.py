"""`gap-replay ingest`: files you already have → raw document shards that `process` takes."""

from __future__ import annotations

import logging

import click

from gap_replay.sources.ingest import run_ingest
from gap_replay.sources.pubmed.ingest import FORMATS

log = logging.getLogger(__name__)

# Formats of other families, read through their source (sources/base.py); the others are the
# PubMed family's (sources/pubmed/ingest.py FORMATS).
OTHER_FORMATS = ("redpajama",)


def _source(fmt: str):
    """The replay family's source for `redpajama`; None lets run_ingest read a PubMed format."""
    if fmt == "redpajama":
        from gap_replay.sources.replay.ingest import RedPajamaFiles

        return RedPajamaFiles()
    return None


@click.command()
@click.option("--format", "fmt", type=click.Choice([*FORMATS, *OTHER_FORMATS]), required=True,
              help="jats: PMC/Europe PMC XML, .nxml, OA .tar.gz; medline: PubMed XML(.gz); "
                   "s2orc / s2-papers / s2-abstracts: Semantic Scholar JSON lines; "
                   "redpajama: RedPajama JSON lines.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory; documents go to OUTPUT/raw/<source>/<subset>/.")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Recipe whose sources.papers.upsampling sets meta.quality_weight.")
@click.option("--all-records", is_flag=True,
              help="Keep S2 rows without a PubMed/PMC link (default: PubMed only).")
@click.option("--force", is_flag=True, help="Re-ingest inputs already recorded as done.")
def ingest(fmt: str, paths: tuple[str, ...], output: str, recipe: str | None, all_records: bool,
           force: bool) -> None:
    """Parse local PubMed / S2 / RedPajama files into OUTPUT/raw/ shards.

    \b
    Examples:
        gap-replay ingest --format jats oa_package/*.tar.gz PMC6095483.xml --output out/
        gap-replay ingest --format medline pubmed25n0001.xml.gz updates/ --output out/
        gap-replay ingest --format s2-papers papers/ --output out/      # metadata index first
        gap-replay ingest --format s2orc s2orc/ --output out/           # joins that index
        gap-replay ingest --format s2-abstracts abstracts/ --output out/

    Bad records are written to OUTPUT/quarantine/ with file, line and reason; a rerun skips
    files already ingested (OUTPUT/state.sqlite).
    """
    from tqdm import tqdm  # imported after the group set TQDM_DISABLE (tqdm reads it at import)

    from gap_replay.cli.core import folder_lock

    from gap_replay.recipe import RecipeError, load_recipe

    try:  # validated like every command's recipe, before any work
        recipe_data = load_recipe(recipe).data
    except RecipeError as exc:
        from gap_replay.cli.errors import InvalidRecipe

        raise InvalidRecipe(exc) from None
    try:
        with folder_lock(output, "ingest"):
            report = run_ingest(fmt, paths, output, all_records=all_records, force=force,
                                recipe=recipe_data, source=_source(fmt),
                                progress=lambda it: tqdm(it, desc=f"ingest {fmt}", unit="file"))
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc
    summary = report.to_dict()
    click.echo(f"files ingested: {summary['files']} (skipped, already done: {summary['skipped_files']})")
    click.echo(f"records in: {summary['records_in']}")
    for source, n in summary["written"].items():
        click.echo(f"  written {source}: {n}")
    for reason, n in summary["dropped"].items():
        click.echo(f"  dropped {reason}: {n}")
    for reason, n in summary["marked"].items():
        click.echo(f"  written, marked for the filter stage to drop ({reason}): {n}")
    click.echo(f"  quarantined: {summary['quarantined']} (see {output}/quarantine/)")
    for reason, n in summary["fulltext_dedup"].items():
        click.echo(f"  abstracts marked for the filter stage to drop (full text now present, "
                   f"{reason}): {n}")
