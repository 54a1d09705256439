"""Each HTML guideline source scraped end to end from its fixture site over real HTTP (127.0.0.1)."""

from __future__ import annotations

import gzip
import re

import orjson
import pytest

from gap_replay.document import Document
from gap_replay.hashing import sha1_id
from gap_replay.recipe import load_recipe
from gap_replay.resources import sample_sites_dir
from gap_replay.sample.server import SiteServer
from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_source
from gap_replay.sources.guidelines.spec import get_spec
from gap_replay.sources.guidelines.store import RecordStore
from gap_replay.stages.clean import CleanStage
from gap_replay.state import State

# tag -> {url path: (title, [phrases in text], [phrases not in text]) or (title, "rejected")}
EXPECTED = {
    "aafp": {
        # 2025+ Clinical Insights topic pages from the sitemap index; one record per page with
        # every recommendation drawer; a topic page without drawers is rejected, not guessed at
        "https://www.aafp.org/clinical-insights/cardiovascular/hypertension":
            ("Hypertension",
             ["### Hypertension in Adults: Screening", "≥ 130/80 mm Hg",
              "- Use a validated, automated office device",
              "### Pharmacologic Treatment of Hypertension in Adults Aged 60 Years or Older",
              "amlodipine 5 mg once daily"],
             ["Clinical insights on hypertension", "https://", "Cardiovascular disease resources",
              "Clinical Practice Guideline", "Home | Clinical Insights"]),
        "https://www.aafp.org/clinical-insights/cardiovascular/ecg-screening":
            ("Screening ECG in Low-Risk Patients", ["Don't order annual electrocardiograms"],
             ["Resting or exercise"]),
        "https://www.aafp.org/clinical-insights/infectious-diseases/immunizations":
            ("Immunizations", "rejected"),
    },
    "cps": {
        "https://cps.ca/en/documents/position/bronchiolitis":
            ("Bronchiolitis: Recommendations for diagnosis, monitoring and management of children one to 24 months of age",
             ["## Abstract", "- Supplemental oxygen may be started", "(age <3 months, prematurity"],
             ["Keywords:", "gives permission", "Figure 1", "Acknowledgements", "Committees",
              "Related statements", "Share"]),   # div.statement-wrapper chrome (2024+ shape)
        "https://cps.ca/en/documents/position/acute-otitis-media":
            ("Management of acute otitis media in children six months of age and older",
             ["amoxicillin 75 mg/kg/day to 90 mg/kg/day"], ["Selected resources"]),
        "https://cps.ca/fr/documents/position/vitamine-d":
            ("Les suppléments de vitamine D", ["400 UI de vitamine D"], []),
    },
    "drugs": {
        "https://www.drugs.com/dosage/amoxicillin.html":
            ("Amoxicillin Dosage",
             ["(or 500 to 875 mg orally every 12 hours)", "(max 4 g/day)", "## Renal Dose Adjustments"],
             ["Always consult", "How long does amoxicillin", "Side effects", "Medically reviewed"]),
        "https://www.drugs.com/dosage/atorvastatin.html":
            ("Atorvastatin Dosage", ["[more than 45%]", "do not exceed 20 mg/day"], ["Further information"]),
        "https://www.drugs.com/dosage/metformin.html":
            ("Metformin Dosage", ["(max 2550 mg/day)", "## Renal Dose Adjustments"],
             # the 2026 page shape: plain-paragraph byline, mid-page related drugs, copyright
             ["Medically reviewed", "Melisa Puckey", "Related/similar", "Jardiance",
              "Check interactions", "Copyright", "Mobile App"]),
    },
    "gc": {
        "https://www.guidelinecentral.com/guideline/3341":
            ("Atrial Fibrillation Management", ["## Document Objectives", "## STROKE PREVENTION", "### HIV"],
             ["Publication Date", "Disclaimer", "www."]),
        "https://www.guidelinecentral.com/guideline/4120":
            ("Hypertension in Pregnancy", ["(160/110 mm Hg or more, persisting 15 minutes or more)"], []),
        "https://www.guidelinecentral.com/guideline/5527": ("Community-Acquired Pneumonia", "rejected"),
    },
    "idsa": {
        "https://www.idsociety.org/practice-guideline/community-acquired-pneumonia-in-adults":
            ("Community-Acquired Pneumonia (CAP) in Adults",
             ["## Introduction", "- In adults with CAP managed in the outpatient setting",
              "Often the causative organism", "macrolides <25%", "CURB-65 score ≥2"],
             ["Published:", "Metlay JP", "Respiratory rate"]),
        "https://www.idsociety.org/practice-guideline/clostridioides-difficile-infection":
            ("Clostridioides difficile Infection (CDI) in Adults: 2021 Focused Update",
             ["### Notes on dosing", "(200 mg twice daily for 5 days"], ["Financial support", "Johnson S"]),
        "https://www.idsociety.org/practice-guideline/lyme-disease-in-development": ("Lyme Disease", "rejected"),
    },
    "magic": {
        # api/v1 catalogue → each guideline's jsonPath (the Dutch entry and the unpublished one
        # without a jsonPath are not discovered)
        "https://s3.amazonaws.com/files.magicapp.org/guideline/0b6f0e9a-2c55-4d1e-9a7f-3e2d1c0b5818/guideline_5818-1_0.json":
            ("Therapeutics and COVID-19: living guideline",
             ["### Corticosteroids", "Systemic corticosteroids\n\nStrong recommendation",
              "Tocilizumab 8 mg/kg (maximum 800 mg)", "do not combine the two IL-6",
              "Weak recommendation", "Box 1. Risk of hospitalization"],
             ["Write remark here", "Dr A. Example", "RECOVERY Collaborative"]),
        "https://s3.amazonaws.com/files.magicapp.org/guideline/6a1d2e3f-4b5c-4d6e-8f70-81920a0b6120/guideline_6120-1_0.json":
            ("Antithrombotic therapy in atrial fibrillation: BMJ Rapid Recommendation",
             ["age ≥80 years, weight ≤60 kg"], ["not a substitute"]),
        "https://s3.amazonaws.com/files.magicapp.org/guideline/c3b2a190-8f7e-4d6c-a5b4-3c2d1e0f7001/guideline_7001-1_0.json":
            ("Draft guideline (not yet published)", "rejected"),
    },
    "mayo": {
        "https://www.mayoclinic.org/diseases-conditions/asthma/symptoms-causes/syc-20369653":
            ("Asthma", ["# Asthma\n\n## Symptoms & causes\n\n### Overview", "## Diagnosis & treatment",
                        "- Chest tightness or pain", "albuterol"],
             ["MayoClinic", "Products & Services", "National Heart, Lung", "Doctors & departments", "Contents",
              "On this page", "By Mayo Clinic Staff", "to your inbox"]),   # 2024+ AEM template chrome
        "https://www.mayoclinic.org/diseases-conditions/atrial-fibrillation/symptoms-causes/syc-20350624":
            ("Atrial fibrillation", ["apixaban, dabigatran"], []),
        "https://www.mayoclinic.org/diseases-conditions/bronchitis/symptoms-causes/syc-20355566":
            ("Bronchitis", ["antibiotics are not effective"], []),
    },
    "rch": {
        "https://www.rch.org.au/clinicalguide/guideline_index/Asthma_acute":
            # the text spans several div.widgetBody blocks in #rch-primary (Management is in the 3rd)
            ("Asthma acute", ["## Key points", "(max 50 mg)", "  - 6 puffs for children aged 0–5 years",
                              "start oral prednisolone"],
             ["See also", "statewide", "SpO2", "Parent information", "Last updated", "fact sheet",
              "PIC Endorsed", "Reference one", "Contact us"]),
        "https://www.rch.org.au/clinicalguide/guideline_index/Croup_laryngotracheobronchitis":
            ("Croup (laryngotracheobronchitis)", ["0.15 mg/kg"], ["Bjornson"]),
        "https://www.rch.org.au/clinicalguide/guideline_index/Febrile_child":
            ("Febrile child", ["38°C", "≥ 38.0"], ["Consult local policies"]),
    },
}


