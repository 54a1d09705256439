"""`gap-replay push`: the dry-run folder is a loadable dataset without restricted subsets, and an
upload sends exactly the dry-run files to a Hub (a fake one on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fakehub import FakeHub
from opsdata import GUIDELINE_TAGS, make_out

SRC = str(Path(__file__).resolve().parents[1] / "src")
RESTRICTED = {t for t, ok in GUIDELINE_TAGS.items() if not ok}


def _run(args, env_extra=None, home=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"PYTHONPATH": SRC, "HF_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1",
                **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "gap_replay", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return make_out(tmp_path_factory.mktemp("push") / "out")


def test_dry_run_loads_with_datasets_and_withholds_restricted(out, tmp_path):
    import datasets

    res = _run(["push", str(out), "--repo-id", "me/gap", "--dry-run", str(tmp_path / "dry")], home=tmp_path)
    assert res.returncode == 0, res.stderr
    dry = tmp_path / "dry"
    ds = datasets.load_dataset("parquet", data_dir=str(dry), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "validation"}
    rows = [r for split in ds.values() for r in split]
    subsets = {r["subset"] for r in rows if r["source"] == "guidelines"}
    assert subsets and not subsets & RESTRICTED
    assert {r["source"] for r in rows} == {"guidelines", "abstracts", "papers", "replay"}
    # every non-restricted cleaned document is there once, with its text and split
    from gap_replay.io import Quarantine, iter_documents, list_shards
    expected = {}
    for shard in list_shards(out / "clean"):
        for d in iter_documents(shard, Quarantine()):
            if not (d.source == "guidelines" and d.subset in RESTRICTED):
                expected[d.id] = (d.text, d.meta["split"])
    got = {r["id"]: (r["text"], json.loads(r["meta"])["split"]) for r in rows}
    assert got == expected
    for split, table in ds.items():
        assert all(json.loads(m)["split"] == split for m in table["meta"])
    # the card's configs load one source per config
    guidelines = datasets.load_dataset(str(dry), "guidelines", cache_dir=str(tmp_path / "cache2"))
    assert {r["source"] for r in guidelines["train"]} == {"guidelines"}
    card = (dry / "README.md").read_text()
    assert "Not for clinical use" in card and "config_name: replay" in card
    for tag in RESTRICTED:
        assert f"guidelines/{tag}:" in card  # listed as withheld
    assert "recipe" in card.lower() and "CC-BY-4.0" in card


def test_include_restricted_and_determinism(out, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for dest, extra in ((a, []), (b, []), (c, ["--include-restricted"])):
        res = _run(["push", str(out), "--repo-id", "me/gap", "--dry-run", str(dest), *extra], home=tmp_path)
        assert res.returncode == 0, res.stderr
    assert _files(a) == _files(b)  # byte-identical export
    subsets = set(pq.read_table(c / "guidelines/train-00000.parquet").column("subset").to_pylist())
    subsets |= set(pq.read_table(c / "guidelines/validation-00000.parquet").column("subset").to_pylist())
    assert subsets == set(GUIDELINE_TAGS)


def test_upload_sends_exactly_the_dry_run_files(out, tmp_path):
    token = "hf_test_secret_token_123"
    dry = tmp_path / "dry"
    assert _run(["push", str(out), "--repo-id", "org/gap", "--dry-run", str(dry)], home=tmp_path).returncode == 0
    with FakeHub(token) as hub:
        env = {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": token}
        res = _run(["-v", "push", str(out), "--repo-id", "org/gap", "--private"], env, home=tmp_path)
        assert res.returncode == 0, res.stderr
        assert token not in res.stdout + res.stderr
        repo = hub.repos["org/gap"]
        assert repo.repo_type == "dataset" and repo.private
        uploaded = {k: v for k, v in repo.files.items() if k != ".gitattributes"}
        assert uploaded == _files(dry)
        assert repo.commits[-1]["files"][-1] == "README.md"
        assert 1 <= len(repo.commits) <= 2
        assert all(c.status == 200 for c in hub.calls), hub.calls
        assert all(c.authorization == f"Bearer {token}" for c in hub.calls)
        routes = {c.path.split("/")[5] if "/api/datasets/" in c.path else c.path for c in hub.calls}
        assert routes == {"/api/repos/create", "tree", "/api/validate-yaml", "preupload", "commit"}
        # a second push to the existing repo (409 on create is accepted) deletes the parquet files of
        # an earlier push that the export no longer has, and leaves every other file alone
        repo.files["papers/train-00007.parquet"] = b"stale"
        repo.files["notes/extra.txt"] = b"added by hand"
        res = _run(["push", str(out), "--repo-id", "org/gap"], env, home=tmp_path)
        assert res.returncode == 0, res.stderr
        assert [c.status for c in hub.calls if c.path == "/api/repos/create"] == [200, 409]
        assert repo.commits[-1]["deleted"] == ["papers/train-00007.parquet"]
        assert {k: v for k, v in repo.files.items() if k not in (".gitattributes", "notes/extra.txt")} == _files(dry)
        assert repo.files["notes/extra.txt"] == b"added by hand" and ".gitattributes" in repo.files
        # a wrong token fails with a clear error and nothing is committed
        commits = len(repo.commits)
        res = _run(["push", str(out), "--repo-id", "org/gap"], {**env, "HF_TOKEN": "hf_wrong"}, home=tmp_path)
        assert res.returncode == 1 and "hf_wrong" not in res.stdout + res.stderr
        assert len(repo.commits) == commits


def test_push_without_token_is_a_clear_error(out, tmp_path):
    res = _run(["push", str(out), "--repo-id", "org/gap"], {"HF_ENDPOINT": "http://127.0.0.1:9"}, home=tmp_path)
    assert res.returncode == 1 and "HF_TOKEN" in res.stderr


def _card_tokens(card: str) -> dict[str, int]:
    """The card's train-token table: source -> tokens."""
    section = card.split("Train tokens in the mixed training shards", 1)[1].split("\n\n")[1]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()[2:]]
    return {c[0]: int(c[1].replace(",", "")) for c in cells}


