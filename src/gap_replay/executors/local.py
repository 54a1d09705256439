"""The default executor: local worker processes (or in-process for one worker), with progress.

One pool serves every `map` of a command and is closed by `close()`: `process` maps about six
times (segments, reduces), and a pool per map would start the workers again each time, each
re-importing the stages and reloading its models (fastText, langdetect profiles, the
tokenizer), which cost more than the second worker gained on a small corpus. Workers are forked
when that is safe (this process runs a single thread), so they start with every module the
command already imported instead of importing them again (~0.9 s a worker); otherwise they come
from a forkserver, as forking a process with threads can deadlock. Models are cached per
process, so they stay loaded from one map to the next. Results come back in task order, and
a task's outputs depend only on the task, so the worker count never changes the bytes.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from typing import Callable, Sequence, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def start_method() -> str:
    """`spawn` if the program chose it; else `fork` while this process has one thread (workers
    start instantly with the parent's imports), `forkserver` once it has more."""
    if mp.get_start_method(allow_none=True) == "spawn":
        return "spawn"
    if "fork" in mp.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "forkserver"


class LocalExecutor:
    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            self._pool = mp.get_context(start_method()).Pool(self.workers)
        return self._pool

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], desc: str = "") -> list[R]:
        if self.workers == 1 or len(tasks) <= 1:
            return [fn(t) for t in tqdm(tasks, desc=desc, unit="task", leave=False)]
        pool = self._get_pool()
        try:
            return list(tqdm(pool.imap(fn, tasks), total=len(tasks), desc=desc, unit="task", leave=False))
        except BaseException:  # a failed task or Ctrl-C: stop the rest now (tasks rerun safely)
            self._pool = None
            pool.terminate()
            pool.join()
            raise

    def close(self) -> None:
        """Stop the workers (idempotent); a later `map` starts a new pool."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()
            pool.join()

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