@pytest.fixture(scope="module")
def server():
    with SiteServer(sample_sites_dir()) as srv:
        yield srv


def read_shards(out, tag):
    records = []
    for part in sorted((out / "raw" / "guidelines" / tag).glob("part-*.jsonl.gz")):
        with gzip.open(part) as fh:
            records.extend(orjson.loads(line) for line in fh)
    return records


@pytest.mark.parametrize("tag", sorted(EXPECTED))
def test_source_end_to_end(tag, server, tmp_path):
    spec = get_spec(tag)
    summary = scrape_source(spec, tmp_path, ScrapeOptions(base_url=server.base_url(tag), rate=0, progress=False))
    stage = CleanStage({"guidelines": load_recipe().clean_rules("guidelines")})
    records = read_shards(tmp_path, tag)
    for rec in records:   # the text `process` makes of it: the shared clean stage
        assert "rejected" not in rec["meta"]
        rec["text"] = stage.process(Document.from_dict(rec)).text
    # rejected pages stay in the state only: no raw record
    records += [doc.to_dict() for doc in RecordStore(State(tmp_path / "state.sqlite"), tag).iter_records()
                if doc.meta.get("rejected")]
    records.sort(key=lambda r: r["url"])
    expected = EXPECTED[tag]
    assert summary.failed == 0 and summary.failures == []
    assert [r["url"] for r in records] == sorted(expected)   # one record per article, URL order
    assert summary.records == len(expected)
    for rec in records:
        title, *rest = expected[rec["url"]]
        assert rec["id"] == sha1_id("guidelines", tag, rec["url"])
        assert (rec["source"], rec["subset"], rec["title"]) == ("guidelines", tag, title)
        meta = rec["meta"]
        assert meta["license"] == spec.license and meta["redistributable"] is False
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["fetched_at"])
        assert (meta["raw_text"] or rest[0] == "rejected") and "overview" in meta  # no content: ""
        if rest[0] == "rejected":
            assert rec["text"] == "" and meta["rejected"]
            continue
        assert "rejected" not in meta
        present, absent = rest
        for phrase in present:
            assert phrase in rec["text"], (rec["url"], phrase)
        for phrase in absent:
            assert phrase not in rec["text"], (rec["url"], phrase)
        assert "\n\n\n" not in rec["text"] and rec["text"] == rec["text"].strip()
        # every heading starts its own paragraph: never glued to the line before
        assert not re.search(r"[^\n]\n#", rec["text"])


def test_robots_disallowed_listing_links_are_never_fetched(server, tmp_path):
    # cps robots.txt disallows /en/search; nothing there may be requested by any scrape
    server.clear_log()
    scrape_source(get_spec("cps"), tmp_path, ScrapeOptions(base_url=server.base_url("cps"), rate=0, progress=False))
    paths = [r.path for r in server.requests_to("/cps/")]
    assert paths[0] == "/cps/robots.txt"
    assert not any("/search" in p for p in paths)


def test_non_english_page_is_kept_and_flagged_for_the_language_filter(server, tmp_path):
    scrape_source(get_spec("cps"), tmp_path, ScrapeOptions(base_url=server.base_url("cps"), rate=0, progress=False))
    by_url = {r["url"]: r for r in read_shards(tmp_path, "cps")}
    assert by_url["https://cps.ca/fr/documents/position/vitamine-d"]["meta"]["language"] == "fr"
    assert by_url["https://cps.ca/en/documents/position/bronchiolitis"]["meta"]["language"] == "en"
