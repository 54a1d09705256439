"""`python -m gap_replay` is `gap-replay`."""

from gap_replay.cli.main import cli

if __name__ == "__main__":
    cli()
