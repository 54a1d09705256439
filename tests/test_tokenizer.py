"""Tokenizer: Megatron-LLM vocabulary layout, special-token splitting, EOD, exact decode."""

from __future__ import annotations

import gzip

import orjson
import pytest

from gap_replay.io import Quarantine, iter_documents, list_shards
from gap_replay.recipe import load_recipe
from gap_replay.resources import sample_dir
from gap_replay.tokenizer import Tokenizer, TokenizerError

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


# --- one resolver for every spelling: file, sample:NAME, hf:ORG/NAME[@REV] -----------------------

def test_the_tokenizer_takes_the_recipe_spellings(tmp_path):
    text = "Fever [bib_ref]2[/bib_ref] in children."
    ids = Tokenizer(MODEL, EXTRA).encode(text)
    assert Tokenizer("sample:tokenizer.model", EXTRA).encode(text) == ids
    (tmp_path / "tok.model").write_bytes(open(MODEL, "rb").read())
    beside = Tokenizer("tok.model", EXTRA, base_dir=str(tmp_path))  # relative: beside the recipe
    assert beside.encode(text) == ids and beside.source.spec == "tok.model"
    with pytest.raises(TokenizerError, match="tokenizer.json, sample:tokenizer.model or a Hub id like hf:") as missing:
        Tokenizer("sample:nope.model", EXTRA)
    assert "nope.model not found" in str(missing.value)
    for bad in ("hf:llama", "hf:meta-llama/Llama-2-7b-hf@", "sample:"):
        with pytest.raises(TokenizerError, match="hf:ORG/NAME|sample:tokenizer.model"):
            Tokenizer(bad, EXTRA)


def test_a_malformed_hub_id_is_a_recipe_error():
    from gap_replay.recipe import RecipeError

    with pytest.raises(RecipeError, match=r"tokenizer.path: 'hf:llama': a Hub tokenizer is written hf:ORG/NAME"):
        load_recipe(overrides={"tokenizer": {"path": "hf:llama"}})
    assert load_recipe(overrides={"tokenizer": {"path": "hf:meta-llama/Llama-2-7b-hf@main"}})  # no network


def _tokenizer_json() -> bytes:
    from tokenizers import Tokenizer as HF, models, pre_tokenizers

    hf = HF(models.WordLevel({"<unk>": 0, "fever": 1, "in": 2, "children": 3}, unk_token="<unk>"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    return hf.to_str().encode()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The fake Hub on 127.0.0.1 serving the sample tokenizer; HF_HOME (the cache) in tmp_path."""
    from fakehub import FakeHub

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub("hf_secret") as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        model = open(MODEL, "rb").read()
        fake.add_model("meta-llama/Llama-2-7b-hf", {"tokenizer.model": model, "config.json": b"{}"}, gated=True)
        fake.add_model("org/sample", {"tokenizer.model": model, "tokenizer.json": _tokenizer_json()})
        fake.add_model("org/json-only", {"tokenizer.json": _tokenizer_json()})
        fake.add_model("org/weights-only", {"config.json": b"{}"})
        yield fake


def test_a_hub_tokenizer_is_downloaded_cached_and_recorded(hub, tmp_path):
    tok = Tokenizer("hf:org/sample", EXTRA)
    commit = hub.models["org/sample"].commit
    assert tok.kind == "sentencepiece"  # tokenizer.model first
    assert tok.path.startswith(str(tmp_path / "hf-home" / "hub")) and commit in tok.path
    assert tok.encode("Fever [bib]x[/bib]") == Tokenizer(MODEL, EXTRA).encode("Fever [bib]x[/bib]")
    described = tok.describe()
    assert described["source"] == "hf:org/sample" and described["revision"] == commit
    assert described["sha256"] == Tokenizer(MODEL, EXTRA).sha256
    assert ("GET", "/org/sample/resolve/main/tokenizer.model") in {(c.method, c.path) for c in hub.calls}
    assert not any("tokenizer.json" in c.path for c in hub.calls)
    # pinned to the commit, as decode loads what the manifest recorded
    assert Tokenizer(f"hf:org/sample@{commit}", EXTRA).source.revision == commit


def test_a_hub_repo_without_tokenizer_model_gives_its_tokenizer_json(hub):
    tok = Tokenizer("hf:org/json-only", EXTRA)
    assert tok.kind == "huggingface" and tok.decode(tok.encode("fever in children")[:-1]) == "fever in children"
    with pytest.raises(TokenizerError, match="org/weights-only has neither tokenizer.model nor tokenizer.json"):
        Tokenizer("hf:org/weights-only", EXTRA)


def test_a_gated_hub_repo_says_to_accept_the_license_and_log_in(hub, monkeypatch):
    with pytest.raises(TokenizerError) as denied:
        Tokenizer("hf:meta-llama/Llama-2-7b-hf", EXTRA)
    message = str(denied.value)
    assert "\n" not in message
    assert "accept the license at https://huggingface.co/meta-llama/Llama-2-7b-hf" in message
    assert "HF_TOKEN" in message and "hf auth login" in message
    assert [c.status for c in hub.calls if "/resolve/" in c.path] == [401]
    monkeypatch.setenv("HF_TOKEN", "hf_other")  # a token without access: 403
    with pytest.raises(TokenizerError, match="accept the license"):
        Tokenizer("hf:meta-llama/Llama-2-7b-hf", EXTRA)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")  # access granted
    assert Tokenizer("hf:meta-llama/Llama-2-7b-hf", EXTRA).vocab_size == 2017
    assert hub.calls[-1].authorization == "Bearer hf_secret"


def test_unknown_repos_and_revisions_are_one_line_errors(hub):
    with pytest.raises(TokenizerError, match=f"repository org/nothing not found at {hub.endpoint}"):
        Tokenizer("hf:org/nothing", EXTRA)
    with pytest.raises(TokenizerError, match="revision 'v9' not found in org/sample"):
        Tokenizer("hf:org/sample@v9", EXTRA)


def test_without_network_the_cached_tokenizer_is_used_and_otherwise_the_endpoint_is_named(hub, tmp_path):
    """The second load runs in a fresh process after the Hub is gone (no kept-alive connection)."""
    import subprocess
    import sys
    import time

    from conftest import cli_env

    first = Tokenizer("hf:org/sample", EXTRA)
    endpoint = hub.endpoint
    hub.__exit__(None, None, None)
    code = ("import sys\nfrom gap_replay.tokenizer import Tokenizer, TokenizerError\n"
            "try:\n    t = Tokenizer(sys.argv[1])\n    print(t.path, t.source.revision)\n"
            "except TokenizerError as exc:\n    print('ERROR', exc)\n")
    env = {**cli_env(), "HF_ENDPOINT": endpoint}
    start = time.monotonic()
    cached = subprocess.run([sys.executable, "-c", code, "hf:org/sample"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert cached.stdout.split() == [first.path, first.source.revision], cached.stderr
    missing = subprocess.run([sys.executable, "-c", code, "hf:org/json-only"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert missing.stdout.startswith("ERROR tokenizer hf:org/json-only: cannot reach the Hugging Face Hub "
                                     f"at {endpoint}"), missing.stdout + missing.stderr
    assert "not in the cache" in missing.stdout and missing.stdout.count("\n") == 1
    assert time.monotonic() - start < 30  # no retry back-off before giving up
