"""gap_replay.preflight: a bad tokenizer or output folder stops `download` before any request."""

from __future__ import annotations

import time

import yaml

from conftest import run_cli
from gap_replay.resources import default_recipe_path
from gap_replay.sample.server import SiteServer


def _recipe(tmp_path, **tokenizer) -> str:
    data = yaml.safe_load(open(default_recipe_path(), encoding="utf-8"))
    data["tokenizer"].update(tokenizer)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_missing_tokenizer_and_unwritable_output_fail_in_seconds_before_any_request(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    (tmp_path / "sites").mkdir()
    with SiteServer(tmp_path / "sites") as server:
        started = time.monotonic()
        proc = run_cli("download", "--output", str(blocker / "out"), "--base-url", server.url,
                       "--recipe", _recipe(tmp_path, path="nowhere/tokenizer.model"),
                       check=False, timeout=60)
        elapsed = time.monotonic() - started
        assert server.requests_to("/") == []
    assert proc.returncode == 1 and elapsed < 5 + 5  # 5 s goal, plus interpreter start under load
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "Error: nothing was fetched; fix first:"
    assert lines[1].startswith(f"output folder {blocker / 'out'}: cannot write there")
    assert lines[2].startswith("tokenizer: tokenizer file nowhere/tokenizer.model not found")
    assert "Traceback" not in proc.stderr


def test_a_tokenizer_file_that_is_not_a_model_is_named(tmp_path):
    bad = tmp_path / "tokenizer.model"
    bad.write_bytes(b"this is not a sentencepiece model")
    proc = run_cli("download", "--output", str(tmp_path / "out"), "--recipe",
                   _recipe(tmp_path, path=str(bad)), check=False, timeout=60)
    assert proc.returncode == 1
    assert f"tokenizer: {bad}: not a SentencePiece model" in proc.stderr
    assert not (tmp_path / "out" / "raw").exists()
