#!/usr/bin/env python
"""Generate the guideline PDFs of the fixture sites and the PDF unit tests, byte-stable.

    python scripts/make_guideline_pdfs.py            # (re)write every PDF
    python scripts/make_guideline_pdfs.py --check    # exit 1 if a committed PDF differs

reportlab runs in invariant mode (fixed dates and document ids), so the output is identical on
every run and the committed files only change when the content below changes. Documents are
written in a tiny markup: "T " title line, "# " / "## " headings, "### " a bold body-size
heading, "B " a bold paragraph, "- " bullets, "o " sub-bullets,
"PAGE" a page break, anything else a paragraph; "{-}" forces a hyphenated line break.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from reportlab import rl_config

rl_config.invariant = 1  # fixed CreationDate/ID: byte-identical output

from reportlab.lib.pagesizes import A4, LETTER  # noqa: E402
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # noqa: E402
from reportlab.platypus import (ListFlowable, ListItem, PageBreak, Paragraph,  # noqa: E402
                                SimpleDocTemplate, Spacer)

ROOT = Path(__file__).resolve().parent.parent
SITES = ROOT / "src" / "gap_replay" / "sample" / "sites"
UNIT = ROOT / "tests" / "fixtures" / "pdf"

_ss = getSampleStyleSheet()
STYLES = {
    "T": ParagraphStyle("T", parent=_ss["Title"], fontName="Helvetica-Bold", fontSize=20, leading=24),
    "#": ParagraphStyle("H1", parent=_ss["Heading1"], fontName="Helvetica-Bold", fontSize=15, leading=19),
    "##": ParagraphStyle("H2", parent=_ss["Heading2"], fontName="Helvetica-Bold", fontSize=12.5,
                         leading=16),
    "###": ParagraphStyle("H3", parent=_ss["BodyText"], fontName="Helvetica-Bold", fontSize=10,
                          leading=13, spaceBefore=6),
    "p": ParagraphStyle("Body", parent=_ss["BodyText"], fontName="Helvetica", fontSize=10, leading=13,
                        spaceAfter=6),
}


def _story(lines: list[str], bullet_font: str) -> list:
    story: list = []
    items: list[tuple[str, str]] = []

    def flush() -> None:
        # Consecutive items of one kind form one list; "o" sub-bullets are indented further.
        groups: list[tuple[str, list[str]]] = []
        for kind, text in items:
            if groups and groups[-1][0] == kind:
                groups[-1][1].append(text)
            else:
                groups.append((kind, [text]))
        for kind, texts in groups:
            flow = [ListItem(Paragraph(_markup(text), STYLES["p"])) for text in texts]
            if kind == "o":
                story.append(ListFlowable(flow, bulletType="bullet", start="o",
                                          bulletFontName="Helvetica", leftIndent=36))
            else:
                start = "l" if bullet_font == "ZapfDingbats" else "\u2022"
                story.append(ListFlowable(flow, bulletType="bullet", start=start,
                                          bulletFontName=bullet_font, leftIndent=18))
        if items:
            story.append(Spacer(1, 4))
        items.clear()

    for line in lines:
        if line.startswith(("- ", "o ")):
            items.append((line[0], line[2:]))
            continue
        flush()
        if line == "PAGE":
            story.append(PageBreak())
        elif line.startswith(("T ", "# ", "## ", "### ")):
            mark, text = line.split(" ", 1)
            story.append(Paragraph(_markup(text), STYLES[mark]))
        elif line.startswith("B "):
            story.append(Paragraph(f"<b>{_markup(line[2:])}</b>", STYLES["p"]))
        else:
            story.append(Paragraph(_markup(line), STYLES["p"]))
    flush()
    return story


def _markup(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("{-}", "-<br/>")


def render_runs(doc: dict) -> bytes:
    """A one-page PDF of positioned text runs (font, size, x, y, text): exact layouts for tests."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setTitle(doc.get("meta_title", ""))
    for font, size, x, y, text in doc["runs"]:
        c.setFont(font, size)
        c.drawString(x, y, text)
    c.save()
    return buf.getvalue()


