"""`gap-replay decode`: print the documents of the mixed shards back as text.

The tokenizer is the one OUT/manifest.json records (its `source`: a file, `sample:NAME` or a
Hub id at the recorded commit), checked against the recorded sha256 and ids, so what is printed
is what a trainer reading the shards sees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import click

SPLIT_CHOICES = ("train", "validation")


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@click.option("--shard", "shard", metavar="N|PATH",
              help="Only this shard: its number within --split (0 = first), or its path.")
@click.option("--id", "doc_id", metavar="ID", help="Only documents with this id (all its repeats).")
@click.option("--split", type=click.Choice(SPLIT_CHOICES),
              help="Only this split (default: train, then validation; with --shard N: train).")
@click.option("--limit", type=click.IntRange(min=1), metavar="K", help="Stop after K documents.")
@click.option("--megatron", "from_megatron", is_flag=True,
              help="Read OUT/megatron/SPLIT.{bin,idx} instead of the JSONL shards (sequences carry no "
                   "id: --id and --shard do not apply).")
@click.option("--tokenizer", "tokenizer_path", metavar="PATH",
              help="Decode with this tokenizer file (or sample:NAME / hf:ORG/NAME) instead of the one the "
                   "manifest records, e.g. when that path is not available here.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per document: id, source, split, shard, line, text.")
def decode(out: str, shard: str | None, doc_id: str | None, split: str | None, limit: int | None,
           from_megatron: bool, tokenizer_path: str | None, as_json: bool) -> None:
    """Print the documents of OUT's shards as text, using the manifest's tokenizer.

    Each document is printed after a `### ID (source, split, N tokens,
    SHARD:LINE)` line; the end-of-document token is not printed.

    \b
    Examples:
        gap-replay decode out/ --limit 3
        gap-replay decode out/ --id pmid:18405359
        gap-replay decode out/ --split validation --shard 1
        gap-replay decode out/ --shard shards/train/shard-00000.jsonl.gz --json
        gap-replay decode out/ --megatron --split validation --limit 2
        gap-replay decode out/ --tokenizer ~/llama-2/tokenizer.model
    """
    from gap_replay.tokenizer import Tokenizer, TokenizerError

    manifest_path = Path(out) / "manifest.json"
    if not manifest_path.is_file():
        raise click.ClickException(f"{manifest_path} not found; run `gap-replay mix --input {out}` (or "
                                   "`gap-replay download`) first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entry = manifest.get("tokenizer") or {}
    try:
        tok = Tokenizer.from_manifest(entry, base_dir=out, path=tokenizer_path, fallback=_recipe_tokenizer(out))
    except TokenizerError as exc:
        hint = "" if tokenizer_path or "--tokenizer" in str(exc) else \
            "; pass --tokenizer PATH to decode with a copy of it"
        raise click.ClickException(f"{exc}{hint}") from None
    if tokenizer_path and entry.get("sha256") and entry["sha256"] != tok.sha256:
        click.echo(f"note: {tokenizer_path} is not the file the manifest records (sha256 differs); "
                   "its ids match, so the text should be the same", err=True)

    if from_megatron:
        if shard is not None or doc_id is not None:
            raise click.UsageError("--megatron reads sequences without ids: drop --shard and --id")
        rows = _megatron_rows(out, split)
    else:
        rows = _jsonl_rows(out, manifest, shard, split)
    shown = 0
    for row in rows:
        if doc_id is not None and row["id"] != doc_id:
            continue
        ids = row.pop("input_ids")
        if tok.append_eod and ids and ids[-1] == tok.eod_id:
            ids = ids[:-1]
        row["text"] = tok.decode(ids)
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(f"### {row['id']} ({row['source']}, {row['split']}, {row['tokens']} tokens, "
                       f"{row['shard']}:{row['line']})")
            click.echo(row["text"])
            click.echo()
        shown += 1
        if limit and shown >= limit:
            break
    if shown == 0:
        what = f"id {doc_id!r}" if doc_id is not None else "documents"
        raise click.ClickException(f"no {what} in the selected shards of {out}")


def _recipe_tokenizer(out: str) -> str | None:
    """`tokenizer.path` of OUT/recipe.json, for manifests written before `source` was recorded."""
    try:
        return json.loads((Path(out) / "recipe.json").read_text(encoding="utf-8"))["tokenizer"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _jsonl_rows(out: str, manifest: dict, shard: str | None, split: str | None) -> Iterator[dict]:
    from gap_replay.formats.shards import iter_shard_records, manifest_shards, shard_path

    if shard is not None and shard.isdigit():
        entries = manifest_shards(manifest, split or "train")
        if int(shard) >= len(entries):
            raise click.BadParameter(f"{split or 'train'} has {len(entries)} shards (0..{len(entries) - 1})",
                                     param_hint="--shard")
        entries = [entries[int(shard)]]
    elif shard is not None:
        wanted = os.path.realpath(shard if os.path.exists(shard) else os.path.join(out, shard))
        if not os.path.isfile(wanted):
            raise click.BadParameter(f"{shard}: no such shard file (a number, or a path under {out} or "
                                     "absolute)", param_hint="--shard")
        entries = [e for e in manifest.get("shards", []) if os.path.realpath(shard_path(out, e)) == wanted]
        entries = entries or [{"path": wanted}]  # not in the manifest: read it unchecked
    else:
        entries = [e for s in ([split] if split else SPLIT_CHOICES) for e in manifest_shards(manifest, s)]
    for entry in entries:
        path = shard_path(out, entry)
        for lineno, record in iter_shard_records(path, entry.get("sha256")):
            ids = record.get("input_ids")
            if not isinstance(ids, list):
                raise click.ClickException(f"{path}:{lineno}: record has no input_ids list")
            yield {"id": record.get("id", ""), "source": record.get("source", ""), "split": record.get("split", ""),
                   "tokens": len(ids), "shard": entry["path"], "line": lineno, "input_ids": ids}


def _megatron_rows(out: str, split: str | None) -> Iterator[dict]:
    from gap_replay.formats.megatron import megatron_prefix
    from gap_replay.formats.megatron_read import iter_megatron

    for name in [split] if split else SPLIT_CHOICES:
        prefix = megatron_prefix(out, name)
        if not os.path.isfile(prefix + ".idx"):
            raise click.ClickException(f"{prefix}.idx not found; write it with `gap-replay mix --input "
                                       f"{out} --format jsonl,megatron`, or decode the JSONL shards (drop --megatron)")
        for i, ids in enumerate(iter_megatron(prefix)):
            yield {"id": f"#{i}", "source": "", "split": name, "tokens": int(ids.size),
                   "shard": f"megatron/{name}.bin", "line": i, "input_ids": ids.tolist()}
