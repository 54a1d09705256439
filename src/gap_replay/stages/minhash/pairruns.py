"""Candidate pairs read back from sorted runs in bounded windows, and union-find over documents.

Near-duplicate candidate pairs can far outnumber documents, so the clustering never holds more
than a configured number of pairs (`limits.near_dedup_pairs_bytes`): pairs live on disk as runs
sorted by (a, b), and a window is the same (a, b) range cut out of every run. The union-find
works on int arrays of one entry per signed document, whatever the number of pairs.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np

from gap_replay import limits

PAIR_BYTES = 16  # two uint64 doc keys


def pair_bound() -> int:
    """Pairs one window may hold (at least one per run), from the run's limits."""
    return max(1, limits.current().near_dedup_pairs_bytes // PAIR_BYTES)


def _lower_bound(rows: np.ndarray, key: tuple[int, int]) -> int:
    """First row >= key in rows sorted by (a, b); reads log2(n) rows of a memory-mapped run."""
    lo, hi = 0, int(rows.shape[0])
    while lo < hi:
        mid = (lo + hi) // 2
        if (int(rows[mid, 0]), int(rows[mid, 1])) < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _cuts(runs: Sequence[np.ndarray], bound: int) -> list[list[int]]:
    """Row positions cutting every run at the same (a, b) boundaries, so that no window holds
    more than `bound` rows in total (or one row per run when `bound` is smaller than the runs).

    Each run is sampled every `bound // len(runs)` rows; between two consecutive samples of all
    runs, no run has more rows than that step, so windows are merged greedily from those slices.
    """
    sizes = [int(r.shape[0]) for r in runs]
    if sum(sizes) <= bound:
        return [[0, n] for n in sizes]
    step = max(1, bound // len(runs))
    samples = sorted({(int(r[i, 0]), int(r[i, 1])) for r, n in zip(runs, sizes) for i in range(step, n, step)})
    positions = [[0] + [_lower_bound(r, key) for key in samples] + [n] for r, n in zip(runs, sizes)]
    counts = np.diff(np.array(positions, dtype=np.int64), axis=1).sum(axis=0)
    keep = [0]
    held = 0
    for j, count in enumerate(counts.tolist()):
        if held and held + count > bound:
            keep.append(j)
            held = 0
        held += count
    keep.append(len(counts))
    return [[pos[j] for j in keep] for pos in positions]


def windows(open_runs: Callable[[], list[np.ndarray]], bound: int) -> Iterator[np.ndarray]:
    """The distinct pairs of all runs in ascending (a, b) order, one bounded window at a time.

    `open_runs` returns the runs (memory-mapped); it is called again for every window, because
    touched pages of a mapping count as resident memory and are released only with the mapping.
    """
    runs = open_runs()
    if not runs:
        return
    cuts = _cuts(runs, bound)
    del runs
    for w in range(len(cuts[0]) - 1):
        runs = open_runs()
        parts = [np.array(r[c[w]:c[w + 1]]) for r, c in zip(runs, cuts) if c[w + 1] > c[w]]
        del runs
        if parts:
            yield np.unique(np.concatenate(parts), axis=0)


class DocUnion:
    """Union-find over dense document indices; a component's root is its smallest member."""

    def __init__(self, documents: int) -> None:
        self.parent = np.arange(documents, dtype=np.int64)
        self.touched = np.zeros(documents, dtype=bool)

    def _find(self, x: np.ndarray) -> np.ndarray:
        root = self.parent[x]
        while True:
            up = self.parent[root]
            if np.array_equal(up, root):
                return root
            root = up

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        """Joins each a[i] with b[i] (vectorised; the result does not depend on the pair order)."""
        self.touched[a] = True
        self.touched[b] = True
        while a.size:
            ra, rb = self._find(a), self._find(b)
            self.parent[a], self.parent[b] = ra, rb  # path compression: a root is <= its members
            apart = ra != rb
            a, b = np.minimum(ra[apart], rb[apart]), np.maximum(ra[apart], rb[apart])
            np.minimum.at(self.parent, b, a)  # hook the larger root under the smallest partner

    def clusters(self) -> list[np.ndarray]:
        """Members (ascending) of each component of two or more, ordered by smallest member."""
        members = np.flatnonzero(self.touched)
        if not members.size:
            return []
        roots = self._find(members)
        order = np.lexsort((members, roots))
        members, roots = members[order], roots[order]
        starts = np.flatnonzero(np.concatenate(([True], roots[1:] != roots[:-1])))
        return np.split(members, starts[1:])
