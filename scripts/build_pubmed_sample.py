#!/usr/bin/env python
"""Build the bundled PubMed sample sites from the real sample files in tests/fixtures/pubmed/.

    python scripts/build_pubmed_sample.py

Writes `src/gap_replay/sample/sites/s2api/` (S2 datasets API answers + gzipped dataset files)
and `src/gap_replay/sample/sites/ncbi/` (FTP-style index pages, MEDLINE files; PMC full
text is the PMC Cloud bucket of scripts/build_pmc_cloud_sample.py). Output is byte-stable
(gzip timestamps fixed). Rows marked "derived" are copies of real rows given PubMed ids
>= 90000000 (not yet assigned by NLM) so the PubMed filters keep them; everything else is
byte-identical to the real samples.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "pubmed"
SITES = ROOT / "src" / "gap_replay" / "sample" / "sites"
RELEASE = "2023-08-29"  # an older release: its full text is `s2orc` (the 2023 `content` rows)
PREVIOUS = "2023-08-01"
# The latest release (a sample id): its full text is `s2orc_v2` (body/bibliography rows), built
# from the same sample paper by scripts/make_s2orc_v2_fixture.py.
LATEST = "2026-11-24"
S3 = "https://ai2-s2ag.s3.amazonaws.com"
SIGNATURE = "?AWSAccessKeyId=ASIASAMPLE&Expires=1700000000&Signature=c2FtcGxl"


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", mtime=0) as fh:
        fh.write(data)
    return buf.getvalue()


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def jsonl(rows: list) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


def index_page(folder: str, names: list[tuple[str, int]]) -> str:
    rows = "\n".join(f'<a href="{n}">{n}</a>{" " * max(1, 40 - len(n))}2024-11-11 13:53  {s}'
                     for n, s in names)
    return (f"<html>\n<head><title>Index of {folder}</title></head>\n<body>\n<h1>Index of {folder}</h1>\n"
            f"<pre>Name                                    Last modified      Size<hr>"
            f'<a href="../">Parent Directory</a>\n{rows}\n<hr></pre>\n</body>\n</html>\n')


def build_s2api() -> None:
    site = SITES / "s2api"
    papers = [json.loads(l) for l in (FIX / "s2_papers/papers-sample.lines1-10.jsonl").read_text().splitlines()]
    abstracts = [json.loads(l) for l in (FIX / "s2_abstracts/abstracts-sample.lines1-10.jsonl").read_text().splitlines()]
    s2orc_line = (FIX / "s2orc/s2orc-sample.line3.jsonl").read_text().splitlines()[0]
    s2orc = json.loads(s2orc_line)

    # derived PubMed rows
    citesee = copy.deepcopy(papers[0])
    citesee.update(corpusid=s2orc["corpusid"], title="CiteSee: Augmenting Citations in Scientific "
                   "Papers with Persistent and Personalized Historical Context", venue="CHI",
                   year=2023, publicationdate="2023-04-19", publicationtypes=["JournalArticle"],
                   journal={"name": "Proceedings of the CHI Conference", "pages": None, "volume": ""})
    citesee["externalids"] = {**citesee["externalids"], "CorpusId": str(s2orc["corpusid"]),
                              "PubMed": "90000001", "DOI": "10.1145/3544548.3580847"}
    derived = [citesee]
    for n, row in enumerate(abstracts[:3], start=2):
        paper = copy.deepcopy(papers[0])
        paper.update(corpusid=row["corpusid"], title=f"Derived sample paper {n}", venue="BMJ",
                     publicationdate="2020-06-01", publicationtypes=["Review"],
                     journal={"name": "BMJ", "pages": None, "volume": ""})
        paper["externalids"] = {**paper["externalids"], "CorpusId": str(row["corpusid"]),
                                "PubMed": str(90000000 + n),
                                "PubMedCentral": str(9000000 + n) if n == 2 else None}
        derived.append(paper)
    s2orc_pubmed = copy.deepcopy(s2orc)
    s2orc_pubmed["externalids"]["pubmed"] = "90000001"
    citesee_abstract = copy.deepcopy(abstracts[0])
    text, ann = s2orc["content"]["text"], json.loads(s2orc["content"]["annotations"]["abstract"])
    citesee_abstract.update(corpusid=s2orc["corpusid"],
                            abstract=text[ann[0]["start"]:ann[0]["end"]].strip())

    files = {
        "papers": jsonl(papers + derived),
        "abstracts": jsonl(abstracts + [citesee_abstract]),
        "s2orc": (s2orc_line + "\n").encode() + jsonl([s2orc_pubmed]),
    }
    write(site / "datasets/v1/release/index.html", json.dumps([PREVIOUS, RELEASE, LATEST]))
    _write_release(site, RELEASE, files)
    # a diff for the abstracts: one row updated (new text), one deleted
    upd = copy.deepcopy(abstracts[1])
    upd["abstract"] = "Updated abstract text for the refresh example. " + upd["abstract"]
    dele = {"corpusid": abstracts[2]["corpusid"]}
    upath = f"staging/diffs/{PREVIOUS}/{RELEASE}/abstracts/update-0.jsonl.gz"
    dpath = f"staging/diffs/{PREVIOUS}/{RELEASE}/abstracts/delete-0.jsonl.gz"
    write(site / upath, gz(jsonl([upd])))
    write(site / dpath, gz(jsonl([dele])))
    _write_abstracts_diff(site, RELEASE, upath, dpath)
    _build_latest(site, files, upath, dpath)


def _release_answer(release: str, files: dict) -> str:
    """GET /datasets/v1/release/{id} (and `latest`): the release id and the datasets it lists."""
    return json.dumps({"release_id": release, "README": "bundled sample of the S2 datasets API",
                       "datasets": [{"name": n, "description": f"{n} (sample)",
                                     "README": f"{n} sample files"} for n in files]}, indent=1)


def _write_abstracts_diff(site: Path, end: str, upath: str, dpath: str) -> None:
    """The abstracts diff from PREVIOUS to `end`: one update file, one delete file."""
    write(site / f"datasets/v1/diffs/{PREVIOUS}/to/{end}/abstracts",
          json.dumps({"dataset": "abstracts", "start_release": PREVIOUS, "end_release": end,
                      "diffs": [{"from_release": PREVIOUS, "to_release": end,
                                 "update_files": [f"{S3}/{upath}{SIGNATURE}"],
                                 "delete_files": [f"{S3}/{dpath}{SIGNATURE}"]}]}, indent=1))


def _write_release(site: Path, release: str, files: dict) -> None:
    """One release: its answer, a gzipped data file per dataset and each dataset's file list."""
    stamp = release.replace("-", "")
    write(site / f"datasets/v1/release/{release}/index.html", _release_answer(release, files))
    for name, data in files.items():
        path = f"staging/{release}/{name}/{stamp}_000000_{name}-part0.jsonl.gz"
        write(site / path, gz(data))
        write(site / f"datasets/v1/release/{release}/dataset/{name}",
              json.dumps({"name": name, "description": f"{name} (sample)",
                          "README": "Rows marked derived carry PubMed ids >= 90000000.",
                          "files": [f"{S3}/{path}{SIGNATURE}"]}, indent=1))


