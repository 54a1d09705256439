"""Decontamination: benchmark files in their usual shapes, planted questions caught per benchmark,
trim mode cutting only the span, the CLI over OUT/clean, and `process` running it from the recipe."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from conftest import run_cli
from gap_replay.decontam.benchmarks import BenchmarkError, iter_items, resolve
from gap_replay.document import Document
from gap_replay.executors import make_executor
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.process import run_process
from gap_replay.recipe import load_recipe
from gap_replay.sample.textgen import make_documents
from gap_replay.stages.decontaminate import Decontaminate, DecontaminationConfig

FIXTURES = Path(__file__).parent / "fixtures" / "benchmarks"
MEDQA_Q = ("A 67-year-old man with a history of hypertension and type 2 diabetes mellitus is brought to the "
           "emergency department 45 minutes after the sudden onset of weakness of his right arm and leg and "
           "difficulty speaking.")
MEDMCQA_Q = "Which vitamin is supplied from only animal source"
PUBMEDQA_CONTEXT = ("Vitamin D has immunomodulatory properties and its deficiency has been associated with "
                    "respiratory infections. We aimed to determine whether serum 25-hydroxyvitamin D "
                    "concentration at admission was associated with the severity of community-acquired "
                    "pneumonia in adults admitted to a teaching hospital.")
MMLU_Q = ("Which of the following enzymes is deficient in the most common form of congenital adrenal "
          "hyperplasia presenting with salt wasting in the newborn period?")
PREFIX = "Stroke units reduce mortality and dependency after an acute ischaemic event."
SUFFIX = "Thrombolysis decisions should follow the local pathway and imaging protocol."


def _config(**kw) -> DecontaminationConfig:
    return DecontaminationConfig(benchmarks=(str(FIXTURES),), **kw)


def test_every_benchmark_shape_is_read():
    files = resolve([str(FIXTURES)])
    kinds = {Path(f.path).name: f.kind for f in files}
    assert kinds == {"dev.jsonl": "medmcqa", "test.jsonl": "medqa", "anatomy_test.csv": "mmlu",
                     "professional_medicine_test.csv": "mmlu", "medical-test.parquet": "mmlu",
                     "ori_pqal.json": "pubmedqa", "pqa_labeled_test.jsonl": "pubmedqa"}
    items = {f.path: list(iter_items(f)) for f in files}
    counts = {Path(p).name: len(v) for p, v in items.items()}
    assert counts["ori_pqal.json"] == 2 and counts["medical-test.parquet"] == 2 and counts["dev.jsonl"] == 3
    pqal = items[str(FIXTURES / "pubmedqa" / "ori_pqal.json")][1]
    assert pqal.item_id == "16418930" and PUBMEDQA_CONTEXT in pqal.fields
    hf = items[str(FIXTURES / "pubmedqa" / "pqa_labeled_test.jsonl")][0]
    assert hf.item_id == "25429730" and len(hf.fields) == 4  # question, 2 contexts, long answer
    parquet = items[str(FIXTURES / "mmlu" / "medical-test.parquet")][1]
    assert parquet.fields[0] == MMLU_Q and "21-hydroxylase" in parquet.fields[1]
    named = resolve([f"usmle={FIXTURES / 'medqa'}"])
    assert [f.name for f in named] == ["usmle"]


def test_unreadable_benchmark_names_the_file_and_line(tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "q", "options": {"A": "x"}}\n{oops\n')
    with pytest.raises(BenchmarkError, match=r"broken.jsonl:2: malformed JSON"):
        list(iter_items(resolve([str(bad)])[0]))
    unknown = tmp_path / "other.jsonl"
    unknown.write_text('{"prompt": "x"}\n')
    with pytest.raises(BenchmarkError, match="cannot tell the benchmark"):
        resolve([str(unknown)])


def test_planted_benchmark_text_is_caught_per_benchmark():
    stage = Decontaminate(_config(mode="drop"))
    background = make_documents(5, seed=3, english_share=1.0, target_chars=900, source="papers")
    docs = background + [
        Document(id="medqa-inside", source="papers", text=f"{background[0].text}\n\n{MEDQA_Q}\n{SUFFIX}"),
        Document(id="pubmedqa-abstract", source="abstracts", text=PUBMEDQA_CONTEXT),
        Document(id="mmlu-inside", source="guidelines", text=f"{PREFIX} {MMLU_Q} {SUFFIX}"),
        # a short question (under 13 words) and a shared template phrase are not evidence
        Document(id="short", source="abstracts", text=f"{MEDMCQA_Q}? Meat and fish. {SUFFIX}"),
        Document(id="template", source="abstracts",
                 text="Which of the following is the most appropriate next step in management of sepsis?"),
    ]
    kept = [d.id for d in docs if stage.process(d) is not None]
    assert kept == [d.id for d in background] + ["short", "template"]
    report = stage.report()
    assert report["medqa"]["documents_dropped"] == 1 and report["medqa"]["by_source"] == {"papers": 1}
    assert report["medqa"]["examples"][0]["items"] == ["test:2"]
    assert report["pubmedqa"]["documents_dropped"] == 1 and report["pubmedqa"]["examples"][0]["items"] == ["16418930"]
    assert report["mmlu"]["documents_dropped"] == 1 and report["mmlu"]["by_source"] == {"guidelines": 1}
    assert report["medmcqa"]["documents_dropped"] == 0 and report["medmcqa"]["ngram_hits"] == 0
    n_medqa_ngrams = len(MEDQA_Q.split()) - 13 + 1  # every 13-gram of the planted question hits
    assert report["medqa"]["ngram_hits"] >= n_medqa_ngrams
    assert stage.stats.by_source["papers"].dropped == {"contaminated": 1}


def test_trim_mode_removes_only_the_span():
    stage = Decontaminate(_config(mode="trim"))
    doc = Document(id="d", source="guidelines", text=f"{PREFIX}\n{MEDQA_Q} {SUFFIX}", meta={"k": 1})
    out = stage.process(doc)
    assert out is not None
    assert out.text == f"{PREFIX}\n{SUFFIX}"
    assert out.meta == {"k": 1, "decontamination": {"benchmarks": ["medqa"], "chars_removed": len(MEDQA_Q)}}
    assert stage.report()["medqa"]["documents_trimmed"] == 1
    only = stage.process(Document(id="e", source="abstracts", text=PUBMEDQA_CONTEXT))
    assert only is None  # nothing left after trimming: dropped
    assert stage.report()["pubmedqa"]["documents_dropped"] == 1


def _write_clean(out: Path) -> None:
    docs = make_documents(8, seed=5, english_share=1.0, target_chars=800, source="abstracts")
    planted = Document(id="planted", source="abstracts", text=f"{PREFIX} {MEDQA_Q} {SUFFIX}")
    with ShardWriter(out / "clean" / "abstracts" / "part-00000.jsonl.gz") as w:
        for d in docs[:4] + [planted]:
            w.write(d)
    with ShardWriter(out / "clean" / "abstracts" / "part-00001.jsonl.gz") as w:
        for d in docs[4:] + [Document(id="pqa", source="abstracts", text=PUBMEDQA_CONTEXT)]:
            w.write(d)
    stats = {"stages": {"split": {"abstracts": {"in": 10, "out": 10, "dropped": {}, "quarantined": 0}}}}
    (out / "stats.json").write_bytes(orjson.dumps(stats))


def test_cli_rewrites_clean_and_updates_stats(tmp_path):
    out = tmp_path / "out"
    _write_clean(out)
    proc = run_cli("decontaminate", "--input", str(out), "--benchmarks", f"usmle={FIXTURES / 'medqa'}",
                   str(FIXTURES / "pubmedqa"), "--mode", "drop")
    assert "usmle" in proc.stdout and "pubmedqa" in proc.stdout
    kept = [d.id for p in list_shards(out / "clean") for d in iter_documents(p, Quarantine())]
    assert len(kept) == 8 and "planted" not in kept and "pqa" not in kept
    stats = orjson.loads((out / "stats.json").read_bytes())
    assert list(stats["stages"]) == ["split", "decontaminate_clean"]
    assert stats["stages"]["decontaminate_clean"]["abstracts"] == {
        "in": 10, "out": 8, "dropped": {"contaminated": 2}, "quarantined": 0}
    assert stats["decontamination"]["usmle"]["documents_dropped"] == 1
    assert stats["decontamination"]["pubmedqa"]["documents_dropped"] == 1
    assert not (out / "work").exists() or not list((out / "work").iterdir())
    # a second pass finds nothing new and keeps the chain consistent
    run_cli("decontaminate", "--input", str(out), "--benchmarks", str(FIXTURES), "--mode", "trim")
    again = orjson.loads((out / "stats.json").read_bytes())
    assert again["stages"]["decontaminate_clean"]["abstracts"] == stats["stages"]["decontaminate_clean"]["abstracts"]
    assert again["decontamination"]["medqa"]["documents_trimmed"] == 0
    bad = run_cli("decontaminate", "--input", str(out), "--benchmarks", str(tmp_path / "missing.jsonl"), check=False)
    assert bad.returncode != 0 and "missing.jsonl" in bad.stderr


def test_process_runs_decontamination_from_the_recipe(tmp_path):
    benchmarks = tmp_path / "benchmarks"
    shutil.copytree(FIXTURES / "pubmedqa", benchmarks / "pubmedqa")
    recipe = load_recipe(overrides={
        "scale": 1e-6, "tokenizer": {"path": "sample:tokenizer.model"},
        "decontamination": {"benchmarks": [str(benchmarks)], "mode": "trim"}})
    docs = make_documents(6, seed=9, english_share=1.0, target_chars=900, source="papers")
    docs[2] = Document(id=docs[2].id, source="papers", text=docs[2].text + " " + MEDQA_Q + " " + docs[3].text)
    with ShardWriter(tmp_path / "raw" / "papers" / "part-00000.jsonl.gz") as w:
        for d in docs:
            w.write(d)
    first = run_process(str(tmp_path), str(tmp_path), recipe, make_executor("local", 1))
    assert first["decontamination"]["pubmedqa"]["documents_trimmed"] == 0
    # a benchmark file added under the same recipe path is not hidden by the first run's markers
    shutil.copytree(FIXTURES / "medqa", benchmarks / "medqa")
    stats = run_process(str(tmp_path), str(tmp_path), recipe, make_executor("local", 1))
    assert stats["stages"]["decontaminate"]["papers"]["out"] == 6
    assert stats["decontamination"]["medqa"]["documents_trimmed"] == 1
    clean = {d.id: d for p in list_shards(tmp_path / "clean") for d in iter_documents(p, Quarantine())}
    assert "emergency department 45 minutes" not in clean[docs[2].id].text
    assert clean[docs[2].id].meta["decontamination"]["benchmarks"] == ["medqa"]


class _StopBeforeMove:
    """An executor that runs each task up to its marker but not the move over the clean shard,
    then stops the run: the state a SIGKILL between the two leaves behind."""

    def map(self, fn, tasks, desc=""):
        for task in tasks:
            fn(replace(task, publish=None))
        raise KeyboardInterrupt("stopped after the markers")


def test_rerun_after_a_kill_between_marker_and_move_gives_the_same_result(tmp_path):
    from gap_replay.decontaminate_clean import run_decontaminate

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for out in (reference, killed):
        _write_clean(out)
    config = DecontaminationConfig(benchmarks=(str(FIXTURES / "medqa"), str(FIXTURES / "pubmedqa")))
    expected = run_decontaminate(str(reference), config, make_executor("local", 1))
    with pytest.raises(KeyboardInterrupt):
        run_decontaminate(str(killed), config, _StopBeforeMove())
    assert list((killed / "work").rglob("staged/**/*.jsonl.gz"))  # marked, not yet moved
    assert run_decontaminate(str(killed), config, make_executor("local", 1)) == expected
    for path in sorted((reference / "clean").rglob("*.jsonl.gz")):
        assert (killed / path.relative_to(reference)).read_bytes() == path.read_bytes()
    assert orjson.loads((killed / "stats.json").read_bytes()) == orjson.loads((reference / "stats.json").read_bytes())
    assert not (killed / "work").exists() or not list((killed / "work").iterdir())