def render(doc: dict) -> bytes:
    """One PDF from a document dict: lines, metadata title (may be absent), running header."""
    if "runs" in doc:
        return render_runs(doc)
    buf = io.BytesIO()
    kwargs = {"title": doc["meta_title"]} if doc.get("meta_title") else {}
    pagesize = doc.get("pagesize", A4)
    header = doc.get("header", "")

    def decorate(canvas, template) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        if header:
            canvas.drawString(72, pagesize[1] - 40, header)
        canvas.drawRightString(pagesize[0] - 72, 30, doc.get("footer", "Page %d") % template.page)
        canvas.restoreState()

    template = SimpleDocTemplate(buf, pagesize=pagesize, author=doc.get("author", ""),
                                 subject="", creator="", encrypt=doc.get("encrypt"), **kwargs)
    template.build(_story(doc["lines"], doc.get("bullet_font", "Helvetica")), onFirstPage=decorate,
                   onLaterPages=decorate)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Documents. Paths are relative to the fixture site folder (URL path of the PDF on the site).
# ---------------------------------------------------------------------------------------------
DOCS: dict[str, dict] = {}

DOCS["who/server/api/core/bitstreams/4f0c6a1e-8b7d-4c2a-9e51-3d2b7a6c9f10/content"] = dict(
    meta_title="Guideline for the pharmacological treatment of hypertension in adults",
    author="World Health Organization", header="WHO guideline: pharmacological treatment of hypertension",
    lines=[
        "T Guideline for the pharmacological treatment of hypertension in adults",
        "Contents",
        "Acknowledgements v",
        "Abbreviations and acronyms vi",
        "Executive summary vii",
        "Introduction 1",
        "# Acknowledgements",
        "The World Health Organization gratefully acknowledges the members of the Guideline "
        "Development Group, the external review group and the systematic review teams who "
        "contributed to this guideline.",
        "PAGE",
        "# Introduction",
        "Hypertension affects an estimated 1.28 billion adults aged 30 to 79 years worldwide, and "
        "about two thirds of them live in low- and middle-income countries. Fewer than half of "
        "adults with hypertension are diagnosed and treated, and only about one in five has "
        "the condition under control.",
        "This guideline provides recommendations on the threshold for starting pharmacological "
        "treatment, the intervals for follow-up, the blood pressure targets to reach and the "
        "cadres of health-care workers who may start treat{-}ment.",
        "## Recommendation 1: blood pressure threshold for starting treatment",
        "WHO recommends starting pharmacological antihypertensive treatment in individuals with a "
        "confirmed diagnosis of hypertension and a systolic blood pressure of 140 mmHg or higher "
        "or a diastolic blood pressure of 90 mmHg or higher (strong recommendation, moderate-"
        "certainty evidence).",
        "WHO recommends pharmacological treatment in individuals with existing cardiovascular "
        "disease and a systolic blood pressure of 130 to 139 mmHg (strong recommendation, "
        "moderate- to high-certainty evidence).",
        "## Recommendation 2: laboratory testing",
        "When starting treatment, the following tests should be obtained where this does not "
        "delay treatment:",
        "- serum electrolytes and creatinine, to estimate the glomerular filtration rate;",
        "- a lipid profile and fasting glucose or HbA1c;",
        "- urine dipstick testing for protein, and an electrocardiogram.",
        "PAGE",
        "## Recommendation 3: combination therapy",
        "WHO suggests combination therapy, preferably in a single-pill combination, to improve "
        "adherence and persistence with treatment (conditional recommendation, moderate-certainty "
        "evidence). Drugs from the following three classes may be used as initial treatment: "
        "thiazide and thiazide-like diuretics, angiotensin-converting enzyme inhibitors or "
        "angiotensin-receptor blockers, and long-acting dihydropyridine calcium-channel blockers.",
        "## Recommendation 4: target blood pressure",
        "WHO recommends a target blood pressure of less than 140/90 mmHg in all patients with "
        "hypertension without comorbidities, and a target systolic blood pressure of less than "
        "130 mmHg in patients with known cardiovascular disease, diabetes or high cardiovascular "
        "risk.",
        "# Research gaps",
        "The Guideline Development Group identified gaps in the evidence on the effect of "
        "treatment in adults older than 80 years, on task sharing in community settings and on "
        "the cost-effectiveness of single-pill combinations in low-resource settings.",
    ],
)

