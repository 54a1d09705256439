"""Build the fixture SPOR_links.pdf: a guideline list whose entries are PDF link annotations.

The original MEDITRON scrapers read `SPOR_links.pdf` (an export of the SPOR Evidence Alliance
CPG database) and collected each annotation's /A /URI; CPS, CCO and SPOR filter that one list.
This writes a small, faithful stand-in for the fixture sites (deterministic bytes):

    python scripts/make_spor_links_pdf.py src/gap_replay/sample/sites/cps/epfLLM/meditron/main/gap-replay/guidelines/scrapers/SPOR_links.pdf
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


def build(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    c = canvas.Canvas(str(path), pagesize=letter, invariant=1)
    c.setTitle("SPOR Evidence Alliance CPG database: guideline links")
    y = 740
    c.setFont("Helvetica-Bold", 14)
    c.drawString(72, y, "SPOR Evidence Alliance: Canadian clinical practice guidelines")
    c.setFont("Helvetica", 10)
    for i, (developer, title, url) in enumerate(ENTRIES):
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
    for arg in sys.argv[1:]:
        build(Path(arg))
