"""Issue #13 (JATS/MEDLINE content fidelity): per-record recovery, one math/inline renderer,
captions, structure, English parts of non-English articles, licence and language metadata."""

from __future__ import annotations

import gzip

import pytest
from lxml import etree

from gap_replay.sources.pubmed import jats, medline
from gap_replay.sources.pubmed.jats import license_id
from gap_replay.sources.pubmed.mathml import math_text, render_inline, strip_escaped_html

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
