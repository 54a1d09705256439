"""The source interface (sources/base.py): the families implement it, and no source transforms."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gap_replay.io import Quarantine
from gap_replay.resources import sample_sites_dir
from gap_replay.sources.base import Source, files_below
from gap_replay.sources.pubmed.ingest import Context, PubMedFiles
from gap_replay.recipe import load_recipe
from gap_replay.sources.replay.ingest import RedPajamaFiles, iter_redpajama_file
from gap_replay.sources.replay.settings import ReplaySettings
from gap_replay.sources.replay.source import RedPajamaRelease
from gap_replay.sources.replay.file_task import HTTPSettings

SOURCES = Path(__file__).parent.parent / "src" / "gap_replay" / "sources"
FIX = Path(__file__).parent / "fixtures" / "pubmed"


def test_the_families_implement_the_interface(tmp_path):
    ctx = Context(tmp_path)
    try:
        jats = PubMedFiles("jats", ctx)
        assert isinstance(jats, Source) and isinstance(RedPajamaFiles(), Source)
        files = jats.discover([str(FIX / "pmc_jats")])
        assert files and files == sorted(files)
        docs = [d for f in files for d in jats.extract(jats.fetch(f), Quarantine())]
        assert len(docs) == 3 and {d.source for d in docs} == {"papers"}
    finally:
        ctx.close()


def test_redpajama_files_extract_what_the_parser_reads():
    folder = sample_sites_dir() / "redpajama" / "redpajama-data-1T" / "v1.0.0"
    source = RedPajamaFiles()
    files = source.discover([str(folder)])
    assert len(files) == len(list(folder.glob("*/*.jsonl*"))) > 0
    got = [d.id for f in files for d in source.extract(source.fetch(f), Quarantine())]
    want = [d.id for f in files for d in iter_redpajama_file(f, Quarantine())]
    assert got == want and len(got) == 19


def test_the_release_discovers_and_extracts_what_ingest_reads():
    """download's side of the replay family (discover the data files, extract their documents)
    agrees with ingest's side (local files) on the same files."""
    folder = sample_sites_dir() / "redpajama" / "redpajama-data-1T" / "v1.0.0"
    settings = ReplaySettings.from_recipe(load_recipe().data, url_lists=str(folder))
    release = RedPajamaRelease(settings, HTTPSettings(rate=0))
    assert isinstance(release, Source)
    files = release.discover(settings.subsets)
    assert {f.subset for f in files} == {"wikipedia", "arxiv", "stackexchange"}
    q = Quarantine()
    got = sorted((d.id, d.text) for f in files for d in release.extract(release.fetch(f), q))
    local = RedPajamaFiles()
    want = sorted((d.id, d.text) for f in local.discover([str(folder)])
                  for d in local.extract(local.fetch(f), Quarantine()))
    assert got == want and len(got) == 19 and len(q) == 0


def test_files_below_names_a_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: no such file"):
        files_below([str(tmp_path / "nope")], (".jsonl",))


def test_no_source_defines_or_runs_stages():
    """Sources fetch and extract; every transformation is a Stage in stages/ run by `process`."""
    offenders = []
    for path in sorted(SOURCES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "gap_replay.stages.base":
                offenders.append(f"{path.relative_to(SOURCES)}: imports {node.module}")
    assert offenders == []
