"""Benchmark decontamination: benchmark file loaders (`benchmarks`) and the n-gram index (`index`).

The pipeline stage lives in `gap_replay.stages.decontaminate`, the command in
`gap_replay.cli.decontaminate`.
"""
