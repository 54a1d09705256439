"""Every PubMed document the URL-boundary test (tests/test_sources_pubmed_urls.py) cleans.

Issue 15 moved URL removal out of the PubMed formatters into the `clean` stage. The cleaned text
of each case below (formatter → the default recipe's `clean` rules for its source) was pinned
in tests/fixtures/pubmed/golden/cleaned_text.json by the code *before* the move (commit
78c5c67: formatters removing URLs, `urls: false` for abstracts and papers), so the test proves
the move changed no cleaned byte. Cases: every real sample (tests/fixtures/pubmed, byte-equal to
/work/shared/samples), the PubMed inputs of the bundled sample sites, the pinned S2ORC golden
rows, and synthetic records with URLs wherever a formatter used to remove them (the samples hold
only one URL).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator

from lxml import etree

from gap_replay.document import Document
from gap_replay.resources import sample_sites_dir
from gap_replay.sources.pubmed import jats, medline
from gap_replay.sources.pubmed.s2records import RecordError, abstract_document, s2orc_document
from s2orc_golden_cases import cases as s2orc_golden_cases

FIX = Path(__file__).parent / "fixtures" / "pubmed"
PINNED = FIX / "golden" / "cleaned_text.json"

MEDLINE_WITH_URLS = b"""<PubmedArticle><MedlineCitation><PMID Version="1">900001</PMID><Article>
<Journal><Title>J</Title></Journal><ArticleTitle>Trial registry at www.isrctn.com: a protocol</ArticleTitle>
<Abstract><AbstractText Label="BACKGROUND">The protocol is at https://osf.io/abc12 (see
https://osf.io/abc12/files).</AbstractText><AbstractText Label="DATA">Data: [https://doi.org/10.5061/dryad.x1],
code at www.github.com/lab/tool; all open.</AbstractText></Abstract></Article></MedlineCitation>
<PubmedData><ArticleIdList><ArticleId IdType="pubmed">900001</ArticleId></ArticleIdList></PubmedData></PubmedArticle>"""

S2_ABSTRACT_WITH_URLS = {
    "corpusid": 900002, "openaccessinfo": {"externalids": {"PubMed": "900002"}},
    "abstract": "We share the model (https://huggingface.co/x/y).\nThe  code is at\n"
                "https://github.com/x/y, the data at www.zenodo.org/record/1. Results hold."}

JATS_WITH_URLS = b"""<article article-type="research-article"><front><article-meta>
<article-id pub-id-type="pmid">900003</article-id><article-id pub-id-type="pmc">PMC900003</article-id>
<title-group><article-title>A study of things</article-title></title-group>
<abstract><p>Registered at ClinicalTrials.gov (https://clinicaltrials.gov/ct2/show/NCT01) in 2020.</p></abstract>
</article-meta></front><body>
<sec><title>Methods</title><p>We used the tool at https://tool.example.org/v2?x=1#run [<xref ref-type="bibr" rid="r1">1</xref>]
and the atlas (www.atlas.org), as shown in <xref ref-type="fig" rid="f1">Figure 1</xref>.</p>
<fig id="f1"><label>Figure 1</label><caption><title>Design</title><p>The design of the study with three arms
and two visits per participant over one year of follow-up; protocol at https://osf.io/p1.</p></caption></fig>
</sec>
<sec><title>Data availability</title><p>All data are at https://datadryad.org/stash/dataset/doi:10.5061/x
and www.ebi.ac.uk/arrayexpress. Code: <ext-link ext-link-type="uri">https://github.com/a/b</ext-link>.</p></sec>
</body><back><ref-list><ref id="r1"><element-citation><person-group><name><surname>Lee</surname></name>
</person-group><article-title>A cited paper</article-title></element-citation></ref></ref-list></back></article>"""


def _span(text: str, part: str, **attributes) -> dict:
    start = text.index(part)
    span = {"start": start, "end": start + len(part)}
    return dict(span, attributes=attributes) if attributes else span


def s2orc_with_urls() -> dict:
    """An S2ORC v2 row with URLs in the abstract, paragraphs and a caption (beyond its first
    clause, where the [fig_ref] token's short caption never reaches)."""
    text = ("A study of things\nAbstract We release code at https://github.com/x/y.\n"
            "Methods\nThe pipeline (https://pipe.example.org) runs as in Figure 1 and [1]; "
            "see www.docs.org/run for details.\n"
            "Figure 1: The pipeline overview. Inputs, outputs and the server at https://srv.org/a.\n"
            "Lee. A cited paper. 2019.")
    ann = {
        "title": [_span(text, "A study of things")],
        "abstract": [_span(text, "Abstract We release code at https://github.com/x/y.")],
        "sectionheader": [_span(text, "Methods")],
        "paragraph": [_span(text, "The pipeline (https://pipe.example.org) runs as in Figure 1 "
                                  "and [1]; see www.docs.org/run for details.")],
        "figureref": [_span(text, "Figure 1 and", ref_id="f1")],
        "bibref": [_span(text, "[1]", ref_id="b0")],
        "figure": [_span(text, "Figure 1: The pipeline overview. Inputs, outputs and the server "
                               "at https://srv.org/a.", id="f1")],
        "figurecaption": [_span(text, "The pipeline overview. Inputs, outputs and the server at "
                                      "https://srv.org/a.")],
        "bibentry": [_span(text, "Lee. A cited paper. 2019.", id="b0")],
        "bibtitle": [_span(text, "A cited paper")],
        "bibauthorlastname": [_span(text, "Lee")],
    }
    ann["figureref"][0]["end"] -= len(" and")
    return {"corpusid": 900004, "externalids": {"pubmed": "900004"},
            "content": {"text": text, "annotations": {k: json.dumps(v) for k, v in ann.items()}}}


def _rows(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        if path.suffix == ".json":
            return [json.load(fh)]
        return [json.loads(line) for line in fh if line.strip()]


def _papers(folder: Path) -> dict[str, dict]:
    """The S2 papers rows next to an abstracts file (joined by corpusid, as ingest does)."""
    papers: dict[str, dict] = {}
    for path in folder.rglob("*papers*.jsonl*"):
        for row in _rows(path):
            papers[str(row.get("corpusid"))] = row
    return papers


def _file_cases(root: Path, label: str) -> Iterator[tuple[str, Document | None]]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel, s = f"{label}/{path.relative_to(root)}", str(path)
        if "golden" in s or s.endswith((".md", ".md5")):
            continue
        if "pmc_jats" in s or ("pmc-oa-opendata" in s and path.suffix == ".xml"):
            for i, (_, doc) in enumerate(jats.iter_file(s)):
                yield f"{rel}#{i}", None if isinstance(doc, Exception) else doc
        elif ("medline" in s or "ncbi/pubmed" in s) and s.endswith((".xml", ".xml.gz")):
            for i, cit in enumerate(medline.iter_file(s)):
                if isinstance(cit, medline.Citation) and cit.doc is not None:
                    yield f"{rel}#{i}", cit.doc
        elif "/s2orc" in s and s.endswith((".jsonl", ".jsonl.gz", ".json")):
            for i, row in enumerate(_rows(path)):
                yield f"{rel}#{i}", _or_none(s2orc_document, row, None)
        elif "/abstracts" in s and s.endswith((".jsonl", ".jsonl.gz")):
            papers = _papers(path.parent.parent)
            for i, row in enumerate(_rows(path)):
                yield f"{rel}#{i}", _or_none(abstract_document, row, None)
                paper = papers.get(str(row.get("corpusid")))
                if paper:
                    yield f"{rel}#{i}+paper", _or_none(abstract_document, row, paper)


def _or_none(make, row: dict, paper: dict | None) -> Document | None:
    try:
        return make(row, paper)
    except RecordError:
        return None


def synthetic_cases() -> Iterator[tuple[str, Document]]:
    yield "synthetic/medline", medline.parse_citation(etree.fromstring(MEDLINE_WITH_URLS)).doc
    yield "synthetic/s2_abstract", abstract_document(S2_ABSTRACT_WITH_URLS, None)
    yield "synthetic/s2_abstract+paper", abstract_document(
        S2_ABSTRACT_WITH_URLS, {"title": "Joined title", "pmid": "900002"})
    ((_, doc),) = [(None, d) for d in jats.iter_bytes(JATS_WITH_URLS, "synthetic.xml")]
    yield "synthetic/jats", doc
    yield "synthetic/s2orc_v2", s2orc_document(s2orc_with_urls())


def cases() -> Iterator[tuple[str, Document | None]]:
    """(name, Document or None when the record is rejected) for every case, in a fixed order."""
    yield from _file_cases(FIX, "fixtures")
    yield from _file_cases(sample_sites_dir(), "sites")
    for name, row, paper in s2orc_golden_cases():
        yield f"s2orc_golden/{name}", _or_none(s2orc_document, row, paper)
    yield from synthetic_cases()
