"""Every real sample parses into the paper's format; the format's traps are handled; JATS/MEDLINE
content fidelity (issue #13): per-record recovery, one math/inline renderer, captions, structure,
English parts of non-English articles, licence and language metadata."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from lxml import etree

from gap_replay.recipe import load_recipe
from gap_replay.sources.pubmed import jats, medline
from gap_replay.sources.pubmed.ids import document_id
from gap_replay.sources.pubmed.jats import license_id
from gap_replay.sources.pubmed.mathml import math_text, render_inline, strip_escaped_html
from gap_replay.sources.pubmed.s2orc import S2orcFormatError, format_s2orc
from gap_replay.sources.pubmed.s2records import (RecordError, abstract_document, external_ids, is_pubmed_row,
                                                 paper_meta, s2orc_document)
from gap_replay.stages.clean import clean_text

FIX = Path(__file__).parent / "fixtures" / "pubmed"
MARKUP = re.compile(r"<[A-Za-z/!?][^>]*>|&lt;|&gt;|&amp;|xmlns")
TOKENS = ("[bib_ref]", "[/bib_ref]", "[fig_ref]", "[/fig_ref]", "[formula]", "[/formula]",
          "[fig]", "[/fig]", "[table]", "[/table]")


def assert_clean(text: str, title: str) -> None:
    assert text.startswith(title), text[:200]
    assert not MARKUP.search(text), MARKUP.search(text).group(0)
    for open_, close in zip(TOKENS[::2], TOKENS[1::2]):
        assert text.count(open_) == text.count(close), open_


def s2orc_row() -> dict:
    return json.loads((FIX / "s2orc/s2orc-sample.line3.jsonl").read_text(encoding="utf-8"))


# -- S2ORC v2 ----------------------------------------------------------------------------------

def test_s2orc_sample_is_formatted_with_title_headers_and_tokens():
    doc = s2orc_document(s2orc_row())
    text = doc.text
    assert doc.title.startswith("CiteSee: Augmenting Citations")
    assert_clean(text, doc.title)
    assert "\n\n# Abstract\n\n" in text and "\n\n# INTRODUCTION\n\n" in text  # header case kept
    assert "\n\n## Scientific Paper Reading Interfaces\n\n" in text  # not a main header
    assert "\n\n# RELATED WORK\n\n" in text
    # bib_ref: cited title (≤ 12 words), first author surname
    m = re.search(r"\[bib_ref\] ([^\[]+), ([^,\[]+) \[/bib_ref\]", text)
    assert m and len(m.group(1).replace("...", "").split()) <= 12
    assert "[bib_ref] Scholarly journal information-seeking and reading patterns of faculty at five US universities, King [/bib_ref]" in text
    assert "[fig_ref] Figure 4: Overview of different visual augmentation types, with one category for citations to... [/fig_ref]" in text
    assert "[fig] Figure 2: [Left] To help users discover" in text
    # no author block, affiliations, venue or bibliography
    assert "josephc@allenai.org" not in text and "Allen Institute for AI Seattle" not in text
    assert "Elastic Documents: Coupling Text and Tables" not in text.split("[fig]")[0].replace(
        "[bib_ref] Elastic Documents", "")
    assert "Houjin Yu" not in text
    assert doc.id == "corpusid:256868353" and doc.source == "papers"
    assert doc.meta["corpusid"] == "256868353"
    assert not re.search(r"[a-z]\[(bib|fig)_ref\]|\[/(bib|fig)_ref\][a-z]", text)  # never glued


def test_s2orc_is_not_pubmed_but_papers_join_fixes_title_and_ids():
    row = s2orc_row()
    assert not is_pubmed_row(row)
    paper = {"title": "Joined title", "pmid": "90000001", "journal": "CHI",
             "publication_types": ["Review"], "corpusid": "256868353"}
    doc = s2orc_document(row, paper)
    assert doc.id == "pmid:90000001" and doc.subset == "pubmed"
    assert doc.text.startswith("Joined title\n\n# Abstract")
    assert doc.meta["publication_types"] == ["Review"]


def _synthetic(text: str, **ann) -> dict:
    return {"corpusid": 1, "externalids": {"pubmed": "5"},
            "content": {"text": text, "annotations": {
                k: (v if v is None or isinstance(v, str) else json.dumps(v)) for k, v in ann.items()}}}


def test_s2orc_null_annotations_spans_without_attributes_and_title_twice():
    text = "My Title\nMy Title\nAbstract text here.\nIntro\nSee Figure 1 for the design (Smith 2019).\nFigure 1: The design of the study.\nSmith. A cited paper title. 2019."
    a = text.index("Abstract text")
    intro = text.index("Intro")
    para = text.index("See Figure")
    fig = text.index("Figure 1: The")
    bib = text.index("Smith. A cited")
    row = _synthetic(
        text,
        title=[{"start": 0, "end": 8}, {"start": 9, "end": 17}],
        abstract=[{"start": a, "end": a + 19}],
        sectionheader=[{"start": intro, "end": intro + 5}],
        paragraph=[{"start": para, "end": fig - 1}],
        figureref=[{"start": para + 4, "end": para + 12}],  # no attributes: keeps its words
        bibref=[{"start": text.index("Smith 2019"), "end": text.index("Smith 2019") + 10,
                 "attributes": {"ref_id": "b0"}}],
        bibentry=[{"start": bib, "end": len(text), "attributes": {"id": "b0"}}],
        bibtitle=[{"start": bib + 7, "end": bib + 27}],
        bibauthorlastname=[{"start": bib, "end": bib + 5}],
        formula=None, figure=None, tableref="null", author=None,
    )
    out, info = format_s2orc(row)
    assert out.startswith("My Title\n\n# Abstract\n\nAbstract text here.")
    assert out.count("My Title") == 1
    assert "See Figure 1 for the design [bib_ref] A cited paper title, Smith [/bib_ref]." in out
    assert "## Intro" in out and info["bib_refs"] == 1


def test_s2orc_dropped_span_never_glues_words_and_text_never_starts_with_a_reference():
    text = "Title\nSee Figure 9 for details. Results follow."
    para = text.index("See")
    row = _synthetic(text, title=[{"start": 0, "end": 5}],
                     paragraph=[{"start": para, "end": len(text)}],
                     figureref=[{"start": 0, "end": 5, "attributes": {"ref_id": "fig_0"}},
                                {"start": para + 4, "end": para + 12,
                                 "attributes": {"ref_id": "fig_9"}}],
                     bibref=[{"start": para + 4, "end": para + 12}])
    out, _ = format_s2orc(row)
    assert out.startswith("Title\n\n")
    assert "See for details" in out or "See Figure 9 for details" in out
    assert "Seefor" not in out


def test_s2orc_offsets_are_code_points_with_non_bmp_characters():
    text = "T𝔾tle\n𝔸𝔹ℂ intro words (Lee 2020) end."
    para = text.index("𝔸")
    start = text.index("(Lee")
    row = _synthetic(text, title=[{"start": 0, "end": 5}],
                     paragraph=[{"start": para, "end": len(text)}],
                     bibref=[{"start": start + 1, "end": start + 9, "attributes": {"ref_id": "b0"}}],
                     bibentry=[{"start": len(text) - 4, "end": len(text), "attributes": {"id": "b0"}}],
                     bibtitle=[{"start": len(text) - 4, "end": len(text) - 1}],
                     bibauthorlastname=[{"start": len(text) - 4, "end": len(text) - 1}])
    out, _ = format_s2orc(row)
    assert out == "T𝔾tle\n\n𝔸𝔹ℂ intro words [bib_ref] end, end [/bib_ref] end."


def test_s2orc_keeps_urls_for_the_clean_stage_and_bad_rows_are_rejected_with_a_reason():
    text = "Title\nData at https://example.org/data.csv and www.x.org/y are open."
    row = _synthetic(text, title=[{"start": 0, "end": 5}],
                     paragraph=[{"start": 6, "end": len(text)}])
    out, _ = format_s2orc(row)
    assert "Data at https://example.org/data.csv and www.x.org/y are open." in out  # extracted
    assert clean_text(out, load_recipe().clean_rules("papers")) == "Title\n\nData at and are open."
    with pytest.raises(S2orcFormatError, match="content"):
        format_s2orc({"corpusid": 1})
    with pytest.raises(S2orcFormatError, match="not valid JSON"):
        format_s2orc(_synthetic("Some text", paragraph="[{broken"))


def test_legacy_2020_s2orc_json_is_converted():
    row = json.loads((FIX / "s2orc/legacy_v2020_example_paper.json").read_text(encoding="utf-8"))
    doc = s2orc_document(row)
    assert doc.id == "pmid:15455067" and doc.subset == "pmc" and doc.meta["pmcid"] == "PMC355891"
    assert_clean(doc.text, "Artificial diets for rearing the Colorado potato beetle")
    assert "[bib_ref] Impact of defoliation by the Colorado potato beetle on potato yields, Hare [/bib_ref]" in doc.text
    assert "[fig] Figure 1: Comparison of CPBs reared" in doc.text
    assert doc.meta["s2orc_format"] == "legacy-2020"


def test_s2_papers_and_abstracts_rows():
    papers = [json.loads(l) for l in (FIX / "s2_papers/papers-sample.lines1-10.jsonl").read_text().splitlines()]
    abstracts = [json.loads(l) for l in (FIX / "s2_abstracts/abstracts-sample.lines1-10.jsonl").read_text().splitlines()]
    assert len(papers) == 10 and len(abstracts) == 10
    assert not any(is_pubmed_row(p) for p in papers)  # the real sample has no PubMed rows
    meta = paper_meta(papers[2])
    assert meta["doi"] == "10.6052/0459-1879-1957-2-1957-004" and meta["pub_date"] == "1957-04-18"
    for row in abstracts:
        doc = abstract_document(row, {"title": "T", "pmid": "12"})
        assert doc.text.startswith("T\n") and doc.source == "abstracts" and doc.id == "pmid:12"
    doc = abstract_document(abstracts[0])
    assert doc.id == f"corpusid:{abstracts[0]['corpusid']}" and external_ids(abstracts[0])["pmcid"] is None
    with pytest.raises(RecordError):
        abstract_document({"corpusid": 3, "abstract": None})


def test_id_rule():
    assert document_id(pmid="00123", pmcid="PMC9", corpusid=5) == "pmid:123"
    assert document_id(pmcid="9") == "pmcid:PMC9"
    assert document_id(corpusid="77", doi="10.1/X") == "corpusid:77"
    assert document_id(doi="https://doi.org/10.1/AbC") == "doi:10.1/abc"


# -- JATS --------------------------------------------------------------------------------------

def _jats(path: Path):
    items = list(jats.iter_file(str(path)))
    assert items and not any(isinstance(d, Exception) for _, d in items), items
    return [d for _, d in items]


@pytest.mark.parametrize("name,doc_id,tokens", [
    ("1472-6831-8-11.nxml", "pmid:18405359", ("[bib_ref]", "[fig_ref]", "[table]")),
    ("PMC6095483.xml", "pmcid:PMC6095483", ("[bib_ref]", "[fig_ref]", "[fig]")),
    ("0034-8910-rsp-48-2-0206.xml", "doi:10.1590/s0034-8910.2014048004911",
     ("[bib_ref]", "[fig_ref]", "[fig]", "[table]")),
])
def test_jats_samples(name, doc_id, tokens):
    (doc,) = _jats(FIX / "pmc_jats" / name)
    assert doc.id == doc_id and doc.source == "papers" and doc.subset == "pmc"
    assert_clean(doc.text, doc.title)
    assert "\n\n# Abstract\n\n" in doc.text
    for token in tokens:
        assert token in doc.text, token
    assert doc.meta["language"] == "en"
    assert re.search(r"\n# [A-Z]", doc.text.split("# Abstract", 1)[1])  # body sections


def test_jats_pmcid_from_pmc_and_pmcid_types_and_several_abstracts():
    (bmc,) = _jats(FIX / "pmc_jats/1472-6831-8-11.nxml")
    (plos,) = _jats(FIX / "pmc_jats/PMC6095483.xml")
    assert bmc.meta["pmcid"] == "PMC2329613" and plos.meta["pmcid"] == "PMC6095483"
    assert "\n\n## Author summary\n\n" in plos.text  # second abstract kept under its title
    (scielo,) = _jats(FIX / "pmc_jats/0034-8910-rsp-48-2-0206.xml")
    assert "Conhecimento de HIV" not in scielo.text  # Portuguese trans-abstract/title skipped
    assert "[bib_ref] HIV among MSM in a large middle-income country, Kerr [/bib_ref]" in scielo.text


NS_ARTICLE = b"""<?xml version="1.0"?>
<pmc-articleset><article xmlns="http://jats.nlm.nih.gov" xmlns:mml="http://www.w3.org/1998/Math/MathML"
 xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article" xml:lang="de">
