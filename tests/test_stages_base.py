"""The Stage contract (stages/base.py): every step `process` runs is a class in `process.STEPS`
that configures itself from the recipe, and `process` asks the contract instead of probing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gap_replay.cli.core import load_run_config, resolve_recipe
from gap_replay.document import Document
from gap_replay.process import STEPS, build_steps, segments
from gap_replay.recipe import load_recipe, recipe_from_dict
from gap_replay.stages.base import Pipeline, Stage
from gap_replay.stages.global_step import GlobalStep
from gap_replay.stages.upsample import Upsample

SRC = Path(__file__).resolve().parent.parent / "src" / "gap_replay"
# the step order stats.json and the sample's shards were made with
EXPECTED = ["clean", "filter", "dedup", "near_dedup", "upsample", "split"]


def sample_recipe():
    return resolve_recipe(None, load_run_config(None, sample=True), None)


def test_every_step_class_is_a_stage_or_a_global_step_with_its_own_from_recipe():
    for cls in STEPS:
        assert issubclass(cls, (Stage, GlobalStep)), cls
        assert "from_recipe" in vars(cls), f"{cls.__name__} inherits from_recipe"


@pytest.mark.parametrize("recipe", [load_recipe, sample_recipe], ids=["default", "sample"])
def test_build_steps_gives_the_same_steps_in_the_same_order(recipe):
    steps = build_steps(recipe())
    assert [s.name for s in steps] == EXPECTED
    segs, globals_ = segments(steps)
    assert [[s.name for s in seg] for seg in segs] == [["clean", "filter"], [], ["upsample", "split"]]
    assert [g.name for g in globals_] == ["dedup", "near_dedup"]
    # nothing here reads files besides the documents; plain stages have no detail by default
    assert [s.input_fingerprint() for s in steps] == [None] * len(steps)
    split = steps[-1]
    assert split.report() == {} and split.changes() == {}


def test_the_recipe_turns_steps_off_and_decontamination_on(tmp_path):
    data = load_recipe().data
    bench = tmp_path / "bench.jsonl"
    bench.write_text('{"question": "Which drug treats the fever?", "options": {"A": "aspirin"}}\n')
    data = {**data, "near_dedup": {**data["near_dedup"], "enabled": False},
            "dedup": {"exact": {"by_id": False, "by_content": False}},
            "decontamination": {"benchmarks": [str(bench)]}}
    data["sources"] = {**data["sources"], "papers": {k: v for k, v in data["sources"]["papers"].items()
                                                     if k != "upsampling"}}
    steps = build_steps(recipe_from_dict(data))
    assert [s.name for s in steps] == ["clean", "filter", "decontaminate", "split"]
    assert isinstance(steps[2].input_fingerprint(), str)  # the benchmark file's identity


def test_upsampling_is_read_from_every_source_that_has_it():
    data = load_recipe().data
    papers = data["sources"]["papers"]["upsampling"]
    data = {**data, "sources": {**data["sources"],
                                "abstracts": {**data["sources"]["abstracts"], "upsampling": papers}}}
    stage = Upsample.from_recipe(recipe_from_dict(data))
    assert sorted(stage.by_source) == ["abstracts", "papers"]
    review = Document(id="a1", source="abstracts", text="t", meta={"publication_types": ["Review"]})
    assert stage.process(review).meta["quality_weight"] == 1.5
    other = Document(id="g1", source="guidelines", text="t", meta={"publication_types": ["Review"]})
    assert "quality_weight" not in stage.process(other).meta


def test_process_and_stages_do_not_probe_the_contract():
    files = [SRC / "process.py", *sorted((SRC / "stages").rglob("*.py"))]
    probing = [f"{path.relative_to(SRC)}:{n}" for path in files
               for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if re.search(r"\bhasattr\(", line)]
    assert probing == []


def _doc(i: int, source: str = "abstracts") -> Document:
    return Document(id=f"d{i}", source=source, text=f"text {i}", meta={"k": i})


class _DropOdd(Stage):
    name = "drop_odd"

    def process(self, doc):
        if int(doc.id[1:]) % 2:
            self.drop(doc, "odd")
            return None
        return doc


def test_pipeline_counts_reconcile():
    pipe = Pipeline([_DropOdd()])
    out = list(pipe.run(_doc(i) for i in range(11)))
    assert len(out) == 6
    stats = pipe.stats()["drop_odd"]["abstracts"]
    assert stats == {"in": 11, "out": 6, "dropped": {"odd": 5}, "quarantined": 0}
