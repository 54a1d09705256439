"""The operations outputs on the real sample chain, built by `gap-replay refresh --config
configs/cron-sample.yaml` (acquire, process, mix with `format: jsonl,megatron`): a second refresh
changes nothing, Megatron read-back with megatron-core, `stats --html`, `push --dry-run`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gap_replay.formats.shards import iter_shard_records
from gap_replay.io import Quarantine, iter_documents, list_shards

CHECKOUT = Path(__file__).resolve().parents[1]
SRC = str(CHECKOUT / "src")
CRON_SAMPLE = str(CHECKOUT / "configs" / "cron-sample.yaml")


def _run(*args):
    env = {**os.environ, "PYTHONPATH": SRC}
    res = subprocess.run([sys.executable, "-m", "gap_replay", *args], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def refresh_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample") / "root"
    res = _run("refresh", "--config", CRON_SAMPLE, "--output", str(root))
    assert "refresh new-version" in res.stderr
    return root


@pytest.fixture(scope="module")
def sample_out(refresh_root):
    return refresh_root / "current"


def test_second_sample_refresh_changes_nothing(refresh_root):
    before = os.readlink(refresh_root / "current")
    res = _run("refresh", "--config", CRON_SAMPLE, "--output", str(refresh_root))
    assert "refresh unchanged" in res.stderr
    assert os.readlink(refresh_root / "current") == before
    assert len([p for p in (refresh_root / "versions").iterdir()]) == 1


@pytest.mark.megatron
def test_megatron_files_of_the_sample_read_back_with_megatron_core(sample_out):
    from megatron.core.datasets import indexed_dataset
    manifest = json.loads((sample_out / "manifest.json").read_text())
    assert manifest["tokenizer"]["vocab_size"] < 65500
    for split in ("train", "validation"):
        expected = [r["input_ids"] for e in manifest["shards"] if f"/{split}/" in e["path"]
                    for _, r in iter_shard_records(str(sample_out / e["path"]), e["sha256"])]
        ds = indexed_dataset.IndexedDataset(str(sample_out / "megatron" / split))
        assert len(ds) == len(expected) > 0
        assert [ds[i].tolist() for i in range(len(ds))] == expected
        assert ds.index.dtype is np.uint16
        eod = manifest["tokenizer"].get("eod_id")
        if eod is not None:
            assert all(ds[i][-1] == eod for i in range(len(ds)))


def test_stats_html_on_the_sample(sample_out, tmp_path):
    _run("stats", str(sample_out), "--html", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) >= 3  # 4 with near-dup/decontamination
    manifest = json.loads((sample_out / "manifest.json").read_text())
    for source, target in manifest["totals"]["target_tokens_by_source"].items():
        assert f"<td>{source}</td>" in page and f"{target:,}" in page


def test_push_dry_run_of_the_sample_withholds_restricted_guidelines(sample_out, tmp_path):
    import datasets

    _run("push", str(sample_out), "--repo-id", "me/gap-sample", "--dry-run", str(tmp_path / "dry"))
    restricted = {d.id for s in list_shards(sample_out / "clean" / "guidelines")
                  for d in iter_documents(s, Quarantine()) if d.meta.get("redistributable") is not True}
    assert restricted
    ds = datasets.load_dataset("parquet", data_dir=str(tmp_path / "dry"), cache_dir=str(tmp_path / "cache"))
    ids = {r["id"] for split in ds.values() for r in split}
    assert ids and not ids & restricted
    n_clean = sum(1 for s in list_shards(sample_out / "clean") for _ in iter_documents(s, Quarantine()))
    assert len(ids) == n_clean - len(restricted)
