"""PubMed drop marks (full-text abstracts, retractions) and the `filter` stage that drops them,
up-sampling, the ingest CLI."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from gap_replay.document import Document
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.resources import default_recipe_path
from gap_replay.io import ShardWriter
from gap_replay.sources.pubmed.drop_marks import (
    FullTextIndex,
    fulltext_index_path,
    mark_fulltext_abstracts,
    mark_retraction,
)
from gap_replay.stages.base import Pipeline
from gap_replay.stages.filter import FilterStage
from gap_replay.stages.upsample import Upsample, load_approved_journals, normalise_journal

FIX = Path(__file__).parent / "fixtures" / "pubmed"
SRC = Path(__file__).parent.parent / "src"


def default_upsample() -> Upsample:
    """The stage as `process` builds it from the default recipe's `sources.papers.upsampling`."""
    return Upsample({"papers": yaml.safe_load(default_recipe_path().read_text())["sources"]["papers"]["upsampling"]})


def doc(i, source="abstracts", **meta) -> Document:
    return Document(id=f"d{i}", source=source, text="text", title=meta.pop("title", ""), meta=meta)


def filter_stage() -> FilterStage:
    return FilterStage({"abstracts": 0, "papers": 0}, {"abstracts": None, "papers": None})


def test_fulltext_abstracts_marked_by_pmid_pmcid_and_doi_then_dropped_by_filter(tmp_path):
    index = FullTextIndex(fulltext_index_path(tmp_path))
    index.add_all([doc(0, "papers", pmid="1"), doc(1, "papers", pmcid="PMC2"),
                   doc(2, "papers", doi="10.1/ABC")])
    index.close()
    shard = tmp_path / "raw" / "abstracts" / "pubmed" / "a.jsonl.gz"
    with ShardWriter(shard) as writer:
        for d in [doc(10, pmid="1"), doc(11, pmcid="PMC2"), doc(12, doi="10.1/abc"), doc(13, pmid="9")]:
            writer.write(d)
    expected = {"has_full_text:doi": 1, "has_full_text:pmcid": 1, "has_full_text:pmid": 1}
    assert mark_fulltext_abstracts(tmp_path) == expected
    assert mark_fulltext_abstracts(tmp_path) == {}  # idempotent: marked once
    raw = list(iter_documents(str(shard), Quarantine(), "abstracts"))
    assert [d.id for d in raw] == ["d10", "d11", "d12", "d13"]  # raw keeps every record
    pipeline = Pipeline([filter_stage()])
    assert [d.id for d in pipeline.run(raw + [doc(14, "papers", pmid="1")])] == ["d13", "d14"]
    stats = pipeline.stats()["filter"]["abstracts"]
    assert stats["dropped"] == expected and stats["in"] == 4 and stats["out"] == 1


def test_retractions_marked_and_dropped_by_filter_with_reasons():
    docs = [doc(1, publication_types=["Journal Article", "Retracted Publication"]),
            doc(2, publication_types=["Retraction of Publication"]),
            doc(3, title="Retraction: a bad study"), doc(4, article_type="retraction"),
            doc(5, language="en"), doc(6)]
    marked = [mark_retraction(d) for d in docs]
    assert [d.meta.get("drop_reason") for d in marked] == [
        "retracted_publication", "retraction_notice", "retraction_notice", "retraction_notice",
        None, None]
    pipeline = Pipeline([filter_stage()])
    assert [d.id for d in pipeline.run(marked)] == ["d5", "d6"]
    assert pipeline.stats()["filter"]["abstracts"]["dropped"] == {"retracted_publication": 1,
                                                                  "retraction_notice": 3}


def test_ingest_writes_retractions_marked_and_they_give_no_abstract_a_full_text(tmp_path):
    from gap_replay.sources.ingest import ingest_documents

    retracted = doc(1, "papers", pmid="7", publication_types=["Retracted Publication"])
    fine = doc(2, "papers", pmid="8")
    abstracts = [doc(3, pmid="7"), doc(4, pmid="8")]
    report = ingest_documents([("p", iter([retracted, fine])), ("a", iter(abstracts))], tmp_path)
    assert report.marked == {"retracted_publication": 1} and report.written["papers"] == 2
    assert report.fulltext_dedup == {"has_full_text:pmid": 1}
    raw = {d.id: d.meta.get("drop_reason") for s in list_shards(tmp_path / "raw")
           for d in iter_documents(s, Quarantine())}
    assert raw == {"d1": "retracted_publication", "d2": None, "d3": None,
                   "d4": "has_full_text:pmid"}


def test_approved_journals_normalised_on_both_sides():
    journals = load_approved_journals()
    assert len(journals) == 423  # stays unique after normalisation (Appendix A)
    assert normalise_journal("Annals of Allergy, Asthma & Immunology") in journals
    assert normalise_journal("annals of allergy asthma and immunology") in journals
    assert normalise_journal("Obstetrics & Gynecology") == "obstetrics and gynecology"


