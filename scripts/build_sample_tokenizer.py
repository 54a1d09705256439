"""Train the small SentencePiece model the offline sample run tokenizes with.

Deterministic: the input is the bundled sample text's text (sorted, de-duplicated lines), and
training runs single-threaded with fixed settings, so the same sample gives the same model
bytes. Settings follow Llama-2's tokenizer (BPE, byte fallback, digits split, identity
normalisation, unk=0 bos=1 eos=2, no pad piece) so the Megatron-style vocabulary extension
behaves as it does with the real model. The result is committed as
src/gap_replay/sample/tokenizer.model; tests never download a tokenizer.

    python scripts/build_sample_tokenizer.py [--vocab-size 2000]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import tempfile
from pathlib import Path

import orjson
import sentencepiece as spm

SAMPLE = Path(__file__).resolve().parent.parent / "src" / "gap_replay" / "sample"


def sample_lines() -> list[str]:
    lines: set[str] = set()
    for path in sorted((SAMPLE / "text").rglob("*.jsonl.gz")):
        with gzip.open(path, "rb") as fh:
            for raw in fh:
                try:
                    text = orjson.loads(raw)["text"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
                lines.update(line.strip() for line in text.split("\n") if line.strip())
    return sorted(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab-size", type=int, default=2000)
    ap.add_argument("--output", type=Path, default=SAMPLE / "tokenizer.model")
    args = ap.parse_args()
    output = args.output.resolve()
    lines = sample_lines()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        # relative names: the model records its training input and prefix, keep them fixed
        os.chdir(tmp)
        Path("corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input="corpus.txt", model_prefix="sample", vocab_size=args.vocab_size, model_type="bpe",
            character_coverage=0.9995, byte_fallback=True, split_digits=True,
            normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, input_sentence_size=0,
            shuffle_input_sentence=False, max_sentence_length=1 << 16, minloglevel=2)
        data = Path("sample.model").read_bytes()
        os.chdir(cwd)
    output.write_bytes(data)
    print(f"{output} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")


if __name__ == "__main__":
    main()
