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
