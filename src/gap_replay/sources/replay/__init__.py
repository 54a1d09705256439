"""Replay: a deterministic sample of RedPajama-1T (or a parquet hub mirror) to a token budget.

Modules, one concern each:
  settings   the recipe's `replay:` section and human sizes (420M, 1.5B)
  urllists   the published URL lists -> data files per subset
  stream     HTTP bytes with Range resume; gzip/zstd by suffix with truncation detection
  records    raw RedPajama lines -> Documents (id, meta normalisation), quarantine of bad lines
  tokens     chars->tokens estimate (a tokenizer on a first sample, or a constant)
  tasks      one data file -> sampled documents in a part file (runs in executor workers)
  sampler    file order, first-sample probe, document rate, rounds, merge and trim to budget
  hub        parquet files (local or hf://) read with `datasets` streaming
  source     the release behind the source interface (sources/base.py): discover, fetch, extract
  acquire    `gap-replay download` entry point
  ingest     local RedPajama files for `gap-replay ingest --format redpajama` (RedPajamaFiles:
             the source interface of sources/base.py)
"""
