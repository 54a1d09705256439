"""Every guideline site scraped end to end from its fixture site over real HTTP (127.0.0.1).

A real SiteServer on 127.0.0.1 serves the bundled sample sites; the engine runs the shipped specs
through the polite HTTP client; records are read back from the raw shards with the project's
shard reader and given the shared `clean` stage the recipe runs over them; rejected records
come from the state (they are not written to raw).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gap_replay.document import Document
from gap_replay.hashing import sha1_id
from gap_replay.http import RetryPolicy
from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.recipe import load_recipe
from gap_replay.resources import sample_sites_dir
from gap_replay.sample.server import SiteServer, Fault
from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_source, output_paths, reclean_source
from gap_replay.sources.guidelines.spec import get_spec, load_specs
from gap_replay.sources.guidelines.store import RecordStore
from gap_replay.sources.guidelines.wikidoc import page_name, supersede_microchapters
from gap_replay.stages.clean import CleanStage
from gap_replay.state import State
from conftest import raw_guideline_records

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




@pytest.mark.parametrize("tag", sorted(EXPECTED))
def test_source_end_to_end(tag, server, tmp_path):
    spec = get_spec(tag)
    summary = scrape_source(spec, tmp_path, ScrapeOptions(base_url=server.base_url(tag), rate=0, progress=False))
    stage = CleanStage({"guidelines": load_recipe().clean_rules("guidelines")})
    records = raw_guideline_records(tmp_path, tag)
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
    by_url = {r["url"]: r for r in raw_guideline_records(tmp_path, "cps")}
    assert by_url["https://cps.ca/fr/documents/position/vitamine-d"]["meta"]["language"] == "fr"
    assert by_url["https://cps.ca/en/documents/position/bronchiolitis"]["meta"]["language"] == "en"


PDF_ARTEFACTS = re.compile(r"(?m)^(Page \d+|\d+)$|\x7f|■|\ufffd|\uf0b7")


@pytest.fixture(scope="module")
def specs():
    return load_specs()


def scrape(server, specs, tag, out, **kw):
    options = ScrapeOptions(base_url=server.base_url(tag), rate=0, progress=False,
                            retry=RetryPolicy(max_retries=2, backoff=0.01, timeout=5), **kw)
    summary = scrape_source(specs[tag], out, options)
    docs = {}
    quarantine = Quarantine()
    stage = CleanStage({"guidelines": load_recipe().clean_rules("guidelines")})
    for shard in list_shards(Path(out) / "raw" / "guidelines" / tag):
        for doc in iter_documents(shard, quarantine, "guidelines"):
            assert not doc.meta.get("rejected")
            docs[doc.url] = stage.process(doc)
    assert len(quarantine) == 0
    for doc in RecordStore(State(output_paths(out, tag)["state"]), tag).iter_records():
        if doc.meta.get("rejected"):
            docs[doc.url] = doc
    return summary, docs


def kept(docs):
    return {d.title: d for d in docs.values() if d.text}


def check_common(docs, tag, specs):
    spec = specs[tag]
    for url, doc in docs.items():
        assert doc.source == "guidelines" and doc.subset == tag
        assert doc.id == sha1_id("guidelines", tag, url)
        assert doc.title and doc.url.startswith("https://")
        assert doc.meta["license"] == spec.license and doc.meta["redistributable"] is True
        assert doc.meta["raw_text"] and doc.meta["fetched_at"]
        if doc.text:
            # headings are never glued to the previous line
            assert not re.search(r"\S\n#", doc.text)


def check_pdf_records(docs):
    for doc in docs.values():
        # a PDF URL need not end in .pdf (WHO's DSpace 7 bitstreams end in /content, CCO's
        # Drupal files in /en/file/<id>/download?token=...)
        assert doc.meta["pdf_url"].split("?")[0].endswith((".pdf", "/content", "/download"))
        assert doc.meta["pdf_pages"] >= 1
        assert not PDF_ARTEFACTS.search(doc.meta["raw_text"]), doc.url


# ---------------------------------------------------------------------------------------------
def test_who_json_api_item_pages_and_pdfs(server, specs, tmp_path):
    summary, docs = scrape(server, specs, "who", tmp_path)
    assert summary.failed == 0 and summary.records == 3
    check_common(docs, "who", specs)
    check_pdf_records(docs)
    by_title = kept(docs)
    assert set(by_title) == {
        "Guideline for the pharmacological treatment of hypertension in adults",
        "WHO guidelines for malaria",
        "WHO consolidated guidelines on tuberculosis: module 4: treatment: drug-susceptible "
        "tuberculosis treatment"}
    htn = by_title["Guideline for the pharmacological treatment of hypertension in adults"]
    assert htn.url == "https://www.who.int/publications/i/item/9789240086593"
    # 2026 shape: an IRIS DSpace 7 bitstream without .pdf, linked from an unclassed <a>
    assert htn.meta["pdf_url"] == ("https://iris.who.int/server/api/core/bitstreams/"
                                   "4f0c6a1e-8b7d-4c2a-9e51-3d2b7a6c9f10/content")
    assert htn.meta["pdf_pages"] == 3
    assert htn.meta["overview"].startswith("This guideline provides new recommendations")
    # The front-matter "Acknowledgements" (before the Introduction) neither ends the text (the
    # original's bug) nor stays in it; the TOC line "Introduction 1" is not taken as the start.
    assert htn.text.startswith("# Guideline for the pharmacological treatment of hypertension in "
                               "adults\n\n## Introduction\n\nHypertension affects")
    assert "Acknowledgements" not in htn.text and "Contents" not in htn.text
    assert "Research gaps" in htn.text and "140/90 mmHg" in htn.text
    assert "treatment." in htn.text and "treat-" not in htn.text  # hyphenated break joined
    assert "- serum electrolytes and creatinine" in htn.text
    assert "WHO guideline: pharmacological" not in htn.meta["raw_text"]  # running header gone
    assert htn.meta["overview"] == ("This guideline provides new recommendations on the threshold for "
                                    "starting treatment, laboratory testing, combination therapy and "
                                    "blood pressure targets for adults with hypertension.")
    malaria = by_title["WHO guidelines for malaria"]
    # served in the pre-2024 shape: found through the later alternatives (a.download-url, body p)
    assert malaria.meta["pdf_url"].endswith("/2c9b8e4f-6a1d-4f7e-b3c5-8d0a1e9f6b72/content")
    assert malaria.meta["overview"].startswith("The WHO guidelines for malaria bring together")
    assert "- artemether + lumefantrine;" in malaria.text
    assert "Global Malaria Programme thanks" not in malaria.text  # final acknowledgements cut


def test_who_cli_subprocess(server, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "gap_replay.cli.guidelines", "scrape", "--source", "who",
         "--output", str(out), "--base-url", server.base_url("who"), "--rate", "0"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    shards = list_shards(out / "raw" / "guidelines" / "who")
    assert shards
    quarantine = Quarantine()
    docs = [d for s in shards for d in iter_documents(s, quarantine, "guidelines")]
    assert len(docs) == 3 and all(d.title and d.url and d.text for d in docs)


def test_cdc_stacks_pagination_and_pdf(server, specs, tmp_path):
    summary, docs = scrape(server, specs, "cdc", tmp_path)
    # Stacks page 2 reached through "Next" (page 1 in the 2026 `div.object-title` shape, page 2
    # in the original's, read through the later alternative), plus the one A–Z topic index
    assert summary.failed == 0 and summary.listing_pages == 2 + 1
    check_common(docs, "cdc", specs)
    stacks = {u: d for u, d in docs.items() if u.startswith("https://stacks.cdc.gov/")}
    check_pdf_records(stacks)
    assert set(stacks) == {"https://stacks.cdc.gov/view/cdc/133668",
                           "https://stacks.cdc.gov/view/cdc/120409"}
    # the cdc_diseases variant: HTML disease pages beside the PDFs (article.format auto); the
    # "Rubeola — see Measles" entry gives no second record, travel links are not followed
    diseases = {u: d for u, d in docs.items() if u not in stacks}
    assert set(diseases) == {"https://www.cdc.gov/measles/index.html",
                             "https://www.cdc.gov/lyme/index.html"}
    assert not any("pdf_url" in d.meta for d in diseases.values())
    measles = diseases["https://www.cdc.gov/measles/index.html"]
    assert measles.title == "Measles (Rubeola)"                        # " | CDC" stripped
    assert "- Koplik spots may appear 2 to 3 days after symptoms begin." in measles.text
    assert "12 through 15 months of age" in measles.text
    assert "More Information" not in measles.text and "insurance" not in measles.text
    lyme = diseases["https://www.cdc.gov/lyme/index.html"]
    assert "(100 mg twice daily for 10 to 21 days)" in lyme.text      # dose in parentheses kept
    assert "After Travel" not in lyme.text and "travelled" not in lyme.text
    assert not any(p.path.startswith("/cdc/travel") for p in server.requests_to("/cdc/"))
    sti = stacks["https://stacks.cdc.gov/view/cdc/133668"]
    assert sti.title == "Sexually transmitted infections treatment guidelines, 2021"
    assert sti.meta["pdf_url"] == "https://stacks.cdc.gov/view/cdc/133668/cdc_133668_DS1.pdf"
    assert sti.meta["pdf_pages"] == 2
    # ZapfDingbats bullets (the original's Wingdings "q ") are list items.
    assert "- Doxycycline 100 mg orally 2 times/day for 7 days" in sti.text
    assert "## GONOCOCCAL INFECTIONS" in sti.text
    assert "Acknowledgments" not in sti.text and "work group" not in sti.text
    assert "MMWR / Recommendations and Reports" not in sti.text


def test_nice_chapters_joined_with_blank_lines(server, specs, tmp_path):
    summary, docs = scrape(server, specs, "nice", tmp_path)
    assert summary.failed == 0 and summary.records == 3
    check_common(docs, "nice", specs)
    ng136 = docs["https://www.nice.org.uk/guidance/ng136"]
    assert ng136.title == "Hypertension in adults: diagnosis and management"
    assert ng136.meta["overview"].startswith("This guideline covers identifying and treating primary hypertension")
    headings = re.findall(r"(?m)^## (.+)$", ng136.text)
    assert headings == ["Recommendations", "Recommendations for research", "Rationale and impact", "Context"]
    # dropped chapters: update information, committee details
    assert "Update information" not in ng136.text and "committee details" not in ng136.text
    # each chapter header starts its own block (the original glued "...do this.# Context")
    assert "readings.\n\n## Context\n\nHypertension is one of" in ng136.text
    assert "[1]" not in ng136.text and "1.1.1" not in ng136.text
    assert "making decisions about your care" in ng136.text  # link text kept
    ta = docs["https://www.nice.org.uk/guidance/ta875"]
    ta_headings = re.findall(r"(?m)^## (.+)$", ta.text)
    assert ta_headings == ["Recommendations", "Information about semaglutide", "Committee discussion"]
    assert "2.4 mg" in ta.text and "(Wegovy)" not in ta.text  # the lead is meta.overview
    assert "Wegovy" in ta.meta["overview"]


def test_wikidoc_allpages_skips_redirects_and_cleans(server, specs, tmp_path):
    server.clear_log()
    summary, docs = scrape(server, specs, "wikidoc", tmp_path)
    assert summary.failed == 0 and summary.listing_pages == 2
    paths = [r.path for r in server.requests_to("/wikidoc/")]
    assert not any("redirect=no" in p or "Asthma_attack" in p or "Bronchiolitis_obliterans" in p for p in paths)
    check_common(docs, "wikidoc", specs)
    names = {page_name(u) for u in docs}
    assert names == {"Asthma causes", "Asthma in pregnancy", "Asthma overview", "Asthma pathophysiology",
                     "Asthmatic bronchitis", "Bronchiolitis", "Error 404 page"}
    overview = docs["https://www.wikidoc.org/index.php/Asthma_overview"]
    assert overview.title == "Asthma"
    text = overview.text
    assert text.startswith("# Asthma\n\n## Overview\n\nAsthma is a chronic inflammatory disorder")
    for gone in ("Editor-In-Chief", "Contents", "Microchapters", "Any recommendations found",
                 "package insert", "Global Strategy", "ginasthma", "[edit]", "[1]"):
        assert gone not in text, gone
    assert "### Acute Exacerbation" in text and "prednisolone 40 to 50 mg daily" in text
    assert "- Viral respiratory infections, particularly rhinovirus in children" in text
    error = docs["https://www.wikidoc.org/index.php/Error_404_page"]
    assert error.text == "" and "no text in this page" in error.meta["rejected"]
    bronchiolitis = docs["https://www.wikidoc.org/index.php/Bronchiolitis"]
    assert "Oxygen saturation below 90%" not in bronchiolitis.text  # table skipped
    assert "See also" not in bronchiolitis.text and "Nirsevimab" in bronchiolitis.text


def test_wikidoc_overview_supersedes_only_its_microchapters(server, specs, tmp_path):
    summary, docs = scrape(server, specs, "wikidoc", tmp_path)
    after = {page_name(u): d for u, d in docs.items()}
    assert after["Asthma causes"].text == "" and after["Asthma pathophysiology"].text == ""
    assert after["Asthma causes"].meta["rejected"] == "superseded by 'Asthma overview'"
    # The microchapters were scraped in full: only the whole-source rule empties them.
    assert "ORMDL3" in after["Asthma causes"].meta["raw_text"]
    # Unrelated articles sharing the prefix survive (the original deleted them).
    for name in ("Asthma in pregnancy", "Asthmatic bronchitis", "Asthma overview", "Bronchiolitis"):
        assert after[name].text, name
    assert len(after) == 7  # nothing lost: superseded records stay in the state, marked
    # Idempotent, and `guidelines clean` (re-deriving text from raw_text) keeps the rule.
    store = RecordStore(State(output_paths(tmp_path, "wikidoc")["state"]), "wikidoc")
    assert supersede_microchapters(store) == 0
    reclean_source(specs["wikidoc"], tmp_path)
    quarantine = Quarantine()
    recleaned = {page_name(d.url): d for s in list_shards(output_paths(tmp_path, "wikidoc")["raw"])
                 for d in iter_documents(s, quarantine)}
    assert "Asthma causes" not in recleaned and recleaned["Asthmatic bronchitis"].text


def test_cma_categories_pagination_and_triage(server, specs, tmp_path):
    server.clear_log()
    summary, docs = scrape(server, specs, "cma", tmp_path)
    assert summary.failed == 0
    # home page + 3 categories + page 2 of Respirology; the single-page category is read too
    assert summary.listing_pages == 5
    check_common(docs, "cma", specs)
    asthma_pdf = "https://cts-sct.ca/cpg_files/asthma_primary_care_2022.pdf"
    osteo_pdf = "https://osteoporosis.ca/cpg_files/osteoporosis_2023.pdf"
    assert set(docs) == {
        "https://www.canada.ca/en/public-health/services/publications/healthy-living/"
        "canadian-immunization-guide-part-4-active-vaccines/page-10-influenza-vaccine.html",
        "https://www.canada.ca/en/public-health/services/infectious-diseases/"
        "sexual-health-sexually-transmitted-infections/canadian-guidelines/syphilis.html",
        asthma_pdf, osteo_pdf}
    # article.format auto: the linked PDFs (any host) are read as PDFs, with title and URL
    pdfs = {u: d for u, d in docs.items() if u.endswith(".pdf")}
    for doc in pdfs.values():
        assert doc.meta["pdf_pages"] >= 1 and doc.title and doc.meta["pdf_url"] == doc.url
        assert not re.search(r"(?m)^\d+$", doc.text)          # the lone page number is gone
        assert "Funding" not in doc.text and "Disclaimer" not in doc.text   # PDF stoppers
    asthma = docs[asthma_pdf]
    assert asthma.title == "Asthma management in primary care: 2022 guideline"  # the listing link
    assert asthma.meta["pdf_url"] == asthma_pdf and asthma.text
    assert "budesonide-formoterol" in asthma.text
    assert docs[osteo_pdf].title.startswith("Clinical practice guideline for management of osteoporosis")
    assert "1200 mg per day" in docs[osteo_pdf].text
    for doc in docs.values():
        assert ("pdf_url" in doc.meta) == doc.url.endswith(".pdf")   # HTML pages stay HTML
    paths = [r.path for r in server.requests_to("/cma/")]
    assert paths.count("/cma/cpg_files/asthma_primary_care_2022.pdf") == 1   # fetched once
    assert not any("choosing" in p or "choisir" in p or "cmaj" in p for p in paths)
    flu = kept(docs)["Influenza vaccines: Canadian Immunization Guide"]
    assert flu.text.startswith("# Influenza vaccines: Canadian Immunization Guide\n\n## Key information")
    assert "0.5 mL given intramuscularly (IM)" in flu.text  # parentheses (doses) kept
    assert "Osterholm" not in flu.text and "Report a problem" not in flu.text
    assert "Date modified" not in flu.text and "Table 1" not in flu.text
    syph = kept(docs)["Syphilis guide: Key information and resources"]
    # a line mentioning the title's words is not dropped (the original dropped them)
    assert "Screen all pregnant people for syphilis" in syph.text
    assert "expert working group" not in syph.text


def test_icrc_sitemap_publication_pages_and_pdfs(server, specs, tmp_path):
    """Sitemap index → its two url sets → the English clinical publication pages → their PDFs;
    non-clinical publications, /en/document/ pages and other languages are never fetched."""
    server.clear_log()
    summary, docs = scrape(server, specs, "icrc", tmp_path)
    assert summary.failed == 0 and summary.listing_pages == 3 and summary.records == 2
    check_common(docs, "icrc", specs)
    check_pdf_records(docs)
    pub = "https://www.icrc.org/en/publication/"
    assert set(docs) == {
        pub + "war-surgery-working-limited-resources-armed-conflict-and-other-situations-violence-volume-1",
        pub + "0870-first-aid-armed-conflicts-and-other-situations-violence"}
    paths = [r.path for r in server.requests_to("/icrc/")]
    assert not any(w in p for p in paths for w in ("data-protection", "health-care-danger",
                                                   "annual-report", "/en/document/", "/fr/"))
    war = docs[pub + "war-surgery-working-limited-resources-armed-conflict-and-other-situations-violence-volume-1"]
    assert war.meta["pdf_url"] == ("https://www.icrc.org/sites/default/files/document/file_list/"
                                   "icrc-war-surgery-vol1.pdf")
    assert war.title == ("War Surgery: Working with limited resources in armed conflict and other "
                         "situations of violence, Volume 1")
    assert war.meta["pdf_pages"] == 2
    assert "- Category IV: patients with severe injuries" in war.text
    assert "delayed primary closure after four to five days.\n\nAntibiotics do not replace surgery." in war.text
    assert "19 avenue de la Paix" not in war.text  # "Contacts" stopper
    assert "ICRC WAR SURGERY" not in war.meta["raw_text"]  # running header


def test_spor_asset_map_report_pdfs(server, specs, tmp_path):
    """The April-2018 asset-map report's link annotations: direct PDFs kept, publisher pages not
    fetched."""
    server.clear_log()
    summary, docs = scrape(server, specs, "spor", tmp_path)
    assert summary.failed == 0 and summary.records == 3 and summary.listing_pages == 1
    paths = [r.path for r in server.requests_to("/spor/")]
    assert "/spor/wp-content/uploads/2018/04/SPOR-Evidence-Alliance_Asset-Map-of-Canadian-CPGs_Reportv3.pdf" in paths
    assert not any("types-of-cancer" in p or "canadian-guidelines" in p for p in paths)
    check_common(docs, "spor", specs)
    check_pdf_records(docs)
    assert set(docs) == {"https://canadiantaskforce.ca/docs/ctfphc-breast-cancer-screening-2018.pdf",
                         "https://guidelines.diabetes.ca/docs/diabetes-canada-pharmacotherapy-t2d.pdf",
                         "https://cps.ca/docs/cps-bronchiolitis.pdf"}
    diabetes = docs["https://guidelines.diabetes.ca/docs/diabetes-canada-pharmacotherapy-t2d.pdf"]
    # a word-processor file name in the PDF metadata is not a title
    assert diabetes.title == "Pharmacologic glycemic management of type 2 diabetes in adults"
    assert "7.1% to 8.5%" in diabetes.text and "disclosures" not in diabetes.text
    bronchiolitis = docs["https://cps.ca/docs/cps-bronchiolitis.pdf"]
    assert bronchiolitis.title.startswith("Bronchiolitis: recommendations for diagnosis")


def test_spor_include_keeps_pdfs_named_in_the_query(specs):
    """The report also links PDFs served by a script (`download.php?url=x.pdf`); pages are not."""
    include = [re.compile(r) for r in specs["spor"].discovery[0].include]
    def kept(url):
        return any(r.search(url) for r in include)
    assert kept("https://publisher.example/download.php?url=guideline.pdf")
    assert kept("https://publisher.example/get?Filename=Clinical_Guideline.pdf&lang=en")
    assert kept("http://www.example.ca/docs/CPG.PDF")
    assert not kept("https://publisher.example/catalogue.html")
    assert not kept("https://publisher.example/pdf-guidelines/")


def test_cco_listing_pages_and_pdf_button(server, specs, tmp_path):
    summary, docs = scrape(server, specs, "cco", tmp_path)
    assert summary.failed == 0 and summary.listing_pages == 2
    check_common(docs, "cco", specs)
    check_pdf_records(docs)
    nsclc = docs["https://www.cancercareontario.ca/en/guidelines-advice/types-of-cancer/2186"]
    assert nsclc.title == "Systemic Therapy for Advanced Non-Small Cell Lung Cancer"
    assert nsclc.meta["pdf_url"].endswith("/guidelines/full/pebc1-21f.pdf")
    assert nsclc.text.startswith("# Systemic Therapy for Advanced Non-Small Cell Lung Cancer\n\n## QUESTIONS")
    assert "copyrighted" not in nsclc.text
    assert "  - Combination chemoimmunotherapy is an acceptable alternative." in nsclc.text
    # the 2026 page shape: the full report is /en/file/<id>/download?token=..., found through the
    # first pdf_link alternative (the NSCLC page above keeps the older pdfBTN button)
    fn = docs["https://www.cancercareontario.ca/en/guidelines-advice/types-of-cancer/2166"]
    assert fn.title == "Management of Febrile Neutropenia in Adult Patients with Cancer"
    assert fn.meta["pdf_url"] == ("https://www.cancercareontario.ca/en/file/2166/download"
                                  "?token=Qm9vb2s1")
    assert fn.meta["overview"].startswith("To recommend how adults with solid tumours")
    assert set(docs) == {nsclc.url, fn.url}
    # the index's category buttons (/types-of-cancer/breast) are not guidelines and are not fetched
    paths = [r.path for r in server.requests_to("/cco/")]
    assert not any(p.endswith(("/breast", "/lung")) for p in paths)


def test_broken_pdf_is_recorded_and_retried(server, specs, tmp_path):
    """A truncated PDF body becomes a recorded failure; the next run fetches it and succeeds."""
    path = "/spor/docs/cps-bronchiolitis.pdf"
    server.inject(path, *[Fault("truncate", keep_bytes=300)] * 3)
    summary, docs = scrape(server, specs, "spor", tmp_path)
    assert summary.failed == 1 and summary.records == 2
    failures = State(output_paths(tmp_path, "spor")["state"]).failures("spor")
    assert [f[0] for f in failures] == ["https://cps.ca/docs/cps-bronchiolitis.pdf"]
    server.faults.pop(path, None)
    summary, docs = scrape(server, specs, "spor", tmp_path)
    assert summary.failed == 0 and summary.records == 3
    assert State(output_paths(tmp_path, "spor")["state"]).failures("spor") == []


def test_encrypted_or_html_instead_of_pdf_is_a_recorded_failure(server, specs, tmp_path):
    """A PDF URL that answers with an HTML page (login wall) is recorded with a clear reason."""
    server.inject("/icrc/sites/default/files/document/file_list/icrc-war-surgery-vol1.pdf",
                  Fault("status", 200))
    summary, _ = scrape(server, specs, "icrc", tmp_path)
    assert summary.failed == 1
    (url, reason), = summary.failures
    # recorded under the publication page that links the PDF
    assert url.endswith("/en/publication/war-surgery-working-limited-resources-armed-conflict-"
                        "and-other-situations-violence-volume-1") and "not a PDF" in reason


def test_refresh_of_unchanged_pdf_site_gets_304s_and_identical_shards(server, specs, tmp_path):
    scrape(server, specs, "who", tmp_path)
    raw = output_paths(tmp_path, "who")["raw"]
    first = {p: Path(p).read_bytes() for p in list_shards(raw)}
    server.clear_log()
    summary, _ = scrape(server, specs, "who", tmp_path, refresh=True)
    assert summary.scraped == 0 and summary.unchanged == 3 and summary.failed == 0
    pdf_requests = [r for r in server.requests_to("/who/server/api/core/bitstreams/")]
    assert len(pdf_requests) == 3 and all(r.status == 304 for r in pdf_requests)
    assert {p: Path(p).read_bytes() for p in list_shards(raw)} == first


def test_who_cli_against_a_server_root_shaped_like_who(tmp_path):
    """The issue's acceptance command: the WHO site served at the root of 127.0.0.1:PORT."""
    with SiteServer(sample_sites_dir() / "who") as who:
        out = tmp_path / "out"
        result = subprocess.run(
            [sys.executable, "-m", "gap_replay.cli.guidelines", "scrape", "--source", "who",
             "--output", str(out), "--base-url", who.url, "--rate", "0"],
            capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert any(r.path.startswith("/api/hubs/publications?") for r in who.requests_to("/api/"))
        assert len(who.requests_to("/server/api/core/bitstreams/")) == 3
    quarantine = Quarantine()
    docs = [d for s in list_shards(out / "raw" / "guidelines" / "who") for d in iter_documents(s, quarantine)]
    assert sorted(d.url for d in docs) == [
        "https://www.who.int/publications/i/item/9789240077263",
        "https://www.who.int/publications/i/item/9789240086593",
        "https://www.who.int/publications/i/item/guidelines-for-malaria"]


def test_who_item_page_without_a_download_link_uses_the_listings_download_url(specs, tmp_path):
    import re as _re
    import shutil

    root = tmp_path / "sites"
    shutil.copytree(sample_sites_dir() / "who", root / "who")
    item = root / "who" / "publications" / "i" / "item" / "9789240086593"
    page = item.read_text()
    stripped = _re.sub(r"<a[^>]*bitstreams[^>]*>.*?</a>", "", page, flags=_re.S)
    assert stripped != page
    item.write_text(stripped)
    with SiteServer(root) as srv:
        summary, docs = scrape(srv, specs, "who", tmp_path / "out")
    htn = kept(docs)["Guideline for the pharmacological treatment of hypertension in adults"]
    assert summary.failed == 0 and htn.meta["pdf_pages"] == 3
    assert htn.meta["pdf_url"] == ("https://iris.who.int/server/api/core/bitstreams/"
                                   "4f0c6a1e-8b7d-4c2a-9e51-3d2b7a6c9f10/content")


def test_icrc_sitemap_filter_on_publication_slugs(specs):
    """The slug filter on real publication URLs (docs/guidelines.md, "Sites as of 2026")."""
    step = specs["icrc"].discovery[0]
    include = [re.compile(r) for r in step.include]
    exclude = [re.compile(r) for r in step.exclude]

    def kept(url):
        return any(r.search(url) for r in include) and not any(r.search(url) for r in exclude)

    pub = "https://www.icrc.org/en/publication/"
    assert kept(pub + "basic-emergency-care-approach-acutely-ill-and-injured")
    assert kept(pub + "4749-digital-health-framework-leveraging-digital-health-innovations-and-intelligence")
    assert not kept(pub + "4072-health-care-danger-making-case")
    assert not kept(pub + "4261-icrc-rules-on-personal-data-protection")
    assert not kept(pub + "autonomous-weapon-systems-implications-increasing-autonomy-critical-functions-weapons")
    assert not kept("https://www.icrc.org/en/document/fundamental-principles-red-cross-and-red-crescent")
    assert not kept("https://www.icrc.org/fr/publication/chirurgie-de-guerre-volume-1")