<front><journal-meta><journal-title-group><journal-title>J Test</journal-title></journal-title-group></journal-meta>
<article-meta><article-id pub-id-type="pmid">111</article-id><article-id pub-id-type="pmc">PMC222</article-id>
<title-group><article-title>Deutscher Titel</article-title></title-group>
<pub-date pub-type="epub"><day>3</day><month>2</month><year>2021</year></pub-date>
<abstract xml:lang="de"><p>Deutsche Zusammenfassung.</p></abstract></article-meta></front>
<body><sec><title>Einleitung</title><p>Text.</p></sec></body>
<sub-article article-type="translation" xml:lang="en"><front-stub><title-group><article-title>English title</article-title></title-group></front-stub>
<body><sec><title>Introduction</title><p>Energy is <inline-formula><mml:math><mml:msup><mml:mi>m</mml:mi><mml:mn>2</mml:mn></mml:msup></mml:math></inline-formula> as in <xref ref-type="bibr" rid="r1">[1]</xref> and <xref ref-type="fig" rid="f1">Fig 1</xref>.</p>
<disp-formula id="e1"><mml:math><mml:mi>E</mml:mi><mml:mo>=</mml:mo><mml:mfrac><mml:mi>a</mml:mi><mml:mi>b</mml:mi></mml:mfrac></mml:math></disp-formula>
<fig id="f1"><label>Figure 1</label><caption><title>Design.</title><p>Patients were randomised.</p></caption><graphic xlink:href="f1.jpg"/></fig>
<table-wrap id="t1"><label>Table 1</label><caption><p>Baseline data</p></caption><table><tr><td>cell-secret</td></tr></table></table-wrap>
</sec></body></sub-article>
<back><ref-list><ref id="r1"><element-citation><person-group><name><surname>Doe</surname></name></person-group>
<article-title>A study of things</article-title></element-citation></ref></ref-list></back></article>
<article article-type="retraction"><front><article-meta><article-id pub-id-type="pmcid">333</article-id>
<title-group><article-title>Retraction note</article-title></title-group><abstract><p>We retract it.</p></abstract></article-meta></front></article>
</pmc-articleset>"""


def test_jats_namespaced_articleset_translation_mathml_and_abstract_only(tmp_path):
    path = tmp_path / "efetch.xml"
    path.write_bytes(NS_ARTICLE)
    first, second = _jats(path)
    assert first.id == "pmid:111" and first.meta["translated_from"] == "de"
    assert first.meta["language"] == "en" and first.text.startswith("English title")
    assert "Energy is m^2 as in" in first.text  # inline formula: inline, no tokens
    assert "\n[formula] E = a/b [/formula]\n" in first.text  # display formula: its own line
    assert "[bib_ref] A study of things, Doe [/bib_ref]" in first.text
    assert "[fig_ref] Figure 1: Design [/fig_ref]" in first.text
    assert "[fig] Figure 1: Design. Patients were randomised. [/fig]" in first.text
    assert "[table] Table 1: Baseline data [/table]" in first.text and "cell-secret" not in first.text
    assert first.meta["pub_date"] == "2021-02-03" and first.meta["journal"] == "J Test"
    assert_clean(first.text, "English title")
    # no body: abstract-only, flagged, and a retraction notice by article type
    assert second.source == "abstracts" and second.meta["abstract_only"] is True
    assert second.id == "pmcid:PMC333" and "Retraction of Publication" in second.meta["publication_types"]


def test_jats_tar_gz_package_is_streamed(tmp_path):
    import io
    import tarfile

    path = tmp_path / "pkg.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted((FIX / "pmc_jats").iterdir()):
            tar.add(f, arcname=f"PMC/{f.name}")
        info = tarfile.TarInfo("PMC/broken.nxml")
        data = b"<article><front>"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    items = list(jats.iter_file(str(path)))
    docs = [d for _, d in items if not isinstance(d, Exception)]
    errors = [(n, e) for n, e in items if isinstance(e, Exception)]
    assert len(docs) == 3 and len(errors) == 1
    assert errors[0][0].endswith("pkg.tar.gz!PMC/broken.nxml") and "XML syntax error" in str(errors[0][1])


# -- MEDLINE -----------------------------------------------------------------------------------

def _citations(path) -> list:
    return [r for r in medline.iter_file(path) if isinstance(r, medline.Citation)]


def test_medline_samples_parse_with_meta_and_no_markup():
    total = 0
    for path in sorted((FIX / "medline").iterdir()):
        for rec in _citations(path):
            total += 1
            if rec.doc is None:
                continue
            d = rec.doc
            assert d.id == f"pmid:{rec.pmid}" and d.source == "abstracts" and d.subset == "pubmed"
            assert_clean(d.text, d.title)
            for key in ("pmid", "mesh", "publication_types", "journal", "language", "pub_date"):
                assert key in d.meta
    assert total == 31
    (rec,) = _citations(FIX / "medline/pubmed5.xml")
    assert "Me(2)SO" in rec.doc.text or "<sub>" not in rec.doc.text
    recs = {r.pmid: r for r in _citations(FIX / "medline/pubmed20n1016.xml.gz")}
    d = recs["30913216"].doc
    assert d.meta["pmcid"] == "PMC6435227" and "Randomized Controlled Trial" in d.meta["publication_types"]
    assert d.meta["doi"] == "10.1371/journal.pone.0213708" and d.meta["language"] == "en"
    assert "Animals" in recs["10658653"].doc.meta["mesh"]
    assert recs["31207565"].doc.text.split("\n")[1].startswith("Background: Fatigability")


def test_medline_inline_markup_stripped():
    text = (FIX / "medline/pubmed5.xml").read_text()
    assert "<sub>" in text and "<u>" in text
    (rec,) = _citations(FIX / "medline/pubmed5.xml")
    assert not MARKUP.search(rec.doc.text)


MEDLINE_SET = b"""<?xml version="1.0"?>
<!DOCTYPE MedlineCitationSet PUBLIC "-//NLM//DTD Medline Citation, 1st January 2012//EN" "http://www.nlm.nih.gov/databases/dtd/nlmmedlinecitationset_120101.dtd">
<MedlineCitationSet>
<MedlineCitation Owner="NLM"><PMID Version="1">500</PMID><Article><Journal><Title>Old J</Title><JournalIssue><PubDate><MedlineDate>1998 Dec-1999 Jan</MedlineDate></PubDate></JournalIssue></Journal>
<ArticleTitle>[Ein deutscher Titel].</ArticleTitle><Abstract><AbstractText>Deutsch <i>kursiv</i> H<sub>2</sub>O.</AbstractText></Abstract><Language>ger</Language>
<PublicationTypeList><PublicationType>Journal Article</PublicationType></PublicationTypeList></Article></MedlineCitation>
<MedlineCitation Owner="NLM"><PMID Version="1">501</PMID><Article><Journal><Title>Old J</Title></Journal><ArticleTitle>v1</ArticleTitle><Abstract><AbstractText>first version</AbstractText></Abstract><Language>eng</Language></Article></MedlineCitation>
<MedlineCitation Owner="NLM"><PMID Version="2">501</PMID><Article><Journal><Title>Old J</Title></Journal><ArticleTitle>v2</ArticleTitle><Abstract><AbstractText>second version</AbstractText></Abstract><Language>eng</Language></Article></MedlineCitation>
</MedlineCitationSet>"""

BOOK_UPDATE = b"""<?xml version="1.0"?>
<PubmedArticleSet>
<PubmedBookArticle><BookDocument><PMID Version="1">600</PMID><ArticleTitle>Book chapter</ArticleTitle><Book><BookTitle>GeneReviews</BookTitle><PubDate><Year>2020</Year></PubDate></Book>
<Language>eng</Language><Abstract><AbstractText Label="SUMMARY">Chapter summary.</AbstractText></Abstract></BookDocument><PubmedBookData><ArticleIdList><ArticleId IdType="pubmed">600</ArticleId></ArticleIdList></PubmedBookData></PubmedBookArticle>
<PubmedArticle><MedlineCitation><PMID Version="1">700</PMID><Article><Journal><Title>J</Title></Journal><ArticleTitle>Retracted thing</ArticleTitle><Abstract><AbstractText>x</AbstractText></Abstract>
<Language>eng</Language><PublicationTypeList><PublicationType>Journal Article</PublicationType></PublicationTypeList></Article>
<CommentsCorrectionsList><CommentsCorrections RefType="RetractionIn"><PMID>701</PMID></CommentsCorrections></CommentsCorrectionsList></MedlineCitation></PubmedArticle>
<DeleteCitation><PMID Version="1">500</PMID></DeleteCitation>
</PubmedArticleSet>"""


def test_medline_versions_book_articles_deletions_across_files(tmp_path):
    from gap_replay.io import Quarantine
    from gap_replay.sources.pubmed.ingest import Context, iter_medline_files

    old = tmp_path / "pubmed20n0001.xml"
    old.write_bytes(MEDLINE_SET)
    upd = tmp_path / "pubmed20n0002.xml.gz"
    upd.write_bytes(gzip.compress(BOOK_UPDATE))
    recs = _citations(old)
    assert [r.pmid for r in recs] == ["500", "501", "501"]
    german = recs[0].doc
    assert german.meta["language"] == "de" and german.title == "Ein deutscher Titel."
    assert "H2O" in german.text and german.meta["pub_date"] == "1998"
    ctx = Context(tmp_path / "out")
    q = Quarantine()
    per_file = [(Path(path).name, list(docs)) for path, docs in
                iter_medline_files([str(upd), str(old)], q, ctx)]
    assert [name for name, _ in per_file] == ["pubmed20n0001.xml", "pubmed20n0002.xml.gz"]
    docs = {d.id: d for _, file_docs in per_file for d in file_docs}
    assert set(docs) == {"pmid:501", "pmid:600", "pmid:700"}  # 500 deleted by the later file
    assert docs["pmid:501"].text == "v2\nsecond version"  # highest Version wins
    assert docs["pmid:600"].meta["book"] is True and "Summary: Chapter summary." in docs["pmid:600"].text
    assert "Retracted Publication" in docs["pmid:700"].meta["publication_types"]
    assert ctx.dropped["superseded_or_deleted"] == 2 and len(q) == 0


# -- hostile XML ---------------------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID Version="1">1</PMID><Article><ArticleTitle>&xxe;</ArticleTitle>
<Abstract><AbstractText>&xxe;</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE article [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<article><front><article-meta><article-id pub-id-type="pmid">1</article-id></article-meta></front><body><p>&lol3;</p></body></article>"""


