"""s2orc_v2 (the full-text dataset of recent S2 releases): rows in the `body`/`bibliography`
shape format with the same rules as the 2023 `content` rows, the client downloads the full text
under whichever name the release lists, and keyed requests are paced to avoid 429s."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest
import yaml

from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.resources import default_recipe_path, sample_sites_dir
from gap_replay.sample.server import Fault, SiteServer
from gap_replay.sources import AcquireContext
from gap_replay.sources.pubmed import acquire
from gap_replay.sources.pubmed.acquire import download_dataset
from gap_replay.sources.ingest import run_ingest
from gap_replay.sources.pubmed.s2api import S2Datasets, S2Error, pick_dataset
from gap_replay.sources.pubmed.s2records import RecordError, is_pubmed_row, s2orc_document
from gap_replay.sources.pubmed.s2orc_v2 import is_v2_row
from gap_replay.http import PoliteClient, RetryPolicy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from make_s2orc_v2_fixture import v2_from_2023  # noqa: E402

FIX = ROOT / "tests" / "fixtures" / "pubmed" / "s2orc"
REAL_2023 = FIX / "s2orc-sample.line3.jsonl"
REAL_V2 = FIX / "s2orc_v2-sample.line3.jsonl"
OLD, LATEST = "2023-08-29", "2026-11-24"


def _row(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8").splitlines()[0])


def _v2(body: str, bib: str = "", title: str = "A v2 paper", encode: bool = True, **ann) -> dict:
    """A small s2orc_v2 row; `ann` keys are `body__<name>` / `bib__<name>` span lists."""
    parts: dict[str, dict] = {"body": {}, "bibliography": {}}
    for key, spans in ann.items():
        where, name = key.split("__")
        parts["body" if where == "body" else "bibliography"][name] = (
            json.dumps(spans) if encode else spans)
    return {"corpusid": 4242, "title": title, "authors": [{"authorId": "1", "name": "A. Author"}],
            "openaccessinfo": {"externalids": {"pubmed": "90000042", "doi": "10.1/x"},
                               "license": "CCBY", "status": "GOLD"},
            "body": {"text": body, "annotations": parts["body"]},
            "bibliography": {"text": bib, "annotations": parts["bibliography"]}}


# -- formatting -------------------------------------------------------------------------------

def test_same_paper_as_2023_row_and_as_v2_row_gives_the_same_text():
    old = _row(REAL_2023)
    new = v2_from_2023(old, keep_abstract=True)
    assert is_v2_row(new) and not is_v2_row(old)
    a, b = s2orc_document(old), s2orc_document(new)
    assert b.text == a.text and b.title == a.title and b.id == a.id
    assert b.meta["s2orc_format"] == "s2orc_v2"


def test_real_v2_fixture_follows_the_golden_rules():
    row = _row(REAL_V2)
    doc = s2orc_document(row)
    lines = doc.text.split("\n")
    assert lines[0] == row["title"] and lines[1] == ""  # title first, then a blank line
    assert doc.text.count(row["title"]) == 1
    # the abstract is the body's first paragraph (v2 has no abstract span): kept, no header
    assert lines[2].startswith("When reading a scholarly article, inline citations help")
    assert "# Introduction" not in lines and any(l.startswith("# ") for l in lines)
    assert any(l.startswith("## ") for l in lines)
    # cited title and first author's surname, from the bibliography spans
    assert re.search(r"\[bib_ref\] [^\[\]]+, [A-Z][^\[\],]* \[/bib_ref\]", doc.text)
    assert "[fig_ref] Figure " in doc.text
    assert "[fig] Figure 2: [Left] To help users discover important prior work" in doc.text
    assert "[table] " in doc.text
    # no bibliography and no author block: the bibliography text never reaches the output
    bib = row["bibliography"]["text"]
    venues = json.loads(row["bibliography"]["annotations"]["bib_venue"])
    venue = " ".join(bib[venues[0]["start"]:venues[0]["end"]].split())
    assert len(venue) > 10 and venue not in doc.text
    assert "josephc@allenai.org" not in doc.text
    assert doc.id == "corpusid:256868353" and doc.meta["doi"] == "10.1145/3544548.3580847"


def test_v2_tokens_offsets_shift_and_titles():
    body = ("Opening words before any header.\n1 Methods\nWe used the model of Smith [1] "
            "as in Figure 2 with $x=1$ shown.\nFigure 2: The setup of the trial arms.")
    bib = "Smith J. A cited paper title on trials. J Med 2019."
    smith, fig2, formula = body.index("[1]"), body.index("Figure 2 with"), body.index("$x=1$")
    cap = body.index("Figure 2:")
    head = body.index("Methods")  # the span is the words; the number is in attributes.n
    par = body.index("We used")
    row = _v2(body, bib,
              body__section_header=[{"start": head, "end": head + 7, "attributes": {"n": "1"}}],
              body__paragraph=[{"start": 0, "end": 32}, {"start": par, "end": cap - 1}],
              body__bib_ref=[{"start": smith, "end": smith + 3,
                              "attributes": {"ref_id": "b0", "matched_paper_id": 99}}],
              body__figure_ref=[{"start": fig2, "end": fig2 + 8,
                                 "attributes": {"ref_id": "fig_1"}}],
              body__formula=[{"start": formula, "end": formula + 5}],
              body__figure=[{"start": cap, "end": len(body), "attributes": {"id": "fig_1"}}],
              body__figure_caption=[{"start": cap + 10, "end": len(body)}],
              bib__bib_entry=[{"start": 0, "end": len(bib), "attributes": {"id": "b0"}}],
              bib__bib_title=[{"start": 9, "end": 38}],
              bib__bib_author_last_name=[{"start": 0, "end": 5}])
    doc = s2orc_document(row)
    assert doc.text == (
        "A v2 paper\n\nOpening words before any header.\n\n# Methods\n\n"
        "We used the model of Smith [bib_ref] A cited paper title on trials, Smith [/bib_ref] "
        "as in [fig_ref] Figure 2: The setup of the trial arms [/fig_ref] with "
        "[formula] $x=1$ [/formula] shown.\n\n[fig] Figure 2: The setup of the trial arms. [/fig]")
    assert doc.id == "pmid:90000042" and doc.meta["license"] == "CCBY"
    # annotation values as decoded lists give the same text; a joined title wins over the row's
    same = _v2(body, bib, encode=False, **{k: json.loads(v) if isinstance(v, str) else v
                                            for k, v in _flat(row).items()})
    assert s2orc_document(same).text == doc.text
    joined = s2orc_document(row, {"title": "Joined Title", "pmid": "90000042"})
    assert joined.text.startswith("Joined Title\n\nOpening words")


def _flat(row: dict) -> dict:
    return {**{f"body__{k}": v for k, v in row["body"]["annotations"].items()},
            **{f"bib__{k}": v for k, v in row["bibliography"]["annotations"].items()}}


@pytest.mark.parametrize("row,reason", [
    ({"corpusid": 1, "body": {"text": "   "}}, "empty body.text"),
    ({"corpusid": 1, "body": {"text": "x", "annotations": {"paragraph": "[{bad"}}},
     "not valid JSON"),
    ({"corpusid": 1, "body": {"text": "x"}, "bibliography": "nope"}, "expected an object"),
    ({"corpusid": 1, "body": {"text": "x", "annotations": [1]}}, "not an object"),
])
def test_bad_v2_rows_are_rejected_with_a_reason(row, reason):
    with pytest.raises(RecordError, match=reason):
        s2orc_document(row)


def test_ingest_keeps_pubmed_v2_rows_and_quarantines_bad_ones(tmp_path):
    good = _row(REAL_V2)
    good["openaccessinfo"]["externalids"]["pubmed"] = "90000001"
    assert is_pubmed_row(good) and not is_pubmed_row(_row(REAL_V2))
    bad = {"corpusid": 7, "openaccessinfo": {"externalids": {"pubmed": "90000007"}},
           "body": {"text": "x", "annotations": {"paragraph": "[{bad"}}}
    src = tmp_path / "v2.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in (good, _row(REAL_V2), bad)) + "\n")
    report = run_ingest("s2orc", [str(src)], tmp_path / "out").to_dict()
    q = Quarantine()
    docs = [d for s in list_shards(tmp_path / "out" / "raw" / "papers")
            for d in iter_documents(s, q, "papers")]
    assert [d.id for d in docs] == ["pmid:90000001"]
    assert report["written"] == {"papers": 1}
    quarantined = (tmp_path / "out" / "quarantine").rglob("*.jsonl")
    lines = [json.loads(l) for f in quarantined for l in f.read_text().splitlines()]
    assert any("v2.jsonl" in str(l.get("file")) and l.get("line") == 3 and "not valid JSON"
               in l.get("reason", "") for l in lines), lines


# -- dataset names ----------------------------------------------------------------------------

def test_pick_dataset_uses_the_name_the_release_lists():
    assert pick_dataset("s2orc", ["papers", "s2orc_v2"]) == "s2orc_v2"
    assert pick_dataset("s2orc_v2", ["papers", "s2orc"]) == "s2orc"
    assert pick_dataset("s2orc_v2", ["s2orc", "s2orc_v2"]) == "s2orc_v2"
    assert pick_dataset("s2orc", ["s2orc", "s2orc_v2"]) == "s2orc"  # asked for by name
    assert pick_dataset("fulltext", ["s2orc", "s2orc_v2"]) == "s2orc_v2"
    assert pick_dataset("tldrs", ["tldrs", "papers"]) == "tldrs"  # any listed name
    assert pick_dataset("s2orc", ["papers"]) is None and pick_dataset("x", ["papers"]) is None


@pytest.fixture()
def server():
    with SiteServer(sample_sites_dir()) as srv:
        yield srv


def _client(srv) -> PoliteClient:
    return PoliteClient(base_url=srv.base_url("s2api"), rate=0, respect_robots=False,
                        retry=RetryPolicy(max_retries=3, backoff=0.01, max_wait=2),
                        sleep=lambda s: None)


def _recipe() -> dict:
    return yaml.safe_load(default_recipe_path().read_text())


def test_release_lists_decide_the_full_text_name(server, caplog):
    caplog.set_level(logging.INFO)
    api = S2Datasets(_client(server), "k")
    assert api.release_datasets("latest") == ["papers", "abstracts", "s2orc_v2"]
    assert api.release_datasets(OLD) == ["papers", "abstracts", "s2orc"]
    assert api.resolve_dataset("s2orc", LATEST) == "s2orc_v2"
    assert "lists 's2orc_v2', not 's2orc'" in caplog.text
    assert api.resolve_dataset("s2orc_v2", OLD) == "s2orc"
    with pytest.raises(S2Error, match="no dataset 'tldrs'; it lists: abstracts, papers, s2orc_v2"):
        api.resolve_dataset("tldrs", LATEST)


def test_download_targets_s2orc_v2_on_the_latest_release(server, tmp_path):
    out = tmp_path / "out"
    client = _client(server)
    server.inject("/s2api/datasets/v1/release/latest",
                  Fault("status", 429, headers={"Retry-After": "1"}))
    summary = download_dataset(out, "s2orc", api_key="k", client=client, recipe=_recipe())
    assert summary["dataset"] == "s2orc_v2" and summary["release"] == LATEST
    latest = server.requests_to("/s2api/datasets/v1/release/latest")
    assert [r.status for r in latest][:2] == [429, 200]  # Retry-After honoured on API calls
    assert summary["rows"] == 2 and summary["kept"] == 1 and summary["written"] == {"papers": 1}
    (doc,) = [d for s in list_shards(out / "raw" / "papers")
              for d in iter_documents(s, Quarantine(), "papers")]
    assert doc.id == "pmid:90000001" and doc.meta["s2orc_format"] == "s2orc_v2"
    assert doc.text.startswith("CiteSee: Augmenting Citations in Scientific Papers")
    assert (out / "downloads" / "s2" / LATEST / "s2orc_v2" / "s2orc_v2_0000.jsonl.gz").exists()
    # the old name on the old release still reads the 2023 rows
    old = download_dataset(tmp_path / "old", "s2orc_v2", api_key="k", client=client,
                           release=OLD, recipe=_recipe())
    assert old["dataset"] == "s2orc" and old["kept"] == 1


def test_sample_acquirer_uses_the_release_full_text(server, tmp_path):
    ctx = AcquireContext(output=str(tmp_path / "o"), recipe=_recipe(), sample_url=server.url,
                         options={"pubmed_route": "s2"})
    out = acquire.acquire_papers(ctx)
    assert out["s2orc"]["dataset"] == "s2orc_v2" and out["s2orc"]["kept"] == 1


# -- pacing -----------------------------------------------------------------------------------

def test_keyed_requests_are_spaced_three_seconds_by_default(tmp_path):
    live = AcquireContext(output=str(tmp_path), recipe={}, sample_url=None, options={})
    assert acquire._rates(live)[0] == pytest.approx(1 / 3)
    assert acquire._client(None, acquire._rates(live)[0]).limiter.interval == pytest.approx(3.0)
    tuned = AcquireContext(output=str(tmp_path), recipe={}, sample_url=None,
                           options={"s2_rate": 0.2})
    assert acquire._rates(tuned)[0] == 0.2
    sample = AcquireContext(output=str(tmp_path), recipe={}, sample_url="http://127.0.0.1:1")
    assert acquire._rates(sample) == (0.0, 0.0)  # the local sample is not paced
