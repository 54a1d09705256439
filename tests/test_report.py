"""The HTML report: self-contained, with the tokens-vs-recipe, length and funnel charts and tables
whose numbers come from manifest.json and stats.json."""

from __future__ import annotations

import base64
import json
import re

import io

from PIL import Image

from gap_replay.report import chart_tokens_vs_recipe, write_html_report
from opsdata import make_out


def test_report_is_self_contained_with_four_charts(tmp_path):
    out = make_out(tmp_path / "out")
    stats = json.loads((out / "stats.json").read_text())
    stats["stages"]["near_dedup"] = {"papers": {"in": 12, "out": 10, "dropped": {"near_duplicate": 2},
                                                "quarantined": 0}}
    stats["stages"]["decontaminate"] = {"abstracts": {"in": 12, "out": 11, "dropped": {"benchmark_overlap": 1},
                                                      "quarantined": 0}}
    stats["near_dedup"] = {"clusters": 1, "documents_in_clusters": 3, "removed": 2,
                           "removed_by_source": {"papers": 2}, "threshold": 0.8,
                           "examples": [{"id": "papers-3", "source": "papers", "kept_id": "papers-1",
                                         "kept_source": "papers", "jaccard": 0.91}]}
    stats["decontamination"] = {"medqa": {"documents_dropped": 1, "documents_trimmed": 4, "ngram_hits": 17,
                                          "chars_removed": 950, "by_source": {"abstracts": 5}, "examples": []}}
    (out / "stats.json").write_text(json.dumps(stats))
    path = write_html_report(out, tmp_path / "r" / "report.html", main_chart_png=tmp_path / "main.png")
    page = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    for b64 in images:
        img = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert img.format == "PNG" and img.width > 300
    assert not re.search(r'(src|href)="https?://', page)  # nothing fetched when opened
    manifest = json.loads((out / "manifest.json").read_text())
    train_tokens = sum(e["tokens_by_source"].get("guidelines", 0) for e in manifest["shards"]
                       if "/train/" in e["path"])
    assert f"<td class=num>{train_tokens:,}</td>" in page
    assert "near_duplicate: 2" in page and "benchmark_overlap: 1" in page
    assert "<td>medqa</td>" in page and "<td class=num>17</td>" in page and "papers-3" in page
    assert "too_short: 3" in page
    assert (tmp_path / "main.png").read_bytes() == base64.b64decode(images[0])


def test_main_chart_is_deterministic(tmp_path):
    out = make_out(tmp_path / "out")
    manifest = json.loads((out / "manifest.json").read_text())
    assert chart_tokens_vs_recipe(manifest) == chart_tokens_vs_recipe(manifest)


def test_nothing_found_says_none_instead_of_an_empty_chart(tmp_path):
    """The sample run's case: near-dedup ran and removed nothing, decontamination found nothing."""
    out = make_out(tmp_path / "out")
    stats = json.loads((out / "stats.json").read_text())
    stats["stages"]["near_dedup"] = {s: {"in": 12, "out": 12, "dropped": {}, "quarantined": 0}
                                     for s in ("papers", "abstracts")}
    stats["near_dedup"] = {"clusters": 0, "removed": 0, "removed_by_source": {}, "threshold": 0.72}
    stats["decontamination"] = {"medqa": {"documents_dropped": 0, "documents_trimmed": 0, "ngram_hits": 0}}
    (out / "stats.json").write_text(json.dumps(stats))
    page = write_html_report(out, tmp_path / "report.html").read_text()
    special = page.split("<h2>Near-duplicates and decontamination</h2>", 1)[1]
    assert "No near-duplicates found" in special and "No benchmark contamination found" in special
    assert "data:image/png" not in special  # no all-zero bar chart
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 3  # the other charts stay


def test_near_duplicates_found_are_charted_without_the_none_line(tmp_path):
    out = make_out(tmp_path / "out")
    stats = json.loads((out / "stats.json").read_text())
    stats["near_dedup"] = {"clusters": 1, "removed": 2, "removed_by_source": {"papers": 2, "abstracts": 0}}
    (out / "stats.json").write_text(json.dumps(stats))
    special = write_html_report(out, tmp_path / "report.html").read_text().split(
        "<h2>Near-duplicates and decontamination</h2>", 1)[1]
    assert "data:image/png" in special and "No near-duplicates found" not in special