DOCS["who/server/api/core/bitstreams/2c9b8e4f-6a1d-4f7e-b3c5-8d0a1e9f6b72/content"] = dict(
    meta_title="WHO guidelines for malaria",
    author="World Health Organization", header="WHO guidelines for malaria",
    lines=[
        "T WHO guidelines for malaria",
        "# Introduction",
        "Malaria is a life-threatening disease caused by Plasmodium parasites that are transmitted "
        "to people through the bites of infected female Anopheles mosquitoes. In 2022 there were an "
        "estimated 249 million malaria cases and 608 000 malaria deaths in 85 countries.",
        "These consolidated guidelines bring together recommendations on vector control, "
        "preventive chemotherapy, diagnosis and case management.",
        "# Diagnosis of malaria",
        "All suspected cases of malaria should have a parasitological test, by microscopy or a "
        "rapid diagnostic test, to confirm the diagnosis before treatment is started. Treatment "
        "solely on the basis of clinical suspicion should only be considered when a "
        "parasitological diagnosis is not accessible within two hours.",
        "# Treatment of uncomplicated falciparum malaria",
        "Treat adults and children with uncomplicated Plasmodium falciparum malaria, except "
        "pregnant women in their first trimester, with one of the following artemisinin-based "
        "combination therapies:",
        "- artemether + lumefantrine;",
        "- artesunate + amodiaquine;",
        "- dihydroartemisinin + piperaquine.",
        "Artemisinin-based combination therapies should cover three days of treatment with the "
        "artemisinin derivative. Dosing should be based on body weight so that each patient "
        "receives an effective dose.",
        "# Acknowledgements",
        "The Global Malaria Programme thanks the members of the guideline development groups.",
    ],
)

DOCS["who/server/api/core/bitstreams/a7e2d4c8-1f3b-4e6a-8c9d-5b0f2e7a4d31/content"] = dict(
    meta_title="Consolidated guidelines on tuberculosis: module 4: treatment",
    author="World Health Organization", header="WHO consolidated guidelines on tuberculosis",
    lines=[
        "T WHO consolidated guidelines on tuberculosis. Module 4: treatment",
        "# Introduction",
        "Tuberculosis remains one of the world's deadliest infectious diseases: an estimated "
        "10.6 million people fell ill with tuberculosis in 2022, and 1.3 million died. "
        "Drug-susceptible tuberculosis is curable with a six-month regimen of first-line drugs.",
        "# Drug-susceptible tuberculosis",
        "In patients aged 12 years or older with drug-susceptible pulmonary tuberculosis, a "
        "four-month regimen of isoniazid, rifapentine, moxifloxacin and pyrazinamide may be used "
        "(conditional recommendation, moderate certainty of evidence).",
        "In children and adolescents between 3 months and 16 years of age with non-severe "
        "tuberculosis, a four-month regimen (2HRZ(E)/2HR) should be used.",
        "# Monitoring during treatment",
        "Sputum smear microscopy and culture should be performed at the end of the intensive "
        "phase. Patients should be asked at every visit about adverse events, including "
        "jaundice, peripheral neuropathy and visual disturbance.",
    ],
)

