"""The compiled S2ORC formatter (hatch_build.py): built from the Python source, it formats every
pinned case exactly as the Python text does, and it is used only while its stamp matches."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

from gap_replay.sources.pubmed import s2orc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import hatch_build  # noqa: E402

CHECK = """
import sys
sys.path[:0] = [{lib!r}, {src!r}, {tests!r}]
from gap_replay.sources.pubmed import s2orc
from s2orc_golden_cases import cases
from gap_replay.sources.pubmed.s2orc_legacy import is_legacy
assert s2orc.IMPLEMENTATION == "compiled", s2orc.IMPLEMENTATION
assert type(s2orc.format_s2orc).__name__ == "builtin_function_or_method"
n = 0
for name, row, paper in cases():
    if is_legacy(row):
        continue
    title = (paper or {{}}).get("title")
    assert s2orc.format_s2orc(row, title) == s2orc._format_s2orc(row, title), name
    n += 1
try:
    s2orc.format_s2orc({{"content": None}})
except s2orc.S2orcFormatError:
    pass
print(n)
"""


def test_build_hook_compiles_a_formatter_that_matches_the_python_one(tmp_path):
    library = hatch_build.compile_formatter(ROOT / hatch_build.SOURCE, tmp_path / "build")
    assert library.name.startswith(hatch_build.MODULE + ".") and library.stat().st_size > 0
    assert hatch_build.MODULE == s2orc.COMPILED_MODULE
    script = CHECK.format(lib=str(library.parent), src=str(ROOT / "src"), tests=str(ROOT / "tests"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 12  # every pinned v2 case went through both


@pytest.fixture()
def fake_compiled(monkeypatch):
    module = types.ModuleType("_fake_compiled_s2orc")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.delenv("GAP_REPLAY_PURE_PYTHON", raising=False)
    return module


def test_a_compiled_copy_is_used_only_while_its_stamp_matches_the_source(fake_compiled,
                                                                          monkeypatch):
    name = fake_compiled.__name__
    assert s2orc.load_compiled(name) is None  # no stamp
    fake_compiled.SOURCE_SHA256 = hashlib.sha256(b"an older s2orc.py").hexdigest()
    assert s2orc.load_compiled(name) is None  # built from another text: stale
    fake_compiled.SOURCE_SHA256 = hashlib.sha256(Path(s2orc.__file__).read_bytes()).hexdigest()
    assert s2orc.load_compiled(name) is fake_compiled
    monkeypatch.setenv("GAP_REPLAY_PURE_PYTHON", "1")
    assert s2orc.load_compiled(name) is None


def test_a_missing_compiled_module_means_python():
    assert s2orc.load_compiled("_gap_replay_no_such_module") is None
