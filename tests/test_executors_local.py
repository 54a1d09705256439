"""The local executor keeps one worker pool for a whole command, so per-process caches (models,
tokenizer) are loaded once per worker, not once per `map`."""

from __future__ import annotations

import os

import pytest

from gap_replay.executors import make_executor

_CALLS: list[int] = []  # per worker process: what a model cache would be


def _pid_and_calls(task: int) -> tuple[int, int, int]:
    _CALLS.append(task)
    return task, os.getpid(), len(_CALLS)


def _fail_on_three(task: int) -> int:
    if task == 3:
        raise ValueError("task 3 failed")
    return task


def test_one_pool_serves_every_map_until_close():
    executor = make_executor("local", 2)
    try:
        first = executor.map(_pid_and_calls, list(range(8)))
        pool = executor._pool
        second = executor.map(_pid_and_calls, list(range(8, 16)))
        assert executor._pool is pool
        assert [t for t, _, _ in first + second] == list(range(16))  # task order kept
        pids = {pid for _, pid, _ in first + second}
        assert os.getpid() not in pids and len(pids) <= 2
        assert pids <= {worker.pid for worker in pool._pool}  # one pool's workers ran both maps
        assert sum(max(n for _, p, n in first + second if p == pid) for pid in pids) == 16  # state kept
    finally:
        executor.close()
    again = make_executor("local", 2)
    try:
        third = again.map(_pid_and_calls, list(range(4)))
        assert not {pid for _, pid, _ in third} & pids  # a closed executor's workers are gone
    finally:
        again.close()
        again.close()  # idempotent


def test_a_failing_task_stops_the_pool_and_the_next_map_starts_a_new_one():
    executor = make_executor("local", 2)
    try:
        with pytest.raises(ValueError, match="task 3 failed"):
            executor.map(_fail_on_three, list(range(6)))
        assert executor.map(_fail_on_three, [0, 1, 2]) == [0, 1, 2]
    finally:
        executor.close()


def test_largest_tasks_start_first_and_results_keep_task_order():
    from gap_replay.executors import map_largest_first

    class Recording:
        workers = 1

        def __init__(self):
            self.seen = []

        def map(self, fn, tasks, desc=""):
            self.seen = list(tasks)
            return [fn(t) for t in tasks]

    executor = Recording()
    assert map_largest_first(executor, str, [10, 11, 12, 13], [5, 50, 5, 7]) == ["10", "11", "12", "13"]
    assert executor.seen == [11, 13, 10, 12]  # by size, ties in task order


_FORK_CHECK = """
import os, sys, threading
from gap_replay.executors import make_executor
from gap_replay.executors.local import start_method

def where(task):
    return task * task, os.getpid(), 'gap_replay.process' in sys.modules

import gap_replay.process  # a module the command imported: a forked worker has it already
first = start_method()
executor = make_executor("local", 2)
try:
    results = executor.map(where, list(range(6)))
finally:
    executor.close()
release = threading.Event()
thread = threading.Thread(target=release.wait)
thread.start()
second = start_method()
release.set()
thread.join()
print(first, second, [r for r, _, _ in results], os.getpid() in {p for _, p, _ in results},
      all(m for _, _, m in results))
"""


def test_workers_are_forked_from_a_single_threaded_command_and_served_otherwise(tmp_path):
    """Forking saves each worker its imports; with a second thread running, fork could
    deadlock, so the pool comes from a forkserver."""
    import subprocess
    import sys

    script = tmp_path / "fork_check.py"
    script.write_text(_FORK_CHECK)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fork", "forkserver", "[0,", "1,", "4,", "9,", "16,", "25]",
                                   "False", "True"]
