"""`gap-replay replay`: the general-domain replay sample (RedPajama-1T) to a token budget."""

from __future__ import annotations

import logging

import click

log = logging.getLogger(__name__)


def _size(ctx, param, value):
    if value is None:
        return None
    from gap_replay.sources.replay.settings import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _parquet(ctx, param, values):
    mapping = {}
    for value in values:
        subset, sep, pattern = value.partition("=")
        if not sep or not subset or not pattern:
            raise click.BadParameter(f"expected SUBSET=PATH_OR_GLOB, got {value!r}")
        mapping[subset.strip()] = pattern.strip()
    return mapping


@click.group()
def replay() -> None:
    """Sample general-domain replay documents (RedPajama-1T) to a token budget.

    \b
    Example:
        gap-replay replay sample --target-tokens 420M --output out/
    """


@replay.command("sample")
@click.option("--target-tokens", callback=_size, default=None,
              help="Token budget, e.g. 420M, 1.5B, 1000000. [default: recipe "
                   "sources.replay.target_tokens]")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Output directory; documents go to OUTPUT/raw/replay/<subset>/.")
@click.option("--base-url", default=None,
              help="Replace scheme and host of the URL lists and of every data file URL "
                   "(a path becomes a prefix): mirrors, tests, the sample.")
@click.option("--subsets", default=None,
              help="Comma-separated RedPajama subsets. [default: recipe replay.subsets]")
@click.option("--seed", type=int, default=None, help="Sampling seed. [default: recipe seed]")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Files read in parallel (results do not depend on it).")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Recipe YAML. [default: the bundled gap_replay/recipe.yaml]")
@click.option("--url-lists", default=None,
              help="Master urls.txt, a template with {subset} for per-subset lists, or a folder "
                   "(local or fsspec URL) of <subset>_*.jsonl files (the -Sample layout).")
@click.option("--missing-subsets", type=click.Choice(["respread", "fail"]), default=None,
              help="A chosen subset with no data files: re-spread its budget over the others "
                   "by weight, or fail. [default: recipe replay.missing_subsets, respread]")
@click.option("--tokenizer", type=click.Path(exists=True, dir_okay=False), default=None,
              help="SentencePiece .model or tokenizer.json to measure tokens per character on "
                   "the first sample (else the recipe's chars_per_token).")
@click.option("--parquet", multiple=True, callback=_parquet, metavar="SUBSET=PATH",
              help="Read SUBSET from parquet files (folder, glob or hf://datasets/...) with "
                   "datasets streaming instead of the URL lists. Repeatable.")
@click.option("--rate", type=float, default=None,
              help="Requests per second per host and worker. [default: recipe replay.rate]")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="Where the file reads run.")
@click.option("--address", default=None, help="Ray cluster address (with --executor ray).")
def sample(target_tokens, output, base_url, subsets, seed, workers, recipe, url_lists,
           missing_subsets, tokenizer, parquet, rate, executor, address) -> None:
    """Sample RedPajama-1T documents until the estimated tokens reach the budget.

    Files are chosen in a seed-fixed hash order and documents by a hash of
    (seed, file, line), so the same seed gives the same documents whatever
    --workers is, and only as many files are read as the budget needs.

    \b
    Examples:
        gap-replay replay sample --target-tokens 420M --output out/
        gap-replay replay sample --target-tokens 1M --output out/ \\
            --base-url http://127.0.0.1:8000/redpajama --subsets wikipedia,arxiv
        gap-replay replay sample --target-tokens 50M --output out/ \\
            --parquet wikipedia=data/wikipedia/ --subsets wikipedia
    """
    from gap_replay.http import FetchError
    from gap_replay.sources.replay.sampler import ReplayError, run_sample
    from gap_replay.sources.replay.settings import ReplaySettings
    from gap_replay.sources.replay.file_task import HTTPSettings

    from gap_replay.recipe import RecipeError, load_recipe

    try:  # the whole recipe is checked before any request, not only its replay section
        recipe_data = load_recipe(recipe).data
    except RecipeError as exc:
        from gap_replay.cli.errors import InvalidRecipe

        raise InvalidRecipe(exc) from None
    overrides = {"target_tokens": target_tokens, "seed": seed, "url_lists": url_lists,
                 "tokenizer": tokenizer, "rate": rate, "missing_subsets": missing_subsets,
                 "subsets": tuple(subsets.split(",")) if subsets else None}
    try:
        settings = ReplaySettings.from_recipe(recipe_data, **overrides)
    except (ValueError, TypeError) as exc:
        raise click.UsageError(f"replay settings: {exc}") from exc
    if parquet:
        settings.hub = {**settings.hub, **parquet}
    from gap_replay.cli.core import fail_before_fetching
    from gap_replay.preflight import check_output

    fail_before_fetching(check_output(output))
    http = HTTPSettings(base_url=base_url, rate=settings.rate, max_resumes=settings.max_resumes)
    try:
        summary = run_sample(settings, output, http=http, workers=workers, executor=executor,
                             address=address)
    except (ReplayError, FetchError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _print_summary(summary)
    for line in summary.get("problems") or ():
        click.echo(f"problem: {line}", err=True)
    if summary.get("problems"):
        raise SystemExit(1)


def _print_summary(summary: dict) -> None:
    click.echo(f"{'subset':<16}{'documents':>12}{'est. tokens':>15}{'budget':>15}"
               f"{'files read':>12}{'rate':>10}")
    for name, s in summary["subsets"].items():
        click.echo(f"{name:<16}{s['documents']:>12,}{s['estimated_tokens']:>15,}"
                   f"{s['budget_tokens']:>15,}{s['files_read']:>6}/{s['files_listed']:<5}"
                   f"{s['document_rate']:>10.4f}{'  short' if s['short'] else ''}")
    click.echo(f"{'total':<16}{summary['documents']:>12,}{summary['estimated_tokens']:>15,}"
               f"{summary['target_tokens']:>15,}")
    for line in summary.get("notes") or ():
        click.echo(f"note: {line}")
    if summary["quarantined"]:
        click.echo(f"quarantined records: {summary['quarantined']} (see OUTPUT/quarantine/replay/)")
