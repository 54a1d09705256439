"""Profile `process` on one core over a generated mixed corpus (not a test; prints numbers).

    python scripts/profile_process.py [--mb 25] [--top 25] [--no-profile] [--keep DIR]

The corpus is scripts/bench_chain.py's deterministic `MixedCorpus` (the bundled sample's real
sentences: papers 20-60 KB with citation markers and the odd "&", abstracts, a third of them in
another language unless `--non-english`, guidelines, replay), written once and cached in /tmp.
`process` runs in this process with one worker (the default recipe, near dedup included), under
cProfile unless `--no-profile`; the script prints MB/s of raw text, the disk peak of the work
folder, the language cascade's paths (calls and share of the run) and the functions with the
largest share of the run (cumulative and own time).
Use the same `--mb` before and after a change to compare.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_chain import MB, NON_ENGLISH_ABSTRACTS, MixedCorpus, write_raw  # noqa: E402

from gap_replay.executors.local import LocalExecutor  # noqa: E402
from gap_replay.process import run_process  # noqa: E402
from gap_replay.recipe import load_recipe  # noqa: E402


def corpus(mb: float, seed: int, only: str | None = None,
           non_english: float = NON_ENGLISH_ABSTRACTS) -> tuple[Path, int]:
    """The raw shards of ~`mb` MB of text (generated once, cached) and their text bytes."""
    gen = MixedCorpus(seed, abstracts_non_english=non_english)
    root = Path(tempfile.gettempdir()) / "gap-replay-profile" / f"{mb:g}mb-{gen.key()}{'-' + only if only else ''}"
    done = root / "done"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        kwargs = {"shares": {only: 1.0}} if only else {}
        summary = write_raw(root, gen, int(mb * MB), **kwargs)
        done.write_text(str(int(sum(v["text_mb"] for v in summary.values()) * MB)))
    return root, int(done.read_text())


def du(root: Path) -> int:
    return sum(os.lstat(os.path.join(d, n)).st_size for d, _, names in os.walk(root) for n in names)


class DiskPeak(threading.Thread):
    """Samples the bytes under a folder every 0.2 s and keeps the largest."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root, self.peak, self.stop = root, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.peak = max(self.peak, du(self.root))
            except FileNotFoundError:
                pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=25.0, help="MB of raw text to generate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--non-english", type=float, default=NON_ENGLISH_ABSTRACTS,
                    help="share of the abstracts in another language (default: a third)")
    ap.add_argument("--only", choices=("papers", "abstracts", "guidelines", "replay"),
                    help="generate this source only (default: the mixed shares of bench_chain.py)")
    ap.add_argument("--top", type=int, default=25, help="functions to print")
    ap.add_argument("--no-profile", action="store_true", help="time only (cProfile adds ~30%%)")
    ap.add_argument("--keep", type=Path, help="run here and keep the output (default: a temporary folder)")
    args = ap.parse_args()

    raw, text_bytes = corpus(args.mb, args.seed, args.only, args.non_english)
    out = args.keep or Path(tempfile.mkdtemp(prefix="gap-replay-profile-"))
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(raw / "raw", out / "raw")
    raw_gz = du(out / "raw")
    recipe = load_recipe(overrides={"tokenizer": {"path": "sample:tokenizer.model"}})
    disk = DiskPeak(out)
    disk.start()
    prof = None if args.no_profile else cProfile.Profile()
    start = time.perf_counter()
    if prof:
        prof.enable()
    stats = run_process(str(out), str(out), recipe, LocalExecutor(1))
    if prof:
        prof.disable()
    seconds = time.perf_counter() - start
    disk.stop.set()
    disk.join()
    docs = sum(s["out"] for s in stats["stages"]["read"].values())
    print(f"process, 1 worker: {text_bytes / MB:.1f} MB of text, {docs:,} documents in {seconds:.1f} s = "
          f"{text_bytes / MB / seconds:.2f} MB/s, {docs / seconds:,.0f} documents/s"
          f"{' (under cProfile)' if prof else ''}")
    print(f"disk: raw shards {raw_gz / MB:.1f} MB (gzip); peak of the output folder "
          f"{disk.peak / MB:.1f} MB = {disk.peak / raw_gz:.2f}x the raw shards, "
          f"{du(out / 'clean') / MB:.1f} MB in clean/, {du(out / 'work') / MB:.1f} MB left in work/")
    if prof:
        stats = pstats.Stats(prof)
        total = seconds
        rows = []
        for (file, line, name), (_cc, _nc, tt, ct, _callers) in stats.stats.items():
            rows.append((ct, tt, f"{Path(file).name}:{line}({name})"))
        language = {name: (nc, ct) for (file, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items()
                    if Path(file).name == "language.py" and name in ("detect", "english_fast_path", "_langdetect")}
        if language:
            calls, whole = language.get("detect", (0, 0.0))
            fast = language.get("english_fast_path", (0, 0.0))
            slow = language.get("_langdetect", (0, 0.0))
            print(f"language: {calls:,} documents, {100 * whole / total:.1f}% of the run; fast path tried "
                  f"{fast[0]:,} ({100 * fast[1] / total:.1f}%), langdetect {slow[0]:,} ({100 * slow[1] / total:.1f}%), "
                  f"fastText the rest ({100 * (whole - fast[1] - slow[1]) / total:.1f}%)")
        print(f"\n{'cum %':>6} {'own %':>6}  function (top {args.top} by cumulative time)")
        for ct, tt, label in sorted(rows, reverse=True)[:args.top]:
            print(f"{100 * ct / total:6.1f} {100 * tt / total:6.1f}  {label}")
        print(f"\n{'own %':>6}  function (top {args.top} by own time)")
        for ct, tt, label in sorted(rows, key=lambda r: -r[1])[:args.top]:
            print(f"{100 * tt / total:6.1f}  {label}")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
