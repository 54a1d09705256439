"""`gap-replay`: acquire, process, mix, publish and refresh the GAP-Replay corpus."""

from __future__ import annotations

import logging

import click

from gap_replay import __version__
from gap_replay.cli.lazy import LazyGroup

COMMANDS = {
    "download": "gap_replay.cli.core:download",
    "process": "gap_replay.cli.core:process",
    "mix": "gap_replay.cli.core:mix",
    "stats": "gap_replay.cli.core:stats",
    "ingest": "gap_replay.cli.ingest:ingest",
    "pubmed": "gap_replay.cli.pubmed:pubmed",
    "replay": "gap_replay.cli.replay:replay",
    "decontaminate": "gap_replay.cli.decontaminate:decontaminate",
    "push": "gap_replay.cli.push:push",
    "refresh": "gap_replay.cli.refresh:refresh",
    "decode": "gap_replay.cli.decode:decode",
}


def setup_logging(verbose: int, quiet: bool = False, progress: bool | None = None) -> None:
    """Warnings and errors by default (the commands print their own results); -v adds progress
    notes, -vv debugging, -q only errors. Bars only on a terminal unless --progress/--no-progress."""
    from gap_replay import progress as bars

    level = logging.ERROR if quiet else logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    bars.configure(False if quiet and progress is None else progress)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="gap-replay")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and each command's summary.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars (default: only when stderr is a terminal).")
def cli(verbose: int, quiet: bool, progress: bool | None) -> None:
    """Rebuild and refresh GAP-Replay, MEDITRON's medical pretraining corpus.

    \b
    Quick start (offline, bundled sample):
        gap-replay download --sample --output out/
    """
    setup_logging(verbose, quiet, progress)