def test_card_counts_train_tokens_of_published_documents_of_the_recipe_run(sample_run, tmp_path):
    """Pushed to the fake Hub, the card's token table equals, per source, the train shards' tokens
    of the documents the export holds: validation and withheld guidelines are not counted."""
    import gzip

    token = "hf_test_card_token"
    with FakeHub(token) as hub:
        res = _run(["push", str(sample_run), "--repo-id", "org/sample"],
                   {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": token}, home=tmp_path)
        assert res.returncode == 0, res.stderr
        files = hub.repos["org/sample"].files
    published = set()
    for rel, data in files.items():
        if rel.endswith(".parquet"):
            (tmp_path / "p.parquet").write_bytes(data)
            published |= set(pq.read_table(tmp_path / "p.parquet").column("id").to_pylist())
    expected: dict[str, int] = {}
    for path in sorted((sample_run / "shards" / "train").glob("*.jsonl.gz")):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            row = json.loads(line)
            if row["id"] in published:
                expected[row["source"]] = expected.get(row["source"], 0) + row["n_tokens"]
    card = files["README.md"].decode()
    assert _card_tokens(card) == expected
    # the same numbers from the manifest alone: train shards minus the withheld tokens mix recorded
    manifest = json.loads((sample_run / "manifest.json").read_text())
    train = {}
    for shard in manifest["shards"]:
        if shard["path"].startswith("shards/train/"):
            for source, n in shard["tokens_by_source"].items():
                train[source] = train.get(source, 0) + n
    withheld = manifest["totals"]["restricted_tokens_by_split"]["train"]
    assert withheld["guidelines"] > 0 and set(withheld) == {"guidelines"}
    assert expected == {s: n - withheld.get(s, 0) for s, n in train.items()}
    assert "Recipe `gap-replay-sample`" in card and "48.1B" not in card


def test_card_of_a_manifest_without_withheld_counts_says_so(out, tmp_path):
    res = _run(["push", str(out), "--repo-id", "me/gap", "--dry-run", str(tmp_path / "dry")], home=tmp_path)
    assert res.returncode == 0, res.stderr
    card = (tmp_path / "dry" / "README.md").read_text()
    rows = card.split("Train tokens in the mixed training shards", 1)[1].split("\n\n")[1].splitlines()
    assert [r.split("|")[1].strip() for r in rows if "(incl. withheld)" in r] == ["guidelines"]