DOCS["cdc/view/cdc/133668/cdc_133668_DS1.pdf"] = dict(
    meta_title="Sexually Transmitted Infections Treatment Guidelines, 2021",
    author="Centers for Disease Control and Prevention", header="MMWR / Recommendations and Reports",
    bullet_font="ZapfDingbats", pagesize=LETTER,
    lines=[
        "T Sexually Transmitted Infections Treatment Guidelines, 2021",
        "# SUMMARY",
        "These guidelines for the treatment of persons who have or are at risk for sexually "
        "transmitted infections were updated by CDC after consultation with professionals "
        "knowledgeable in the field of sexually transmitted infections.",
        "# CHLAMYDIAL INFECTIONS",
        "Chlamydial infection is the most frequently reported bacterial infectious disease in the "
        "United States, and prevalence is highest among persons aged 24 years or younger.",
        "## Recommended regimen for adolescents and adults",
        "- Doxycycline 100 mg orally 2 times/day for 7 days",
        "## Alternative regimens",
        "- Azithromycin 1 g orally in a single dose",
        "- Levofloxacin 500 mg orally once daily for 7 days",
        "PAGE",
        "# GONOCOCCAL INFECTIONS",
        "For uncomplicated gonococcal infections of the cervix, urethra or rectum among persons "
        "weighing less than 150 kg, a single 500 mg intramuscular dose of ceftriaxone is "
        "recommended. For persons weighing 150 kg or more, 1 g of ceftriaxone should be "
        "administered.",
        "If chlamydial infection has not been excluded, providers should treat for chlamydia with "
        "doxycycline 100 mg orally 2 times/day for 7 days.",
        "# Acknowledgments",
        "The following persons participated in the consultation: members of the STI treatment "
        "guidelines work group.",
    ],
)

DOCS["cdc/view/cdc/120409/cdc_120409_DS1.pdf"] = dict(
    meta_title="CDC Guideline for Prescribing Opioids for Chronic Pain",
    author="Centers for Disease Control and Prevention", header="MMWR / Recommendations and Reports",
    pagesize=LETTER,
    lines=[
        "T CDC Clinical Practice Guideline for Prescribing Opioids for Pain",
        "# INTRODUCTION",
        "Pain is among the most common reasons patients seek care. This guideline provides "
        "recommendations for clinicians providing pain care for outpatients aged 18 years or "
        "older with acute, subacute and chronic pain.",
        "# DETERMINING WHETHER OR NOT TO INITIATE OPIOIDS",
        "Nonopioid therapies are at least as effective as opioids for many common types of acute "
        "pain. Clinicians should maximize use of nonopioid pharmacologic and nonpharmacologic "
        "therapies as appropriate for the specific condition and patient.",
        "# SELECTING OPIOIDS AND DETERMINING DOSAGES",
        "When starting opioid therapy for opioid-naive patients, clinicians should prescribe "
        "immediate-release opioids instead of extended-release and long-acting opioids, at the "
        "lowest effective dosage. A dose of 50 morphine milligram equivalents or more per day "
        "increases overdose risk without necessarily adding benefit.",
        "# Acknowledgments",
        "The guideline was developed with the help of the Opioid Workgroup.",
    ],
)

DOCS["cma/cpg_files/asthma_primary_care_2022.pdf"] = dict(
    meta_title="Asthma management in primary care: 2022 guideline",
    author="Canadian Thoracic Society",
    lines=[
        "T Asthma management in primary care",
        "# Background",
        "Asthma affects more than 3.8 million Canadians. Poor asthma control leads to emergency "
        "visits, missed school and work, and preventable deaths.",
        "# Recommendations",
        "1. Confirm the diagnosis with spirometry showing reversible airflow obstruction before "
        "starting long-term controller therapy.",
        "2. Use as-needed budesonide-formoterol as the reliever in adults and adolescents with "
        "mild asthma instead of a short-acting beta-agonist alone.",
        "3. Review inhaler technique, adherence and environmental triggers at every visit.",
        "3",
        "# Funding",
        "This guideline was funded by the Canadian Thoracic Society without industry support.",
    ],
)

DOCS["cma/cpg_files/osteoporosis_2023.pdf"] = dict(
    meta_title="",
    author="Osteoporosis Canada",
    lines=[
        "T Clinical practice guideline for management of osteoporosis and fracture prevention",
        "# Exercise",
        "Individuals with osteoporosis should engage in a multicomponent exercise program that "
        "includes resistance training and balance exercises at least twice a week.",
        "# Nutrition",
        "Adults older than 50 years should aim for a total calcium intake of 1200 mg per day, "
        "mainly from diet, and a vitamin D supplement of 400 to 2000 IU per day.",
        "# Pharmacotherapy",
        "Bisphosphonates (alendronate, risedronate or zoledronic acid) are recommended as initial "
        "therapy for individuals at high risk of fracture. Denosumab is an alternative when "
        "bisphosphonates are contraindicated or not tolerated.",
        "# Disclaimer",
        "This guideline is not a substitute for clinical judgement.",
    ],
)

