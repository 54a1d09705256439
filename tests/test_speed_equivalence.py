"""The fast paths of `process` give exactly what the slow ones gave.

ftfy is skipped only where it provably cannot change the text, citation patterns scan from the
bracket, MinHash signatures are computed in cache-sized batches, and intermediate segment
shards are deleted as soon as the next segment has consumed them; each is checked against the
plain computation on every text bundled with the project.
"""

from __future__ import annotations

import gzip
import random
import re
from pathlib import Path

import ftfy
import numpy as np
import orjson
import pytest
import xxhash
from datasketch import MinHash

from gap_replay import textrules
from gap_replay.executors import make_executor
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.process import run_process
from gap_replay.recipe import load_recipe
from gap_replay.resources import sample_dir
from gap_replay.sample.textgen import make_documents
from gap_replay.stages.clean import fix_encoding
from gap_replay.stages.minhash.config import NearDedupConfig
from gap_replay.stages.minhash.signatures import SCHEME, Signer, shingles, words
from gap_replay.textrules import remove_citations

FIXTURES = Path(__file__).parent / "fixtures"
TEXT_SUFFIXES = (".txt", ".json", ".jsonl", ".jsonl.gz", ".xml", ".nxml", ".html", ".md", ".csv")


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _bundled_texts() -> list[str]:
    """Every text file of the sample and the test fixtures, whole, plus the strings inside JSON."""
    texts: list[str] = []
    for root in (sample_dir(), FIXTURES):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(TEXT_SUFFIXES)):
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data = gzip.decompress(data)
            text = data.decode("utf-8", errors="replace")
            texts.append(text)
            if ".json" in path.name:
                for line in text.splitlines() if ".jsonl" in path.name else [text]:
                    try:
                        texts += _strings(orjson.loads(line))
                    except orjson.JSONDecodeError:
                        pass
    texts += [d.text for d in make_documents(200, seed=5, english_share=0.5)]
    return [t for t in texts if t]


TEXTS = _bundled_texts()

TARGETED = [
    "R&D at Smith & Jones; A&E; P&L & more", "a &amp; b", "&lt;tag&gt;", "caf&eacute; &#233; &#x2019;",
    "P&EACUTE;REZ", "this&not that", "&amp", "x &nTILDE; y",
    "café &amp\u037e x",            # NFC turns U+037E into ";": an entity only after ftfy's first pass
    "&\u212aappa; é",               # KELVIN SIGN composes to "K": "&Kappa;"
    "“curly” & ‘single’ quotes", "é & “q” <b> &amp; </b>", "line one &amp;\n<p> &amp; two",
    "donâ€™t cafÃ© & ﬁnal", "Ã© & Ã¨", "mojibake Ã\u00a0 la & carte", "voilÃ le travail & co", "ＡＢＣ & ｄ",
    "ctrl\x07char & x", "ansi \x1b[36mblue\x1b[0m &", "cr\r\nlf & y", "nel\x85 & z", "\ufeffbom &",
    "ls\u2028ps\u2029 &", "surrogate-free ♥ & ✓ & ≥ 5", "Müller & Søn – 5 µg ± 2 °C",
    "&#x1F600; &#128512;", "Greek αβγ & Cyrillic жзи & Arabic عربي", "中文 & 日本語",
    "x\u212b\u20acx",               # ANGSTROM SIGN: NFC makes "Å€", mojibake for ftfy's second pass
    "♥ ✓ ⌀ ◆ ⟨x⟩ 中 ἀ 𝑥 😀 ⊕ ⇒ ▸ ★", "10 kΩ resistor, TGF-β signaling", "Ω x", "\u1100\u1161 jamo",
]


def _with_ampersands(text: str) -> str:
    """The same text with "&" in the places papers have it (between words, before letters)."""
    return re.sub(r" and ", " & ", text, count=20).replace("A", "A&", 3)


def _formatted_texts() -> list[str]:
    """The bundled JATS articles and S2ORC rows as ingest formats them (the text ftfy sees)."""
    from gap_replay.sources.pubmed import jats
    from gap_replay.sources.pubmed.s2records import s2orc_document

    texts = [doc.text for path in sorted((FIXTURES / "pubmed" / "pmc_jats").iterdir())
             for _, doc in jats.iter_file(str(path)) if hasattr(doc, "text")]
    for path in sorted((FIXTURES / "pubmed" / "s2orc").iterdir()):
        rows = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        texts += [s2orc_document(orjson.loads(row)).text for row in rows]
    return texts


