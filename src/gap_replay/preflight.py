"""Checks that run before any network request: a mistake found after days of acquisition
costs days, found here it costs seconds. Each check returns one line per problem."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from gap_replay.recipe import Recipe


def check_tokenizer(recipe: Recipe) -> list[str]:
    """The recipe's tokenizer loads and takes its extra tokens (mix needs it at the end)."""
    from gap_replay.mix import load_tokenizer
    from gap_replay.stages.tokenize import TokenizerError

    try:
        load_tokenizer(recipe)
    except TokenizerError as exc:
        return [f"tokenizer: {exc}"]
    return []


def check_output(output: str) -> list[str]:
    """OUT can be created and written (a test file is made and removed)."""
    if "://" in output:
        return []
    path = Path(output)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        return [f"output folder {output}: cannot write there ({exc.strerror or exc}); choose "
                "another --output or fix its permissions"]
    return []


def free_space(output: str) -> str:
    """Free space where OUT is, for the plan and the logs."""
    try:
        usage = shutil.disk_usage(output if os.path.exists(output) else os.path.dirname(output) or ".")
    except OSError:
        return "unknown"
    return f"{usage.free / 1e9:,.1f} GB free"


def preflight(output: str, recipe: Recipe) -> list[str]:
    return check_output(output) + check_tokenizer(recipe)
