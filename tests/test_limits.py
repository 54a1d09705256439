"""gap_replay.limits: a run config's `limits:` reach the readers, in the workers too."""

from __future__ import annotations

import orjson
import pytest

from conftest import run_cli
from gap_replay import limits
from gap_replay.io import ShardWriter


def test_unknown_or_bad_limits_are_rejected_by_name():
    with pytest.raises(ValueError, match=r"limits\.max_lines: unknown limit; known: .*max_line_bytes"):
        limits.configure({"max_lines": 5})
    with pytest.raises(ValueError, match=r"limits\.max_line_bytes: must be a positive integer"):
        limits.configure({"max_line_bytes": "64M"})


def test_a_run_configs_line_limit_quarantines_longer_lines_in_process(tmp_path):
    out = tmp_path / "out"
    text = "A short and ordinary English sentence about the treatment of patients. "
    with ShardWriter(out / "raw" / "replay" / "x" / "a.jsonl.gz") as writer:
        for i, n in enumerate((5, 60, 5)):  # the middle document is ~4 KB
            writer.write({"id": f"replay:{i}", "source": "replay", "subset": "x", "title": "",
                          "text": text * n, "url": "", "meta": {}})
    config = tmp_path / "run.yaml"
    config.write_text("recipe: default\nrecipe_overrides:\n  tokenizer: {path: 'sample:tokenizer.model'}\n"
                      "workers: 2\nlimits: {max_line_bytes: 2048}\n")
    run_cli("process", "--input", str(out), "--config", str(config))
    read = orjson.loads((out / "stats.json").read_bytes())["stages"]["read"]["replay"]
    assert (read["in"], read["out"], read["quarantined"]) == (3, 2, 1)
    entries = [orjson.loads(line) for q in (out / "quarantine").rglob("*.jsonl")
               for line in q.read_bytes().splitlines()]
    assert len(entries) == 1 and entries[0]["reason"].startswith("line too long: 4,")
    assert "(limit 2,048; raise limits.max_line_bytes)" in entries[0]["reason"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("limits: {max_line_bytes: 0}\n")
    proc = run_cli("process", "--input", str(out), "--config", str(bad), check=False)
    assert proc.returncode == 2 and "limits.max_line_bytes: must be a positive integer" in proc.stderr