def test_hostile_xml_is_refused_not_expanded(tmp_path):
    from gap_replay.sources.pubmed.xmlsafe import HostileXML

    bad = tmp_path / "xxe.xml"
    bad.write_bytes(XXE)
    with pytest.raises(HostileXML, match="entities"):
        list(medline.iter_file(bad))
    laughs = tmp_path / "laughs.nxml"
    laughs.write_bytes(LAUGHS)
    ((name, err),) = list(jats.iter_file(str(laughs)))
    assert isinstance(err, jats.JatsError) and "entities" in str(err) and name == str(laughs)


def test_s2orc_dropped_citations_leave_no_empty_brackets_or_space_before_punctuation():
    text = "Title\nWe saw it ( [12] ) and in search [39], too (Smith 2019)."
    p = text.index("We")
    spans = [{"start": text.index(t), "end": text.index(t) + len(t)} for t in ("[12]", "[39]", "Smith 2019")]
    row = _synthetic(text, title=[{"start": 0, "end": 5}],
                     paragraph=[{"start": p, "end": len(text)}], bibref=spans)
    out, _ = format_s2orc(row)
    assert out == "Title\n\nWe saw it and in search, too."


@pytest.mark.parametrize("comment", [b"<!-- " + b"x" * 70_000 + b" -->", b"<!-- see <a href=x> -->"])
def test_entities_declared_after_a_long_or_tag_like_comment_are_refused(tmp_path, comment):
    from gap_replay.sources.pubmed.xmlsafe import HostileXML

    decl = b'<!DOCTYPE PubmedArticleSet [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    path = tmp_path / "sneaky.xml"
    path.write_bytes(b'<?xml version="1.0"?>' + comment + decl +
                     b"<PubmedArticleSet><PubmedArticle>&x;</PubmedArticle></PubmedArticleSet>")
    with pytest.raises(HostileXML, match="entities"):
        list(medline.iter_file(path))
    nxml = tmp_path / "sneaky.nxml"
    nxml.write_bytes(b'<?xml version="1.0"?>' + comment + decl.replace(b"PubmedArticleSet", b"article")
                     + b"<article><front>&x;</front></article>")
    ((_, err),) = list(jats.iter_file(str(nxml)))
    assert isinstance(err, jats.JatsError) and "entities" in str(err)


