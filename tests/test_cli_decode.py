"""`gap-replay decode`: the shards of the sample run decode back to their clean text, through the
real CLI, by id, by shard, from the Megatron files, and with the tokenizer the manifest records."""

from __future__ import annotations

import json
import shutil

from conftest import run_cli
from gap_replay.io import Quarantine, iter_documents, list_shards


def _clean_texts(out) -> dict[str, str]:
    return {doc.id: doc.text for path in list_shards(out / "clean") for doc in iter_documents(path, Quarantine())}


def _decoded(*args: str) -> list[dict]:
    proc = run_cli("decode", *args, "--json")
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _shard_rows(out) -> list[tuple[str, str]]:
    """(shard path, id) of every line of every shard, in manifest order."""
    import gzip

    manifest = json.loads((out / "manifest.json").read_text())
    return [(entry["path"], json.loads(line)["id"]) for split in ("train", "validation")
            for entry in manifest["shards"] if f"/{split}/" in entry["path"]
            for line in gzip.open(out / entry["path"])]


def test_the_manifest_records_how_to_load_the_tokenizer(sample_run):
    tok = json.loads((sample_run / "manifest.json").read_text())["tokenizer"]
    assert tok["source"] == "sample:tokenizer.model" and tok["revision"] is None  # a file, not the Hub
    assert tok["file"] == "tokenizer.model" and tok["kind"] == "sentencepiece"  # the old fields stay
    assert tok["base_vocab_size"] == 2000 and tok["eod_id"] == 2002 == tok["special_tokens"]["<EOD>"]
    assert tok["extra_tokens"]["[bib_ref]"] == 2005 and tok["append_eod"] is True
    assert len(tok["sha256"]) == 64


def test_every_shard_document_decodes_to_its_clean_text(sample_run):
    clean = _clean_texts(sample_run)
    rows = _decoded(str(sample_run))
    assert [(r["shard"], r["id"]) for r in rows] == _shard_rows(sample_run)  # all of them, in order
    assert {r["source"] for r in rows} == {"abstracts", "guidelines", "papers", "replay"}
    for row in rows:
        assert row["text"] == clean[row["id"]], row["id"]


