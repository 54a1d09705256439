"""Tokenizer: Megatron-LLM vocabulary layout, special-token splitting, EOD, exact decode."""

from __future__ import annotations

import gzip

import orjson
import pytest

from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.recipe import load_recipe
from gap_replay.resources import sample_dir
from gap_replay.stages.tokenize import Tokenizer, TokenizerError

EXTRA = load_recipe().tokenizer["extra_tokens"]
MODEL = str(sample_dir() / "tokenizer.model")


def test_extra_tokens_follow_the_base_vocabulary_in_the_issue_order():
    assert EXTRA == ["[bib_ref]", "[/bib_ref]", "[fig_ref]", "[/fig_ref]", "[bib]", "[/bib]",
                     "[fig]", "[/fig]", "[table]", "[/table]", "[formula]", "[/formula]"]
    tok = Tokenizer(MODEL, EXTRA)
    base = tok.base_vocab_size
    # Megatron-LLM: <CLS> <SEP> <EOD> <MASK> <PAD> are new ids (the model has <s>, </s>), then the list
    assert [tok.special_ids[t] for t in ("<CLS>", "<SEP>", "<EOD>", "<MASK>", "<PAD>")] == list(range(base, base + 5))
    assert [tok.extra_ids[t] for t in EXTRA] == list(range(base + 5, base + 17))
    assert tok.vocab_size == base + 17 and tok.eod_id == base + 2  # Llama-2: 32017 and 32002


def test_special_substrings_become_single_ids_and_eod_ends_every_document():
    tok = Tokenizer(MODEL, EXTRA)
    text = "As shown by [bib_ref]Smith[/bib_ref] in [fig_ref]Fig. 2[/fig_ref]: [formula]x[/formula]"
    ids = tok.encode(text)
    assert ids[-1] == tok.eod_id and ids.count(tok.eod_id) == 1
    for token in ("[bib_ref]", "[/bib_ref]", "[fig_ref]", "[formula]", "[/formula]"):
        assert ids.count(tok.extra_ids[token]) == 1
    assert tok.decode(ids[:-1]) == text
    assert Tokenizer(MODEL, EXTRA, append_eod=False).encode(text) == ids[:-1]


def test_huggingface_tokenizer_json_gets_the_same_layout(tmp_path):
    from tokenizers import Tokenizer as HF, models, pre_tokenizers, trainers, decoders

    hf = HF(models.BPE(unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    texts = [orjson.loads(line)["text"] for p in sorted((sample_dir() / "text").rglob("*.jsonl.gz"))
             for line in gzip.open(p) if line.startswith(b"{") and line.rstrip().endswith(b"}")]
    hf.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    tok = Tokenizer(str(path), EXTRA)
    # no pad/bos/eos in this model: <PAD> <BOS> <EOS> are added too, then the extra tokens last
    assert tok.kind == "huggingface"
    assert [tok.extra_ids[t] for t in EXTRA] == list(range(tok.vocab_size - 12, tok.vocab_size))
    assert tok.vocab_size == tok.base_vocab_size + 7 + 12
    text = "Plague [bib_ref]1[/bib_ref] in marmots — 78 cases."
    assert tok.decode(tok.encode(text)[:-1]) == text


def test_missing_or_bad_tokenizer_files_are_clear_errors(tmp_path):
    with pytest.raises(TokenizerError, match="not found"):
        Tokenizer(str(tmp_path / "nope.model"), EXTRA)
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="not a SentencePiece model"):
        Tokenizer(str(bad), EXTRA)


def test_shard_input_ids_decode_back_to_the_cleaned_text(sample_run):
    tok = Tokenizer(MODEL, EXTRA)
    clean = {}
    for path in list_shards(sample_run / "clean"):
        for doc in iter_documents(path, Quarantine()):
            clean[doc.id] = doc.text
    rows = 0
    for path in sorted((sample_run / "shards").rglob("*.jsonl.gz")):
        for line in gzip.open(path):
            row = orjson.loads(line)
            assert set(row) == {"id", "source", "split", "n_tokens", "input_ids"}
            assert row["input_ids"][-1] == tok.eod_id and row["n_tokens"] == len(row["input_ids"])
            assert tok.decode(row["input_ids"][:-1]) == clean[row["id"]]
            rows += 1
    assert rows > 10