def test_a_well_formed_html_page_is_not_a_medline_file(tmp_path):
    from gap_replay.sources.ingest import run_ingest

    page = tmp_path / "in" / "pubmed26n0001.xml"
    page.parent.mkdir()
    page.write_bytes(b"<html><body><p>Service unavailable</p></body></html>")
    with pytest.raises(medline.NotThisFormat, match=r"not a MEDLINE file \(root element <html>"):
        list(medline.iter_file(page))
    report = run_ingest("medline", [str(page.parent)], tmp_path / "out")
    assert report.quarantined == 1 and report.records_in == 1
    (qfile,) = (tmp_path / "out" / "quarantine").glob("ingest-medline-*.jsonl")
    assert "not a MEDLINE file" in qfile.read_text()


def _articles(n: int, container: str) -> bytes:
    body = "".join(f'<article article-type="research-article"><front><article-meta>'
                   f'<article-id pub-id-type="pmcid">PMC{9000 + i}</article-id>'
                   f'<title-group><article-title>Trial {i}</article-title></title-group>'
                   f'<abstract><p>Patients in arm {i} received 5 mg daily for twelve weeks and '
                   f'improved.</p></abstract></article-meta></front>'
                   f'<body><sec><title>Methods</title><p>We enrolled {i + 10} adults.</p></sec></body>'
                   f'</article>' for i in range(n))
    return f'<?xml version="1.0"?>{container.format(body=body)}'.encode()


