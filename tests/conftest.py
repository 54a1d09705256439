"""Shared fixtures: run the real CLI in a subprocess, and one offline sample run per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")
# No test reaches the real Hugging Face Hub (the default recipe's tokenizer is a Hub id): a
# closed loopback port, unless a test points HF_ENDPOINT at its own fake Hub.
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_cli(*args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "gap_replay", *args], capture_output=True, text=True,
                          env=cli_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"gap-replay {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raw_guideline_records(out, tag: str) -> list[dict]:
    """Every record a guideline scrape wrote to OUT/raw/guidelines/<tag>/, in part order."""
    import gzip

    import orjson

    found = []
    for part in sorted((Path(out) / "raw" / "guidelines" / tag).glob("part-*.jsonl.gz")):
        with gzip.open(part) as fh:
            found.extend(orjson.loads(line) for line in fh)
    return found


@pytest.fixture(autouse=True)
def _forget_unreachable_hosts():
    """Each test starts with no host remembered as unreachable: the OS reuses loopback ports,
    so a port a previous test closed on purpose may be a live fixture server now."""
    from gap_replay.http import _UNREACHABLE

    _UNREACHABLE.clear()
    yield


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    """`gap-replay download --sample` once (workers 1); tests only read it."""
    out = tmp_path_factory.mktemp("sample") / "out"
    run_cli("download", "--sample", "--output", str(out), "--workers", "1")
    return out
