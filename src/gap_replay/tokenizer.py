"""The tokenizer the mix uses: SentencePiece `.model` or Hugging Face `tokenizer.json`, laid out
like Megatron-LLM.

Megatron-LLM's SentencePiece wrapper (the one MEDITRON used, docs/sources.md §8) extends the base
vocabulary in this order: `<CLS> <SEP> <EOD> <MASK>`, the pad piece (`<PAD>` when the model has
none), the BOS/EOS pieces (already in Llama-2), then `--vocab_extra_ids_list` in list order.
Each token gets a new id only if the base vocabulary lacks it. For Llama-2 that gives
`<EOD>` = 32002, `[bib_ref]` = 32005 ... `[/formula]` = 32016 and 32,017 ids in all.
Text is split on exact substrings of every special token before encoding; EOD ends every
document.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterable

from gap_replay.tokenizer_source import TokenizerError, TokenizerSource, resolve

__all__ = ["EOD", "Tokenizer", "TokenizerError"]

EOD = "<EOD>"


class Tokenizer:
    """Encode/decode with the extended vocabulary; `vocab_size`, `eod_id`, `special_ids`."""

    def __init__(self, path: str | TokenizerSource, extra_tokens: Iterable[str] = (), append_eod: bool = True,
                 base_dir: str | None = None) -> None:
        """`path`: any spelling of the recipe's `tokenizer.path` (file, `sample:NAME`,
        `hf:ORG/NAME[@REV]`; relative files also beside `base_dir`) or a resolved source."""
        self.source = path if isinstance(path, TokenizerSource) else resolve(str(path), base_dir)
        self.path = self.source.path
        p = Path(self.path)
        if not p.is_file():
            raise TokenizerError(
                f"tokenizer file {self.path} not found (set tokenizer.path in the recipe to a "
                "SentencePiece .model, a tokenizer.json, sample:tokenizer.model or a Hub id "
                "like hf:meta-llama/Llama-2-7b-hf)")
        self.sha256 = hashlib.sha256(p.read_bytes()).hexdigest()
        self.append_eod = append_eod
        self.extra_tokens = list(extra_tokens)
        if p.suffix == ".json":
            self._init_hf(p)
        else:
            self._init_sentencepiece(p)
        self.eod_id = self.special_ids[EOD]
        self.extra_ids = {t: self.special_ids[t] for t in self.extra_tokens}
        self._id_to_special = {i: t for t, i in self.special_ids.items()}
        # longest first so that overlapping tokens match like Megatron's "earliest, then first"
        # One alternation, longest first: a single left-to-right scan finds every special token.
        self._special_re = re.compile("|".join(
            re.escape(t) for t in sorted(self.special_ids, key=lambda t: (-len(t), t))))

    @classmethod
    def from_manifest(cls, entry: dict, base_dir: str | None = None, path: str | None = None,
                      fallback: str | None = None) -> "Tokenizer":
        """The tokenizer a manifest's `tokenizer` entry records (its `source` at its `revision`),
        or the file `path` instead; the recorded ids must match (same vocabulary layout).
        `fallback` (the run's recipe.json `tokenizer.path`) serves manifests without `source`."""
        spec = path
        if spec is None:
            spec = entry.get("source") or fallback
            if not spec:
                raise TokenizerError(f"the manifest records only the tokenizer file name {entry.get('file')!r} "
                                     "(written before `source` was recorded); pass --tokenizer PATH")
            if spec.startswith("hf:") and entry.get("revision") and "@" not in spec:
                spec = f"{spec}@{entry['revision']}"  # the exact commit the shards were made with
        extra = sorted(entry.get("extra_tokens", {}), key=lambda t: entry["extra_tokens"][t])
        tok = cls(spec, extra, bool(entry.get("append_eod", True)), base_dir=base_dir)
        recorded = {"eod_id": entry.get("eod_id"), "base_vocab_size": entry.get("base_vocab_size"),
                    "extra_tokens": entry.get("extra_tokens", {})}
        loaded = {"eod_id": tok.eod_id, "base_vocab_size": tok.base_vocab_size, "extra_tokens": tok.extra_ids}
        if path is None and entry.get("sha256") and entry["sha256"] != tok.sha256:
            raise TokenizerError(f"tokenizer {spec} ({tok.path}) has sha256 {tok.sha256[:12]}…, the manifest "
                                 f"records {entry['sha256'][:12]}…; pass --tokenizer PATH with the file the "
                                 "shards were made with")
        if recorded != loaded:
            diff = [k for k in recorded if recorded[k] != loaded[k]]
            raise TokenizerError(f"tokenizer {spec} gives other ids than the manifest records ({', '.join(diff)}); "
                                 "it is not the tokenizer the shards were made with")
        return tok

    # --- setup ------------------------------------------------------------------------------
    def _extend(self, base_vocab: dict[str, int], pad: str | None, bos: str | None, eos: str | None) -> None:
        self.base_vocab_size = len(base_vocab)
        vocab = dict(base_vocab)
        self.special_ids: dict[str, int] = {}

        def add(token: str) -> None:
            if token not in vocab:
                vocab[token] = len(vocab)
            self.special_ids[token] = vocab[token]

        for token in ("<CLS>", "<SEP>", EOD, "<MASK>"):
            add(token)
        add(pad or "<PAD>")
        add(bos or "<BOS>")
        add(eos or "<EOS>")
        for token in self.extra_tokens:
            add(token)
        self.vocab_size = len(vocab)

    def _init_sentencepiece(self, p: Path) -> None:
        import sentencepiece as spm

        try:
            sp = spm.SentencePieceProcessor(model_file=str(p))
        except (OSError, RuntimeError) as exc:
            raise TokenizerError(f"{p}: not a SentencePiece model: {exc}") from None
        self.kind = "sentencepiece"
        self._sp = sp
        base = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}

        def piece(i: int) -> str | None:
            return sp.id_to_piece(i) if 0 <= i < sp.get_piece_size() else None

        self._extend(base, piece(sp.pad_id()), piece(sp.bos_id()), piece(sp.eos_id()))
        self._encode_plain = lambda text: sp.encode(text)
        self._decode_plain = lambda ids: sp.decode(ids)

    def _init_hf(self, p: Path) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            tok = HFTokenizer.from_file(str(p))
        except Exception as exc:
            raise TokenizerError(f"{p}: not a Hugging Face tokenizer.json: {exc}") from None
        self.kind = "huggingface"
        self._hf = tok
        base = tok.get_vocab(with_added_tokens=True)
        self._extend(base, None, None, None)
        self._encode_plain = lambda text: tok.encode(text, add_special_tokens=False).ids
        self._decode_plain = lambda ids: tok.decode(ids, skip_special_tokens=False)

    # --- use --------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Ids of `text` (special-token substrings become their ids), plus EOD if configured."""
        ids: list[int] = []
        start = 0
        for match in self._special_re.finditer(text):
            if match.start() > start:
                ids.extend(self._encode_plain(text[start:match.start()]))
            ids.append(self.special_ids[match.group()])
            start = match.end()
        if start < len(text):
            ids.extend(self._encode_plain(text[start:]))
        if self.append_eod:
            ids.append(self.eod_id)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; special ids decode to their token string."""
        parts: list[str] = []
        run: list[int] = []
        for i in ids:
            special = self._id_to_special.get(i)
            if special is None:
                run.append(i)
                continue
            if run:
                parts.append(self._decode_plain(run))
                run = []
            parts.append(special)
        if run:
            parts.append(self._decode_plain(run))
        return "".join(parts)

    def describe(self) -> dict:
        """How to load this tokenizer again (the manifest's `tokenizer`; fields are only added):
        `source` is the recipe's spelling, `revision` the Hub commit (None for a file)."""
        return {"file": Path(self.path).name, "sha256": self.sha256, "kind": self.kind,
                "base_vocab_size": self.base_vocab_size, "vocab_size": self.vocab_size,
                "eod_id": self.eod_id, "extra_tokens": self.extra_ids,
                "source": self.source.spec, "revision": self.source.revision,
                "append_eod": self.append_eod, "special_tokens": dict(self.special_ids)}
