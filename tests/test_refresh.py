"""`gap-replay refresh`: conditional re-fetch against a real local server, only changed documents
reprocessed, atomic versions, the lock (exit 75), and a SIGKILLed refresh leaving `current` intact;
and the operations outputs on the real sample chain, built by `gap-replay refresh --config
configs/cron-sample.yaml` (acquire, process, mix with `format: jsonl,megatron`): a second refresh
changes nothing, Megatron read-back with megatron-core, `stats --html`, `push --dry-run`."""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from gap_replay.formats.shards import iter_shard_records
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.sample.server import Fault, SiteServer

from conftest import closed_port

HERE = Path(__file__).resolve().parent
ROOT_DIR = HERE.parent
SITES = HERE / "fixtures" / "refresh-sites"
SAMPLE_RECIPE = {"scale": 0.000001, "tokenizer": {"path": "sample:tokenizer.model"},
                 "output": {"shards_per_split": {"train": 2, "validation": 1}},
                 "dedup": {"exact": {"buckets": 2}}}


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT_DIR / "src"), str(HERE)])}


def _config(tmp_path: Path, base_url: str, name: str = "cron-test.yaml", **extra) -> Path:
    cfg = {"output": str(tmp_path / "root"), "sources": ["guidelines"], "recipe": "default",
           "recipe_overrides": SAMPLE_RECIPE, "keep_versions": 2, "workers": 1, "format": "jsonl,megatron",
           "base_url": base_url, "acquirers": {"guidelines": "pages_acquirer:acquire"}, **extra}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _refresh(config: Path, *extra, wait=True):
    args = [sys.executable, "-m", "gap_replay", "refresh", "--config", str(config), *extra]
    if not wait:
        return subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    return subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=180)


def _summary_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "gap_replay.refresh.summary: refresh " in line]


def _versions(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "versions").iterdir())


def _current(root: Path) -> str:
    return os.readlink(root / "current").rsplit("/", 1)[-1]


def _clean_docs(version: Path) -> dict[str, str]:
    return {d.id: d.text for shard in list_shards(version / "clean") for d in iter_documents(shard, Quarantine())}