def test_decode_by_id_prints_each_repeat_of_that_document(sample_run):
    clean = _clean_texts(sample_run)
    rows = _shard_rows(sample_run)
    repeated = next(i for _, i in rows if sum(1 for _, j in rows if j == i) > 1)  # an upsampled paper
    once = next(i for _, i in rows if sum(1 for _, j in rows if j == i) == 1)
    for doc_id in (repeated, once):
        got = _decoded(str(sample_run), "--id", doc_id)
        assert len(got) == sum(1 for _, j in rows if j == doc_id)
        assert all(r["id"] == doc_id and r["text"] == clean[doc_id] for r in got)
    # the plain form: a header line, then the text exactly
    plain = run_cli("decode", str(sample_run), "--id", once).stdout
    header, text = plain.split("\n", 1)
    assert header.startswith(f"### {once} (") and text == clean[once] + "\n\n"
    missing = run_cli("decode", str(sample_run), "--id", "no-such-id", check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == \
        f"Error: no id 'no-such-id' in the selected shards of {sample_run}"


def test_decode_one_shard_by_number_or_path(sample_run):
    clean = _clean_texts(sample_run)
    manifest = json.loads((sample_run / "manifest.json").read_text())
    second_val = [e["path"] for e in manifest["shards"] if "/validation/" in e["path"]][1]
    expected = [i for path, i in _shard_rows(sample_run) if path == second_val]
    by_number = _decoded(str(sample_run), "--split", "validation", "--shard", "1")
    by_path = _decoded(str(sample_run), "--shard", second_val)
    assert [r["id"] for r in by_number] == [r["id"] for r in by_path] == expected
    assert all(r["text"] == clean[r["id"]] and r["split"] == "validation" for r in by_number)
    assert [r["id"] for r in _decoded(str(sample_run), "--limit", "2")] == \
        [i for _, i in _shard_rows(sample_run)][:2]
    bad = run_cli("decode", str(sample_run), "--shard", "99", check=False)
    assert bad.returncode == 2 and "train has 4 shards (0..3)" in bad.stderr


def test_megatron_files_decode_to_the_same_text(sample_run, tmp_path):
    from gap_replay.formats.megatron import write_megatron

    out = tmp_path / "out"
    shutil.copytree(sample_run / "shards", out / "shards")
    shutil.copy(sample_run / "manifest.json", out / "manifest.json")
    write_megatron(out, json.loads((out / "manifest.json").read_text()))
    jsonl = _decoded(str(out))
    megatron = _decoded(str(out), "--megatron")
    assert [(r["split"], r["text"]) for r in megatron] == [(r["split"], r["text"]) for r in jsonl]
    assert [r["id"] for r in megatron][:2] == ["#0", "#1"]


def test_a_recorded_tokenizer_that_is_not_here_is_one_line_offering_tokenizer(sample_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(sample_run / "shards", out / "shards")
    manifest = json.loads((sample_run / "manifest.json").read_text())
    manifest["tokenizer"]["source"] = str(tmp_path / "gone" / "tokenizer.model")
    (out / "manifest.json").write_text(json.dumps(manifest))
    proc = run_cli("decode", str(out), "--limit", "1", check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    line, = proc.stderr.strip().splitlines()
    assert str(tmp_path / "gone" / "tokenizer.model") in line and "--tokenizer PATH" in line
    ok = _decoded(str(out), "--limit", "1", "--tokenizer", "sample:tokenizer.model")
    assert ok[0]["text"] == _clean_texts(sample_run)[ok[0]["id"]]


def test_a_different_tokenizer_file_is_refused(sample_run, tmp_path):
    """Same ids are not enough when the recorded source resolves to another file: sha256 differs."""
    out = tmp_path / "out"
    shutil.copytree(sample_run / "shards", out / "shards")
    manifest = json.loads((sample_run / "manifest.json").read_text())
    manifest["tokenizer"]["sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    proc = run_cli("decode", str(out), "--limit", "1", check=False)
    assert proc.returncode == 1 and "sha256" in proc.stderr and "--tokenizer PATH" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_hub_tokenizer_is_recorded_by_mix_and_loaded_by_decode_at_its_commit(sample_run, tmp_path, monkeypatch):
    """`mix` with `tokenizer.path: hf:ORG/NAME` (a fake Hub on 127.0.0.1 serving the sample
    tokenizer) writes the same shards as the file and records the id and commit; `decode` asks
    the Hub for that commit, not for whatever the main branch is now."""
    from fakehub import FakeHub
    from gap_replay.resources import sample_dir

    recipe = json.loads((sample_run / "recipe.json").read_text())
    recipe["tokenizer"]["path"] = "hf:org/tok"
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    out = tmp_path / "out"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub("hf_secret") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        made_with = hub.add_model("org/tok", {"tokenizer.model": (sample_dir() / "tokenizer.model").read_bytes()}).commit
        run_cli("mix", "--input", str(sample_run), "--output", str(out), "--recipe", str(tmp_path / "recipe.json"),
                "--workers", "1")
        manifest, original = (json.loads((d / "manifest.json").read_text()) for d in (out, sample_run))
        assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in original["shards"]]
        assert manifest["tokenizer"]["source"] == "hf:org/tok" and manifest["tokenizer"]["revision"] == made_with
        assert manifest["tokenizer"]["sha256"] == original["tokenizer"]["sha256"]
        rows = _decoded(str(out), "--limit", "3")
        assert [r["text"] for r in rows] == [_clean_texts(sample_run)[r["id"]] for r in rows]
        # decode asked for the recorded commit; its file was already in the cache (HF_HOME) from mix
        assert hub.calls[-1].path == f"/api/models/org/tok/revision/{made_with}"


def test_decode_help_has_examples():
    out = run_cli("decode", "--help").stdout
    assert "Examples:" in out and "gap-replay decode out/ --id" in out and "--tokenizer PATH" in out