DOCS["icrc/sites/default/files/document/file_list/icrc-war-surgery-vol1.pdf"] = dict(
    meta_title="War Surgery: Working with limited resources in armed conflict and other situations "
               "of violence",
    author="International Committee of the Red Cross", header="ICRC WAR SURGERY",
    lines=[
        "T War Surgery",
        "# 1. Introduction",
        "Surgical care for the wounded in armed conflict differs from civilian trauma surgery: "
        "resources are limited, evacuation is delayed and many patients arrive hours or days "
        "after injury.",
        "# 2. Triage",
        "Triage sorts casualties into categories according to the severity of their injuries and "
        "the resources available. The ICRC system uses four categories:",
        "- Category I: patients for whom urgent surgery is required and who have a good chance of "
        "survival;",
        "- Category II: patients who do not require urgent surgery;",
        "- Category III: patients with superficial wounds who require ambulatory care;",
        "- Category IV: patients with severe injuries who have a poor chance of survival.",
        "PAGE",
        "# 3. Wound debridement",
        "All war wounds are contaminated. Initial wound management consists of excision of dead "
        "and contaminated tissue, leaving the wound open, and delayed primary closure after four "
        "to five days.",
        "Antibiotics do not replace surgery. Benzylpenicillin is given for most soft-tissue "
        "wounds, with metronidazole added for abdominal wounds.",
        "# Contacts",
        "International Committee of the Red Cross, 19 avenue de la Paix, 1202 Geneva.",
    ],
)

DOCS["icrc/sites/default/files/document/file_list/icrc-first-aid-armed-conflict.pdf"] = dict(
    meta_title="First Aid in Armed Conflicts and Other Situations of Violence",
    author="International Committee of the Red Cross", header="ICRC FIRST AID",
    lines=[
        "T First aid in armed conflicts and other situations of violence",
        "# 1. Safety first",
        "First-aiders must assess the scene for danger before approaching a casualty. Their own "
        "safety and that of the casualties comes before any treatment.",
        "# 2. Haemorrhage control",
        "Severe bleeding from a limb is controlled with direct pressure, then a pressure "
        "bandage. A tourniquet is applied only when direct pressure fails, and the time of "
        "application is written on the casualty's forehead or on a tag.",
        "# 3. Airway and breathing",
        "An unconscious casualty who is breathing is placed in the recovery position to keep the "
        "airway open and allow fluids to drain from the mouth.",
        "# Acknowledgements",
        "The ICRC thanks the National Red Cross and Red Crescent Societies.",
    ],
)

DOCS["spor/docs/ctfphc-breast-cancer-screening-2018.pdf"] = dict(
    meta_title="Recommendations on screening for breast cancer in women aged 40-74 years",
    author="Canadian Task Force on Preventive Health Care",
    lines=[
        "T Recommendations on screening for breast cancer in women aged 40 to 74 years who are "
        "not at increased risk",
        "# Recommendations",
        "For women aged 40 to 49 years, we recommend not screening with mammography (conditional "
        "recommendation; low-certainty evidence). The decision to undergo screening is "
        "conditional on the relative value a woman places on possible benefits and harms.",
        "For women aged 50 to 74 years, we recommend screening with mammography every two to "
        "three years (conditional recommendation; very low-certainty evidence).",
        "# Benefits and harms",
        "Screening 1000 women aged 50 to 69 years for 11 years prevents about one death from "
        "breast cancer, while about 200 women have a false-positive mammogram and about 15 are "
        "overdiagnosed.",
        "# CONFLICT OF INTEREST",
        "None of the task force members declared competing interests.",
    ],
)

