"""Build the fixture SPOR_links.pdf: a guideline list whose entries are PDF link annotations.

The original MEDITRON scrapers read `SPOR_links.pdf` (an export of the SPOR Evidence Alliance
CPG database) and collected each annotation's /A /URI; CPS, CCO and SPOR filter that one list.
This writes a small, faithful stand-in for the fixture sites (deterministic bytes):

    python scripts/make_spor_links_pdf.py src/gap_replay/sample/sites/cps/epfLLM/meditron/main/gap-replay/guidelines/scrapers/SPOR_links.pdf

The SPOR source itself reads the official April-2018 asset-map report, whose link annotations are
the same kind of list (publisher pages and direct PDFs); `--asset-map` writes its stand-in:

    python scripts/make_spor_links_pdf.py --asset-map src/gap_replay/sample/sites/spor/wp-content/uploads/2018/04/SPOR-Evidence-Alliance_Asset-Map-of-Canadian-CPGs_Reportv3.pdf
"""

from __future__ import annotations

import sys
from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

ENTRIES = [
    ("Canadian Paediatric Society", "Bronchiolitis: Recommendations for diagnosis, monitoring and management",
     "https://cps.ca/en/documents/position/bronchiolitis"),
    ("Canadian Paediatric Society", "Management of acute otitis media in children six months of age and older",
     "https://cps.ca/en/documents/position/acute-otitis-media"),
    ("Canadian Paediatric Society", "Vitamin D supplementation (French page)",
     "https://cps.ca/fr/documents/position/vitamine-d"),
    ("Cancer Care Ontario", "Follow-up care for survivors of colorectal cancer",
     "https://www.cancercareontario.ca/en/guidelines-advice/types-of-cancer/276"),
    ("Diabetes Canada", "Clinical practice guidelines: hypoglycemia (PDF)",
     "https://guidelines.diabetes.ca/docs/cpg/Ch14-Hypoglycemia.pdf"),
    ("SPOR Evidence Alliance", "CPG asset map (database home)",
     "https://sporevidencealliance.ca/key-activities/cpg-asset-map/cpg-database/"),
]

# The asset-map report: direct PDFs (kept by guidelines/spor.yaml) beside publisher pages (dropped).
ASSET_MAP_ENTRIES = [
    ("Canadian Task Force on Preventive Health Care", "Breast cancer screening, women aged 40 to 74 (2018)",
     "https://canadiantaskforce.ca/docs/ctfphc-breast-cancer-screening-2018.pdf"),
    ("Diabetes Canada", "Pharmacologic glycemic management of type 2 diabetes in adults",
     "https://guidelines.diabetes.ca/docs/diabetes-canada-pharmacotherapy-t2d.pdf"),
    ("Cancer Care Ontario", "Systemic therapy for advanced non-small cell lung cancer (guideline page)",
     "https://www.cancercareontario.ca/en/guidelines-advice/types-of-cancer/2186"),
    ("Canadian Paediatric Society", "Bronchiolitis: diagnosis, monitoring and management",
     "https://cps.ca/docs/cps-bronchiolitis.pdf"),
    ("Public Health Agency of Canada", "Canadian guidelines on sexually transmitted infections (web page)",
     "https://www.canada.ca/en/public-health/services/infectious-diseases/sexual-health-sexually-transmitted-infections/canadian-guidelines.html"),
]


def build(path: Path, entries=ENTRIES,
          title: str = "SPOR Evidence Alliance CPG database: guideline links") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.setTitle(title)
    y = 740
    c.setFont("Helvetica-Bold", 14)
    c.drawString(72, y, "SPOR Evidence Alliance: Canadian clinical practice guidelines")
    c.setFont("Helvetica", 10)
    for i, (developer, title, url) in enumerate(entries):
        if i == 4:  # the list spans two pages, like the real export
            c.showPage()
            c.setFont("Helvetica", 10)
            y = 740
        y -= 28
        text = f"{developer}: {title}"
        c.drawString(72, y, text)
        c.linkURL(url, (70, y - 3, 72 + c.stringWidth(text, "Helvetica", 10), y + 11), relative=0)
    c.showPage()
    c.save()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--asset-map"]:
        for arg in args[1:]:
            build(Path(arg), ASSET_MAP_ENTRIES,
                  "Asset Map of Canadian Clinical Practice Guidelines (SPOR Evidence Alliance, April 2018)")
    else:
        for arg in args:
            build(Path(arg))