def test_the_ftfy_gate_gives_ftfy_output_on_every_bundled_text_and_the_targeted_strings():
    formatted = _formatted_texts()
    assert len(formatted) >= 6
    cases = TEXTS + formatted + [_with_ampersands(t) for t in TEXTS + formatted] + TARGETED
    # chunks as well as whole texts: a 2,000-character window without any "<" unescapes entities
    cases += [t[i:i + 2000] for t in TEXTS if "&" in t for i in range(0, min(len(t), 20_000), 2000)]
    assert sum("&" in t for t in cases) > 200 and sum(ftfy.fix_text(t) != t for t in cases) > 50
    mismatches = [t[:80] for t in cases if fix_encoding(t) != ftfy.fix_text(t)]
    assert mismatches == []


def _reference_whitespace(text: str, attach_punct: bool = False, headers_apart: bool = False) -> str:
    """normalize_whitespace as plain rules: every regex applied, no pre-check."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = textrules._HSPACE.sub(" ", text)
    if attach_punct:
        text = textrules._SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = textrules._LEADING.sub("\n", textrules._TRAILING.sub("\n", text))
    if headers_apart:
        text = textrules._headers_apart(text)
    return textrules._BLANKS.sub("\n\n", text).strip()


def _whitespace_stress(rng: random.Random) -> str:
    """Long lines (the newline walk) or short ones (the scans), with every kind of space."""
    pieces = ["word", "é", "♥", " ", "  ", "\t", "\u00a0", "\u2003", "\u3000", "\n", "\n\n",
              "\n\n\n", " \n", "\n ", "\n  - item", "# Head", " .", " ,", "\r\n", "x" * 200]
    weights = [30, 3, 2, 20, 2, 1, 1, 1, 1, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, rng.choice([0, 10])]
    return "".join(rng.choices(pieces, weights, k=rng.randint(1, 400)))


def test_the_whitespace_pre_checks_give_the_plain_rules_output():
    rng = random.Random(11)
    cases = TEXTS + _formatted_texts() + [_whitespace_stress(rng) for _ in range(3000)]
    for options in ({}, {"attach_punct": True}, {"headers_apart": True}):
        mismatches = [t[:80] for t in cases
                      if textrules.normalize_whitespace(t, **options) != _reference_whitespace(t, **options)]
        assert mismatches == [], options


def test_text_with_only_plain_ampersands_skips_ftfy(monkeypatch):
    def fail(text, *a, **k):
        raise AssertionError(f"ftfy called on {text[:40]!r}")

    monkeypatch.setattr(ftfy, "fix_text", fail)
    assert fix_encoding("R&D at Smith & Jones, 5 µg") == "R&D at Smith & Jones, 5 µg"
    with pytest.raises(AssertionError):
        fix_encoding("a &amp; b")


def _reference_signature(text: str, config: NearDedupConfig) -> np.ndarray | None:
    """The signature as first implemented: list-sliced shingles, one datasketch batch."""
    tokens = words(text)
    if not tokens:
        return None
    n = config.ngram
    grams = ([" ".join(tokens).encode()] if len(tokens) < n else
             list({" ".join(tokens[i:i + n]).encode() for i in range(len(tokens) - n + 1)}))
    mh = MinHash(num_perm=config.num_perm, seed=config.seed, scheme=SCHEME, hashfunc=xxhash.xxh32_intdigest)
    mh.update_batch(grams)
    return np.asarray(mh.hashvalues, dtype=np.uint32)


def test_batched_signatures_equal_the_single_batch_ones_on_every_bundled_text():
    config = NearDedupConfig()
    signer = Signer(config)
    cases = TEXTS + ["", "...", "one", "two words here", "exactly five words right here"]
    assert max(len(shingles(t, config.ngram)) for t in cases) > 5_000  # several batches
    for text in cases:
        new, old = signer.signature(text), _reference_signature(text, config)
        if old is None:
            assert new is None
        else:
            assert new.dtype == np.uint32 and np.array_equal(new, old), text[:60]
    assert sorted(shingles("a b c d e f a b c d e", 5)) == sorted(
        [b"a b c d e", b"b c d e f", b"c d e f a", b"d e f a b", b"e f a b c", b"f a b c d"])


RECIPE = load_recipe(overrides={"scale": 1e-6, "tokenizer": {"path": "sample:tokenizer.model"},
                                "dedup": {"exact": {"buckets": 3}}})


class SegmentWatcher:
    """A one-worker executor that records the intermediate segment shards present after each map."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.inner = make_executor("local", 1)
        self.seen: list[list[str]] = []

    def map(self, fn, tasks, desc=""):
        result = self.inner.map(fn, tasks, desc)
        self.seen.append(sorted(str(p.relative_to(self.out)) for p in self.out.glob("work/*/segment-*/**/*.jsonl.*")))
        return result


def _raw(root: Path) -> None:
    for i, source in enumerate(("papers", "abstracts", "replay")):
        docs = make_documents(12, seed=i, english_share=0.8, target_chars=900, source=source)
        for part in range(2):
            with ShardWriter(root / "raw" / source / f"part-{part}.jsonl.gz") as w:
                for d in docs[part::2] + ([docs[0]] if part else []):  # an exact duplicate across shards
                    w.write(d)