@pytest.mark.parametrize("meta,factor,weight", [
    ({"publication_types": ["Randomized Controlled Trial"], "journal": "American Heart Journal", "pub_date": "2020-03-01"},
     2.5, 3.5),   # 0.5 + approved journal 1 + recent 1
    ({"publication_types": ["Case Reports"], "journal": "Some Journal", "pub_date": "2021"}, 0.0, 1.0),
    ({"publication_types": ["Review"], "pub_date": "2015-06-01"}, 0.7, 1.7),  # 0.5 + 0.2 (between cutoffs)
    ({"publication_types": ["Review"], "pub_date": "2001"}, 0.5, 1.5),
    ({"publication_types": ["Review"], "pub_date": "2018-01-15"}, 1.5, 2.5),  # just after 2018-01-14 12:00
    ({"publication_types": ["Editorial"], "journal": "Annals of Allergy, Asthma & Immunology"}, 1.1, 2.1),
])
def test_upsample_weights(meta, factor, weight):
    stage = default_upsample()
    out = stage.process(doc(1, "papers", **meta))
    assert out.meta["quality_factor"] == pytest.approx(factor)
    assert out.meta["quality_weight"] == pytest.approx(weight)


def test_upsample_removes_animal_studies_and_preprints_and_ignores_other_sources():
    stage = default_upsample()
    pipeline = Pipeline([stage])
    docs = [doc(1, "papers", mesh=["Animals", "Rats"], publication_types=["Review"]),
            doc(2, "papers", publication_types=["Preprint"]), doc(3, "abstracts", mesh=["Animals"]),
            doc(4, "papers")]
    kept = list(pipeline.run(docs))
    assert [d.id for d in kept] == ["d3", "d4"] and "quality_weight" not in kept[0].meta
    assert pipeline.stats()["upsample"]["papers"]["dropped"] == {
        "upsample:mesh:Animals": 1, "upsample:publication_type:Preprint": 1}
    assert Upsample({"papers": {"enabled": False}}).process(doc(5, "papers", mesh=["Animals"])) is not None


def _run_ingest(*args):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "gap_replay", "ingest", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_ingest_cli_writes_shards_quarantines_hostile_files_and_skips_on_rerun(tmp_path):
    out = tmp_path / "out"
    hostile = tmp_path / "in" / "evil.nxml"
    hostile.parent.mkdir()
    hostile.write_bytes(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><article>&x;</article>')
    r = _run_ingest("--format", "jats", str(FIX / "pmc_jats"), str(hostile), "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "written papers: 3" in r.stdout and "quarantined: 1" in r.stdout
    (qfile,) = (out / "quarantine").glob("ingest-jats-*.jsonl")
    entry = orjson.loads(qfile.read_bytes().splitlines()[0])
    assert entry["file"] == str(hostile) and "entities" in entry["reason"]
    shards = list_shards(out / "raw" / "papers")
    assert len(shards) == 3 and all("/raw/papers/pmc/" in s for s in shards)
    first = [p.read_bytes() for p in map(Path, shards)]
    r = _run_ingest("--format", "jats", str(FIX / "pmc_jats"), str(hostile), "--output", str(out))
    assert "skipped, already done: 4" in r.stdout
    assert list((out / "quarantine").glob("ingest-jats-*.jsonl")) == [qfile]  # the record is kept
    assert orjson.loads(qfile.read_bytes().splitlines()[0]) == entry
    r = _run_ingest("--format", "jats", str(FIX / "pmc_jats"), "--output", str(out), "--force")
    assert [Path(s).read_bytes() for s in shards] == first  # byte-identical rewrite
    r = _run_ingest("--format", "medline", str(FIX / "medline"), "--output", str(out))
    assert r.returncode == 0 and "written abstracts: 27" in r.stdout
    r = _run_ingest("--format", "s2orc", str(FIX / "s2orc"), "--output", str(out))
    # the 2023 row and its s2orc_v2 copy have no PubMed id; the legacy row has a PMID
    assert "dropped not_pubmed: 2" in r.stdout and "written papers: 1" in r.stdout
    r = _run_ingest("--format", "nope", str(FIX), "--output", str(out))
    assert r.returncode == 2


def test_ingest_all_records_and_truncated_gzip_quarantined(tmp_path):
    out = tmp_path / "out"
    src = (FIX / "s2_abstracts/abstracts-sample.lines1-10.jsonl").read_bytes()
    bad = tmp_path / "abstracts.jsonl.gz"
    bad.write_bytes(gzip.compress(src * 20 + b"{broken\n" + src * 20)[:-30])
    r = _run_ingest("--format", "s2-abstracts", str(bad), "--output", str(out), "--all-records")
    assert r.returncode == 0, r.stderr
    q = Quarantine()
    docs = [d for s in list_shards(out / "raw") for d in iter_documents(s, q)]
    lines = [l for f in (out / "quarantine").glob("*.jsonl") for l in f.read_bytes().splitlines()]
    reasons = [orjson.loads(l)["reason"] for l in lines]
    assert len(docs) >= 200 and any("malformed JSON" in r for r in reasons)
    assert any("truncated" in r for r in reasons)  # the damaged tail is reported, not dropped
    assert all(d.source == "abstracts" and d.id.startswith("corpusid:") for d in docs)
