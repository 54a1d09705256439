"""Checks that run before any network request: a mistake found after days of acquisition
costs days, found here it costs seconds. Each check returns one line per problem."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from gap_replay.recipe import Recipe

# Routes that need a credential: (environment variable, how to get it). A route not listed
# needs none (NCBI, the PMC Cloud bucket, the guideline sites, RedPajama's URL lists).
CREDENTIALS = {
    "s2": ("S2_API_KEY", "request a free key at https://www.semanticscholar.org/product/api "
                         "(or pass --api-key-file; without a key the keyless NCBI route runs)"),
    "hf": ("HF_TOKEN", "create a read token at https://huggingface.co/settings/tokens after "
                       "accepting the model's licence on its Hub page, or run `hf auth login`"),
}


def check_tokenizer(recipe: Recipe) -> list[str]:
    """The recipe's tokenizer loads and takes its extra tokens (mix needs it at the end)."""
    from gap_replay.mix import load_tokenizer
    from gap_replay.tokenizer import TokenizerError

    try:
        load_tokenizer(recipe)
    except TokenizerError as exc:
        line = str(exc) if str(exc).startswith("tokenizer") else f"tokenizer: {exc}"
        if _needs_hub_access(exc) and not has_credential("hf"):  # a gated model needs a token
            env, how = CREDENTIALS["hf"]
            line += f" ({env} is not set: {how})"
        return [line]
    return []


def _needs_hub_access(exc: BaseException) -> bool:
    """The Hub refused for lack of access (gated, 401, 403), not for the network or a name."""
    cause = exc.__cause__ or exc.__context__  # the Hub's error, raised `from None` below it
    if cause is None:
        return False
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    if isinstance(cause, GatedRepoError):
        return True
    status = getattr(getattr(cause, "response", None), "status_code", None)
    return isinstance(cause, HfHubHTTPError) and status in (401, 403)


def check_output(output: str) -> list[str]:
    """OUT can be created and written: a test file is made and removed, and so are the
    folders this check created (a dry run leaves nothing behind)."""
    if "://" in output:
        return []
    path = Path(output).absolute()
    _, created = _nearest_existing(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        return [f"output folder {output}: cannot write there ({exc.strerror or exc}); choose "
                "another --output or fix its permissions"]
    finally:
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
    return []


def free_bytes(output: str) -> int | None:
    """Free bytes on the file system that holds OUT (its nearest existing parent)."""
    existing, _ = _nearest_existing(Path(output).absolute())
    try:
        return shutil.disk_usage(existing).free
    except OSError:
        return None


def _nearest_existing(path: Path) -> tuple[Path, list[Path]]:
    """`path`'s nearest existing ancestor (or itself), and the missing folders below it,
    deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return path, missing


def free_space(free: int | None) -> str:
    """Free bytes (free_bytes) as the plan and the logs say them."""
    return "unknown" if free is None else f"{free / 1e9:,.1f} GB free"


def check_sources(sources: Iterable[str]) -> list[str]:
    """Every chosen source has an acquirer (a typo would fail after the others were fetched)."""
    from gap_replay.sources import ACQUIRERS

    lines = []
    for name in sources:
        if name not in ACQUIRERS:
            close = difflib.get_close_matches(name, list(ACQUIRERS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(ACQUIRERS)}"
            lines.append(f"sources.{name}: no acquirer for this source; {hint}")
    return lines


def check_benchmarks(recipe: Recipe) -> list[str]:
    """The decontamination benchmark files the recipe names exist and have a known format."""
    from gap_replay.stages.decontaminate import DecontaminationConfig

    try:
        config = DecontaminationConfig.from_recipe(recipe.data, recipe.origin)
        if config.enabled:
            config.files()
    except (ValueError, OSError) as exc:
        return [f"decontamination.benchmarks: {exc}"]
    return []


def has_credential(route: str, api_key_file: str | None = None) -> bool:
    if route == "s2":
        from gap_replay.sources.pubmed.s2api import load_api_key

        return bool(load_api_key(api_key_file))
    if route == "hf":
        if os.environ.get("HF_TOKEN", "").strip():
            return True
        try:
            from huggingface_hub import get_token
        except ImportError:
            return False
        return bool(get_token())
    return True


def missing_credential(route: str, what: str) -> str:
    env, how = CREDENTIALS[route]
    return f"{what}: needs {env}, which is not set; {how}"


def check_credentials(routes: dict[str, str], api_key_file: str | None = None) -> list[str]:
    """One line per chosen route that needs a key and has none; keyless routes say nothing.
    `routes` maps a source to its route (`s2`, `ncbi`, `both`, `sites`, ...)."""
    lines = []
    for source, route in routes.items():
        for part in ("s2", "ncbi") if route == "both" else (route,):
            if part not in CREDENTIALS:
                continue
            try:
                present = has_credential(part, api_key_file)
            except (OSError, RuntimeError, ValueError) as exc:  # an unreadable key file
                lines.append(f"{source} (route {part}): {exc}")
                continue
            if not present:
                lines.append(missing_credential(part, f"{source} (route {part})"))
    return lines


def preflight(output: str, recipe: Recipe, sources: Iterable[str] | None = None,
              routes: dict[str, str] | None = None, api_key_file: str | None = None) -> list[str]:
    """Everything `download` and `refresh` can check before their first request, one line per
    problem (`sources`: the ones fetched by built-in acquirers, default all of the recipe's)."""
    return (check_output(output) + check_sources(recipe.sources if sources is None else sources)
            + check_tokenizer(recipe) + check_benchmarks(recipe)
            + check_credentials(routes or {}, api_key_file))


def check_tokenizer_of_invalid(error) -> list[str]:
    """The tokenizer of a recipe that failed validation (RecipeError), when what could be read
    of it has a valid tokenizer section: its problems are reported with the recipe's."""
    if error.data is None:
        return []
    unchecked = Recipe.unchecked(error.data, error.origin)
    return [] if unchecked.tokenizer_problems() else check_tokenizer(unchecked)
