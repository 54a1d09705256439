"""The small path helpers every module shares (`io/paths.py` exists/read_json, `io/jsonl.py`
shard_key, `tasks.key_file`, the ledger's raw-shard key): one copy each, so one test each."""

from __future__ import annotations

import orjson
import pytest

from gap_replay.io.jsonl import shard_key
from gap_replay.io.paths import exists, read_json
from gap_replay.sources.ledger import raw_shard_key
from gap_replay.tasks import key_file, read_marker


def test_read_json_local_and_fsspec_missing_and_malformed(tmp_path):
    path = tmp_path / "stats.json"
    assert not exists(path) and read_json(path, missing={}) == {} and read_marker(str(path)) is None
    with pytest.raises(FileNotFoundError):
        read_json(path)
    path.write_bytes(orjson.dumps({"stages": {"clean": 1}}))
    assert exists(str(path)) and read_json(path) == {"stages": {"clean": 1}} == read_marker(str(path))
    assert read_json(f"file://{path}") == {"stages": {"clean": 1}}
    path.write_bytes(b"{not json")
    with pytest.raises(orjson.JSONDecodeError):
        read_json(path, missing={})


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz", "a.jsonl.zst", "a.json.gz", "a.json"])
def test_shard_key_drops_root_and_every_shard_suffix(name):
    assert shard_key("s3://bucket/out/raw/", f"s3://bucket/out/raw/papers/pmc/{name}") == "papers/pmc/a"
    assert shard_key("/out/clean", f"/out/clean/guidelines/nice/{name}") == "guidelines/nice/a"


def test_task_key_to_file_name_and_ledger_key(tmp_path):
    assert key_file("guidelines/nice/part-00000") == "guidelines__nice__part-00000"
    shard = tmp_path / "out" / "raw" / "papers" / "pmc" / "part-1.jsonl.gz"
    assert raw_shard_key(tmp_path / "out", shard) == "papers/pmc/part-1"
    with pytest.raises(ValueError, match="not below"):
        raw_shard_key(tmp_path / "out", tmp_path / "elsewhere" / "x.jsonl.gz")
