"""Run the same task functions on Ray: a local Ray started for the run, or a cluster joined by address.

Tasks own their outputs and completion markers (see `gap_replay.executors`), so this executor only
schedules: it submits a bounded window of tasks, collects them with `ray.wait` as they finish,
and returns results in task order. The shards a task writes are therefore byte-identical to the
local executor's.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Callable, Sequence, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

# Tasks pass paths and small summaries, never documents, so a small object store is plenty; it
# keeps a laptop run from reserving a third of RAM in /dev/shm.
LOCAL_OBJECT_STORE_BYTES = int(os.environ.get("GAP_REPLAY_RAY_OBJECT_STORE_MB", "256")) * 1024 * 1024


def _call(fn: Callable[[T], R], task: T) -> R:
    """The one remote function: any picklable callable (builtins, partials) runs as a Ray task."""
    return fn(task)


class RayExecutor:
    """`map(fn, tasks)` with one Ray task per item; `fn` must be a top-level (importable) function.

    address=None starts a private local Ray (num_cpus=workers, no dashboard, worker logs not
    forwarded, temp files in an isolated directory removed on close); "auto" or "HOST:PORT"
    joins a running cluster, whose every node must see the same storage paths (an fsspec URL or
    a shared filesystem).
    """

    def __init__(self, workers: int = 1, address: str | None = None) -> None:
        import ray

        self._ray = ray
        self.workers = max(1, workers)
        self.address = address
        self._owns_session = False
        self._temp_dir: str | None = None
        if ray.is_initialized():
            log.info("reusing the Ray session already initialised in this process")
        elif address:
            try:
                ray.init(address=address, log_to_driver=False, runtime_env=self._runtime_env())
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise RuntimeError(f"cannot join the Ray cluster at {address!r}: {exc} "
                                   "(is `ray start --head` running there?)") from exc
            self._owns_session = True
        else:
            # Short path: Ray's socket names must fit the 107-byte AF_UNIX limit.
            self._temp_dir = tempfile.mkdtemp(prefix="gapray-", dir="/tmp" if os.path.isdir("/tmp") else None)
            ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, _temp_dir=self._temp_dir,
                     runtime_env=self._runtime_env(), configure_logging=False)
            self._owns_session = True
        if address:
            cpus = int(ray.cluster_resources().get("CPU", self.workers))
            self.workers = max(self.workers, cpus)
            log.info("joined Ray cluster at %s (%d CPUs)", address, cpus)

    @staticmethod
    def _runtime_env() -> dict:
        """Make a source checkout importable on workers (PYTHONPATH=src; installs need nothing),
        and give them the run's limits (gap_replay.limits)."""
        env = {name: os.environ[name] for name in ("PYTHONPATH", "GAP_REPLAY_LIMITS") if os.environ.get(name)}
        return {"env_vars": env} if env else {}

    def map(self, fn: Callable[[T], R], tasks: Sequence[T], desc: str = "") -> list[R]:
        ray = self._ray
        tasks = list(tasks)
        if not tasks:
            return []
        # Tasks are idempotent (atomic outputs + markers), so a task lost with its node is simply rerun.
        remote_fn = ray.remote(num_cpus=1, max_retries=2, retry_exceptions=False)(_call)
        window = max(2, 2 * self.workers)  # bounded submission: memory does not grow with tasks
        results: dict[int, R] = {}
        pending: dict = {}
        next_index = 0
        with tqdm(total=len(tasks), desc=desc, unit="task", leave=False) as bar:
            while next_index < len(tasks) or pending:
                while next_index < len(tasks) and len(pending) < window:
                    pending[remote_fn.remote(fn, tasks[next_index])] = next_index
                    next_index += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        results[index] = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        for other in pending:
                            ray.cancel(other, force=True)
                        cause = exc.as_instanceof_cause()
                        raise cause from None
                    bar.update(1)
        return [results[i] for i in range(len(tasks))]

    def close(self) -> None:
        if self._owns_session and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_session = False
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
