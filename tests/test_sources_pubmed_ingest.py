"""Every record of the real sample files is accounted for from the input file to the shards.

Records are counted here without the parsers (start tags, JSON lines), then the files go through
`ingest` and `process`; stats.json's first stage, `acquire`, must hold every one of them as kept,
dropped by reason or quarantined, and hand exactly what it kept to the `read` stage.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import orjson
import pytest

from gap_replay.document import Document
from gap_replay.executors import make_executor
from gap_replay.io import ShardWriter
from gap_replay.process import check_chain, run_process
from gap_replay.recipe import load_recipe
from gap_replay.sources.ledger import Ledger, acquire_stage
from gap_replay.sources.ingest import run_ingest
from gap_replay.state import State

FIX = Path(__file__).parent / "fixtures" / "pubmed"  # byte-identical copies of ../shared/samples
RECIPE = load_recipe(overrides={"scale": 1e-6, "tokenizer": {"path": "sample:tokenizer.model"},
                                "dedup": {"exact": {"buckets": 3}}})


def _text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8")


def count_jats(path: Path) -> int:
    return len(re.findall(r"<article[\s>]", _text(path)))  # not <article-meta>, <sub-article>


def count_medline(path: Path) -> int:
    """Articles, book articles, and every PMID a DeleteCitation names (each is a record)."""
    text = _text(path)
    deleted = sum(len(re.findall(r"<PMID[\s>]", block))
                  for block in re.findall(r"<DeleteCitation>(.*?)</DeleteCitation>", text, re.S))
    return len(re.findall(r"<PubmedArticle>", text)) + len(re.findall(r"<PubmedBookArticle>", text)) + deleted


def count_json(path: Path) -> int:
    if path.suffix == ".json":
        return 1  # one pretty-printed object
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


# (format, fixture folder, independent counter, the source its records belong to); papers rows
# first: abstracts rows join the papers index they build
INPUTS = [
    ("s2-papers", "s2_papers", count_json, "papers"),
    ("s2orc", "s2orc", count_json, "papers"),
    ("s2-abstracts", "s2_abstracts", count_json, "abstracts"),
    ("jats", "pmc_jats", count_jats, "papers"),
    ("medline", "medline", count_medline, "abstracts"),
]


def test_independent_counts_see_the_sample_records():
    """The counters themselves are right about the samples (an update file: 26 articles plus its deletions)."""
    assert sum(count_jats(p) for p in (FIX / "pmc_jats").iterdir()) == 3
    assert count_medline(FIX / "medline" / "pubmed1.xml") == 2
    assert count_medline(FIX / "medline" / "pubmed20n1016.xml.gz") > 26
    assert count_json(FIX / "s2_abstracts" / "abstracts-sample.lines1-10.jsonl") == 10


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("accounting")
    expected: dict[str, int] = {}
    reports = {}
    for fmt, folder, counter, source in INPUTS:
        files = sorted(p for p in (FIX / folder).iterdir() if p.is_file())
        n = sum(counter(p) for p in files)
        # S2 rows as the downloader hands them over (already filtered to PubMed: all_records)
        report = run_ingest(fmt, [str(p) for p in files], out, all_records=fmt.startswith("s2"))
        reports[fmt] = (n, report.to_dict())
        expected[source] = expected.get(source, 0) + n
    stats = run_process(str(out), str(out), RECIPE, make_executor("local", 1))
    return out, expected, reports, stats


@pytest.mark.parametrize("fmt", [i[0] for i in INPUTS])
def test_ingest_report_counts_every_record_of_each_format(ingested, fmt):
    _out, _expected, reports, _stats = ingested
    n, report = reports[fmt]
    assert report["records_in"] == n, report
    assert report["records_in"] == (sum(report["written"].values()) + sum(report["dropped"].values())
                                    + report["quarantined"])
    assert report["empty_files"] == []


def test_stats_acquire_stage_holds_every_sample_record(ingested):
    out, expected, _reports, stats = ingested
    stages = stats["stages"]
    assert list(stages)[:2] == ["acquire", "read"]
    assert orjson.loads((out / "stats.json").read_bytes())["stages"]["acquire"] == stages["acquire"]
    for source, n in expected.items():
        c = stages["acquire"][source]
        assert c["in"] == n, (source, c)
        assert c["in"] == c["out"] + sum(c["dropped"].values()) + c["quarantined"]
        # what acquisition left in the raw shards is what process read from them
        assert c["out"] == stages["read"].get(source, {"in": 0})["in"]
    # the drops are named: deletions, papers rows that only feed the index, full-text dedup...
    assert stages["acquire"]["abstracts"]["dropped"].get("delete_citation", 0) >= 1
    assert stages["acquire"]["papers"]["dropped"].get("indexed_metadata_only", 0) >= 1


def test_a_file_without_records_is_reported_and_not_marked_done(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    good = FIX / "s2orc" / "s2orc-sample.line3.jsonl"
    out = tmp_path / "out"
    report = run_ingest("s2orc", [str(empty), str(good)], out, all_records=True)
    assert report.empty_files == [str(empty)]
    assert sum(report.written.values()) == 1 and report.quarantined == 1
    entries = [orjson.loads(line) for p in (out / "quarantine").glob("*.jsonl")
               for line in p.read_bytes().splitlines()]
    assert [(e["file"], "no s2orc records" in e["reason"]) for e in entries] == [(str(empty), True)]
    done = State(out / "state.sqlite").done_keys("ingest:s2orc")
    assert len(done) == 1 and all(str(good.resolve()) in k or str(good) in k for k in done)
    again = run_ingest("s2orc", [str(empty), str(good)], out, all_records=True)  # retried, still reported
    assert again.empty_files == [str(empty)] and again.skipped_files == 1


def test_acquire_stage_catches_a_shard_that_lost_documents(tmp_path):
    """The acquire → read link is a real check: the ledger says 3 were written, 2 were read."""
    shard = tmp_path / "raw" / "papers" / "pmc" / "x.jsonl.gz"
    with ShardWriter(shard) as w:
        for i in range(3):
            w.write(Document(id=f"d{i}", source="papers", text="t"))
    with Ledger(tmp_path) as ledger:
        ledger.shard_written(shard, "papers", 3)
        ledger.input_counts("ingest-jats-x", "papers", dropped={"retracted": 1}, quarantined=2)
    read = {"papers/pmc/x": {"papers": {"in": 2, "out": 2, "dropped": {}, "quarantined": 0}}}
    stage = acquire_stage(str(tmp_path), [("papers/pmc/x", str(shard))], read, ["papers"])
    assert stage == {"papers": {"in": 6, "out": 3, "dropped": {"retracted": 1}, "quarantined": 2}}
    with pytest.raises(AssertionError, match="3 left 'acquire' but 2 entered 'read'"):
        check_chain({"acquire": stage, "read": read["papers/pmc/x"]})


def test_a_shard_changed_behind_the_ledger_is_counted_from_what_it_holds(tmp_path):
    shard = tmp_path / "raw" / "papers" / "x.jsonl.gz"
    with ShardWriter(shard) as w:
        w.write(Document(id="a", source="papers", text="t"))
    with Ledger(tmp_path) as ledger:
        ledger.shard_written(shard, "papers", 1)
    with ShardWriter(shard) as w:  # rewritten by something that keeps no ledger
        for i in range(4):
            w.write(Document(id=f"b{i}", source="papers", text="other text"))
    read = {"papers/x": {"papers": {"in": 4, "out": 4, "dropped": {}, "quarantined": 0}}}
    stage = acquire_stage(str(tmp_path), [("papers/x", str(shard))], read, ["papers"])
    assert stage["papers"] == {"in": 4, "out": 4, "dropped": {}, "quarantined": 0}


def test_abstracts_marked_in_raw_shards_later_are_dropped_by_the_filter_stage(tmp_path):
    """Full-text marking rewrites an abstracts shard after ingest: the ledger hears of the new
    bytes, so acquire still hands `read` what the shard holds, and `filter` drops the marked
    abstract under its reason."""
    from gap_replay.sources.ingest import ingest_documents

    text = "A sentence about hypertension treatment in adults with diabetes. " * 20
    paper = Document(id="pmid:123", source="papers", subset="pubmed", text=text,
                     meta={"pmid": "123"})
    abstracts = [Document(id=f"pmid:{p}", source="abstracts", subset="pubmed", text=text + p,
                          meta={"pmid": p}) for p in ("123", "456")]
    report = ingest_documents([("abs", iter(abstracts)), ("full", iter([paper]))], tmp_path)
    assert report.fulltext_dedup == {"has_full_text:pmid": 1}
    stats = run_process(str(tmp_path), str(tmp_path), RECIPE, make_executor("local", 1))
    acquired = stats["stages"]["acquire"]["abstracts"]
    assert acquired == {"in": 2, "out": 2, "dropped": {}, "quarantined": 0}
    assert stats["stages"]["read"]["abstracts"]["in"] == 2
    assert stats["stages"]["filter"]["abstracts"]["dropped"] == report.fulltext_dedup