@pytest.mark.parametrize("container", [
    "<articles>{body}</articles>",                                       # Europe PMC
    "<pmc-articleset>{body}</pmc-articleset>",                           # efetch / OA
    '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords>'  # PMC OAI-PMH
    + "".join("<record><metadata>{body}</metadata></record>" for _ in range(1)) + "</ListRecords></OAI-PMH>",
])
def test_jats_sets_in_any_container_give_every_article(tmp_path, container):
    path = tmp_path / "set.xml"
    path.write_bytes(_articles(10, container))
    docs = [d for _, d in jats.iter_file(str(path))]
    assert len(docs) == 10 and not [d for d in docs if isinstance(d, jats.JatsError)]
    assert sorted(d.title for d in docs) == sorted(f"Trial {i}" for i in range(10))


def test_a_well_formed_html_page_is_not_a_jats_file(tmp_path):
    path = tmp_path / "PMC1.xml"
    path.write_bytes(b"<html><body><article>not jats</article></body></html>")
    ((_, err),) = list(jats.iter_file(str(path)))
    assert isinstance(err, jats.JatsError) and "not a JATS file (root element <html>" in str(err)


MML = 'xmlns:mml="http://www.w3.org/1998/Math/MathML"'


def _article(n: int, body: str = "<p>Body text.</p>", extra_front: str = "", attrs: str = "") -> str:
    return (f'<article article-type="research-article"{attrs}><front><article-meta>'
            f'<article-id pub-id-type="pmid">{n}</article-id><title-group><article-title>Title {n}'
            f'</article-title></title-group>{extra_front}<abstract><p>Abstract {n}.</p></abstract>'
            f'</article-meta></front><body>{body}</body></article>')


