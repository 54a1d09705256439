"""Where a tokenizer comes from: the one resolver for every spelling of `tokenizer.path`.

Spellings: a local file (relative paths are looked up beside the recipe, then in the current
folder), `sample:NAME` (a file of the bundled sample), or `hf:ORG/NAME[@REVISION]` (a Hugging
Face Hub repo: `tokenizer.model` first, then `tokenizer.json`, fetched with huggingface_hub so
the user's token (HF_TOKEN or `hf auth login`) and cache apply; a cached copy is used when the
Hub cannot be reached). The recipe, the `Tokenizer`, `mix` and `decode` all call `resolve`, so
a spelling that works in one works everywhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from gap_replay.resources import sample_dir

SAMPLE_PREFIX = "sample:"
HUB_PREFIX = "hf:"
HUB_FILES = ("tokenizer.model", "tokenizer.json")  # SentencePiece first, like Megatron-LLM
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class TokenizerError(ValueError):
    """The tokenizer cannot be found or loaded; the message is one line naming the fix."""


@dataclass(frozen=True)
class TokenizerSource:
    """`spec` as written, the local `path` to load, and for a Hub repo its id and commit."""

    spec: str
    path: str
    repo_id: str | None = None
    revision: str | None = None


def spelling_problem(spec: str) -> str | None:
    """What is wrong with an `hf:`/`sample:` spelling, or None (no file access, no network)."""
    if spec.startswith(HUB_PREFIX):
        repo_id, at, revision = spec[len(HUB_PREFIX):].partition("@")
        if not _REPO_ID.fullmatch(repo_id) or (at and not revision):
            return ("a Hub tokenizer is written hf:ORG/NAME or hf:ORG/NAME@REVISION, e.g. "
                    "hf:meta-llama/Llama-2-7b-hf")
    if spec.startswith(SAMPLE_PREFIX) and not spec[len(SAMPLE_PREFIX):]:
        return "name a file of the bundled sample, e.g. sample:tokenizer.model"
    return None


def parse_hub(spec: str) -> tuple[str, str | None] | None:
    """(repo id, revision or None) for an `hf:` spelling, None for any other."""
    problem = spelling_problem(spec)
    if problem:
        raise TokenizerError(f"tokenizer {spec!r}: {problem}")
    if not spec.startswith(HUB_PREFIX):
        return None
    repo_id, _, revision = spec[len(HUB_PREFIX):].partition("@")
    return repo_id, revision or None


def local_path(spec: str, base_dir: str | os.PathLike | None = None) -> str:
    """The file a non-Hub spelling names (it may not exist)."""
    if spec.startswith(SAMPLE_PREFIX):
        return str(sample_dir() / spec[len(SAMPLE_PREFIX):])
    candidate = Path(spec).expanduser()
    if not candidate.is_absolute() and base_dir is not None:
        beside = Path(base_dir) / candidate
        if beside.exists():
            return str(beside)
    return str(candidate)


def resolve(spec: str, base_dir: str | os.PathLike | None = None) -> TokenizerSource:
    """The local file for `spec`, downloading a Hub tokenizer into the Hugging Face cache."""
    hub = parse_hub(spec)
    if hub is None:
        return TokenizerSource(spec, local_path(spec, base_dir))
    return _from_hub(spec, *hub)


def _from_hub(spec: str, repo_id: str, revision: str | None) -> TokenizerSource:
    """`model_info` first (one request, no retries: an unreachable Hub is known at once and the
    cache is used), then `hf_hub_download` of the first tokenizer file the repo has."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from gap_replay.errors import _network_types

    endpoint, cache = _hub_settings()
    page = f"https://huggingface.co/{repo_id}"
    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, revision=revision)
        names = {s.rfilename for s in info.siblings or ()}
        filename = next((f for f in HUB_FILES if f in names), None)
        if filename is None:
            raise TokenizerError(f"tokenizer {spec}: {repo_id} has neither {' nor '.join(HUB_FILES)}; "
                                 "choose a repo that ships its tokenizer, or a local file")
        path = hf_hub_download(repo_id, filename, revision=revision, endpoint=endpoint, cache_dir=cache)
    except GatedRepoError:
        raise TokenizerError(
            f"tokenizer {spec}: {repo_id} is gated and this account has no access; accept the license "
            f"at {page}, then set HF_TOKEN or run `hf auth login` (`huggingface-cli login` in older "
            "versions)") from None
    except RevisionNotFoundError:
        raise TokenizerError(f"tokenizer {spec}: revision {revision!r} not found in {repo_id}; check the "
                             f"branch, tag or commit at {page}") from None
    except RepositoryNotFoundError:
        raise TokenizerError(f"tokenizer {spec}: repository {repo_id} not found at {endpoint} (or it is "
                             "private); check the id, and set HF_TOKEN or run `hf auth login` if private") from None
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        path = _cached(repo_id, revision, cache) if isinstance(status, int) and status >= 500 else None
        if path is None:  # a Hub that is down (5xx) still lets a cached copy load
            raise TokenizerError(f"tokenizer {spec}: {endpoint} answered HTTP {status} for {repo_id}; check "
                                 "HF_TOKEN / `hf auth login`, or rerun later") from None
    except _network_types() + (ConnectionError, TimeoutError, LocalEntryNotFoundError) as exc:
        path = _cached(repo_id, revision, cache)  # no network: the cached copy, if any
        if path is None and type(exc).__name__ == "OfflineModeIsEnabled":
            raise TokenizerError(f"tokenizer {spec}: HF_HUB_OFFLINE is set and {repo_id} is not in the cache "
                                 f"{cache}; unset HF_HUB_OFFLINE to download it once") from None
        if path is None:
            raise TokenizerError(
                f"tokenizer {spec}: cannot reach the Hugging Face Hub at {endpoint} ({type(exc).__name__}) "
                f"and {repo_id} is not in the cache {cache}; check the network or HF_ENDPOINT, then "
                "rerun") from None
    except OSError as exc:  # the cache folder cannot be written
        raise TokenizerError(f"tokenizer {spec}: cannot write the Hugging Face cache ({exc.strerror or exc}: "
                             f"{exc.filename or cache}); set HF_HOME to a writable folder") from None
    commit = Path(path).parent.name
    return TokenizerSource(spec, path, repo_id, commit if _COMMIT.fullmatch(commit) else revision)


def _cached(repo_id: str, revision: str | None, cache: str) -> str | None:
    """The cached tokenizer file of `repo_id` at `revision` (default branch if None), or None."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for filename in HUB_FILES:
        try:
            return hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache, local_files_only=True)
        except EntryNotFoundError:  # includes LocalEntryNotFoundError: not cached
            continue
    return None


def _hub_settings() -> tuple[str, str]:
    """HF_ENDPOINT and the cache folder as the environment says now (huggingface_hub reads
    them once, at import; a long-lived process or a test may set them later)."""
    from huggingface_hub import constants

    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or constants.ENDPOINT
    if os.environ.get("HF_HUB_CACHE"):
        return endpoint, os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return endpoint, os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return endpoint, constants.HF_HUB_CACHE