def _build_latest(site: Path, old_files: dict, upath: str, dpath: str) -> None:
    """The latest release: papers and abstracts as before, the full text as `s2orc_v2` rows (the
    sample paper, and a derived copy with a PubMed id so the filter keeps it)."""
    v2_line = (FIX / "s2orc/s2orc_v2-sample.line3.jsonl").read_text().splitlines()[0]
    v2_pubmed = json.loads(v2_line)
    v2_pubmed["openaccessinfo"]["externalids"]["pubmed"] = "90000001"
    files = {"papers": old_files["papers"], "abstracts": old_files["abstracts"],
             "s2orc_v2": (v2_line + "\n").encode() + jsonl([v2_pubmed])}
    write(site / "datasets/v1/release/latest", _release_answer(LATEST, files))
    _write_release(site, LATEST, files)
    # the abstracts diff from the previous release reaches the latest one too
    _write_abstracts_diff(site, LATEST, upath, dpath)


def build_ncbi() -> None:
    site = SITES / "ncbi"
    baseline = (FIX / "medline/pubmed20n1016.xml.gz").read_bytes()
    text = gzip.decompress(baseline).decode()
    # An update file: a revised record (same PMID, Version 2) and a deletion of a baseline PMID.
    start = text.index("<PubmedArticle><MedlineCitation Status=\"MEDLINE\" Owner=\"NLM\"><PMID Version=\"1\">30913216")
    end = text.index("</PubmedArticle>", start) + len("</PubmedArticle>")
    revised = text[start:end].replace('<PMID Version="1">30913216', '<PMID Version="2">30913216', 1)
    revised = revised.replace("<ArticleTitle>", "<ArticleTitle>[Revised] ", 1)
    head = text[: text.index("<PubmedArticleSet>") + len("<PubmedArticleSet>")]
    update = (head + "\n" + revised + "<DeleteCitation><PMID Version=\"1\">10658653</PMID>"
              "</DeleteCitation></PubmedArticleSet>\n").encode()
    files = {"pubmed/baseline": [("pubmed20n1016.xml.gz", baseline)],
             "pubmed/updatefiles": [("pubmed20n1400.xml.gz", gz(update))]}
    for folder, items in files.items():
        listing = []
        for name, data in items:
            write(site / folder / name, data)
            md5 = f"MD5({name})= {hashlib.md5(data).hexdigest()}\n"
            write(site / folder / (name + ".md5"), md5)
            listing += [(name, len(data)), (name + ".md5", len(md5))]
        write(site / folder / "index.html", index_page("/" + folder, listing))
    # PMC full text: scripts/build_pmc_cloud_sample.py (the legacy oa_bulk packages are gone)

if __name__ == "__main__":
    build_s2api()
    build_ncbi()
    print("sample sites written under", SITES)
