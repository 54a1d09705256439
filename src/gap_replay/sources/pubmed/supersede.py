"""Remove superseded documents from raw shards in place (a refresh's newer copies replace them).

Used by the S2 release diffs (rows named by `delete_files`/`update_files`, by corpusid) and by
the PMC Cloud acquirer (a new version of an article, by PMCID). Each shard is rewritten to a
temporary file and swapped in atomically only when something was dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from gap_replay.document import Document
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.sources.ledger import note_rewrite


def drop_superseded(output: Path, source: str, is_gone: Callable[[Document], bool]) -> int:
    """Drop the documents of `OUT/raw/<source>/` for which `is_gone(doc)`; returns how many."""
    removed = 0
    for shard in list_shards(Path(output) / "raw" / source):
        quarantine = Quarantine()
        tmp = shard + ".refresh.jsonl.gz"
        n_drop = 0
        with ShardWriter(tmp) as writer:
            for doc in iter_documents(shard, quarantine, source):
                if is_gone(doc):
                    n_drop += 1
                    continue
                writer.write(doc)
        if n_drop:
            os.replace(tmp, shard)
            note_rewrite(output, shard, {"superseded_or_deleted": n_drop})  # acquire stage
            removed += n_drop
        else:
            os.unlink(tmp)
    return removed