def _docs(tmp_path, xml: str | bytes, name: str = "a.xml"):
    path = tmp_path / name
    path.write_bytes(xml.encode() if isinstance(xml, str) else xml)
    return [d for _, d in jats.iter_file(str(path))]


def test_jats_set_of_50_with_a_malformed_article_at_26_keeps_the_other_49(tmp_path):
    arts = [_article(i) for i in range(1, 51)]
    arts[25] = arts[25].replace("<p>Body text.</p>", "<p>Body <b>text.</p>")  # unclosed <b>
    xml = ('<?xml version="1.0"?>\n<pmc-articleset xmlns:xlink="http://www.w3.org/1999/xlink">'
           + "\n".join(arts) + "</pmc-articleset>")
    items = _docs(tmp_path, xml)
    docs = [d for d in items if not isinstance(d, Exception)]
    errors = [e for e in items if isinstance(e, Exception)]
    assert len(docs) == 49 and len(errors) == 1
    assert [d.id for d in docs] == [f"pmid:{i}" for i in range(1, 51) if i != 26]
    offset = xml.encode().index(b"<article", xml.encode().index(b"pmid\">26<") - 200)
    assert errors[0].offset == offset and f"at byte {offset}" in str(errors[0])


def test_jats_europe_pmc_articles_root_and_truncated_last_article(tmp_path):
    xml = "<articles>" + _article(1) + _article(2) + _article(3)[:120]
    items = _docs(tmp_path, xml)
    assert [d.id for d in items[:2]] == ["pmid:1", "pmid:2"]
    assert isinstance(items[2], jats.JatsError) and "not closed" in str(items[2])


MEDLINE = """<?xml version="1.0"?>
<PubmedArticleSet>
{records}
</PubmedArticleSet>"""
REC = ('<PubmedArticle><MedlineCitation><PMID Version="1">{n}</PMID><Article><Journal><Title>J</Title>'
       '</Journal><ArticleTitle>T{n}</ArticleTitle><Abstract><AbstractText>{abstract}</AbstractText>'
       '</Abstract><Language>eng</Language></Article></MedlineCitation></PubmedArticle>')


