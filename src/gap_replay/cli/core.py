"""`gap-replay download | process | mix | stats`: the core chain from raw shards to mixed shards."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import click
import orjson
import yaml

from gap_replay.cli.errors import InvalidRecipe
from gap_replay.recipe import Recipe, RecipeError, load_recipe
from gap_replay.resources import sample_sites_dir, spec_dir

log = logging.getLogger("gap_replay.cli")

FORMATS = ("jsonl", "megatron")
MAX_NOTES = 3  # notes printed after acquisition; all of them are in OUT/acquire.json


# --- run configuration (configs/*.yaml) ----------------------------------------------------

def load_run_config(path: str | None, sample: bool) -> dict[str, Any]:
    """A run config (configs/sample.yaml, configs/local.yaml): how to run, not what to build."""
    if path is None and sample:
        path = str(spec_dir("configs") / "sample.yaml")
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise click.BadParameter(f"config file {path} not found", param_hint="--config") from None
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{path}: not valid YAML: {exc}", param_hint="--config") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: must be a mapping", param_hint="--config")
    allowed = {"recipe", "recipe_overrides", "output", "workers", "executor", "address", "format", "seed",
               "sources", "limits"}
    unknown = set(data) - allowed
    if unknown:
        raise click.BadParameter(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; "
                                 f"allowed: {', '.join(sorted(allowed))}", param_hint="--config")
    from gap_replay import limits

    try:
        limits.configure(data.get("limits"))
    except ValueError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--config") from None
    data["_path"] = path
    return data


def resolve_recipe(recipe_path: str | None, config: dict[str, Any], seed: int | None,
                   fallback: str | None = None) -> Recipe:
    """--recipe, else the config's recipe (`default` = gap_replay/recipe.yaml), else `fallback`.

    The config's `recipe_overrides` (and `seed`) apply on top of the config's own recipe; with
    an explicit --recipe R they only fill what R does not set, so R's values (good or bad) are
    what is validated and used. --seed wins over both.
    """
    path = recipe_path or config.get("recipe") or fallback
    if path == "default":
        path = None
    elif path and config.get("_path") and not recipe_path and not Path(path).is_absolute():
        beside = Path(config["_path"]).parent / path
        path = str(beside) if beside.exists() else path
    from_config = dict(config.get("recipe_overrides") or {})
    if config.get("seed") is not None:
        from_config["seed"] = config["seed"]
    defaults, overrides = (from_config, {}) if recipe_path else ({}, from_config)
    if seed is not None:
        overrides["seed"] = seed
    try:
        return load_recipe(path, overrides or None, defaults=defaults or None)
    except RecipeError as exc:
        where = (f" (with the recipe_overrides of {config['_path']})"
                 if from_config and config.get("_path") and not recipe_path else "")
        raise InvalidRecipe(exc, where) from None


def parse_formats(value: str | list | None) -> tuple[str, ...]:
    items = value if isinstance(value, list) else (value or "jsonl").split(",")
    formats = tuple(f.strip() for f in items if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise click.BadParameter(f"unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}",
                                 param_hint="--format")
    return formats


def parse_sources(value: str | list | None, recipe: Recipe) -> list[str]:
    if not value:
        return recipe.sources
    items = value if isinstance(value, list) else value.split(",")
    sources = [s.strip() for s in items if s.strip()]
    unknown = [s for s in sources if s not in recipe.sources]
    if unknown:
        raise click.BadParameter(f"source {unknown[0]!r} is not in the recipe ({', '.join(recipe.sources)})",
                                 param_hint="--sources")
    return sources


def executor_from(kind: str, workers: int, address: str | None) -> contextlib.closing:
    """The executor for `with`, closed when the block ends; a bad kind or a missing extra is one
    line, not a traceback."""
    from gap_replay.executors import make_executor

    try:
        return contextlib.closing(make_executor(kind, workers, address))
    except (RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def folder_lock(folder: str, command: str):
    """One run per output folder: a second one exits 75 naming the holder (gap_replay.lock)."""
    from gap_replay.lock import EXIT_LOCKED, LockHeld, output_lock

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(output_lock(folder, command))
    except LockHeld as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(EXIT_LOCKED) from None
    with stack:
        yield


# --- acquisition -------------------------------------------------------------------------

def acquire(sources: list[str], output: str, recipe: Recipe, workers: int, sample: bool,
            base_url: str | None = None, allow_partial: bool = False) -> None:
    """Acquire every source; a source that failed or reported problems ends the command (exit 1)
    with one line each, after all sources were tried, unless `allow_partial`."""
    from gap_replay.sources import AcquireError, note_lines, problem_lines, run_acquirers

    try:
        summaries = run_acquirers(sources, output, recipe.data, seed=recipe.seed, workers=workers,
                                  sample_sites=sample_sites_dir() if sample else None,
                                  base_url=base_url, allow_partial=allow_partial)
    except (AcquireError, ValueError) as exc:
        raise click.ClickException(f"acquisition failed:\n{exc}") from None
    notes = note_lines(summaries)
    for line in notes[:MAX_NOTES]:
        click.echo(f"note: {line}", err=True)
    if len(notes) > MAX_NOTES:
        click.echo(f"note: … and {len(notes) - MAX_NOTES} more in {output}/acquire.json", err=True)
    for line in problem_lines(summaries):  # only with allow_partial: otherwise raised above
        click.echo(f"warning: {line}", err=True)


# --- reporting ---------------------------------------------------------------------------

def source_table(output: str) -> str:
    """Per source: documents after processing and in the shards, tokens mixed, share vs the recipe's
    share, and a legend, since the two document counts differ by design (budgets)."""
    out = Path(output)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    stats = orjson.loads((out / "stats.json").read_bytes()) if (out / "stats.json").exists() else {"stages": {}}
    last_stage = list(stats["stages"])[-1] if stats["stages"] else None
    train: dict[str, int] = {}
    valid: dict[str, int] = {}
    mixed: dict[str, int] | None = {}  # None: a manifest from before `documents_by_source`
    for shard in manifest["shards"]:
        target = train if shard["path"].startswith("shards/train/") else valid
        for src, n in shard["tokens_by_source"].items():
            target[src] = target.get(src, 0) + n
        if "documents_by_source" not in shard:
            mixed = None
        elif mixed is not None:
            for src, n in shard["documents_by_source"].items():
                mixed[src] = mixed.get(src, 0) + n
    targets = manifest["totals"]["target_tokens_by_source"]
    total_train = sum(train.values()) or 1
    total_target = sum(targets.values()) or 1
    rows = [("source", "clean docs", "mixed docs", "train tokens", "val tokens", "share", "recipe share", "target")]
    for src in sorted(set(targets) | set(train)):
        docs = stats["stages"].get(last_stage, {}).get(src, {}).get("out", 0) if last_stage else 0
        rows.append((src, f"{docs:,}", f"{mixed.get(src, 0):,}" if mixed is not None else "-",
                     f"{train.get(src, 0):,}", f"{valid.get(src, 0):,}",
                     f"{100 * train.get(src, 0) / total_train:.2f}%",
                     f"{100 * targets.get(src, 0) / total_target:.2f}%", f"{targets.get(src, 0):,}"))
    rows.append(("total", f"{sum(int(r[1].replace(',', '')) for r in rows[1:]):,}",
                 f"{sum(mixed.values()):,}" if mixed is not None else "-", f"{sum(train.values()):,}",
                 f"{sum(valid.values()):,}", "100.00%", "100.00%", f"{sum(targets.values()):,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                      for r in rows)
    legend = ("clean docs: after clean, filter and dedup; mixed docs: sequences in the train + validation shards,\n"
              "fewer or repeated as each source is down- or up-sampled to its target tokens"
              + (" (-: not recorded by the gap-replay version that wrote this manifest)" if mixed is None else ""))
    return table + "\n" + legend


def stage_table(stats: dict) -> str:
    rows = [("stage", "source", "in", "out", "dropped", "quarantined")]
    for stage, by_source in stats["stages"].items():
        for src, c in by_source.items():
            dropped = ", ".join(f"{k}={v}" for k, v in c["dropped"].items()) or "0"
            rows.append((stage, src, str(c["in"]), str(c["out"]), dropped, str(c["quarantined"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


# --- commands ----------------------------------------------------------------------------

_common = [
    click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False),
                 help="Recipe YAML (default: the config's, else gap_replay/recipe.yaml)."),
    click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                 help="Run config: how to run (configs/local.yaml)."),
    click.option("--workers", type=int, help="Worker processes (default 1)."),
    click.option("--executor", type=click.Choice(["local", "ray"]), help="Where tasks run (default local)."),
    click.option("--address", help="Ray cluster address (with --executor ray)."),
    click.option("--seed", type=int, help="Override the recipe's seed."),
]


def common_options(fn):
    for option in reversed(_common):
        fn = option(fn)
    return fn


def absolute(path: str) -> str:
    """Local paths made absolute so workers started elsewhere (Ray) find them; URLs unchanged."""
    return path if "://" in path else os.path.abspath(path)


def _settings(config: dict, workers, executor, address) -> tuple[int, str, str | None]:
    return (int(workers or config.get("workers") or 1), executor or config.get("executor") or "local",
            address or config.get("address"))


@click.command()
@click.option("--sample", is_flag=True, help="Use the bundled offline sample (no network); the "
              "run config defaults to configs/sample.yaml.")
@click.option("--sources", help="Comma-separated sources (default: all in the recipe).")
@click.option("--output", type=click.Path(file_okay=False),
              help="Output directory OUT (required, unless the config sets output:).")
@click.option("--format", "formats", help="Comma-separated outputs: jsonl[,megatron].")
@click.option("--base-url", help="Send every source's requests to this mirror (scheme+host, "
              "optional path prefix) instead of the real sites.")
@click.option("--allow-partial", is_flag=True,
              help="A source that fails is a warning: process and mix what was acquired.")
@click.option("--dry-run", is_flag=True,
              help="Check everything (recipe, tokenizer, output folder, credentials), print the "
                   "plan (route, budget, requests, disk and time per source) and exit; no request. "
                   "Exit 1 after the plan when a check failed.")
@common_options
def download(sample, sources, output, formats, base_url, allow_partial, dry_run, recipe_path,
             config_path, workers, executor, address, seed):
    """Acquire, process and mix every source into OUT; print a per-source table.

    \b
    Examples:
        gap-replay download --sample --output sample-out
        gap-replay download --sample --output sample-out --workers 2
        gap-replay download --config configs/local.yaml --sources guidelines,replay --output out
        gap-replay download --recipe my-recipe.yaml --output out --dry-run

    Before the first request everything is checked (the recipe's keys and values, the
    tokenizer, the output folder, credentials of the chosen routes); each problem is one line
    and nothing is fetched. Which recipe: --recipe R, else the config's `recipe:`. The config's
    `recipe_overrides` apply on top of its own recipe, but with an explicit --recipe they only
    fill keys R leaves unset: R's values win and are validated as written. --seed wins over both.

    A source that cannot be acquired (unreachable, listing failed, nothing found, far fewer
    documents than last time) ends the run with exit 1 and one line per problem, after every
    source was tried; rerun to resume, or pass --allow-partial to go on with the rest.
    """
    from gap_replay.mix import run_mix
    from gap_replay.process import run_process

    config = load_run_config(config_path, sample)
    output = output or config.get("output")
    if not output:
        raise click.UsageError("--output is required (or set output: in the config)")
    output = absolute(output)
    try:
        recipe = resolve_recipe(recipe_path, config, seed)
    except InvalidRecipe as exc:  # report the output folder's and tokenizer's problems with it
        from gap_replay.preflight import check_output, check_tokenizer_of_invalid

        fail_before_fetching(exc.problems + check_output(output) + check_tokenizer_of_invalid(exc.error))
    chosen = parse_sources(sources or config.get("sources"), recipe)
    fmt = parse_formats(formats or config.get("format"))
    n_workers, kind, addr = _settings(config, workers, executor, address)
    from gap_replay.plan import routes

    route_map = routes(recipe, chosen, sample, base_url)
    no_plan = None
    if dry_run:  # the plan, then the problems (exit 1) if there are any
        try:
            click.echo(_plan(output, recipe, route_map, sample, n_workers))
        except (ValueError, OSError) as exc:  # the problems below still need printing
            no_plan = click.ClickException(f"no plan: {exc}")
    fail_on_preflight(output, recipe, chosen, route_map)
    if dry_run:
        if no_plan is not None:
            raise no_plan
        return
    _warn_on_free_space(output, recipe, route_map)
    with folder_lock(output, "download"):
        acquire(chosen, output, recipe, n_workers, sample, base_url, allow_partial)
        with executor_from(kind, n_workers, addr) as ex:
            _guard(lambda: run_process(output, output, recipe, ex, chosen))
            _guard(lambda: run_mix(output, output, recipe, ex, fmt))
    click.echo(source_table(output))


def fail_on_preflight(output: str, recipe: Recipe, sources: list[str], route_map: dict[str, str]) -> None:
    """Everything that can be checked before the first request; one line per problem."""
    from gap_replay.preflight import preflight

    fail_before_fetching(preflight(output, recipe, sources, route_map))


def fail_before_fetching(problems: list[str]) -> None:
    """Exit 1 with one line per preflight problem (gap_replay.preflight), before any request."""
    if problems:
        raise click.ClickException("nothing was fetched; fix first:\n" + "\n".join(problems))


def _warn_on_free_space(output: str, recipe: Recipe, route_map: dict[str, str]) -> None:
    """One warning line when OUT's file system has less free space than the plan estimates (a
    resumed or partial run may need less, so it is not an error); the free space at -v."""
    from gap_replay.plan import estimate
    from gap_replay.preflight import free_bytes, free_space

    free = free_bytes(output)
    log.info("output %s: %s", output, free_space(free))
    need = sum(r.disk for r in estimate(recipe, route_map))
    if free is not None and free < need:
        click.echo(f"warning: {output} has {free / 1e9:,.1f} GB free; the plan estimates "
                   f"~{need / 1e9:,.0f} GB (see `gap-replay download --dry-run`)", err=True)


def _plan(output: str, recipe: Recipe, route_map: dict[str, str], sample: bool, workers: int) -> str:
    """`download --dry-run`'s plan (gap_replay.plan: estimates from measured throughput)."""
    from gap_replay.plan import estimate, render
    from gap_replay.preflight import free_bytes
    from gap_replay.stages.decontaminate import DecontaminationConfig

    decontaminate = DecontaminationConfig.from_recipe(recipe.data, recipe.origin).enabled
    rows = estimate(recipe, route_map, workers, decontaminate)
    return (f"plan for {output} (recipe {recipe.name}, {recipe.origin}); nothing was fetched\n"
            + render(rows, free_bytes(output), sample))


