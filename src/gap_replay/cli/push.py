"""`gap-replay push`: publish the cleaned text as parquet + a dataset card on the Hugging Face Hub."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path

import click

log = logging.getLogger(__name__)
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@click.option("--repo-id", required=True, help="Dataset repository on the Hub, ORG/NAME.")
@click.option("--private", is_flag=True, help="Create the repository private (ignored if it exists).")
@click.option("--include-restricted", is_flag=True,
              help="Also publish guideline subsets whose licence forbids redistribution.")
@click.option("--dry-run", "dry_run", type=click.Path(file_okay=False),
              help="Write the files that would be uploaded to DIR and upload nothing.")
def push(out: str, repo_id: str, private: bool, include_restricted: bool, dry_run: str | None) -> None:
    """Upload OUT/clean/ as parquet per source and split, with a dataset card.

    One config per source (guidelines, abstracts, papers, replay), files
    `<source>/<split>-NNNNN.parquet`, and a README.md with the recipe,
    counts, licences and the not-for-clinical-use advisory. The token comes
    from `hf auth login` or HF_TOKEN; HF_ENDPOINT selects another Hub.

    \b
    Examples:
        gap-replay push out/ --repo-id me/gap-replay --dry-run /tmp/export
        HF_TOKEN=hf_... gap-replay push out/ --repo-id my-org/gap-replay --private
    """
    from gap_replay.formats.hf import upload_export

    if not REPO_ID.match(repo_id):
        raise click.BadParameter(f"{repo_id!r} is not ORG/NAME", param_hint="--repo-id")
    if dry_run:
        summary = _build(out, dry_run, include_restricted, repo_id)
        _report(summary, f"dry run: {len(summary.files)} files in {dry_run} (nothing uploaded)")
        return
    from huggingface_hub import get_token
    from huggingface_hub.errors import HfHubHTTPError

    if not get_token():
        raise click.ClickException("no Hugging Face token: run `hf auth login` or set HF_TOKEN")
    staging = Path(tempfile.mkdtemp(prefix="gap-replay-push-"))
    try:
        summary = _build(out, staging / "export", include_restricted, repo_id)
        try:
            urls = upload_export(staging / "export", repo_id, private=private)
        except HfHubHTTPError as exc:  # one line: URL, status, the Hub's reason, the fix
            from gap_replay.errors import describe

            raise click.ClickException(f"upload to {repo_id} failed: {describe(exc)}") from exc
        _report(summary, f"pushed {len(summary.files)} files to {repo_id} in {len(urls)} commit(s)")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build(out, dest, include_restricted, repo_id):
    from gap_replay.formats.hf import build_export

    try:
        return build_export(out, dest, include_restricted=include_restricted, repo_id=repo_id)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc


def _report(summary, headline: str) -> None:
    click.echo(f"{'source':<12}{'train':>10}{'validation':>12}")
    for source, rows in summary.rows.items():
        click.echo(f"{source:<12}{rows['train']:>10,}{rows['validation']:>12,}")
    for (source, subset), n in sorted(summary.withheld.items()):
        click.echo(f"withheld {source}/{subset}: {n:,} documents (licence forbids redistribution)")
    click.echo(headline)
