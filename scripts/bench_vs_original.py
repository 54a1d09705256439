#!/usr/bin/env python
"""gap-replay `ingest` + `process` against MEDITRON's original `process_abstracts` and
`process_s2orc` (gap-replay/pubmed/process.py in github.com/epfLLM/meditron), end to end, on the
same generated input and machine.

    python scripts/bench_vs_original.py --original /tmp/meditron-orig [--abstracts 3000] [--s2orc 2000]

`--original` is a folder holding the original's process.py and load.py (fetched, never part of
this repository). Its imports (langdetect, numpy, tqdm, jsonlines, requests) must be importable by
`--original-python` (default: this interpreter).

Inputs, from the real samples in tests/fixtures/pubmed, made distinct per row:
* abstracts: S2 abstracts rows, sentences of the six English sample abstracts recombined per
  row, a share in other languages (`--non-english`: the four non-English samples and four short
  texts), 2% repeated corpus ids. The original reads them after its
  own load step (abstract renamed `text`), which is not timed.
* S2ORC: the 2023 S2ORC sample paper (the format the original parses), the digits of its text
  rotated per row so rows differ while every annotation offset stays valid.

The same work on both sides: id dedup, language, cleaning. gap-replay's recipe override turns
content and near dedup off (the original has neither). gap-replay is timed as the two CLI
commands (interpreter start-up included); the original as its function call only (its import and
load step excluded), which favours the original.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "pubmed"
ABSTRACTS = FIX / "s2_abstracts" / "abstracts-sample.lines1-10.jsonl"
S2ORC = FIX / "s2orc" / "s2orc-sample.line3.jsonl"

# Short non-English abstracts (written for this benchmark) for the language filter to drop.
OTHER_LANGUAGES = [
    "Die Studie untersucht die Wirkung einer frühen Behandlung bei Patienten mit chronischer "
    "Herzinsuffizienz. Die Ergebnisse zeigen eine deutliche Verbesserung der Lebensqualität nach "
    "sechs Monaten, während die Sterblichkeit unverändert blieb.",
    "Cette étude évalue l'efficacité d'un traitement précoce chez les patients atteints de diabète "
    "de type 2. Les résultats montrent une baisse significative de l'hémoglobine glyquée après un "
    "an de suivi, sans effet indésirable grave.",
    "Este estudio analiza la relación entre la actividad física y la presión arterial en adultos "
    "mayores. Los participantes que caminaban a diario presentaron valores más bajos y menos "
    "ingresos hospitalarios durante el seguimiento.",
    "Questo studio descrive l'andamento delle infezioni ospedaliere in un reparto di terapia "
    "intensiva. L'introduzione di un protocollo di igiene delle mani ha ridotto i casi del "
    "quaranta per cento in un anno.",
]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s) > 20]


def write_abstracts(n: int, non_english: float, seed: int, gr_path: Path, orig_path: Path) -> dict:
    """n S2 abstracts rows for `ingest`, and the same rows as the original's load step leaves them."""
    rng = random.Random(seed)
    from langdetect import DetectorFactory, detect

    DetectorFactory.seed = 0
    samples = [json.loads(line) for line in ABSTRACTS.open()]
    english = [row for row in samples if detect(row["abstract"]) == "en"]
    # English rows recombine the English samples' sentences; the others are the real non-English
    # samples (Chinese, Spanish, Turkish) or the short texts above, whole.
    pool = [s for row in english for s in _sentences(row["abstract"])]
    others = OTHER_LANGUAGES + [row["abstract"] for row in samples if row not in english]
    counts = {"rows": n, "non_english": 0, "repeated_ids": 0}
    with gr_path.open("w") as gr, orig_path.open("w") as orig:
        for i in range(n):
            row = json.loads(json.dumps(samples[i % len(samples)]))
            corpusid = 900_000_000 + i
            if i and rng.random() < 0.02:
                corpusid = 900_000_000 + rng.randrange(i)
                counts["repeated_ids"] += 1
            if rng.random() < non_english:
                text = rng.choice(others)
                counts["non_english"] += 1
            else:
                text = " ".join(rng.sample(pool, rng.randint(4, 9)))
            row["corpusid"] = corpusid
            row["abstract"] = text
            row["openaccessinfo"]["externalids"]["PubMed"] = str(30_000_000 + corpusid % 10_000_000)
            gr.write(json.dumps(row) + "\n")
            loaded = dict(row)
            loaded["text"] = loaded.pop("abstract")
            orig.write(json.dumps(loaded) + "\n")
    return counts


def write_s2orc(n: int, path: Path) -> dict:
    """n S2ORC rows: the sample paper, digits rotated per row (offsets unchanged), distinct ids."""
    base = json.loads(S2ORC.read_text().splitlines()[0])
    text = base["content"]["text"]
    with path.open("w") as out:
        for i in range(n):
            shift = i % 10
            table = str.maketrans("0123456789", "".join(str((d + shift) % 10) for d in range(10)))
            row = json.loads(json.dumps(base))
            row["corpusid"] = 800_000_000 + i
            row["externalids"]["pubmed"] = str(20_000_000 + i)
            row["content"]["text"] = text.translate(table)
            out.write(json.dumps(row) + "\n")
    return {"rows": n, "mb": round(path.stat().st_size / 1e6, 1)}


