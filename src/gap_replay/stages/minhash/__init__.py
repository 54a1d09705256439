"""MinHash-LSH near-duplicate detection in disk-based phases (map signatures, reduce buckets, cluster).

The orchestration and the filter stage live in `gap_replay.stages.near_dedup`; this package holds
the pieces: the recipe settings and keep rule (`config`), shingling and signatures (`signatures`),
and the phase task functions (`phases`).
"""