DOCS["spor/docs/diabetes-canada-pharmacotherapy-t2d.pdf"] = dict(
    meta_title="Microsoft Word - Pharmacologic_Glycemic_Management_T2D_final.docx",
    author="Diabetes Canada",
    lines=[
        "T Pharmacologic glycemic management of type 2 diabetes in adults",
        "# Key messages",
        "- Metformin remains the first-line agent for most adults with type 2 diabetes.",
        "- In adults with type 2 diabetes and atherosclerotic cardiovascular disease, a GLP-1 "
        "receptor agonist or an SGLT2 inhibitor with demonstrated cardiovascular benefit should "
        "be added to reduce the risk of major adverse cardiovascular events.",
        "# Glycemic targets",
        "An HbA1c of 7.0% or less is the target for most adults with type 2 diabetes; a target "
        "of 7.1% to 8.5% may be appropriate for older adults with frailty or a limited life "
        "expectancy.",
        "# CONFLICT OF INTEREST",
        "Authors' disclosures are listed online.",
    ],
)

DOCS["spor/docs/cps-bronchiolitis.pdf"] = dict(
    meta_title="",
    author="Canadian Paediatric Society",
    lines=[
        "T Bronchiolitis: recommendations for diagnosis, monitoring and management of children "
        "one to 24 months of age",
        "# Diagnosis",
        "Bronchiolitis is a clinical diagnosis based on history and physical examination. "
        "Routine chest radiography, viral testing and blood work are not recommended.",
        "# Management",
        "Supportive care, including nasal suctioning, hydration and supplemental oxygen when the "
        "oxygen saturation is persistently below 90%, is the mainstay of treatment. "
        "Salbutamol, epinephrine and corticosteroids should not be used routinely.",
    ],
)

DOCS["cco/sites/ccocancercare/files/guidelines/full/pebc1-21f.pdf"] = dict(
    meta_title="Systemic Therapy for Advanced Non-Small Cell Lung Cancer",
    author="Cancer Care Ontario", header="Evidence-Based Series 7-10 Version 3",
    lines=[
        "T Systemic therapy for advanced non-small cell lung cancer",
        "Guideline 7-10 Version 3. A Quality Initiative of the Program in Evidence-Based Care "
        "(PEBC), Ontario Health (Cancer Care Ontario).",
        "This report is copyrighted by Ontario Health (Cancer Care Ontario); the report and the "
        "illustrations herein may not be reproduced without permission.",
        "# QUESTIONS",
        "What is the most effective first-line systemic therapy for patients with advanced "
        "non-small cell lung cancer without a targetable driver mutation?",
        "# RECOMMENDATIONS",
        "- Patients with a PD-L1 tumour proportion score of 50% or higher should be offered "
        "pembrolizumab monotherapy.",
        "o Combination chemoimmunotherapy is an acceptable alternative.",
        "- Patients with a PD-L1 score below 50% should be offered platinum-doublet "
        "chemotherapy combined with pembrolizumab.",
        "PAGE",
        "# INTRODUCTION",
        "Lung cancer is the leading cause of cancer death in Ontario. Most patients present with "
        "advanced disease, and the choice of systemic therapy depends on histology, driver "
        "mutations and PD-L1 expression.",
    ],
)

DOCS["cco/en/file/2166/download"] = dict(
    meta_title="Management of Febrile Neutropenia in Adults with Cancer",
    author="Cancer Care Ontario", header="Guideline 12-6",
    lines=[
        "T Management of febrile neutropenia in adult patients with cancer",
        "# INTENDED PURPOSE",
        "This guideline is intended for clinicians who treat adult outpatients with solid tumours "
        "or lymphoma who develop fever during chemotherapy-induced neutropenia.",
        "# RECOMMENDATIONS",
        "Patients with febrile neutropenia should have a risk assessment with the MASCC score. "
        "Low-risk patients (MASCC score of 21 or more) may be treated as outpatients with oral "
        "ciprofloxacin plus amoxicillin-clavulanate, once they have been observed for at least "
        "four hours.",
        "High-risk patients should be admitted and started on intravenous piperacillin-"
        "tazobactam within one hour of presentation.",
    ],
)

