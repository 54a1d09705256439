"""Executors run a list of picklable tasks with a top-level function; results come back in task order.

Tasks own their completion: a task function writes its outputs atomically and records a marker,
so any executor (local processes or Ray) can rerun a task list and skip finished work.
"""

from __future__ import annotations

from gap_replay.executors.base import Executor, make_executor, map_largest_first

__all__ = ["Executor", "make_executor", "map_largest_first"]
