"""Megatron .bin/.idx: read back with megatron-core's own IndexedDataset, compared with the shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gap_replay.formats.megatron import write_megatron
from gap_replay.formats.shards import ShardError, iter_shard_records
from opsdata import make_out

# Needs megatron-core (and torch): opt in with `pytest -m megatron` after installing the
# `megatron` extra; .ci/run does (see README "Development").
pytestmark = pytest.mark.megatron


def _indexed_dataset():
    from megatron.core.datasets import indexed_dataset

    return indexed_dataset


def _shard_sequences(out, manifest, split):
    seqs = []
    for entry in manifest["shards"]:
        if f"/{split}/" in entry["path"]:
            seqs += [r["input_ids"] for _, r in iter_shard_records(str(out / entry["path"]))]
    return seqs


@pytest.mark.parametrize("vocab_size, dtype", [(1000, np.uint16), (70000, np.int32)])
def test_megatron_readback_equals_jsonl_shards(tmp_path, vocab_size, dtype):
    out = make_out(tmp_path / "out", vocab_size=vocab_size)
    manifest = json.loads((out / "manifest.json").read_text())
    summary = write_megatron(out, manifest)
    for split in ("train", "validation"):
        expected = _shard_sequences(out, manifest, split)
        ds = _indexed_dataset().IndexedDataset(str(out / "megatron" / split), mmap=True)
        assert ds.index.dtype == dtype
        assert len(ds) == len(expected) == summary[split]["sequences"] > 0
        for i, ids in enumerate(expected):
            assert ds[i].tolist() == ids
        assert list(ds.document_indices) == list(range(len(expected) + 1))
        assert int(ds.sequence_lengths.sum()) == summary[split]["tokens"]
        # contiguous slices read the same sequences
        assert [a.tolist() for a in ds[0:len(expected)]] == expected
    assert sorted(p.name for p in (out / "megatron").iterdir()) == [
        "train.bin", "train.idx", "validation.bin", "validation.idx"]


def test_megatron_bytes_match_megatron_core_builder(tmp_path):
    """Same bytes as megatron-core's IndexedDatasetBuilder given the same sequences."""
    import torch

    out = make_out(tmp_path / "out")
    manifest = json.loads((out / "manifest.json").read_text())
    write_megatron(out, manifest)
    ref = tmp_path / "ref"
    builder = _indexed_dataset().IndexedDatasetBuilder(str(ref) + ".bin", dtype=np.uint16)
    for ids in _shard_sequences(out, manifest, "train"):
        builder.add_item(torch.tensor(ids))
        builder.end_document()
    builder.finalize(str(ref) + ".idx")
    assert (out / "megatron/train.bin").read_bytes() == (tmp_path / "ref.bin").read_bytes()
    assert (out / "megatron/train.idx").read_bytes() == (tmp_path / "ref.idx").read_bytes()


def test_megatron_is_deterministic_and_replaces_atomically(tmp_path):
    out = make_out(tmp_path / "out")
    manifest = json.loads((out / "manifest.json").read_text())
    write_megatron(out, manifest)
    first = {p.name: p.read_bytes() for p in (out / "megatron").iterdir()}
    (out / "megatron.tmp-stale").mkdir()  # what a killed run leaves
    write_megatron(out, manifest)
    assert {p.name: p.read_bytes() for p in (out / "megatron").iterdir()} == first
    assert [p.name for p in out.iterdir() if p.name.startswith("megatron")] == ["megatron"]


def test_megatron_refuses_a_shard_that_changed_after_mix(tmp_path):
    out = make_out(tmp_path / "out")
    manifest = json.loads((out / "manifest.json").read_text())
    write_megatron(out, manifest)
    before = (out / "megatron/train.idx").read_bytes()
    manifest["shards"][0]["sha256"] = "0" * 64
    with pytest.raises(ShardError, match="does not match the manifest"):
        write_megatron(out, manifest)
    assert (out / "megatron/train.idx").read_bytes() == before  # old pair kept
    assert not list(out.glob("megatron.tmp-*"))


def test_megatron_rejects_ids_beyond_the_dtype(tmp_path):
    out = make_out(tmp_path / "out", vocab_size=70000)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["tokenizer"]["vocab_size"] = 1000  # wrong: ids up to 69999 do not fit uint16
    with pytest.raises(ShardError, match=r"shard-\d+\.jsonl\.gz:\d+: token id"):
        write_megatron(out, manifest)
