"""`gap-replay stats OUT --html report.html`: one self-contained HTML page with the corpus' charts.

Tokens per source against the recipe (manifest.json), document-length histograms per source
(read from the shuffled shards until each source has enough samples: shards are shuffled by
hash, so the first ones are an unbiased sample), the drop-reason funnel per stage and the
near-duplicate / decontamination counts (stats.json). Charts are matplotlib PNGs (Agg backend)
embedded as base64, so the file can be mailed or attached to a CI run as is.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gap_replay.document import SOURCES  # noqa: E402
from gap_replay.formats.shards import iter_shard_records, shard_path, shard_split  # noqa: E402
from gap_replay.io.paths import atomic_write, read_json  # noqa: E402

log = logging.getLogger(__name__)

COLORS = {"guidelines": "#1b9e77", "abstracts": "#d95f02", "papers": "#7570b3", "replay": "#e7298a"}
SPECIAL_STAGES = ("near", "minhash", "decontam")  # stages reported on their own
PNG_METADATA = {"Software": None}  # no version string: same data, same bytes


def _color(source: str) -> str:
    return COLORS.get(source, "#666666")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(fig)
    return buf.getvalue()


# -- data ------------------------------------------------------------------------------------
def tokens_by_source_and_split(manifest: dict) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for entry in manifest.get("shards", []):
        split = shard_split(entry)
        for source, n in (entry.get("tokens_by_source") or {}).items():
            out[source][split] += n
    return out


def length_samples(out_dir: str, manifest: dict, per_source: int = 50_000) -> dict[str, list[int]]:
    """Tokens per training sequence for up to `per_source` sequences per source, from the first shards."""
    samples: dict[str, list[int]] = defaultdict(list)
    sources = set((manifest.get("totals") or {}).get("tokens_by_source") or {})
    for entry in manifest.get("shards", []):
        if sources and all(len(samples[s]) >= per_source for s in sources):
            break
        path = shard_path(out_dir, entry)
        if not os.path.exists(path) and "://" not in path:
            log.warning("%s: listed in the manifest but missing; skipped in the histograms", path)
            continue
        for _, record in iter_shard_records(path):
            source = record.get("source", "unknown")
            if len(samples[source]) < per_source:
                samples[source].append(int(record.get("n_tokens") or len(record.get("input_ids") or ())))
    return dict(samples)


def funnel(stats: dict) -> tuple[list[str], dict[str, list[tuple[str, int, dict[str, int], int]]]]:
    """Per source, per stage in pipeline order: (stage, out, dropped by reason, quarantined)."""
    stages = list((stats.get("stages") or {}).keys())
    per_source: dict[str, list] = defaultdict(list)
    for stage in stages:
        for source, c in stats["stages"][stage].items():
            per_source[source].append((stage, int(c.get("out", 0)), dict(c.get("dropped") or {}),
                                       int(c.get("quarantined", 0)), int(c.get("in", 0))))
    return stages, dict(per_source)


# -- charts ----------------------------------------------------------------------------------
def chart_tokens_vs_recipe(manifest: dict) -> bytes | None:
    measured = tokens_by_source_and_split(manifest)
    targets = (manifest.get("totals") or {}).get("target_tokens_by_source") or {}
    sources = [s for s in SOURCES if s in measured or s in targets]
    sources += sorted(set(measured) - set(sources))
    if not sources:
        return None
    x = np.arange(len(sources))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    train = [measured[s]["train"] for s in sources]
    val = [measured[s]["validation"] for s in sources]
    tgt = [targets.get(s, 0) for s in sources]
    ax.bar(x - 0.27, tgt, 0.27, color="#bbbbbb", label="recipe target (train)")
    ax.bar(x, train, 0.27, color=[_color(s) for s in sources], label="measured train")
    ax.bar(x + 0.27, val, 0.27, color=[_color(s) for s in sources], alpha=0.45, label="measured validation")
    for xi, (t, m) in enumerate(zip(tgt, train)):
        if t:
            ax.annotate(f"{m / t:.0%}", (xi, max(m, 1)), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, sources)
    if max(tgt + train + [1]) / max(min([v for v in tgt + train if v] or [1]), 1) > 50:
        ax.set_yscale("log")
    ax.set_ylabel("tokens")
    ax.set_title("Tokens per source against the recipe (label: measured / target)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def chart_length_histograms(samples: dict[str, list[int]]) -> bytes | None:
    sources = [s for s in SOURCES if samples.get(s)] + sorted(set(samples) - set(SOURCES))
    if not sources:
        return None
    fig, axes = plt.subplots(1, len(sources), figsize=(3.2 * len(sources), 3), squeeze=False)
    for ax, source in zip(axes[0], sources):
        values = np.asarray(samples[source])
        bins = np.logspace(0, np.log10(max(values.max(), 10)) + 0.05, 30)
        ax.hist(values, bins=bins, color=_color(source))
        ax.set_xscale("log")
        ax.set_title(f"{source} (n={len(values):,}, median {int(np.median(values)):,})", fontsize=9)
        ax.set_xlabel("tokens per document")
    axes[0][0].set_ylabel("documents")
    fig.suptitle("Document length (tokens, EOD included)", fontsize=10, y=1.06)
    return _png(fig)


def chart_funnel(stats: dict) -> bytes | None:
    stages, per_source = funnel(stats)
    if not stages:
        return None
    sources = [s for s in SOURCES if s in per_source] + sorted(set(per_source) - set(SOURCES))
    reasons = sorted({r for rows in per_source.values() for row in rows for r in row[2]})
    cmap = plt.get_cmap("tab20")
    reason_color = {r: cmap(i % 20) for i, r in enumerate(reasons)}
    fig, axes = plt.subplots(len(sources), 1, figsize=(8, 1.0 + 0.45 * len(stages) * len(sources)),
                             squeeze=False)
    for ax, source in zip(axes[:, 0], sources):
        rows = per_source[source]
        y = np.arange(len(rows))[::-1]
        for yi, (stage, out, dropped, quarantined, _in) in zip(y, rows):
            ax.barh(yi, out, color=_color(source))
            left = out
            for reason in sorted(dropped):
                ax.barh(yi, dropped[reason], left=left, color=reason_color[reason],
                        label=reason if reason not in ax.get_legend_handles_labels()[1] else None)
                left += dropped[reason]
            if quarantined:
                ax.barh(yi, quarantined, left=left, color="black", hatch="//",
                        label="quarantined" if "quarantined" not in ax.get_legend_handles_labels()[1] else None)
        ax.set_yticks(y, [r[0] for r in rows])
        ax.set_title(f"{source}: documents kept (colour) and dropped by reason", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    axes[-1, 0].set_xlabel("documents")
    fig.tight_layout()
    return _png(fig)


# -- page ------------------------------------------------------------------------------------
def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f"<td class=num>{v:,}</td>" if isinstance(v, (int, np.integer)) else f"<td>{html.escape(str(v))}</td>"
        for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return f"<p class=missing>{html.escape(alt)}: none (nothing to chart).</p>"
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _stage_removals(stats: dict, needle: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for stage, per_source in (stats.get("stages") or {}).items():
        if needle in stage.lower():
            for source, c in per_source.items():
                out[source] = out.get(source, 0) + int(sum((c.get("dropped") or {}).values()))
    return out


def near_dup_by_source(stats: dict) -> dict[str, int]:
    section = stats.get("near_dedup") or {}
    return dict(section.get("removed_by_source") or {}) or _stage_removals(stats, "near")


def decontamination_by_benchmark(stats: dict) -> dict[str, dict]:
    return {name: rep for name, rep in (stats.get("decontamination") or {}).items() if isinstance(rep, dict)}


def special_counts(stats: dict) -> list[list]:
    """Rows (stage, source, in, removed, by reason) of the near-dup and decontamination stages."""
    rows = []
    for stage, per_source in (stats.get("stages") or {}).items():
        if any(k in stage.lower() for k in SPECIAL_STAGES):
            for source, c in per_source.items():
                dropped = c.get("dropped") or {}
                rows.append([stage, source, int(c.get("in", 0)), int(sum(dropped.values())),
                             ", ".join(f"{k}: {v:,}" for k, v in sorted(dropped.items())) or "-"])
    return rows


def _decon_found(report: dict) -> bool:
    return bool(int(report.get("documents_dropped", 0)) or int(report.get("documents_trimmed", 0)))


def chart_special(stats: dict) -> bytes | None:
    """Bars of what near-dedup and decontamination removed; a panel with nothing found is left out
    (an all-zero bar chart only shows a meaningless axis), None when both have nothing."""
    near = {s: n for s, n in near_dup_by_source(stats).items() if n}
    decon = {n: r for n, r in decontamination_by_benchmark(stats).items() if _decon_found(r)}
    if not near and not decon:
        return None
    panels = [p for p in (("near", near), ("decon", decon)) if p[1]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.2), squeeze=False)
    for ax, (kind, data) in zip(axes[0], panels):
        if kind == "near":
            sources = [s for s in SOURCES if s in data] + sorted(set(data) - set(SOURCES))
            ax.bar(sources, [data[s] for s in sources], color=[_color(s) for s in sources])
            ax.set_title("Near-duplicates removed per source", fontsize=9)
        else:
            names = sorted(data)
            x = np.arange(len(names))
            ax.bar(x - 0.2, [int(data[n].get("documents_dropped", 0)) for n in names], 0.4, label="dropped")
            ax.bar(x + 0.2, [int(data[n].get("documents_trimmed", 0)) for n in names], 0.4, label="trimmed")
            ax.set_xticks(x, names, rotation=20)
            ax.set_title("Decontamination: documents per benchmark", fontsize=9)
            ax.legend(fontsize=7)
        ax.set_ylabel("documents")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _special_html(stats: dict) -> str:
    parts = []
    near = stats.get("near_dedup") or {}
    ran_near = near or any("near" in stage.lower() for stage in stats.get("stages") or {})
    if ran_near and not any(near_dup_by_source(stats).values()):
        parts.append("<p class=missing>No near-duplicates found: none removed.</p>")
    decon_reports = decontamination_by_benchmark(stats)
    if decon_reports and not any(_decon_found(r) for r in decon_reports.values()):
        parts.append("<p class=missing>No benchmark contamination found: no document dropped or trimmed.</p>")
    if near:
        keys = [k for k in ("clusters", "documents_in_clusters", "removed", "candidate_pairs",
                            "verified_pairs", "threshold", "bands", "rows", "ngram") if k in near]
        parts.append(_table(keys, [[near[k] for k in keys]]))
        examples = near.get("examples") or []
        if examples:
            parts.append(_table(["removed id", "source", "kept id", "kept source", "jaccard"],
                                [[e.get("id"), e.get("source"), e.get("kept_id"), e.get("kept_source"),
                                  e.get("jaccard")] for e in examples]))
    decon = decontamination_by_benchmark(stats)
    if decon:
        parts.append(_table(["benchmark", "documents dropped", "documents trimmed", "n-gram hits",
                             "characters removed", "by source"],
                            [[n, int(r.get("documents_dropped", 0)), int(r.get("documents_trimmed", 0)),
                              int(r.get("ngram_hits", 0)), int(r.get("chars_removed", 0)),
                              ", ".join(f"{k}: {v:,}" for k, v in sorted((r.get("by_source") or {}).items()))
                              or "-"] for n, r in sorted(decon.items())]))
    rows = special_counts(stats)
    if rows:
        parts.append(_table(["stage", "source", "in", "removed", "by reason"], rows))
    return "\n".join(parts)


def render_html(out_dir: str | os.PathLike, *, samples_per_source: int = 50_000) -> tuple[str, dict]:
    out = Path(out_dir)
    manifest = read_json(out / "manifest.json", missing={})
    stats = read_json(out / "stats.json", missing={})
    if not manifest and not stats:
        raise FileNotFoundError(f"{out}: no manifest.json or stats.json; run `gap-replay download` first")
    charts = {
        "tokens": chart_tokens_vs_recipe(manifest),
        "lengths": chart_length_histograms(length_samples(str(out), manifest, samples_per_source)),
        "funnel": chart_funnel(stats),
        "special": chart_special(stats),
    }
    measured = tokens_by_source_and_split(manifest)
    targets = (manifest.get("totals") or {}).get("target_tokens_by_source") or {}
    token_rows = []
    for source in [s for s in SOURCES if s in measured or s in targets]:
        t = targets.get(source) or 0
        m = measured[source]["train"]
        token_rows.append([source, m, measured[source]["validation"], t, f"{m / t:.1%}" if t else "-"])
    stages, per_source = funnel(stats)
    funnel_rows = [[source, stage, n_in, out_n, sum(d.values()), q,
                    ", ".join(f"{k}: {v:,}" for k, v in sorted(d.items())) or "-"]
                   for source, rows in per_source.items() for stage, out_n, d, q, n_in in rows]
    special = _special_html(stats)
    totals = manifest.get("totals") or {}
    recipe = manifest.get("recipe")
    recipe_name = recipe.get("name") if isinstance(recipe, dict) else recipe
    parts = [
        "<!doctype html><html><head><meta charset=utf-8><title>gap-replay report</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}"
        "td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}"
        ".missing{color:#999}",
        "</style></head><body>",
        f"<h1>gap-replay report: {html.escape(str(out.resolve().name))}</h1>",
        f"<p>Recipe <b>{html.escape(str(recipe_name))}</b>, seed {html.escape(str(manifest.get('seed')))}, "
        f"{int(totals.get('documents', 0)):,} sequences, {int(totals.get('tokens', 0)):,} tokens in "
        f"{len(manifest.get('shards', []))} shards.</p>",
        "<h2>Tokens per source against the recipe</h2>", _img(charts["tokens"], "tokens per source"),
        _table(["source", "train tokens", "validation tokens", "recipe target", "measured / target"], token_rows),
        "<h2>Document lengths</h2>",
        f"<p>Up to {samples_per_source:,} sequences per source from the first (hash-shuffled) shards; "
        "repeated documents count once per repeat.</p>",
        _img(charts["lengths"], "document length histograms"),
        "<h2>Drop-reason funnel per stage</h2>", _img(charts["funnel"], "funnel"),
        _table(["source", "stage", "in", "out", "dropped", "quarantined", "by reason"], funnel_rows),
        "<h2>Near-duplicates and decontamination</h2>",
        ((_img(charts["special"], "near-duplicates and decontamination") if charts["special"] else "")
         + special) if special
        else "<p class=missing>No near-duplicate or decontamination results in stats.json.</p>",
        "</body></html>",
    ]
    return "\n".join(parts), charts


def write_html_report(out_dir: str | os.PathLike, path: str | os.PathLike, *,
                      main_chart_png: str | os.PathLike | None = None) -> Path:
    """Write the self-contained report to `path` (atomically); optionally the main chart as a PNG."""
    page, charts = render_html(out_dir)
    with atomic_write(str(path)) as fh:
        fh.write(page.encode("utf-8"))
    if main_chart_png and charts["tokens"]:
        with atomic_write(str(main_chart_png)) as fh:
            fh.write(charts["tokens"])
    log.info("report written to %s", path)
    return Path(path)
