"""Write the binary benchmark fixture (MMLU in the hub's parquet shape) for tests/fixtures/benchmarks.

The text fixtures (MedQA/MedMCQA/PubMedQA JSONL/JSON, MMLU CSV) are plain files in the repo;
parquet is binary, so it is generated here and the result is committed. Items are written for
the tests (no benchmark data is downloaded).

    python scripts/build_benchmark_fixtures.py
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "benchmarks" / "mmlu"

ROWS = [
    {"question": "A 30-year-old woman with a history of recurrent painful oral ulcers, genital ulcers and "
                 "anterior uveitis presents with a painful red nodule on her shin. Which of the following "
                 "tests is most characteristic of the underlying disorder?",
     "subject": "clinical_knowledge",
     "choices": ["Pathergy test", "Schirmer test", "Tensilon test", "Tzanck smear"], "answer": 0},
    {"question": "Which of the following enzymes is deficient in the most common form of congenital "
                 "adrenal hyperplasia presenting with salt wasting in the newborn period?",
     "subject": "medical_genetics",
     "choices": ["11-beta-hydroxylase", "17-alpha-hydroxylase", "21-hydroxylase", "Aromatase"], "answer": 2},
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(ROWS, schema=pa.schema([
        ("question", pa.string()), ("subject", pa.string()), ("choices", pa.list_(pa.string())),
        ("answer", pa.int64())]))
    pq.write_table(table, OUT / "medical-test.parquet", compression="zstd")
    print(f"wrote {OUT / 'medical-test.parquet'}")


if __name__ == "__main__":
    main()
