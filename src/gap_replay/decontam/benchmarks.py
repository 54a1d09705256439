"""Read evaluation benchmarks in the shapes they are distributed in, as items of text fields.

    medqa      JSONL  {"question", "options": {"A": ...} | [...], "answer", "answer_idx", ...}
    medmcqa    JSONL  {"id", "question", "opa", "opb", "opc", "opd", "cop", "exp", ...}
    pubmedqa   JSON   {pmid: {"QUESTION", "CONTEXTS": [...], "LONG_ANSWER", ...}}  (ori_pqal.json)
               JSONL/parquet {"pubid", "question", "context": {"contexts": [...]}, "long_answer"}
    mmlu       CSV    question,A,B,C,D,answer (no header; one file per subject, e.g. anatomy_test.csv)
               parquet/JSONL {"question", "subject", "choices": [...], "answer"}

The kind is recognised from the record shape; the benchmark name is the kind unless the user
writes NAME=PATH. Each text field is indexed separately, so n-grams never span two fields.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import fsspec
import orjson

KINDS = ("medqa", "medmcqa", "pubmedqa", "mmlu")
# MMLU subjects MEDITRON evaluates as "MMLU-medical"; other subjects are still read if given.
MMLU_MEDICAL_SUBJECTS = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine",
                         "medical_genetics", "professional_medicine")


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read; the message names the file (and line)."""


@dataclass(frozen=True)
class BenchmarkItem:
    benchmark: str
    item_id: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class BenchmarkFile:
    name: str
    path: str
    kind: str


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return " ".join(_text(v) for _, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return str(value)


def kind_of_record(record: dict) -> str | None:
    keys = set(record)
    if "opa" in keys and "question" in keys:
        return "medmcqa"
    if "QUESTION" in keys or ("question" in keys and ({"context", "CONTEXTS", "long_answer"} & keys)):
        return "pubmedqa"
    if "question" in keys and "options" in keys:
        return "medqa"
    if "question" in keys and "choices" in keys:
        return "mmlu"
    return None


def _fields(kind: str, record: dict) -> tuple[str, ...]:
    if kind == "medqa":
        options = record.get("options")
        return (_text(record.get("question")), _text(options), _text(record.get("answer")))
    if kind == "medmcqa":
        return (_text(record.get("question")),
                " ".join(_text(record.get(k)) for k in ("opa", "opb", "opc", "opd")),
                _text(record.get("exp")))
    if kind == "pubmedqa":
        context = record.get("CONTEXTS", record.get("context"))
        if isinstance(context, dict):
            context = context.get("contexts", [])
        contexts = [context] if isinstance(context, str) else list(context or [])
        return (_text(record.get("QUESTION", record.get("question"))), *map(_text, contexts),
                _text(record.get("LONG_ANSWER", record.get("long_answer"))))
    if kind == "mmlu":
        return (_text(record.get("question")), _text(record.get("choices")))
    raise BenchmarkError(f"unknown benchmark kind {kind!r}")


def _item_id(kind: str, record: dict, fallback: str) -> str:
    for key in ("id", "pubid", "PMID", "qid"):
        if record.get(key) not in (None, ""):
            return str(record[key])
    return fallback


def _open_text(path: str):
    return fsspec.open(path, "rt", encoding="utf-8", compression="infer")


def _jsonl_records(path: str) -> Iterator[tuple[str, dict]]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise BenchmarkError(f"{path}:{lineno}: malformed JSON: {exc}") from None
            if not isinstance(record, dict):
                raise BenchmarkError(f"{path}:{lineno}: expected a JSON object")
            yield f"{Path(path).stem}:{lineno}", record


def _json_records(path: str) -> Iterator[tuple[str, dict]]:
    with fsspec.open(path, "rb", compression="infer") as fh:
        try:
            data = orjson.loads(fh.read())
        except orjson.JSONDecodeError as exc:
            raise BenchmarkError(f"{path}: malformed JSON: {exc}") from None
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        for key, record in data.items():  # PubMedQA ori_pqal.json: {pmid: {...}}
            yield str(key), {"id": str(key), **record}
    elif isinstance(data, list):
        for i, record in enumerate(data):
            if not isinstance(record, dict):
                raise BenchmarkError(f"{path}: item {i} is not a JSON object")
            yield f"{Path(path).stem}:{i}", record
    else:
        raise BenchmarkError(f"{path}: expected a JSON list or an object of objects")


def _parquet_records(path: str) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq

    with fsspec.open(path, "rb") as fh:
        table = pq.ParquetFile(fh)
        row = 0
        for batch in table.iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                row += 1
                yield f"{Path(path).stem}:{row}", record


def _mmlu_csv_records(path: str) -> Iterator[tuple[str, dict]]:
    with _open_text(path) as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            if lineno == 1 and [c.strip().lower() for c in row[:2]] == ["question", "a"]:
                continue  # a header some copies carry
            if len(row) != 6:
                raise BenchmarkError(f"{path}:{lineno}: expected 6 columns (question,A,B,C,D,answer), "
                                     f"got {len(row)}")
            yield f"{Path(path).stem}:{lineno}", {"question": row[0], "choices": row[1:5], "answer": row[5]}


def _records(path: str) -> Iterator[tuple[str, dict]]:
    lower = path.lower()
    if lower.endswith(".csv"):
        return _mmlu_csv_records(path)
    if lower.endswith(".parquet"):
        return _parquet_records(path)
    if lower.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst")):
        return _jsonl_records(path)
    if lower.endswith((".json", ".json.gz")):
        return _json_records(path)
    raise BenchmarkError(f"{path}: unsupported benchmark file type (use .jsonl, .json, .csv or .parquet)")


def detect_kind(path: str) -> str:
    if path.lower().endswith(".csv"):
        return "mmlu"
    for _, record in _records(path):
        kind = kind_of_record(record)
        if kind is None:
            raise BenchmarkError(f"{path}: cannot tell the benchmark from the fields {sorted(record)}; "
                                 f"expected one of {', '.join(KINDS)}")
        return kind
    raise BenchmarkError(f"{path}: no records")


def resolve(specs: list[str], base_dir: str | os.PathLike | None = None) -> list[BenchmarkFile]:
    """`PATH` or `NAME=PATH` (files or folders) -> benchmark files, sorted, kind detected.

    Relative paths are looked up in `base_dir` (the recipe's folder) first, then the cwd.
    """
    out: list[BenchmarkFile] = []
    for spec in specs:
        name, _, raw = spec.rpartition("=") if "=" in spec and "://" not in spec.split("=", 1)[0] else ("", "", spec)
        path = Path(raw).expanduser()
        if not path.is_absolute() and base_dir is not None and (Path(base_dir) / path).exists():
            path = Path(base_dir) / path
        if not path.exists():
            raise BenchmarkError(f"benchmark path not found: {raw}")
        path = Path(os.path.abspath(path))  # workers started elsewhere (Ray) resolve it the same
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            kind = detect_kind(str(file))
            out.append(BenchmarkFile(name or kind, str(file), kind))
    if not out:
        raise BenchmarkError("no benchmark files given")
    return out


def iter_items(bench: BenchmarkFile) -> Iterator[BenchmarkItem]:
    for fallback, record in _records(bench.path):
        kind = kind_of_record(record) or bench.kind
        yield BenchmarkItem(bench.name, _item_id(kind, record, fallback), _fields(kind, record))


__all__ = ["BenchmarkError", "BenchmarkFile", "BenchmarkItem", "KINDS", "MMLU_MEDICAL_SUBJECTS",
           "detect_kind", "iter_items", "resolve"]
