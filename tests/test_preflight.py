"""gap_replay.preflight: any single mistake in the recipe, the tokenizer or the output folder
stops `download` in seconds, before any request, with one line per problem; `--dry-run` prints
the plan without a request."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from conftest import cli_env, run_cli
from gap_replay.preflight import check_credentials
from gap_replay.resources import default_recipe_path, spec_dir
from gap_replay.sample.server import SiteServer

HEADER = "Error: nothing was fetched; fix first:"


def _recipe(tmp_path, **tokenizer) -> str:
    data = yaml.safe_load(open(default_recipe_path(), encoding="utf-8"))
    data["tokenizer"].update(tokenizer)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _cli(*args: str, env_drop: tuple[str, ...] = ("S2_API_KEY",), **env_set: str):
    env = {k: v for k, v in cli_env().items() if k not in env_drop}
    env.update(env_set)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "gap_replay", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    return proc, time.monotonic() - started


def _set(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        data = data[key]
    data[last] = value


# (what is wrong, how to make the mistake, the one line that must name it)
MISTAKES = [
    ("unknown top-level key", {"sead": 1}, "invalid recipe: {R}: sead: unknown key; did you mean 'seed'?"),
    ("near-dedup threshold out of range", {"near_dedup.threshold": 7.2},
     "invalid recipe: {R}: near_dedup.threshold: expected a number in (0, 1], got 7.2"),
    ("unknown key in a section another part owns", {"near_dedup.thresold": 0.5},
     "invalid recipe: {R}: near_dedup.thresold: unknown key; did you mean 'threshold'?"),
    ("validation fraction out of range", {"sources.papers.validation_fraction": 1.5},
     "invalid recipe: {R}: sources.papers.validation_fraction: must be in [0, 1), got 1.5"),
    ("replay rate negative", {"replay.rate": -1},
     "invalid recipe: {R}: replay.rate: must be requests per second, a number >= 0, got -1"),
    ("decontamination mode", {"decontamination.mode": "cut"},
     "invalid recipe: {R}: decontamination.mode: expected drop or trim, got 'cut'"),
    ("exact-dedup buckets", {"dedup.exact.buckets": 0}, "invalid recipe: {R}: dedup.exact.buckets: must be >= 1, got 0"),
    ("missing tokenizer file", {"tokenizer.path": "nowhere/tokenizer.model"},
     "tokenizer file nowhere/tokenizer.model not found"),
    ("duplicate extra token", {"tokenizer.extra_tokens": ["[bib]", "[bib]"]},
     "invalid recipe: {R}: tokenizer.extra_tokens: contains a duplicate token"),
    ("source without an acquirer", {"sources.abstract": {"target_tokens": 1}},
     "sources.abstract: no acquirer for this source; did you mean 'abstracts'?"),
]


@pytest.mark.parametrize("what, changes, line", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_one_mistake_in_the_recipe_fails_in_seconds_before_any_request(tmp_path, what, changes, line):
    data = yaml.safe_load(open(default_recipe_path(), encoding="utf-8"))
    data["tokenizer"]["path"] = "sample:tokenizer.model"  # everything else is right
    for dotted, value in changes.items():
        _set(data, dotted, value)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    (tmp_path / "sites").mkdir()
    with SiteServer(tmp_path / "sites") as server:
        proc, elapsed = _cli("download", "--output", str(tmp_path / "out"), "--base-url", server.url,
                             "--recipe", str(recipe))
        assert server.requests_to("/") == []
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0] == HEADER, proc.stderr
    assert lines[1].startswith(line.format(R=recipe))  # the line may go on with the fix
    assert not (tmp_path / "out" / "raw").exists()
    assert elapsed < 5 + 5  # the goal is 5 s; the margin is interpreter start on a loaded machine


def test_the_same_command_with_a_good_recipe_does_reach_the_server(tmp_path):
    """The control for the tests above: --base-url sends the run's requests to that server, so
    their empty request log means the mistake stopped the run, not that it looked elsewhere."""
    (tmp_path / "sites").mkdir()
    with SiteServer(tmp_path / "sites") as server:
        proc, _ = _cli("download", "--output", str(tmp_path / "out"), "--base-url", server.url,
                       "--sources", "abstracts", "--recipe", _recipe(tmp_path, path="sample:tokenizer.model"))
        assert "/pubmed/baseline/" in [r.path for r in server.requests_to("/")]
    assert proc.returncode == 1 and "abstracts: " in proc.stderr  # the empty site has no baseline


def test_output_under_a_regular_file_is_named_before_any_request(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    (tmp_path / "sites").mkdir()
    with SiteServer(tmp_path / "sites") as server:
        proc, elapsed = _cli("download", "--output", str(blocker / "out"), "--base-url", server.url,
                             "--recipe", _recipe(tmp_path, path="sample:tokenizer.model"))
        assert server.requests_to("/") == []
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == HEADER and len(lines) == 2
    assert lines[1].startswith(f"output folder {blocker / 'out'}: cannot write there (Not a directory)")
    assert elapsed < 5 + 5


def test_several_mistakes_are_one_line_each(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    (tmp_path / "sites").mkdir()
    with SiteServer(tmp_path / "sites") as server:
        proc, elapsed = _cli("download", "--output", str(blocker / "out"), "--base-url", server.url,
                             "--recipe", _recipe(tmp_path, path="nowhere/tokenizer.model"))
        assert server.requests_to("/") == []
    assert proc.returncode == 1 and elapsed < 5 + 5
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == HEADER and len(lines) == 3
    assert lines[1].startswith(f"output folder {blocker / 'out'}: cannot write there")
    assert lines[2].startswith("tokenizer file nowhere/tokenizer.model not found")
    assert "Traceback" not in proc.stderr


def test_a_bad_recipe_and_a_bad_output_folder_are_both_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = yaml.safe_load(open(default_recipe_path(), encoding="utf-8"))
    data["sead"] = 1
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(data))
    proc, _ = _cli("download", "--output", str(blocker / "out"), "--recipe", str(recipe))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 4, proc.stderr
    assert lines[1] == f"invalid recipe: {recipe}: sead: unknown key; did you mean 'seed'?"
    assert lines[2].startswith(f"output folder {blocker / 'out'}: cannot write there")
    # the recipe's tokenizer section is fine, so it is checked too: the Hub (conftest: a closed
    # port) cannot be reached, and that is not an access problem, so no HF_TOKEN hint
    assert lines[3].startswith("tokenizer hf:meta-llama/Llama-2-7b-hf: cannot reach the Hugging Face Hub")
    assert "is not set" not in lines[3]


def test_sample_with_an_explicit_recipe_rejects_its_bad_value_instead_of_replacing_it(tmp_path):
    """configs/sample.yaml sets papers' validation_fraction to 0.15; R's 1.5 must not be replaced."""
    data = yaml.safe_load(open(default_recipe_path(), encoding="utf-8"))
    data["sources"]["papers"]["validation_fraction"] = 1.5
    data["tokenizer"]["path"] = "sample:tokenizer.model"  # R's own tokenizer wins too; this one loads
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(data))
    proc, elapsed = _cli("download", "--sample", "--output", str(tmp_path / "out"), "--recipe", str(recipe))
    assert proc.returncode == 1 and elapsed < 5 + 5
    assert proc.stderr.strip().splitlines() == [
        HEADER, f"invalid recipe: {recipe}: sources.papers.validation_fraction: must be in [0, 1), got 1.5"]
    assert not (tmp_path / "out").exists()  # nothing acquired, not even the folder


def test_a_tokenizer_file_that_is_not_a_model_is_named(tmp_path):
    bad = tmp_path / "tokenizer.model"
    bad.write_bytes(b"this is not a sentencepiece model")
    proc = run_cli("download", "--output", str(tmp_path / "out"), "--recipe",
                   _recipe(tmp_path, path=str(bad)), check=False, timeout=60)
    assert proc.returncode == 1
    assert f"tokenizer: {bad}: not a SentencePiece model" in proc.stderr
    assert not (tmp_path / "out" / "raw").exists()


def test_dry_run_prints_the_plan_and_makes_no_request(tmp_path):
    (tmp_path / "sites").mkdir()
    out = tmp_path / "new" / "out"
    with SiteServer(tmp_path / "sites") as server:
        proc, _ = _cli("download", "--output", str(out), "--base-url", server.url, "--dry-run",
                       "--recipe", _recipe(tmp_path, path="sample:tokenizer.model"))
        assert server.requests_to("/") == []
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"plan for {out} ") and "nothing was fetched" in lines[0]
    assert lines[1].split() == ["source", "route", "budget", "(tokens)", "requests", "disk", "time"]
    rows = {line.split()[0]: line.split() for line in lines[2:6]}
    assert rows["guidelines"][1:3] == ["sites", "107,000,000"]
    assert rows["abstracts"][1:3] == ["ncbi", "5,480,000,000"]  # no S2 key: the keyless route
    assert rows["papers"][1:3] == ["ncbi", "40,700,000,000"]
    assert rows["replay"][1:3] == ["url-lists", "420,000,000"]
    assert all(row[3].startswith("~") and row[4].startswith("~") for row in rows.values())
    assert lines[6].startswith("total: ~") and "GB disk" in lines[6]
    assert lines[7].startswith("note: times exclude")
    assert lines[8].startswith("free space: ") and "for ~" in lines[8]
    assert not (tmp_path / "new").exists()  # the writability check leaves nothing behind


def test_dry_run_takes_the_s2_route_when_a_key_is_set(tmp_path):
    proc, _ = _cli("download", "--output", str(tmp_path / "out"), "--dry-run", "--sources", "papers",
                   "--recipe", _recipe(tmp_path, path="sample:tokenizer.model"), S2_API_KEY="k")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[2].split()[:2] == ["papers", "s2"]
    assert "times exclude transferring large files" in proc.stdout


def test_sample_dry_run(tmp_path):
    proc, _ = _cli("download", "--sample", "--output", str(tmp_path / "out"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[:2] for line in proc.stdout.splitlines()[2:6]] == [
        ["guidelines", "sample"], ["abstracts", "sample"], ["papers", "sample"], ["replay", "sample"]]
    assert "as measured" in proc.stdout


def test_credentials_only_for_routes_that_need_them(monkeypatch):
    monkeypatch.delenv("S2_API_KEY", raising=False)
    assert check_credentials({"guidelines": "sites", "abstracts": "ncbi", "replay": "url-lists"}) == []
    lines = check_credentials({"papers": "s2", "abstracts": "both"})
    assert len(lines) == 2 and all("needs S2_API_KEY, which is not set" in line for line in lines)
    assert lines[0].startswith("papers (route s2): ")
    assert "semanticscholar.org" in lines[0]
    monkeypatch.setenv("S2_API_KEY", "a-key")
    assert check_credentials({"papers": "s2"}) == []


def test_other_acquiring_commands_check_the_output_folder_first(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    (tmp_path / "sites").mkdir()
    with SiteServer(tmp_path / "sites") as server:
        for args in (["pubmed", "fetch-baseline", "--base-url", server.url],
                     ["pubmed", "fetch-oa", "--endpoint-url", server.url],
                     ["replay", "sample", "--base-url", server.url, "--target-tokens", "1k"]):
            proc, _ = _cli(*args, "--output", str(blocker / "out"))
            assert proc.returncode == 1, (args, proc.stderr)
            assert f"output folder {blocker / 'out'}: cannot write there" in proc.stderr, args
            assert "Traceback" not in proc.stderr
        assert server.requests_to("/") == []
    assert os.path.isfile(blocker)


def test_refresh_checks_the_tokenizer_before_fetching(tmp_path):
    """A refresh whose recipe has no usable tokenizer fails before acquisition, not at `mix`."""
    config = yaml.safe_load((spec_dir("configs") / "cron-sample.yaml").read_text())
    config["recipe_overrides"]["tokenizer"]["path"] = "nowhere/tokenizer.model"
    path = tmp_path / "cron.yaml"
    path.write_text(yaml.safe_dump(config))
    proc, elapsed = _cli("refresh", "--config", str(path), "--output", str(tmp_path / "root"))
    assert proc.returncode == 1 and elapsed < 5 + 5, proc.stderr
    assert "nothing was fetched; fix first: tokenizer file nowhere/tokenizer.model" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "root" / "state" / "raw").exists()


def test_guidelines_scrape_checks_the_output_folder_first(tmp_path):
    from click.testing import CliRunner

    from gap_replay.cli.guidelines import cli

    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    (tmp_path / "sites").mkdir()
    with SiteServer(tmp_path / "sites") as server:
        result = CliRunner().invoke(cli, ["scrape", "--source", "who", "--output", str(blocker / "out"),
                                          "--base-url", server.url])
        assert server.requests_to("/") == []
    assert result.exit_code == 1
    assert f"output folder {blocker / 'out'}: cannot write there" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_run_that_needs_more_disk_than_is_free_is_warned_before_fetching(tmp_path):
    data = yaml.safe_load(open(default_recipe_path(), encoding="utf-8"))
    data["tokenizer"]["path"] = "sample:tokenizer.model"
    data["scale"] = 1e9  # ~10^19 tokens of shards: more than any disk has
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(data))
    (tmp_path / "sites").mkdir()
    with SiteServer(tmp_path / "sites") as server:
        proc, _ = _cli("download", "--output", str(tmp_path / "out"), "--base-url", server.url,
                       "--sources", "abstracts", "--recipe", str(recipe))
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"warning: {tmp_path / 'out'} has ") and "GB free; the plan estimates ~" in first


def test_every_problem_of_a_recipe_is_its_own_line_with_the_folder_and_tokenizer_checks(tmp_path):
    """Not only the first mistake: each section's and each source's problem is named at once."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = yaml.safe_load(open(default_recipe_path(), encoding="utf-8"))
    data["sead"] = 1
    data["sources"]["papers"]["validation_fraction"] = 1.5
    data["near_dedup"]["threshold"] = 7.2
    data["tokenizer"]["path"] = "nowhere/tokenizer.model"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(data))
    proc, elapsed = _cli("download", "--output", str(blocker / "out"), "--recipe", str(recipe))
    assert proc.returncode == 1 and elapsed < 5 + 5 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[:4] == [HEADER, f"invalid recipe: {recipe}: sead: unknown key; did you mean 'seed'?",
                         f"invalid recipe: {recipe}: sources.papers.validation_fraction: must be in [0, 1), got 1.5",
                         f"invalid recipe: {recipe}: near_dedup.threshold: expected a number in (0, 1], got 7.2"]
    assert lines[4].startswith(f"output folder {blocker / 'out'}: cannot write there")
    assert lines[5].startswith("tokenizer file nowhere/tokenizer.model not found")
    assert len(lines) == 6