def _delta(version: Path) -> list[dict]:
    with gzip.open(version / "refresh-delta.jsonl.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


def _wait_until_fetching(server, root: Path, done_path: str, proc) -> None:
    """Until `proc` has fetched `done_path` (the page before the hanging one) inside a partial version."""
    deadline = time.time() + 60
    while not (server.requests_to(done_path) and list((root / "versions").glob(".partial-*"))):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the refresh never reached the page"
        time.sleep(0.05)
    time.sleep(0.3)


def _assert_manifest_intact(version: Path) -> None:
    manifest = json.loads((version / "manifest.json").read_text())
    for shard in manifest["shards"]:
        assert hashlib.sha256((version / shard["path"]).read_bytes()).hexdigest() == shard["sha256"]


@pytest.fixture
def sites(tmp_path):
    root = tmp_path / "sites"
    shutil.copytree(SITES, root)
    with SiteServer(root) as server:
        yield root, server


def test_unchanged_refresh_revalidates_with_304_and_a_failure_keeps_current(tmp_path, sites):
    root_sites, server = sites
    config = _config(tmp_path, server.base_url("pages"))
    root = tmp_path / "root"
    first = _refresh(config)
    assert first.returncode == 0, first.stderr
    # stderr is a pipe, as under cron: one line on success, no INFO chatter, no progress bars
    assert first.stderr.strip().splitlines() == _summary_lines(first.stderr)
    assert len(_summary_lines(first.stderr)) == 1 and "new-version" in first.stderr
    (version,) = _versions(root)
    assert _current(root) == version
    assert {r.status for r in server.requests_to("/pages")} == {200}
    assert len(_clean_docs(root / "current")) == 4
    _assert_manifest_intact(root / "current")
    assert (root / "current" / "megatron" / "train.idx").exists()

    server.clear_log()
    second = _refresh(config)
    assert second.returncode == 0, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert "refresh.summary: refresh unchanged" in line and "new=0 changed=0 removed=0" in line
    assert _versions(root) == [version] and _current(root) == version
    log = server.requests_to("/pages")
    assert len(log) == 5 and {r.status for r in log} == {304}  # index + 4 pages, no body re-sent
    assert all("If-None-Match" in r.headers for r in log)
    assert not list((root / "versions").glob(".partial-*"))

    (root_sites / "pages" / "index.html").unlink()  # the listing is gone: 404, the refresh fails
    failed = _refresh(config)
    assert failed.returncode == 1
    (line,) = _summary_lines(failed.stderr)
    assert "refresh failed" in line and "index.html" in line
    assert _current(root) == version and _versions(root) == [version]
    assert not list((root / "versions").glob(".partial-*"))


def test_one_changed_page_reprocesses_only_its_document(tmp_path, sites):
    root_sites, server = sites
    config = _config(tmp_path, server.base_url("pages"))
    root = tmp_path / "root"
    assert _refresh(config).returncode == 0
    first = root / "current"
    before = _clean_docs(first)
    first_name = _current(root)

    page = root_sites / "pages" / "sepsis.html"
    page.write_text(page.read_text().replace("within the first hour", "within one hour of recognition"))
    server.clear_log()
    res = _refresh(config)
    assert res.returncode == 0, res.stderr
    (line,) = _summary_lines(res.stderr)
    assert "new-version" in line and "changed=1" in line and "processed=1" in line and "reused=3" in line
    assert {r.path: r.status for r in server.requests_to("/pages")} == {
        "/pages/index.html": 304, "/pages/asthma.html": 304, "/pages/otitis.html": 304,
        "/pages/hypertension.html": 304, "/pages/sepsis.html": 200}
    new = root / "current"
    assert _current(root) != first_name and len(_versions(root)) == 2
    delta = _delta(new)
    assert [(d["kind"], d["source"]) for d in delta] == [("changed", "guidelines")]
    stats = json.loads((new / "stats.json").read_text())
    first_stage = next(iter(stats["stages"].values()))
    assert first_stage["guidelines"]["in"] == 1  # only the changed page went through the stages
    after = _clean_docs(new)
    assert set(after) == set(before)
    changed = [i for i in after if after[i] != before[i]]
    assert changed == [delta[0]["id"]] and "within one hour of recognition" in after[changed[0]]
    _assert_manifest_intact(new)
    # the incremental version equals a full rebuild of the same inputs
    full = _refresh(_config(tmp_path, server.base_url("pages"), "full.yaml",
                                output=str(tmp_path / "full-root")), "--full")
    assert full.returncode == 0, full.stderr
    ref = json.loads((tmp_path / "full-root" / "current" / "manifest.json").read_text())
    got = json.loads((new / "manifest.json").read_text())
    assert [s["sha256"] for s in got["shards"]] == [s["sha256"] for s in ref["shards"]]

    # keep_versions: 2 -> a third version prunes the oldest, never `current`
    page.write_text(page.read_text().replace("Sepsis is", "Sepsis remains"))
    third = _refresh(config)
    assert third.returncode == 0 and "new-version" in third.stderr, third.stderr
    assert len(_versions(root)) == 2 and first_name not in _versions(root)
    assert _current(root) == _versions(root)[-1]


def test_second_concurrent_refresh_exits_75(tmp_path, sites):
    root_sites, server = sites
    config = _config(tmp_path, server.base_url("pages"))
    root = tmp_path / "root"
    server.inject("/pages/otitis.html", Fault("hang", seconds=5))  # keeps the first refresh busy
    first = _refresh(config, wait=False)
    try:
        _wait_until_fetching(server, root, "/pages/asthma.html", first)  # otitis is next, and hangs
        started = time.time()
        second = _refresh(config)
        assert second.returncode == 75, second.stderr
        assert time.time() - started < 15  # at once, not after waiting for the lock
        (line,) = _summary_lines(second.stderr)
        assert "refresh locked" in line
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert len(_versions(root)) == 1
    # the lock is a kernel lock: a holder in this process also makes refresh exit 75
    fd = os.open(root / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert _refresh(config).returncode == 75
    finally:
        os.close(fd)


def test_sigkilled_refresh_leaves_current_intact_and_next_completes(tmp_path, sites):
    root_sites, server = sites
    config = _config(tmp_path, server.base_url("pages"))
    root = tmp_path / "root"
    assert _refresh(config).returncode == 0
    good = _current(root)
    snapshot = {p.relative_to(root / "current"): p.read_bytes()
                for p in (root / "current").rglob("*") if p.is_file()}
    page = root_sites / "pages" / "asthma.html"
    page.write_text(page.read_text().replace("chronic inflammatory", "common chronic inflammatory"))
    server.inject("/pages/hypertension.html", Fault("hang", seconds=20))
    proc = _refresh(config, wait=False)
    _wait_until_fetching(server, root, "/pages/sepsis.html", proc)  # hypertension is next, and hangs
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _current(root) == good
    assert {p.relative_to(root / "current"): p.read_bytes()
            for p in (root / "current").rglob("*") if p.is_file()} == snapshot
    assert list((root / "versions").glob(".partial-*"))  # what the kill left behind

    server.faults.clear()
    res = _refresh(config)
    assert res.returncode == 0, res.stderr
    assert "changed=1" in _summary_lines(res.stderr)[0]
    assert _current(root) != good and not list((root / "versions").glob(".partial-*"))
    assert "common chronic inflammatory" in "".join(_clean_docs(root / "current").values())
    _assert_manifest_intact(root / "current")


def test_a_failed_page_keeps_its_document_and_an_unlisted_page_is_removed(tmp_path, sites):
    root_sites, server = sites
    config = _config(tmp_path, server.base_url("pages"))
    root = tmp_path / "root"
    assert _refresh(config).returncode == 0
    first = _current(root)
    before = _clean_docs(root / "current")
    otitis = root_sites / "pages" / "otitis.html"
    body = otitis.read_bytes()
    otitis.unlink()  # still linked, now 404: a fetch failure, not a removal
    res = _refresh(config)
    assert res.returncode == 0, res.stderr
    (line,) = _summary_lines(res.stderr)
    assert "refresh unchanged" in line and "removed=0" in line
    assert _current(root) == first
    otitis.write_bytes(body)
    index = root_sites / "pages" / "index.html"
    index.write_text("\n".join(l for l in index.read_text().splitlines() if "otitis" not in l))
    res = _refresh(config)
    (line,) = _summary_lines(res.stderr)
    assert res.returncode == 0 and "new-version" in line and "removed=1" in line and "processed=0" in line
    after = _clean_docs(root / "current")
    assert len(after) == 3 and set(after) < set(before)
    assert not any("otitis" in text.lower() for text in after.values())
    assert [d["kind"] for d in _delta(root / "current")] == ["removed"]


def _add_page(root_sites: Path, name: str, html: str) -> None:
    """A new page on the fixture site, linked from its index."""
    (root_sites / "pages" / name).write_text(html)
    index = root_sites / "pages" / "index.html"
    index.write_text(index.read_text().replace("</ul>", f'<li><a href="{name}">{name}</a></li>\n</ul>'))


def _retitled(html: str, title: str) -> str:
    return html.replace("<title>Asthma in adults</title>", f"<title>{title}</title>")


def test_new_pages_duplicating_reused_ones_are_dropped_by_the_dedup_stage(tmp_path, sites):
    root_sites, server = sites
    config = _config(tmp_path, server.base_url("pages"))
    root = tmp_path / "root"
    assert _refresh(config).returncode == 0
    before = _clean_docs(root / "current")
    html = (root_sites / "pages" / "asthma.html").read_text()
    _add_page(root_sites, "asthma-print.html", _retitled(html, "Asthma in adults: print view"))  # same text
    _add_page(root_sites, "asthma-2026.html",  # same site and title up to case and punctuation
              _retitled(html, "ASTHMA in adults!").replace("Asthma is a chronic", "Asthma remains a chronic"))
    res = _refresh(config)
    assert res.returncode == 0, res.stderr
    (line,) = _summary_lines(res.stderr)
    assert "new=2" in line and "processed=2" in line and "reused=4" in line and "duplicates=2" in line
    new = root / "current"
    assert _clean_docs(new) == before  # the published documents win; neither new page is added
    stats = json.loads((new / "stats.json").read_text())
    # one dedup decided it, with the recipe's kinds: content, and title for guidelines
    assert stats["stages"]["dedup"]["guidelines"] == {
        "in": 2, "out": 0, "quarantined": 0, "dropped": {"duplicate_content": 1, "duplicate_title": 1}}
    assert stats["dedup"]["prior"] == {"id": 0, "content": 1, "title": 1}
    assert stats["refresh"]["counts"]["duplicates"] == 2
    assert sorted(d["kind"] for d in _delta(new)) == ["new", "new"]
    _assert_manifest_intact(new)


def test_without_dedup_by_content_a_content_twin_of_a_reused_page_is_kept(tmp_path, sites):
    root_sites, server = sites
    recipe = {**SAMPLE_RECIPE, "dedup": {"exact": {"buckets": 2, "by_content": False}}}
    config = _config(tmp_path, server.base_url("pages"), recipe_overrides=recipe)
    root = tmp_path / "root"
    assert _refresh(config).returncode == 0
    before = _clean_docs(root / "current")
    html = (root_sites / "pages" / "asthma.html").read_text()
    _add_page(root_sites, "asthma-print.html", _retitled(html, "Asthma in adults: print view"))
    res = _refresh(config)
    assert res.returncode == 0, res.stderr
    (line,) = _summary_lines(res.stderr)
    assert "new=1" in line and "reused=4" in line and "duplicates=0" in line
    after = _clean_docs(root / "current")
    (twin,) = set(after) - set(before)  # the old merge dropped it by content whatever the recipe said
    assert after[twin] in before.values()
    stats = json.loads((root / "current" / "stats.json").read_text())
    assert stats["stages"]["dedup"]["guidelines"]["dropped"] == {}
    assert stats["dedup"]["prior"] == {"id": 0, "title": 0}


def _english(n: int, seed: int, source: str):
    from gap_replay.sample.textgen import make_documents

    return make_documents(n, seed=seed, english_share=1.0, target_chars=700, source=source)


def test_process_with_a_prior_drops_twins_of_published_documents_and_resumes_to_the_same_bytes(
        tmp_path, monkeypatch):
    from gap_replay.document import Document
    from gap_replay.executors import make_executor
    from gap_replay.io import ShardWriter
    from gap_replay.process import run_process
    from gap_replay.recipe import load_recipe
    from gap_replay.stages.dedup import ExactDedup

    recipe = load_recipe(overrides={**SAMPLE_RECIPE, "dedup": {"exact": {"buckets": 3}}})
    fresh = _english(4, 7, "abstracts")
    # published: replay (a later source) with a larger id still beats the abstract it duplicates;
    # two published twins of each other both stay published (not this run's to drop)
    published = [Document(id="zz-published", source="replay", text=fresh[0].text.upper()),
                 Document(id="zz-published-2", source="replay", text=fresh[0].text)]
    prior = tmp_path / "prior.jsonl.gz"
    with ShardWriter(prior) as writer:
        for doc in published:
            writer.write(doc)

    def run(out: Path) -> dict:
        with ShardWriter(out / "raw" / "abstracts" / "a.jsonl.gz") as writer:
            for doc in fresh:
                writer.write(doc)
        return run_process(str(out), str(out), recipe, make_executor("local", 1), prior=[str(prior)])

    stats = run(tmp_path / "one")
    kept = {d.id for shard in list_shards(tmp_path / "one" / "clean") for d in iter_documents(shard, Quarantine())}
    assert kept == {d.id for d in fresh[1:]}
    assert stats["stages"]["dedup"]["abstracts"]["dropped"] == {"duplicate_content": 1}
    assert stats["dedup"]["prior"] == {"id": 0, "content": 1, "title": 0}

    # killed after the prior's map, before the reduce: the rerun gives the same bytes
    original = ExactDedup.reduce

    def killed(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ExactDedup, "reduce", killed)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "two")
    assert list((tmp_path / "two" / "work").glob("process-*/markers/dedup-prior/*.json"))
    monkeypatch.setattr(ExactDedup, "reduce", original)
    assert run(tmp_path / "two") == stats
    shards = [Path(p).relative_to(tmp_path / "one") for p in list_shards(tmp_path / "one" / "clean")]
    assert shards and all((tmp_path / "one" / p).read_bytes() == (tmp_path / "two" / p).read_bytes()
                          for p in shards)


def _refresh_to_file(config: Path, log: Path) -> int:
    """A refresh as cron runs it: stderr redirected to a file, no terminal."""
    with open(log, "w") as fh:
        return subprocess.run([sys.executable, "-m", "gap_replay", "refresh", "--config", str(config)],
                              env=_env(), stdout=subprocess.DEVNULL, stderr=fh, stdin=subprocess.DEVNULL,
                              timeout=180).returncode


def test_under_cron_a_refresh_logs_one_line_on_success_and_one_clean_line_per_failure(tmp_path, sites):
    _, server = sites
    log = tmp_path / "cron.log"
    assert _refresh_to_file(_config(tmp_path, server.base_url("pages")), log) == 0, log.read_text()
    (line,) = log.read_text().splitlines()
    assert "gap_replay.refresh.summary: refresh new-version" in line

    port = closed_port()
    config = _config(tmp_path, f"http://127.0.0.1:{port}", "cron-down.yaml", sources=["guidelines", "abstracts"],
                     acquirers={"guidelines": "pages_acquirer:acquire", "abstracts": "pages_acquirer:acquire"})
    assert _refresh_to_file(config, log) == 1
    text = log.read_text()
    lines = text.splitlines()
    assert "Traceback" not in text and "\\n" not in text and "error='" not in text  # no reprs
    assert len(lines) == 2, text  # one line per failed source
    for line, source in zip(lines, ("guidelines", "abstracts")):
        assert "gap_replay.refresh.summary: refresh failed version=- seconds=" in line
        assert f"error: cannot acquire: {source}: " in line
        assert f"cannot reach 127.0.0.1:{port} (connection refused" in line


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
