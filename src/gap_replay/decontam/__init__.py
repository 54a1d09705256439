"""Benchmark decontamination: benchmark file loaders (`benchmarks`) and the n-gram index (`index`).

The pipeline stage lives in `gap_replay.stages.decontaminate`; `gap_replay.decontaminate_clean`
runs it over OUT/clean through `process`'s driver for the command `gap-replay decontaminate`.
"""