def test_dry_run_of_the_default_recipe_prints_the_plan_and_its_problems(tmp_path):
    """The default recipe's tokenizer is on the Hub; unreachable (conftest: a closed port), the
    plan is still printed, then the problem, exit 1, in seconds."""
    proc, elapsed = _cli("download", "--output", str(tmp_path / "out"), "--dry-run",
                         env_drop=("S2_API_KEY", "HF_TOKEN"), HF_HOME=str(tmp_path / "hf-home"))
    assert proc.returncode == 1 and elapsed < 5 + 5, proc.stderr
    assert proc.stdout.startswith(f"plan for {tmp_path / 'out'} (recipe gap-replay-48.1B")
    assert [line.split()[0] for line in proc.stdout.splitlines()[2:6]] == [
        "guidelines", "abstracts", "papers", "replay"]
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == HEADER and len(lines) == 2, proc.stderr
    assert lines[1].startswith("tokenizer hf:meta-llama/Llama-2-7b-hf: cannot reach the Hugging Face Hub "
                               "at http://127.0.0.1:9")
    assert "is not set" not in lines[1]  # the network is the problem, not a token
    assert not (tmp_path / "out").exists()


def test_a_gated_hub_tokenizer_without_a_token_says_how_to_get_access(tmp_path, monkeypatch):
    """Only an access refusal (gated: 401 without a token) adds the HF_TOKEN hint."""
    from fakehub import FakeHub
    from gap_replay.preflight import check_tokenizer
    from gap_replay.recipe import load_recipe
    from gap_replay.resources import sample_dir

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub("hf_secret") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        hub.add_model("meta-llama/Llama-2-7b-hf", {"tokenizer.model": (sample_dir() / "tokenizer.model").read_bytes()},
                      gated=True)
        (line,) = check_tokenizer(load_recipe())  # the default recipe names this repo
        assert line.startswith("tokenizer hf:meta-llama/Llama-2-7b-hf: meta-llama/Llama-2-7b-hf is gated")
        assert "accept the license at https://huggingface.co/meta-llama/Llama-2-7b-hf" in line
        assert "HF_TOKEN is not set" in line and "hf auth login" in line and "\n" not in line
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        assert check_tokenizer(load_recipe()) == []


def test_refresh_names_every_recipe_problem_and_the_tokenizer_one_line_each(tmp_path):
    config = yaml.safe_load((spec_dir("configs") / "cron-sample.yaml").read_text())
    config["recipe_overrides"]["tokenizer"]["path"] = "nowhere/tokenizer.model"
    config["recipe_overrides"]["sead"] = 1
    config["recipe_overrides"]["scale"] = 0
    path = tmp_path / "cron.yaml"
    path.write_text(yaml.safe_dump(config))
    proc, elapsed = _cli("refresh", "--config", str(path), "--output", str(tmp_path / "root"))
    assert proc.returncode == 1 and elapsed < 5 + 5, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 3, proc.stderr
    assert all("refresh failed version=- seconds=" in line for line in lines)
    assert [line.split(" error: ", 1)[1].split(": ")[3] for line in lines[:2]] == ["sead", "scale"]
    assert lines[0].endswith("sead: unknown key; did you mean 'seed'? (with the config recipe_overrides)")
    assert "error: nothing was fetched; fix first: tokenizer file nowhere/tokenizer.model not found" in lines[2]