def test_medline_malformed_record_in_the_middle_keeps_its_neighbours(tmp_path):
    recs = [REC.format(n=n, abstract=f"Abstract {n}.") for n in range(1, 8)]
    recs[3] = recs[3].replace("</ArticleTitle>", "</ArticleTitel>")
    path = tmp_path / "pubmed26n0001.xml.gz"
    path.write_bytes(gzip.compress(MEDLINE.format(records="\n".join(recs)).encode()))
    out = list(medline.iter_file(path))
    assert [r.pmid for r in out if isinstance(r, medline.Citation)] == ["1", "2", "3", "5", "6", "7"]
    (bad,) = [r for r in out if isinstance(r, medline.MedlineError)]
    assert isinstance(bad.offset, int) and "XML syntax error" in str(bad)


@pytest.mark.parametrize("abstract,expected,absent", [
    (f'<mml:math {MML}><mml:mover><mml:mi>V</mml:mi><mml:mo>˙</mml:mo></mml:mover><mml:msub><mml:mi>O</mml:mi>'
     '<mml:mrow><mml:mn>2</mml:mn><mml:mi>m</mml:mi><mml:mi>a</mml:mi><mml:mi>x</mml:mi></mml:mrow></mml:msub></mml:math> rose',
     "V\u0307O_2max rose", "m a x"),
    ("risk 10<sup>−5</sup> and H<sub>2</sub>O", "risk 10^-5 and H2O", "10−5"),
    ("&lt;p&gt;Background text.&lt;/p&gt;&lt;p&gt;More, p&lt;0.05.&lt;/p&gt;", "Background text. More, p<0.05.", "<p>"),
])
def test_medline_abstract_math_scripts_and_escaped_html(tmp_path, abstract, expected, absent):
    path = tmp_path / "m.xml"
    path.write_text(MEDLINE.format(records=REC.format(n=9, abstract=abstract)))
    (rec,) = list(medline.iter_file(path))
    assert expected in rec.doc.text and absent not in rec.doc.text
    assert rec.doc.meta["language_declared"] == "en"


@pytest.mark.parametrize("xml,expected", [
    ("<mml:mtext>Generate</mml:mtext><mml:mspace/><mml:mtext>the</mml:mtext><mml:mi>x</mml:mi>", "Generate the x"),
    ("<mml:mfrac><mml:mn>1</mml:mn><mml:mn>2</mml:mn></mml:mfrac>", "1/2"),
    ("<mml:mi>f</mml:mi><mml:mo>\u2061</mml:mo><mml:mo>(</mml:mo><mml:mi>x</mml:mi><mml:mo>)</mml:mo>"
     "<mml:mo>=</mml:mo><mml:mn>2</mml:mn><mml:mo>\u2062</mml:mo><mml:mi>x</mml:mi>", "f(x) = 2x"),
    ("<mml:msup><mml:mn>10</mml:mn><mml:mrow><mml:mo>\u2212</mml:mo><mml:mn>5</mml:mn></mml:mrow></mml:msup>", "10^-5"),
    ("<mml:msub><mml:mi>x</mml:mi><mml:mi>i</mml:mi></mml:msub><mml:mo>=</mml:mo><mml:mfrac><mml:mrow>"
     "<mml:mi>a</mml:mi><mml:mo>+</mml:mo><mml:mi>b</mml:mi></mml:mrow><mml:mn>2</mml:mn></mml:mfrac>", "x_i = (a + b)/2"),
    ("<mml:msup><mml:mi>x</mml:mi><mml:mrow><mml:mi>n</mml:mi><mml:mo>+</mml:mo><mml:mn>1</mml:mn></mml:mrow>"
     "</mml:msup><mml:mo>,</mml:mo><mml:msqrt><mml:mi>y</mml:mi></mml:msqrt>", "x^(n+1), sqrt(y)"),
])
def test_mathml_linear_form(xml, expected):
    assert math_text(etree.fromstring(f"<mml:math {MML}>{xml}</mml:math>")) == expected


def test_prose_scripts_and_dropped_elements_never_glue_words():
    el = etree.fromstring("<p>could be written<inline-graphic/>in which 1<sup>st</sup> CD4<sup>+</sup>"
                          " C<sub>max</sub></p>")
    assert render_inline(el) == "could be written in which 1st CD4^+ C_max"
    assert strip_escaped_html("<5 years and p<0.05") == "<5 years and p<0.05"


ELIFE_BODY = f"""<sec><title>Results</title><sec><title>Sub one</title><p>Intro.</p>
<sec><title>Sub sub</title><p>We measured it.</p></sec></sec>
<p>The rate could be written<disp-formula><graphic/></disp-formula>in which
<inline-formula><mml:math {MML}><mml:msub><mml:mi>k</mml:mi><mml:mi>i</mml:mi></mml:msub></mml:math></inline-formula> varies:
<disp-formula id="e1"><mml:math {MML}><mml:mi>y</mml:mi><mml:mo>=</mml:mo><mml:mfrac><mml:mn>1</mml:mn><mml:mn>2</mml:mn></mml:mfrac></mml:math></disp-formula>
as shown.</p>
<fig id="fig5"><object-id pub-id-type="doi">10.7554/eLife.14093.012</object-id><label>Figure 5.</label>
<caption><title>Rates</title><p>Mean of 10<sup>−5</sup> trials.</p>
<p><bold>DOI:</bold> <ext-link ext-link-type="doi">http://dx.doi.org/10.7554/eLife.14093.012</ext-link></p>
<p><supplementary-material id="s1"><object-id pub-id-type="doi">10.7554/eLife.14093.013</object-id>
<label>Figure 5—source data 1.</label><caption><title>Source files.</title></caption></supplementary-material></p></caption>
<graphic/></fig>
<p><bold>DOI:</bold> <ext-link ext-link-type="doi">http://dx.doi.org/10.7554/eLife.14093.003</ext-link></p>
<sec><title>Empty trailing</title></sec></sec>"""


