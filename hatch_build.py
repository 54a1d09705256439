"""Build hook: compile the S2ORC formatter with mypyc when this machine can.

`src/gap_replay/sources/pubmed/s2orc.py` is the CPU-bound step of the papers path (formatting
S2ORC full text). The hook compiles a copy of it as the top-level module `_gap_replay_s2orc`,
stamped with the SHA-256 of the source; s2orc.py uses the copy only while the stamp matches its
own text, so an edited checkout never runs stale compiled code (it falls back to Python until
the next `pip install`). Without a C compiler, or with GAP_REPLAY_PURE_PYTHON=1, the build goes
on without it and the pure-Python formatter is used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src/gap_replay/sources/pubmed/s2orc.py")
MODULE = "_gap_replay_s2orc"  # keep in step with s2orc.COMPILED_MODULE


class CompiledFormatterHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if os.environ.get("GAP_REPLAY_PURE_PYTHON"):
            return
        root = Path(self.root)
        try:
            library = compile_formatter(root / SOURCE, root / "build" / "compiled-formatter")
        except Exception as exc:  # no compiler or headers, a mypyc error: stay pure Python
            self.app.display_warning(
                f"gap-replay: S2ORC formatter not compiled ({type(exc).__name__}: {exc}); "
                "the pure-Python one is used")
            return
        if version == "editable":
            # an editable install imports from src/, so the library goes next to the package
            for stale in (root / "src").glob(f"{MODULE}.*"):
                stale.unlink()
            shutil.copy2(library, root / "src" / library.name)
        else:
            build_data["force_include"][str(library)] = library.name
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
        self.app.display_info(f"gap-replay: S2ORC formatter compiled ({library.name})")


def compile_formatter(source: Path, workdir: Path) -> Path:
    """Compile a stamped copy of `source` as MODULE; returns the extension's path."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    text = source.read_bytes()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    stamp = f'\nSOURCE_SHA256 = "{hashlib.sha256(text).hexdigest()}"\n'.encode()
    (workdir / f"{MODULE}.py").write_bytes(text + stamp)
    here = os.getcwd()
    os.chdir(workdir)  # mypyc names the module after the file's path
    try:
        extensions = mypycify([f"{MODULE}.py", "--ignore-missing-imports",
                               "--follow-imports=silent"], opt_level="3")
        build = Distribution({"name": MODULE, "ext_modules": extensions}).get_command_obj(
            "build_ext")
        build.build_lib, build.build_temp = "lib", "tmp"
        build.ensure_finalized()
        build.run()
    finally:
        os.chdir(here)
    return workdir / "lib" / f"{MODULE}{sysconfig.get_config_var('EXT_SUFFIX')}"