def _guard(fn):
    from gap_replay.tokenizer import TokenizerError

    try:
        return fn()
    except (FileNotFoundError, TokenizerError, RecipeError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--input", "input_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="Directory holding raw/<source>/...")
@click.option("--output", type=click.Path(file_okay=False), help="Where clean/ and stats.json go (default: --input).")
@click.option("--sources", help="Comma-separated sources (default: all in the recipe).")
@common_options
def process(input_dir, output, sources, recipe_path, config_path, workers, executor, address, seed):
    """Run the shared stages (clean, filter, dedup, split) over OUT/raw into OUT/clean.

    Writes clean/<source>/..., stats.json (per stage and source: in, out, dropped by reason,
    quarantined) and quarantine/. A rerun skips completed tasks. The recipe defaults to the
    one a previous run recorded in OUT/recipe.json, else gap_replay/recipe.yaml.

    \b
    Example:
        gap-replay process --input out/ --workers 4
        gap-replay process --input out/ --output out2/ --recipe my-recipe.yaml
    """
    from gap_replay.process import run_process

    config = load_run_config(config_path, False)
    recorded = Path(input_dir) / "recipe.json"
    recipe = resolve_recipe(recipe_path, config, seed, fallback=str(recorded) if recorded.exists() else None)
    n_workers, kind, addr = _settings(config, workers, executor, address)
    input_dir, output = absolute(input_dir), absolute(output or input_dir)
    with folder_lock(output, "process"), executor_from(kind, n_workers, addr) as ex:
        stats = _guard(lambda: run_process(input_dir, output, recipe, ex, parse_sources(sources, recipe)))
    click.echo(stage_table(stats))