def write_recipe(work: Path) -> Path:
    """The default recipe with content and near dedup off (the original has neither)."""
    recipe = yaml.safe_load((ROOT / "gap_replay" / "recipe.yaml").read_text())
    recipe["dedup"]["exact"]["by_content"] = False
    recipe["near_dedup"]["enabled"] = False
    recipe["tokenizer"]["path"] = str(ROOT / "src" / "gap_replay" / "sample" / "tokenizer.model")
    approved = recipe["sources"]["papers"]["upsampling"]["approved_journals"]
    approved["file"] = str(ROOT / "gap_replay" / approved["file"])
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run_gap_replay(fmt: str, source: str, inp: Path, recipe: Path, out: Path) -> dict:
    """`gap-replay ingest` then `process` (one worker) as subprocesses; wall seconds of each."""
    exe = shutil.which("gap-replay", path=str(Path(sys.executable).parent)) or "gap-replay"
    shutil.rmtree(out, ignore_errors=True)
    times = {}
    for name, cmd in (("ingest", [exe, "ingest", "--format", fmt, str(inp), "--output", str(out), "--all-records"]),
                      ("process", [exe, "process", "--input", str(out), "--recipe", str(recipe),
                                   "--sources", source, "--workers", "1"])):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        times[name] = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    times["kept"] = _kept(out / "clean" / source)
    return times


def _kept(folder: Path) -> int:
    import gzip

    count = 0
    for path in folder.rglob("*.jsonl*"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            count += sum(1 for _ in f)
    for path in folder.rglob("*.zst"):
        import zstandard

        with zstandard.open(path, "rt") as f:
            count += sum(1 for _ in f)
    return count


ORIGINAL_RUNNER = """
import io, json, sys, time, contextlib
sys.path.insert(0, sys.argv[1])
import process
fn = getattr(process, sys.argv[2])
start = time.perf_counter()
note = ""
try:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        fn(sys.argv[3], sys.argv[4])
except UnboundLocalError as exc:  # process_abstracts' closing summary reads `skipped`, never set
    note = f"ended with its own UnboundLocalError after writing its output: {exc}"
print(json.dumps({"seconds": time.perf_counter() - start, "note": note}))
"""


def run_original(python: str, original: Path, function: str, inp: Path, out: Path) -> dict:
    """The original function in a fresh interpreter; the call's seconds and the process wall."""
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run([python, "-c", ORIGINAL_RUNNER, str(original), function, str(inp), str(out)],
                          capture_output=True, text=True, cwd=original)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{original}/process.py {function} failed: {done.stderr.strip()[-800:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(wall=wall, kept=sum(1 for _ in out.open()))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--original", type=Path, required=True, help="folder with the original process.py, load.py")
    ap.add_argument("--original-python", default=sys.executable, help="interpreter with the original's imports")
    ap.add_argument("--abstracts", type=int, default=3000, help="abstract rows (0: skip)")
    ap.add_argument("--s2orc", type=int, default=2000, help="S2ORC rows (0: skip)")
    ap.add_argument("--non-english", type=float, default=0.1, help="share of abstracts in other languages")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one, removed)")
    args = ap.parse_args()
    if not (args.original / "process.py").is_file():
        raise SystemExit(f"{args.original}/process.py: not found; fetch github.com/epfLLM/meditron and pass "
                         "its gap-replay/pubmed folder as --original")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-vs-original-"))
    work.mkdir(parents=True, exist_ok=True)
    recipe = write_recipe(work)
    results = []
    if args.abstracts:
        counts = write_abstracts(args.abstracts, args.non_english, args.seed, work / "abstracts-s2.jsonl",
                                 work / "abstracts-loaded.jsonl")
        print(f"abstracts: {counts}")
        ours = run_gap_replay("s2-abstracts", "abstracts", work / "abstracts-s2.jsonl", recipe, work / "out-abstracts")
        theirs = run_original(args.original_python, args.original, "process_abstracts",
                              work / "abstracts-loaded.jsonl", work / "abstracts-original.jsonl")
        results.append(("abstracts", args.abstracts, ours, theirs, 10))
    if args.s2orc:
        counts = write_s2orc(args.s2orc, work / "s2orc.jsonl")
        print(f"s2orc: {counts}")
        ours = run_gap_replay("s2orc", "papers", work / "s2orc.jsonl", recipe, work / "out-s2orc")
        theirs = run_original(args.original_python, args.original, "process_s2orc",
                              work / "s2orc.jsonl", work / "s2orc-original.jsonl")
        results.append(("s2orc", args.s2orc, ours, theirs, 5))

    print(f"\n{'input':<10} {'rows':>6} {'ingest s':>9} {'process s':>10} {'gap-replay docs/s':>18} "
          f"{'original s':>11} {'original docs/s':>16} {'ratio':>7} {'target':>7}  kept (ours/original)")
    for name, rows, ours, theirs, target in results:
        total = ours["ingest"] + ours["process"]
        ratio = theirs["seconds"] / total
        print(f"{name:<10} {rows:>6} {ours['ingest']:>9.1f} {ours['process']:>10.1f} {rows / total:>18,.0f} "
              f"{theirs['seconds']:>11.1f} {rows / theirs['seconds']:>16,.0f} {ratio:>6.2f}x {target:>6}x  "
              f"{ours['kept']}/{theirs['kept']}")
        if theirs["note"]:
            print(f"{'':<10} original {name}: {theirs['note']}")
    print(f"\n(docs/s = input rows / seconds; gap-replay = wall of `ingest` + `process --workers 1` as commands, "
          f"the original = its function call only; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
