"""The Ray executor: a real local Ray (2 CPUs, started here, shut down after) gives the same bytes
as the local executor, for the whole sample run and for near-dedup's map/reduce phases."""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
from pathlib import Path

import orjson
import pytest
import ray

from conftest import run_cli
from gap_replay.executors import make_executor
from gap_replay.stages.minhash.config import NearDedupConfig
from test_stages_near_dedup import RECIPE, build_corpus, run_near_dedup

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_address():
    temp_dir = tempfile.mkdtemp(prefix="gapray-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir,
             object_store_memory=100 * 1024 * 1024)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _tree_digest(root: Path, sub: str) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / sub).rglob("*.jsonl.gz"))}


def test_executor_keeps_task_order_and_reports_failures(ray_address):
    executor = make_executor("ray", 2)  # reuses the session this module started
    try:
        assert executor.map(math.sqrt, [16.0, 1.0, 9.0, 4.0, 0.0], desc="sqrt") == [4.0, 1.0, 3.0, 2.0, 0.0]
        with pytest.raises(ValueError, match="math domain error"):
            executor.map(math.sqrt, [1.0, -1.0])
    finally:
        executor.close()
    assert ray.is_initialized()  # a session the executor did not start is left running


def test_sample_run_on_ray_is_byte_identical_to_local(sample_run, ray_address, tmp_path):
    out = tmp_path / "out"
    run_cli("download", "--sample", "--output", str(out), "--executor", "ray", "--address", ray_address,
            "--workers", "2")
    local = orjson.loads((sample_run / "manifest.json").read_bytes())
    remote = orjson.loads((out / "manifest.json").read_bytes())
    assert [s["sha256"] for s in remote["shards"]] == [s["sha256"] for s in local["shards"]]
    assert _tree_digest(out, "shards") == _tree_digest(sample_run, "shards")
    assert (orjson.loads((out / "stats.json").read_bytes())["stages"]
            == orjson.loads((sample_run / "stats.json").read_bytes())["stages"])


def test_process_and_mix_on_ray_give_the_local_bytes_for_the_same_raw(sample_run, ray_address, tmp_path):
    """Same inputs (the local run's raw shards, whose meta carries real fetch times) => the same
    clean/ and shards/ bytes on Ray."""
    out = tmp_path / "out"
    shutil.copytree(sample_run / "raw", out / "raw")
    recipe = str(sample_run / "recipe.json")
    for command in ("process", "mix"):
        run_cli(command, "--input", str(out), "--recipe", recipe, "--executor", "ray",
                "--address", ray_address, "--workers", "2")
    assert _tree_digest(out, "clean") == _tree_digest(sample_run, "clean")
    assert _tree_digest(out, "shards") == _tree_digest(sample_run, "shards")


def test_near_dedup_phases_on_ray_match_local(ray_address, tmp_path):
    shards, _ = build_corpus(tmp_path)
    config = NearDedupConfig.from_recipe(RECIPE)
    results = {}
    for kind in ("local", "ray"):
        out = tmp_path / kind
        out.mkdir()
        executor = make_executor(kind, 2 if kind == "ray" else 1)
        try:
            results[kind] = run_near_dedup(executor, shards, out, config)
        finally:
            executor.close()
    assert results["ray"] == results["local"] and results["ray"]["report"]["removed"] == 14
    for shard in shards:
        name = Path(shard).name
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