@click.command()
@click.option("--input", "input_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="Directory holding clean/<source>/... (from `process`).")
@click.option("--output", type=click.Path(file_okay=False), help="Where shards/ and manifest.json go (default: --input).")
@click.option("--format", "formats", help="Comma-separated outputs: jsonl[,megatron].")
@common_options
def mix(input_dir, output, formats, recipe_path, config_path, workers, executor, address, seed):
    """Tokenize OUT/clean and mix it to the recipe's token budgets into OUT/shards + manifest.json.

    The recipe defaults to the one `process` recorded in OUT/recipe.json.

    \b
    Example:
        gap-replay mix --input out/
        gap-replay mix --input out/ --output mixed/ --format jsonl,megatron --workers 4
    """
    from gap_replay.mix import run_mix

    config = load_run_config(config_path, False)
    recorded = Path(input_dir) / "recipe.json"
    recipe = resolve_recipe(recipe_path, config, seed, fallback=str(recorded) if recorded.exists() else None)
    fmt = parse_formats(formats or config.get("format"))
    n_workers, kind, addr = _settings(config, workers, executor, address)
    input_dir, output = absolute(input_dir), absolute(output or input_dir)
    with folder_lock(output, "mix"), executor_from(kind, n_workers, addr) as ex:
        _guard(lambda: run_mix(input_dir, output, recipe, ex, fmt))
    click.echo(source_table(output))


def _read_run_json(path: Path):
    """A damaged stats.json / manifest.json is one line naming it, not a traceback."""
    from gap_replay.io.paths import read_json

    try:
        return read_json(path)
    except orjson.JSONDecodeError as exc:
        raise click.ClickException(f"{path} is not valid JSON ({exc}); rerun the command that "
                                   "wrote it (`gap-replay process`, then `mix`)") from None


@click.command()
@click.argument("output", type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print stats.json and the manifest totals as JSON.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report with charts (gap_replay.report).")
def stats(output, as_json, html_path):
    """Show what a run kept and dropped per stage and source, and the mix per source.

    \b
    Example:
        gap-replay stats sample-out
        gap-replay stats sample-out --json | jq .stages.filter
        gap-replay stats sample-out --html report.html
    """
    out = Path(output)
    if not (out / "stats.json").exists():
        raise click.ClickException(f"{out / 'stats.json'} not found: run `gap-replay process` first")
    data = _read_run_json(out / "stats.json")
    manifest = _read_run_json(out / "manifest.json") if (out / "manifest.json").exists() else None
    if html_path:
        from gap_replay.report import write_html_report

        write_html_report(out, html_path)
    if as_json:
        if manifest:
            data = {**data, "totals": manifest["totals"]}
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(stage_table(data))
    if manifest:
        click.echo("")
        click.echo(source_table(output))
