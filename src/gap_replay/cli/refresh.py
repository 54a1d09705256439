"""`gap-replay refresh`: the cron entry point (exit 0 done, 75 locked, 1 failed)."""

from __future__ import annotations

import logging
import sys
import time

import click

# The one line per run cron keeps: shown at every verbosity (the run's other INFO lines only with -v).
log = logging.getLogger("gap_replay.refresh.summary")
log.setLevel(logging.INFO)


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Refresh config (sources, recipe, output root, keep_versions, workers, format).")
@click.option("--output", type=click.Path(file_okay=False),
              help="Root holding versions/ and the current symlink (overrides the config's output).")
@click.option("--full", is_flag=True, help="Reprocess every document, not only new and changed ones.")
def refresh(config_path: str, output: str | None, full: bool) -> None:
    """Re-fetch every source conditionally and publish a new version if anything changed.

    Only new or changed documents go through the shared stages; the new
    version is built beside ROOT/current and swapped in atomically; the last
    keep_versions versions are kept. One summary log line per run.

    \b
    Exit codes: 0 done (new version or nothing changed), 75 another refresh
    holds ROOT/.lock, 1 failed (ROOT/current untouched).

    \b
    Examples:
        gap-replay refresh --config configs/cron-sample.yaml --output /tmp/gap-root
        gap-replay refresh --config configs/cron.yaml
    """
    from gap_replay.refresh import EXIT_FAILED, EXIT_LOCKED, LockHeld, RefreshConfig, RefreshError, \
        RefreshResult, run_refresh

    if not click.get_current_context().find_root().params.get("verbose"):
        # cron keeps the summary lines only: the failures they name are not logged twice (per URL
        # warnings of the scrapers); -v shows everything
        logging.getLogger("gap_replay").setLevel(logging.ERROR)
    try:
        cfg = RefreshConfig.load(config_path, output)
    except RefreshError as exc:
        raise click.ClickException(str(exc)) from exc
    started = time.monotonic()
    try:
        result = run_refresh(cfg, full=full)
    except LockHeld as exc:
        log.warning("%s", RefreshResult("locked", error=str(exc),
                                        seconds=time.monotonic() - started).summary_line())
        sys.exit(EXIT_LOCKED)
    except Exception as exc:  # cron needs a summary line and exit 1 whatever went wrong
        from gap_replay.errors import describe

        logging.getLogger("gap_replay.refresh").info("refresh failed", exc_info=True)  # with -v
        problems = (getattr(exc, "problems", None)  # RefreshError: one line per problem
                    or [describe(exc) or f"{type(exc).__name__}: {exc}"])
        seconds = time.monotonic() - started
        for problem in problems:  # one line each, however many lines the message had
            log.error("%s", RefreshResult("failed", error=problem, seconds=seconds).summary_line())
        sys.exit(EXIT_FAILED)
    log.info("%s", result.summary_line())
    sys.exit(result.exit_code)
