"""gap_replay.lock: one run per output folder; a dead holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from conftest import cli_env, run_cli
from gap_replay.lock import EXIT_LOCKED

HOLD = """
import sys, time
from gap_replay.lock import output_lock
with output_lock(sys.argv[1], "download"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(folder) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True, env=cli_env())
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_run_in_the_same_folder_exits_75_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        for args in (["process", "--input", str(out)], ["mix", "--input", str(out)],
                     ["download", "--sample", "--output", str(out)],
                     ["ingest", "--format", "medline", str(out / ".lock"), "--output", str(out)]):
            proc = run_cli(*args, check=False, timeout=60)
            assert proc.returncode == EXIT_LOCKED, (args, proc.stderr[-1500:])
            assert f"{out} is in use by PID {holder.pid} (download) since " in proc.stderr
            assert "Traceback" not in proc.stderr
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_run_is_taken_over(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    proc = run_cli("process", "--input", str(out), check=False, timeout=60)
    assert proc.returncode != EXIT_LOCKED, proc.stderr[-1500:]
    assert time.monotonic() - started < 30
