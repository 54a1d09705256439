"""The default executor: local worker processes (or in-process for one worker), with progress."""

from __future__ import annotations

import multiprocessing as mp
from typing import Callable, Sequence, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], desc: str = "") -> list[R]:
        if self.workers == 1 or len(tasks) <= 1:
            return [fn(t) for t in tqdm(tasks, desc=desc, unit="task", leave=False)]
        ctx = mp.get_context("spawn" if mp.get_start_method(allow_none=True) == "spawn" else "forkserver")
        with ctx.Pool(min(self.workers, len(tasks))) as pool:
            return list(tqdm(pool.imap(fn, tasks), total=len(tasks), desc=desc, unit="task",
                             leave=False))

    def close(self) -> None:
        pass
