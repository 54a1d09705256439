#!/usr/bin/env python
"""Build the bundled PMC Cloud Service sample bucket from the real JATS samples.

    python scripts/build_pmc_cloud_sample.py

Writes `src/gap_replay/sample/sites/pmc-oa-opendata/` (served path-style by the sample server,
so the S3 endpoint is the sample root): three article versions whose XML is byte-identical to
tests/fixtures/pubmed/pmc_jats/, their metadata JSON, one author manuscript outside the open-access
subset (metadata only: the acquirer skips it before fetching XML), and two daily inventory
reports. PMC9900001/PMC9900002 are fixture PMCIDs (not real articles: the SciELO sample has no
PMCID); the other ids are the articles' own. The tests upload the same files into moto.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gap_replay.sample.pmc_bucket import article_objects, inventory_objects, write_static_site

ROOT = Path(__file__).resolve().parent.parent
JATS = ROOT / "tests" / "fixtures" / "pubmed" / "pmc_jats"
SITE = ROOT / "src" / "gap_replay" / "sample" / "sites" / "pmc-oa-opendata"


def bucket() -> dict[str, bytes]:
    objects: dict[str, bytes] = {}
    objects |= article_objects(
        "PMC2329613", 1, (JATS / "1472-6831-8-11.nxml").read_bytes(), license_code="CC BY",
        pmid=18405359, doi="10.1186/1472-6831-8-11", citation="BMC Oral Health. 2008; 8:11",
        title="Oral health and dental care (sample: see the XML)")
    objects |= article_objects(
        "PMC6095483", 1, (JATS / "PMC6095483.xml").read_bytes(), license_code="CC BY",
        doi="10.1371/journal.pntd.0006635", citation="PLoS Negl Trop Dis. 2018; 12(7):e0006635",
        title="(sample: see the XML)")
    objects |= article_objects(
        "PMC9900001", 1, (JATS / "0034-8910-rsp-48-2-0206.xml").read_bytes(),
        license_code="CC BY-NC", doi="10.1590/S0034-8910.2014048004911",
        citation="Rev Saude Publica. 2014; 48(2):206", title="(sample: see the XML)")
    objects |= article_objects(
        "PMC9900002", 1, b"", license_code="TDM", is_pmc_openaccess=False, is_manuscript=True,
        citation="Fixture author manuscript outside the open-access subset", with_xml=False)
    dates = {"metadata/PMC6095483.1.json": "2026-11-20T08:15:00.000Z"}
    inventory = {}
    for stamp in ("2026-11-30T01-00Z", "2026-12-01T01-00Z"):
        inventory |= inventory_objects(stamp, objects, dates)
    return objects | inventory


def main() -> None:
    if SITE.exists():
        shutil.rmtree(SITE)
    write_static_site(SITE, bucket())
    print("PMC Cloud sample bucket written under", SITE)


if __name__ == "__main__":
    main()