def _clean_bytes(root: Path) -> dict[str, bytes]:
    return {str(Path(p).relative_to(root)): Path(p).read_bytes() for p in list_shards(root / "clean")}


def test_intermediates_are_deleted_once_consumed_and_a_lost_output_is_rebuilt_identically(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    for root in (ref, run):
        _raw(root)
    run_process(str(ref), str(ref), RECIPE, make_executor("local", 1))
    watcher = SegmentWatcher(run)
    stats = run_process(str(run), str(run), RECIPE, watcher)
    expected = _clean_bytes(ref)
    assert _clean_bytes(run) == expected and len(expected) == 6
    # after every map, intermediates of at most one segment exist (their consumer has not run yet)
    assert any(watcher.seen) and all(p.endswith(".jsonl.zst") for seen in watcher.seen for p in seen)
    assert all(len({p.split("/")[2] for p in seen}) <= 1 for seen in watcher.seen), watcher.seen
    assert not list(run.glob("work/*/segment-*/**/*.jsonl.*"))
    # a lost output of a finished run: every segment of that shard runs again, same bytes
    lost = run / "clean" / "abstracts" / "part-1.jsonl.gz"
    lost.unlink()
    again = run_process(str(run), str(run), RECIPE, make_executor("local", 1))
    assert _clean_bytes(run) == expected and again["stages"] == stats["stages"]
    assert sum(1 for _ in iter_documents(str(lost), Quarantine())) > 0


def _reference_remove_citations(text: str) -> str:
    """remove_citations as first written: patterns with a leading `[ \\t]*`, re.sub."""
    numeric = re.compile(rf"(?P<sp>[ \t]*)(?P<cit>{textrules._NUMERIC}(?:{textrules._GROUP_SEP}{textrules._NUMERIC})*)")

    def marker(m: re.Match) -> str:
        if not textrules._AFTER_OK.match(m.string, m.end()):
            return m.group(0)
        is_range = any(c in m.group("cit") for c in ",;-–—")
        before = m.string[max(0, m.start("cit") - 80):m.start("cit")]
        return m.group(0) if textrules._is_data_context(before, is_range) else ""

    if "[" in text:
        text = numeric.sub(marker, text)
    if "(" in text and re.search(r"(?:19|20)\d\d[a-z]?\s*\)", text):
        text = re.sub(rf"[ \t]*{textrules._AUTHOR_YEAR}", "", text)
    return text


def test_citation_removal_scanning_from_the_bracket_equals_the_leading_space_patterns():
    cases = TEXTS + [
        "Shown [1] [2], [3] and  \t[4-6]. Kept: 74 [66-82] years, CB[7], [3H] and (Smith et al., 2019).",
        "A (Smith, 2001)  (Lee and Wu 2002; Ng 2003a) b [1][2] c\t [12–15] d [ 7 ] e [1,2]triazole",
        "[1] at a line start\n  [2] indented\n end [3]", "x  [1]  [2]  ", "(WHO, 2021)", "  (WHO, 2021)",
    ]
    assert sum(_reference_remove_citations(t) != t for t in cases) > 20
    mismatches = [t[:80] for t in cases if remove_citations(t) != _reference_remove_citations(t)]
    assert mismatches == []
    unchanged = "no markers here [not numeric] (nor 1999a years)"
    assert remove_citations(unchanged) is unchanged


def _reference_normalize_headers(text: str, max_level: int = 3) -> str:
    """normalize_headers as first written: a MULTILINE `^` pattern, finditer then sub."""
    header = re.compile(r"^(#{1,})[ \t]+(?=\S)", re.MULTILINE)
    levels = [len(m.group(1)) for m in header.finditer(text)]
    if not levels:
        return text
    shift = min(levels) - 1
    return header.sub(lambda m: "#" * min(len(m.group(1)) - shift, max_level) + " ", text)


def test_header_levels_scanned_from_line_starts_equal_the_multiline_pattern():
    cases = TEXTS + _formatted_texts() + [
        "# A\n## B\n### C\n#### D", "## A\n### B", "#\tA\n##  B", "#1 cause\n# A", "x # not\n#  y",
        "#### deep\n##### deeper", "# A\n\n#\n# \n#x", "\n# first after newline", "#A\r\n## B",
    ]
    rewritten = [t for t in cases if _reference_normalize_headers(t) != t]
    assert len(rewritten) >= 6
    for max_level in (2, 3, 6):
        mismatches = [t[:80] for t in cases
                      if textrules.normalize_headers(t, max_level) != _reference_normalize_headers(t, max_level)]
        assert mismatches == []
