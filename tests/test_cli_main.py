"""`--help` of every command: each option says what it does, and the texts issue 14 found wrong
(a `--sample` that process/mix lack, undescribed `--recipe`/`--dataset`, a source file named as
documentation, two ways to give benchmarks, `--output` not marked required) stay fixed."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gap_replay.cli.guidelines import cli as guidelines_cli
from gap_replay.cli.main import cli


def _commands(group: click.Command, path: tuple[str, ...] = ()):
    """(path, command) for the group and every command under it (lazy ones loaded)."""
    yield path, group
    if isinstance(group, click.Group):
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            yield from _commands(group.get_command(ctx, name), path + (name,))


ALL = [(("gap-replay",) + p, c) for p, c in _commands(cli)] + \
      [(("guidelines",) + p, c) for p, c in _commands(guidelines_cli)]


def _help(root: click.Command, *args: str) -> str:
    result = CliRunner().invoke(root, [*args, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # wrapping-independent


@pytest.mark.parametrize("path, command", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_option_is_described(path, command):
    undescribed = [p.opts[0] for p in command.params
                   if isinstance(p, click.Option) and p.name != "help" and not (p.help or "").strip()]
    assert undescribed == [], f"{' '.join(path)}: options without help: {undescribed}"
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"


@pytest.mark.parametrize("command", ["process", "mix"])
def test_process_and_mix_do_not_mention_a_sample_flag_they_lack(command):
    text = _help(cli, command)
    assert "--sample" not in text
    assert "--sample" not in {o for p in cli.get_command(click.Context(cli), command).params for o in p.opts}


@pytest.mark.parametrize("command", ["download", "fetch-oa", "fetch-baseline"])
def test_pubmed_fetchers_describe_recipe_and_output(command):
    text = _help(cli, "pubmed", command)
    assert "--recipe FILE Recipe whose rules apply at ingest" in text
    assert "-o, --output DIRECTORY Output directory OUTPUT" in text and "[required]" in text
    if command == "download":
        assert "--dataset TEXT A dataset the release lists: papers, abstracts, s2orc_v2" in text


def test_ingest_format_describes_the_formats_not_a_source_file():
    text = _help(cli, "ingest")
    assert "jats: PMC/Europe PMC XML" in text and "medline: PubMed XML" in text
    assert ".py" not in text and "src/" not in text


def test_decontaminate_shows_one_way_to_give_benchmarks():
    text = _help(cli, "decontaminate")
    assert text.startswith("Usage: cli decontaminate [OPTIONS] Drop")  # no [PATH]... argument
    assert "[PATH]" not in text and "PATHS" not in text
    assert "--benchmarks PATH Benchmark file or folder" in text


def test_download_marks_output_required_unless_the_config_sets_it():
    text = _help(cli, "download")
    assert "--output DIRECTORY Output directory OUT (required, unless the config sets output:)" in text
    assert "--dry-run" in text


def test_versions():
    for root in (cli, guidelines_cli):
        result = CliRunner().invoke(root, ["--version"])
        assert result.exit_code == 0 and ", version " in result.output
