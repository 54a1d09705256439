"""Progress bars only where a person watches: on a terminal, unless told otherwise.

Every bar in the project is a tqdm bar; tqdm reads its defaults from `TQDM_*` environment
variables, so one switch here reaches every bar, in worker processes and Ray tasks too.
"""

from __future__ import annotations

import os
import sys


def configure(force: bool | None = None) -> None:
    """`force` True/False: always/never; None: only when stderr is a terminal."""
    show = sys.stderr.isatty() if force is None else force
    os.environ["TQDM_DISABLE"] = "0" if show else "1"


def enabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "0") in ("0", "", "false", "False")