def test_elife_like_article_math_captions_dois_and_headers(tmp_path):
    (doc,) = _docs(tmp_path, f'<article {MML}>' + _article(5, ELIFE_BODY)[len("<article"):])
    text = doc.text
    assert "# Results\n\n## Sub one\n\nIntro.\n\n### Sub sub\n\nWe measured it." in text
    assert "could be written in which k_i varies:\n[formula] y = 1/2 [/formula]\nas shown." in text
    assert "[fig] Figure 5: Rates. Mean of 10^-5 trials. [/fig]" in text
    for gone in ("eLife.14093", "DOI", "source data", "Empty trailing", "[formula] k_i"):
        assert gone not in text, gone
    assert not text.rstrip().endswith("#")


SCIELO = f"""<article {MML} xml:lang="pt" article-type="research-article"><front><article-meta>
<article-id pub-id-type="doi">10.1590/x</article-id><title-group><article-title>Título</article-title>
<trans-title-group xml:lang="en"><trans-title>English title</trans-title></trans-title-group></title-group>
<abstract><p>Resumo em português.</p></abstract>
<trans-abstract xml:lang="en"><title>Abstract</title><p>English abstract.</p></trans-abstract>
<permissions><license license-type="open-access"><license-p>Distributed under a Creative Commons Attribution License.</license-p></license></permissions>
</article-meta></front><body><sec><title>Introdução</title><p>Texto em português.</p></sec></body>
<back><ack><p>Agradecimentos.</p></ack></back>{{sub}}</article>"""
SUB = """<sub-article article-type="translation" xml:lang="en"><front-stub><title-group>
<article-title>Translated title</article-title></title-group><abstract><p>Sub abstract.</p></abstract></front-stub>
<body><sec><title>Introduction</title><p>English body.</p></sec></body><back><ack><p>Thanks.</p></ack></back></sub-article>"""


def test_scielo_portuguese_article_prefers_english_sub_article_and_drops_foreign_back(tmp_path):
    (doc,) = _docs(tmp_path, SCIELO.format(sub=SUB))
    assert doc.title == "Translated title" and "English body." in doc.text and "Thanks." in doc.text
    assert "Sub abstract." in doc.text
    for foreign in ("português", "Agradecimentos", "Título"):
        assert foreign not in doc.text
    assert doc.meta["language"] == "en" and doc.meta["language_declared"] == "pt"
    assert doc.meta["translated_from"] == "pt" and doc.meta["license"] == "CC-BY"


def test_scielo_portuguese_article_with_trans_abstract_only_keeps_the_english_abstract(tmp_path):
    (doc,) = _docs(tmp_path, SCIELO.format(sub=""))
    assert doc.text == "English title\n\n# Abstract\n\nEnglish abstract."
    assert doc.source == "abstracts" and doc.meta["body_language_dropped"] == "pt"


@pytest.mark.parametrize("license_xml,expected", [
    ('<license license-type="OpenAccess"><license-p>Free to read.</license-p></license>', None),
    ('<license license-type="open-access" xlink:href="http://creativecommons.org/licenses/by/4.0/"/>', "CC-BY-4.0"),
    ("<license><license-p>This is an open access article under the Creative Commons Attribution "
     "Non-Commercial License</license-p></license>", "CC-BY-NC"),
    ("<license><ali:license_ref>https://creativecommons.org/licenses/by-nc-nd/4.0/</ali:license_ref></license>",
     "CC-BY-NC-ND-4.0"),
])
def test_license_metadata(tmp_path, license_xml, expected):
    front = f"<permissions>{license_xml}</permissions>"
    xml = _article(7, extra_front=front).replace(
        "<article ", '<article xmlns:xlink="http://www.w3.org/1999/xlink" '
                    'xmlns:ali="http://www.niso.org/schemas/ali/1.0/" ', 1)
    (doc,) = _docs(tmp_path, xml)
    assert doc.meta.get("license") == expected


def test_license_id_table():
    assert license_id("CC BY-NC-SA 4.0") == "CC-BY-NC-SA-4.0"
    assert license_id("http://creativecommons.org/publicdomain/zero/1.0/") == "CC0-1.0"
    assert license_id("open-access") is None


def test_language_stage_keeps_the_declared_language():
    from gap_replay.document import Document
    from gap_replay.stages.filter import FilterStage

    class Always:
        def detect(self, text):
            return "en"

    doc = Document(id="pmid:1", source="abstracts", subset="pubmed", title="t", text="x" * 50,
                   meta={"language": "pt", "language_declared": "pt"})
    stage = FilterStage({"abstracts": 0}, {"abstracts": ["en"]}, detector=Always())
    kept = stage.process(doc)
    assert kept.meta["language"] == "en" and kept.meta["language_declared"] == "pt"
