"""`gap-replay decontaminate`: remove benchmark text (MedQA, MedMCQA, PubMedQA, MMLU) from OUT/clean."""

from __future__ import annotations

from pathlib import Path

import click


def _benchmark_table(report: dict) -> str:
    rows = [("benchmark", "dropped", "trimmed", "n-gram hits", "chars removed", "by source")]
    for name, rep in report.items():
        by_source = ", ".join(f"{k}={v}" for k, v in rep["by_source"].items()) or "-"
        rows.append((name, str(rep["documents_dropped"]), str(rep["documents_trimmed"]),
                     str(rep["ngram_hits"]), str(rep["chars_removed"]), by_source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


@click.command()
@click.option("--input", "input_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="Output directory of `process` (holds clean/ and stats.json); rewritten in place.")
@click.option("--benchmarks", "benchmarks", multiple=True, metavar="PATH",
              help="Benchmark file or folder (repeatable; NAME=PATH names it; paths given "
                   "after the options count too). Default: the recipe's decontamination.benchmarks.")
@click.argument("more_benchmarks", nargs=-1, type=click.Path(), metavar="")
@click.option("--mode", type=click.Choice(["drop", "trim"]), help="Drop contaminated documents or trim the spans (default: recipe, drop).")
@click.option("--ngram", type=int, help="Word n-gram length (default: recipe, 13).")
@click.option("--min-hits", type=int, help="Distinct shared n-grams that make a document contaminated (default: recipe, 1).")
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False),
              help="Recipe YAML (default: the one `process` recorded in OUT/recipe.json).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="Run config (configs/local.yaml).")
@click.option("--workers", type=int, help="Worker processes (default 1).")
@click.option("--executor", type=click.Choice(["local", "ray"]), help="Where tasks run (default local).")
@click.option("--address", help="Ray cluster address (with --executor ray).")
def decontaminate(input_dir, benchmarks, more_benchmarks, mode, ngram, min_hits, recipe_path, config_path,
                  workers, executor, address):
    """Drop (or trim) documents in OUT/clean that overlap evaluation benchmarks.

    Builds an index of word n-grams (13 by default) from the benchmark files you supply --
    MedQA and MedMCQA JSONL, PubMedQA ori_pqal.json or JSONL/parquet, MMLU CSV
    (question,A,B,C,D,answer) or parquet -- and checks every clean document against it.
    Shards are rewritten atomically; stats.json gets a `decontaminate_clean` stage and a
    per-benchmark `decontamination` report. Run `gap-replay mix` afterwards. Set the recipe's
    `decontamination.benchmarks` to have `process` do this in its pipeline instead.

    \b
    Example:
        gap-replay decontaminate --input out/ --benchmarks medqa/test.jsonl medmcqa/dev.jsonl
        gap-replay decontaminate --input out/ --benchmarks pubmedqa=data/ori_pqal.json \\
            --benchmarks mmlu/ --mode trim --ngram 13 --workers 4
    """
    from gap_replay.cli.core import _guard, _settings, absolute, executor_from, load_run_config, resolve_recipe
    from gap_replay.decontam.benchmarks import BenchmarkError
    from gap_replay.decontaminate_clean import run_decontaminate
    from gap_replay.stages.decontaminate import DecontaminationConfig

    config = load_run_config(config_path, False)
    recorded = Path(input_dir) / "recipe.json"
    recipe = resolve_recipe(recipe_path, config, None, fallback=str(recorded) if recorded.exists() else None)
    try:
        settings = DecontaminationConfig.from_recipe(recipe.data, recipe.origin)
        paths = tuple(benchmarks) + tuple(more_benchmarks)
        settings = settings.with_overrides(benchmarks=paths or None, mode=mode, ngram=ngram, min_hits=min_hits,
                                           base_dir=None if paths else settings.base_dir)
        if not settings.enabled:
            raise click.UsageError("no benchmarks: pass --benchmarks PATH... or set decontamination.benchmarks")
        settings.files()  # fail early, naming the file, before any worker starts
    except (BenchmarkError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    n_workers, kind, addr = _settings(config, workers, executor, address)
    input_dir = absolute(input_dir)
    with executor_from(kind, n_workers, addr) as ex:
        result = _guard(lambda: run_decontaminate(input_dir, settings, ex))
    click.echo(_benchmark_table(result["benchmarks"]))
