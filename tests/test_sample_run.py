"""The offline sample run end to end through the real CLI: determinism, resume after SIGKILL,
reconciled stats, quarantine, help texts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import cli_env, run_cli


def _shas(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return [(s["path"], s["sha256"]) for s in manifest["shards"]]


def _run_differences(a, b) -> str:
    """What differs between two runs' outputs, for the failure message: the stage counts, then
    the shard rows by (shard, id), then the raw documents by text."""
    import gzip
    import hashlib

    def lines(out, pattern):
        for path in sorted(out.glob(pattern)):
            for line in gzip.decompress(path.read_bytes()).splitlines():
                yield path, line, json.loads(line)

    def rows(out):
        found = {}
        for path, line, row in lines(out, "shards/*/*.jsonl.gz"):
            key = (f"{path.parent.name}/{path.name}", row["id"])
            found.setdefault(key, []).append(hashlib.sha1(line).hexdigest()[:8])
        return found

    def raw(out):
        return {doc["id"]: hashlib.sha1(doc["text"].encode()).hexdigest()[:8]
                for _, _, doc in lines(out, "raw/**/*.jsonl.gz")}

    notes = []
    stats = [json.loads((out / "stats.json").read_text())["stages"] for out in (a, b)]
    notes += [f"stats {k}: {stats[0].get(k)} != {stats[1].get(k)}"
              for k in stats[0] if stats[0].get(k) != stats[1].get(k)]
    for name, (x, y) in {"shard rows": (rows(a), rows(b)), "raw documents": (raw(a), raw(b))}.items():
        differ = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
        notes += [f"{name} {k}: {x.get(k)} != {y.get(k)}" for k in differ[:20]]
    return "\n".join(notes) or "the shards differ in bytes only"


def test_sample_run_prints_the_per_source_table_and_writes_the_layout(sample_run):
    for path in ("manifest.json", "stats.json", "recipe.json", "state.sqlite",
                 "shards/train/shard-00000.jsonl.gz", "shards/validation/shard-00000.jsonl.gz",
                 "clean/guidelines/who/part-00000.jsonl.gz", "raw/guidelines/who/part-00000.jsonl.gz"):
        assert (sample_run / path).exists(), path
    # every source family was acquired through its real client from the bundled sites
    for source in ("abstracts", "papers", "replay"):
        assert list((sample_run / "raw" / source).rglob("*.jsonl.gz")), source
    assert len([p for p in (sample_run / "raw" / "guidelines").iterdir() if p.is_dir()]) == 16
    table = run_cli("stats", str(sample_run)).stdout
    for word in ("abstracts", "guidelines", "papers", "replay", "recipe share",
                 "rejected_by_source_rules", "too_short", "language_fr", "clean docs: after", "mixed docs: sequences"):
        assert word in table
    manifest = json.loads((sample_run / "manifest.json").read_text())
    # the two document counts: after the shared stages (stats.json) and in the shards (manifest)
    total = next(line.split() for line in table.splitlines() if line.startswith("total "))
    stages = json.loads((sample_run / "stats.json").read_text())["stages"]
    assert int(total[1]) == sum(c["out"] for c in stages["split"].values())
    assert int(total[2]) == manifest["totals"]["documents"] != int(total[1])
    plan = json.loads((sample_run / "mix_plan.json").read_text())
    assert plan["papers"]["factor"] > 1 > plan["abstracts"]["factor"]  # up- and down-sampled
    assert manifest["totals"]["target_tokens_by_source"]["papers"] == 90_000  # configs/sample.yaml
    assert manifest["totals"]["tokens_by_source"]["guidelines"] > 0


def test_rerun_and_two_workers_give_identical_shards(sample_run, tmp_path):
    first = _shas(sample_run)
    rerun = run_cli("-v", "download", "--sample", "--output", str(sample_run))
    assert "already complete, skipped" in rerun.stderr
    assert _shas(sample_run) == first
    proc = run_cli("-v", "download", "--sample", "--output", str(tmp_path / "w2"), "--workers", "2")
    assert _shas(tmp_path / "w2") == first, (_run_differences(sample_run, tmp_path / "w2")
                                             + "\n" + proc.stderr[-4000:])


def test_process_and_mix_halves_reproduce_the_download(sample_run, tmp_path):
    run_cli("process", "--input", str(sample_run), "--output", str(tmp_path / "p"))
    assert (tmp_path / "p" / "clean").is_dir() and not (tmp_path / "p" / "raw").exists()
    run_cli("mix", "--input", str(tmp_path / "p"), "--output", str(tmp_path / "m"), "--workers", "2")
    assert _shas(tmp_path / "m") == _shas(sample_run)
    proc = run_cli("mix", "--input", str(tmp_path / "p"), "--format", "parquet", check=False)
    assert proc.returncode == 2 and "unknown format 'parquet'" in proc.stderr


@pytest.mark.parametrize("phase", ["process-*/markers/segment-0", "mix-*/markers/tokenize"])
def test_sigkill_mid_run_then_rerun_gives_the_same_shards(sample_run, tmp_path, phase):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "gap_replay", "download", "--sample", "--output", str(out)],
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            markers = list(out.glob(f"work/{phase}/*.json"))
            if len(markers) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail("the run ended before it could be killed")
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists()  # really killed mid-way
    rerun = run_cli("-v", "download", "--sample", "--output", str(out))
    assert "already complete, skipped" in rerun.stderr
    assert _shas(out) == _shas(sample_run), _run_differences(sample_run, out)
    assert not list(out.rglob("*.tmp-*"))


def test_stats_reconcile_and_a_malformed_line_is_quarantined(sample_run, tmp_path):
    import gzip
    import shutil

    out = tmp_path / "bad"
    shutil.copytree(sample_run / "raw", out / "raw")
    shard = sorted((out / "raw" / "abstracts").rglob("*.jsonl.gz"))[0]
    lines = gzip.decompress(shard.read_bytes()).splitlines(keepends=True)
    lines.insert(3, b'{"id": "pmid:1", "source": "abstracts", "text": "cut off\n')
    shard.write_bytes(gzip.compress(b"".join(lines)))
    run_cli("process", "--input", str(out), "--recipe", str(sample_run / "recipe.json"))
    run_cli("mix", "--input", str(out))
    stats = json.loads(run_cli("stats", str(out), "--json").stdout)
    for stage, by_source in stats["stages"].items():
        for source, c in by_source.items():
            assert c["in"] == c["out"] + sum(c["dropped"].values()) + c["quarantined"], (stage, source)
    assert stats["stages"]["read"]["abstracts"]["quarantined"] == 1
    entries = [json.loads(line) for p in (out / "quarantine").rglob("*.jsonl")
               for line in p.read_text().splitlines()]
    assert len(entries) == 1
    assert entries[0]["file"] == str(shard) and entries[0]["line"] == 4
    assert "malformed JSON" in entries[0]["reason"]
    # nothing else was lost: every other abstract made it through as in the clean run
    clean = json.loads(run_cli("stats", str(sample_run), "--json").stdout)
    assert stats["stages"]["read"]["abstracts"]["out"] == clean["stages"]["read"]["abstracts"]["out"]


@pytest.mark.parametrize("command", ["download", "process", "mix", "stats"])
def test_every_command_has_help_with_an_example(command):
    out = run_cli(command, "--help").stdout
    assert "Example" in out and f"gap-replay {command}" in out


def test_bad_recipe_and_missing_input_are_clear_errors(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("sources: {papers: {target_tokens: 1, validation_fraction: 1.5}}\ntokenizer: {path: x}\n")
    proc = run_cli("process", "--input", str(tmp_path), "--recipe", str(bad), check=False)
    assert proc.returncode != 0
    assert "sources.papers.validation_fraction: must be in [0, 1), got 1.5" in proc.stderr
    proc = run_cli("mix", "--input", str(tmp_path), check=False)
    assert proc.returncode == 1 and "run `gap-replay process` first" in proc.stderr


def test_sources_option_limits_the_run(tmp_path):
    out = tmp_path / "two"
    run_cli("download", "--sample", "--sources", "guidelines,replay", "--output", str(out))
    assert sorted(p.name for p in (out / "clean").iterdir()) == ["guidelines", "replay"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["totals"]["tokens_by_source"]) == {"guidelines", "replay"}
    proc = run_cli("download", "--sample", "--sources", "blogs", "--output", str(out), check=False)
    assert proc.returncode == 2 and "source 'blogs' is not in the recipe" in proc.stderr


def test_an_unreachable_source_is_a_clear_error(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("recipe: default\nrecipe_overrides:\n"
                      "  tokenizer: {path: 'sample:tokenizer.model'}\n"
                      "  replay: {url_lists: 'http://127.0.0.1:9/redpajama/urls.txt'}\n")
    proc = run_cli("download", "--config", str(config), "--sources", "replay", "--output",
                   str(tmp_path / "out"), check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-3] == "Error: acquisition failed:"
    assert lines[-2] == ("replay: http://127.0.0.1:9/robots.txt: cannot reach 127.0.0.1:9 "
                         "(connection refused; no network?)")
    assert lines[-1].startswith("Rerun to resume")
    assert "Traceback" not in proc.stderr
