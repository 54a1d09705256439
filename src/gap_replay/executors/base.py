"""The executor interface and the factory the CLI uses."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs `fn(task)` for every task; returns results in the order of `tasks`."""

    workers: int

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], desc: str = "") -> list[R]: ...

    def close(self) -> None: ...


def make_executor(kind: str = "local", workers: int = 1, address: str | None = None) -> Executor:
    if kind == "local":
        from gap_replay.executors.local import LocalExecutor

        return LocalExecutor(workers)
    if kind == "ray":
        try:
            from gap_replay.executors.ray import RayExecutor
        except ImportError as exc:  # the optional extra is missing
            raise RuntimeError("the Ray executor needs: pip install 'gap-replay[ray]'") from exc
        return RayExecutor(workers, address=address)
    raise ValueError(f"unknown executor {kind!r}: choose local or ray")


def map_largest_first(executor: Executor, fn: Callable[[T], R], tasks: Sequence[T], sizes: Sequence[int],
                      desc: str = "") -> list[R]:
    """`executor.map` with the largest tasks started first, results still in task order.

    Shards differ in size by 10x or more (a source of papers beside a site of guidelines); in
    list order the biggest may start last and leave every other worker idle at the end.
    """
    order = sorted(range(len(tasks)), key=lambda i: (-sizes[i], i))
    results = executor.map(fn, [tasks[i] for i in order], desc=desc)
    out: list = [None] * len(tasks)
    for i, result in zip(order, results):
        out[i] = result
    return out
