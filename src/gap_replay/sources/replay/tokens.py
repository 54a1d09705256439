"""Tokens per character: measured with a real tokenizer on a first sample, or a constant.

The budget is counted in *estimated* tokens (characters x ratio) so workers never need the
tokenizer; the ratio comes from the first documents of each subset when a tokenizer is given
(SentencePiece `.model` or Hugging Face `tokenizer.json`), else from `chars_per_token`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

TokenCounter = Callable[[str], int]


def load_token_counter(path: str | Path) -> TokenCounter:
    """A function text -> number of tokens (no BOS/EOS) for a tokenizer file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    if path.suffix == ".json":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(path))
    return lambda text: len(sp.encode(text))


def tokens_per_char(texts: Iterable[str], counter: TokenCounter | None,
                    chars_per_token: float) -> float:
    """Ratio tokens/characters over `texts` with `counter`, or 1/chars_per_token without one."""
    if counter is None:
        return 1.0 / chars_per_token
    chars = tokens = 0
    for text in texts:
        chars += len(text)
        tokens += counter(text)
    return tokens / chars if chars else 1.0 / chars_per_token


def estimate_tokens(text: str, ratio: float) -> float:
    return len(text) * ratio