# Unit-test PDFs (tests/fixtures/pdf/): hyphenation across pages, no usable title metadata,
# and a password-protected file.
UNIT_DOCS: dict[str, dict] = {
    "multipage.pdf": dict(
        meta_title="Management of community-acquired pneumonia",
        header="Pneumonia guideline", lines=[
            "T Management of community-acquired pneumonia",
            "# Assessment",
            "Assess severity with the CURB-65 score: confusion, urea above 7 mmol/L, respiratory "
            "rate of 30 per minute or more, low blood pressure and age of 65 years or older. "
            "Patients with a score of 0 or 1 can usually be treated at home.",
            "## Investigations",
            "Obtain a chest radiograph to confirm the diagnosis. In hospital, take blood cultures "
            "before antibiotics are started, ideally within four hours of arrival; p < 0.05 was "
            "the threshold for significance in the trials and BMI > 30 a risk factor.",
            "PAGE",
            "# Antibiotic therapy",
            "Offer amoxicillin 500 mg three times a day for five days to adults with low-severity "
            "pneumonia. For moderate severity, add a macrolide such as clarithromycin, and "
            "consider the local resis{-}tance patterns and the out-of{-}hospital treatment "
            "options before choosing.",
            "- Reassess at 48 to 72 hours.",
            "- Switch to oral therapy once the patient is afebrile for 48 hours.",
            "PAGE",
            "# Follow-up",
            "Arrange a clinical review at six weeks for patients whose symptoms persist, and a "
            "repeat chest radiograph for smokers older than 50 years.",
        ]),
    "no_title_metadata.pdf": dict(
        meta_title="", lines=[
            "T Prevention of venous thromboembolism in surgical patients",
            "Assess every surgical inpatient for the risk of venous thromboembolism and "
            "bleeding on admission.",
        ]),
    "bold_headings.pdf": dict(
        meta_title="Management of acute otitis media in children", lines=[
            "T Management of acute otitis media in children",
            "### Key points",
            "Most children with acute otitis media recover without antibiotics within three days; "
            "watchful waiting is appropriate for children older than six months without severe "
            "symptoms.",
            "B Children younger than six months, and children with otorrhoea or bilateral disease "
            "who are younger than two years, should receive antibiotics without delay.",
            "### Dosing",
            "Amoxicillin 90 mg/kg/day divided twice daily for 10 days in children younger than two "
            "years, and for 5 days in older children with uncomplicated infection.",
        ]),
    # Symbol-font glyphs before a gap: "≥" is a threshold, "•" a bullet; Wingdings-style "q" too.
    "symbol_glyphs.pdf": dict(
        meta_title="Thresholds", runs=[
            ("Helvetica-Bold", 16, 72, 760, "Blood pressure thresholds"),
            ("Symbol", 10, 72, 730, "\u2265"),
            ("Helvetica", 10, 84, 730, "140/90 mmHg on two occasions confirms hypertension in adults."),
            ("Symbol", 10, 72, 700, "\u2022"),
            ("Helvetica", 10, 86, 700, "Repeat the measurement after five minutes of rest."),
            ("ZapfDingbats", 10, 72, 685, "q"),
            ("Helvetica", 10, 86, 685, "Use a validated automated device."),
        ]),
    "encrypted.pdf": dict(
        meta_title="Restricted guideline", encrypt="s3cret-user-password", lines=[
            "# Restricted",
            "This document needs a password to be opened.",
        ]),
}


def targets() -> dict[Path, dict]:
    out = {SITES / rel: doc for rel, doc in DOCS.items()}
    out.update({UNIT / name: doc for name, doc in UNIT_DOCS.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    args = parser.parse_args(argv)
    stale = []
    for path, doc in targets().items():
        data = render(doc)
        if args.check:
            if not path.is_file() or path.read_bytes() != data:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT)} ({len(data)} bytes)")
    if stale:
        print("stale PDFs (run scripts/make_guideline_pdfs.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
