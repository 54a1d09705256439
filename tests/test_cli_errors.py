"""Every command driven into an output folder it cannot write and into a closed port ends in one
`Error:` line naming the path or URL, exit 1, and no traceback unless -v (issue 14, parts 2 and 4).

We run as root, so chmod does not block writes: the unwritable folder is a path below a regular
file (`<tmp>/afile/out`), or an output whose state.sqlite / work/ is in the way. The closed port is
a socket bound on 127.0.0.1, closed before the command runs.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gap_replay.cli.guidelines import cli as guidelines_cli
from gap_replay.cli.main import cli
from gap_replay.errors import describe
from conftest import closed_port
from opsdata import make_out

HERE = Path(__file__).resolve().parent
SRC = str(HERE.parent / "src")
SAMPLE_CONFIG = str(HERE.parent / "configs" / "sample.yaml")
MEDQA = str(HERE / "fixtures" / "benchmarks" / "medqa")
SAMPLE_TOKENIZER = {"tokenizer": {"path": "sample:tokenizer.model"}}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """A tiny finished OUT (clean/, stats.json, manifest.json) built without a sample run."""
    return make_out(tmp_path_factory.mktemp("errors") / "out")


@pytest.fixture
def blocked(tmp_path) -> Path:
    """An output folder nobody can create, not even root: its parent is a regular file."""
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile" / "out"


@pytest.fixture
def closed_url() -> str:
    return f"http://127.0.0.1:{closed_port()}"


def run(*args: str, module: str = "gap_replay", env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "S2_"))}
    full_env.update({"PYTHONPATH": os.pathsep.join([SRC, str(HERE)]), "HF_HUB_DISABLE_TELEMETRY": "1",
                     **(env or {})})
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def invoke(group, *args: str, env: dict | None = None):
    result = CliRunner().invoke(group, list(args), env=env)
    # an exception click did not handle would be result.exception itself (a traceback for users)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        (result.exception, result.output)
    return result.exit_code, result.output


def cron_config(tmp_path: Path, output: Path, base_url: str) -> str:
    config = tmp_path / "cron.yaml"
    config.write_text(yaml.safe_dump({"output": str(output), "sources": ["guidelines"], "recipe": "default",
                                      "base_url": base_url, "recipe_overrides": SAMPLE_TOKENIZER}))
    return str(config)


def assert_one_error(code: int, output: str, *names: str, exit_code: int = 1) -> None:
    """Exit `exit_code`, no traceback, exactly one `Error:` line, which (with the lines right
    under it, where a preflight lists its problems) names every one of `names`."""
    assert code == exit_code, output
    assert "Traceback" not in output, output
    lines = output.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    assert len(errors) == 1, output
    message = "\n".join(lines[errors[0]:errors[0] + 3])
    for name in names:
        assert name in message, (name, output)


# --- an output folder that cannot be written ---------------------------------------------------

def test_download_into_a_blocked_folder(blocked):
    assert_one_error(*invoke(cli, "download", "--sample", "--output", str(blocked)), str(blocked))


@pytest.mark.parametrize("command", ["process", "mix"])
def test_process_and_mix_into_a_blocked_folder(out, blocked, command):
    code, output = invoke(cli, command, "--input", str(out), "--output", str(blocked))
    assert_one_error(code, output, str(blocked.parent))


def test_stats_html_into_a_blocked_folder(out, blocked):
    code, output = invoke(cli, "stats", str(out), "--html", str(blocked / "report.html"))
    assert_one_error(code, output, str(blocked.parent))


def test_push_dry_run_into_a_blocked_folder(out, blocked):
    code, output = invoke(cli, "push", str(out), "--repo-id", "me/gap", "--dry-run", str(blocked))
    assert_one_error(code, output, str(blocked.parent))


@pytest.mark.parametrize("args", [
    ["pubmed", "download", "--dataset", "papers"],
    ["pubmed", "fetch-oa"],
    ["pubmed", "fetch-baseline"],
    ["replay", "sample", "--target-tokens", "1000"],
], ids=lambda a: "-".join(a[:2]))
def test_fetchers_into_a_blocked_folder(blocked, args):
    code, output = invoke(cli, *args, "--output", str(blocked), env={"S2_API_KEY": "k"})
    assert_one_error(code, output, str(blocked))


def test_ingest_into_a_blocked_folder(blocked, tmp_path):
    article = tmp_path / "a.xml"
    article.write_text("<article/>")
    code, output = invoke(cli, "ingest", "--format", "jats", str(article), "--output", str(blocked))
    assert_one_error(code, output, str(blocked))


def test_decontaminate_with_work_folder_in_the_way(out, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "work").write_text("a file where decontaminate needs its work folder")
    res = run("decontaminate", "--input", str(copy), "--benchmarks", MEDQA)
    assert_one_error(res.returncode, res.stdout + res.stderr, str(copy / "work"))
    assert len(res.stderr.splitlines()) == 1, res.stderr  # no progress bar either (not a terminal)


def test_guidelines_scrape_into_a_blocked_folder(blocked):
    code, output = invoke(guidelines_cli, "scrape", "--source", "who", "--output", str(blocked))
    assert_one_error(code, output, str(blocked))


def test_unopenable_state_stops_the_scrape_once_not_once_per_site(tmp_path, closed_url):
    """It was one traceback per site (365 lines ending in `unable to open database file`)."""
    (tmp_path / "state.sqlite").mkdir()
    res = run("scrape", "--all", "--output", str(tmp_path), "--base-url", closed_url,
              module="gap_replay.cli.guidelines")
    output = res.stdout + res.stderr
    assert_one_error(res.returncode, output, str(tmp_path / "state.sqlite"))
    assert len(res.stderr.splitlines()) <= 2, res.stderr  # the --base-url warning and the error
    code, output = invoke(guidelines_cli, "list", "--output", str(tmp_path))
    assert_one_error(code, output, "state.sqlite")


def test_download_with_unopenable_state_is_one_line(tmp_path):
    (tmp_path / "state.sqlite").mkdir()
    res = run("download", "--sample", "--output", str(tmp_path))
    assert_one_error(res.returncode, res.stdout + res.stderr, str(tmp_path / "state.sqlite"))
    assert len(res.stderr.splitlines()) == 1, res.stderr


def test_refresh_into_a_blocked_folder(tmp_path, blocked, closed_url):
    res = run("refresh", "--config", cron_config(tmp_path, blocked, closed_url))
    assert res.returncode == 1 and "Traceback" not in res.stdout + res.stderr, res.stderr
    failed = [line for line in res.stderr.splitlines() if "refresh failed" in line]
    assert len(failed) == 1 and str(blocked.parent) in failed[0], res.stderr


def test_stats_on_a_damaged_stats_json(out, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "stats.json").write_text("{cut off")
    assert_one_error(*invoke(cli, "stats", str(copy)), str(copy / "stats.json"))


# --- a closed port -----------------------------------------------------------------------------

def test_download_against_a_closed_port(tmp_path, closed_url):
    code, output = invoke(cli, "download", "--config", SAMPLE_CONFIG, "--sources", "guidelines",
                          "--output", str(tmp_path / "out"), "--base-url", closed_url)
    assert_one_error(code, output, closed_url.split("//")[1])


def test_push_against_a_closed_port(out, tmp_path, closed_url):
    """It was an 84-line ConnectError traceback."""
    res = run("push", str(out), "--repo-id", "me/gap",
              env={"HF_ENDPOINT": closed_url, "HF_TOKEN": "hf_test", "HF_HOME": str(tmp_path)})
    assert_one_error(res.returncode, res.stdout + res.stderr, closed_url)
    assert len(res.stderr.splitlines()) == 1, res.stderr


@pytest.mark.parametrize("args", [
    ["pubmed", "download", "--dataset", "papers", "--base-url"],
    ["pubmed", "fetch-oa", "--endpoint-url"],
    ["pubmed", "fetch-baseline", "--limit", "1", "--base-url"],
    ["replay", "sample", "--target-tokens", "1000", "--base-url"],
], ids=lambda a: "-".join(a[:2]))
def test_fetchers_against_a_closed_port(tmp_path, closed_url, args):
    code, output = invoke(cli, *args, closed_url, "--output", str(tmp_path / "out"), env={"S2_API_KEY": "k"})
    assert_one_error(code, output, closed_url.split("//")[1])


def test_guidelines_scrape_that_fetched_nothing_fails_and_names_the_source(tmp_path, closed_url):
    args = ["scrape", "--source", "who", "--output", str(tmp_path), "--base-url", closed_url]
    code, output = invoke(guidelines_cli, *args)
    assert code == 1 and "Traceback" not in output, output
    assert any(line.startswith("BROKEN: who: ") and closed_url.split("//")[1] in line
               for line in output.splitlines()), output
    code, output = invoke(guidelines_cli, *args, "--allow-partial")
    assert code == 0 and any(line.startswith("warning: who: ") for line in output.splitlines()), output


def test_refresh_against_a_closed_port(tmp_path, closed_url):
    res = run("refresh", "--config", cron_config(tmp_path, tmp_path / "root", closed_url))
    assert res.returncode == 1 and "Traceback" not in res.stdout + res.stderr, res.stderr
    lines = res.stderr.splitlines()
    assert all("refresh failed" in line for line in lines), res.stderr  # one line per failed site
    assert len(lines) > 1 and all(closed_url.split("//")[1] in line for line in lines), res.stderr


# --- -v, usage, and the mapping itself ---------------------------------------------------------

def test_verbose_shows_the_traceback(out, blocked):
    quiet = run("process", "--input", str(out), "--output", str(blocked))
    assert_one_error(quiet.returncode, quiet.stderr, str(blocked.parent))
    loud = run("-v", "process", "--input", str(out), "--output", str(blocked))
    assert loud.returncode == 1
    assert "Traceback (most recent call last)" in loud.stderr and "NotADirectoryError" in loud.stderr
    assert loud.stderr.rstrip().splitlines()[-1].startswith("Error: ")


def test_usage_errors_exit_2(blocked):
    code, output = invoke(cli, "download", "--sample", "--output", str(blocked), "--format", "csv")
    assert code == 2 and "Traceback" not in output, output


def test_disk_full_is_one_line_naming_the_fix():
    """A real ENOSPC (writing /dev/full directly, never through a rename)."""
    with pytest.raises(OSError) as info:
        with open("/dev/full", "wb", buffering=0) as fh:
            fh.write(b"x")
    assert info.value.errno == errno.ENOSPC
    line = describe(info.value)
    assert line and "no space left" in line and "rerun" in line and "\n" not in line


def test_unexpected_errors_keep_their_traceback():
    assert describe(KeyError("bug")) is None and describe(TypeError("bug")) is None


def test_a_refused_connection_is_one_network_line(closed_url):
    port = int(closed_url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError) as info:
        socket.create_connection(("127.0.0.1", port), timeout=5)
    line = describe(info.value)
    assert line and line.startswith("network error (connection refused)") and "\n" not in line


def test_push_with_a_wrong_token_names_the_url_and_the_status(out, tmp_path):
    from fakehub import FakeHub

    with FakeHub("hf_right") as hub:
        res = run("push", str(out), "--repo-id", "org/gap",
                  env={"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": "hf_wrong", "HF_HOME": str(tmp_path)})
    assert_one_error(res.returncode, res.stdout + res.stderr, hub.endpoint, "HTTP 401", "HF_TOKEN")
    assert "hf_wrong" not in res.stdout + res.stderr


def test_storage_error_survives_a_worker_process():
    """Raised in a worker process (local pool, Ray), re-raised in the CLI with its path."""
    import pickle

    from gap_replay.errors import StorageError

    again = pickle.loads(pickle.dumps(StorageError("/out/state.sqlite", "unable to open database file")))
    assert describe(again).startswith("cannot write /out/state.sqlite: unable to open database file")
