"""Find the data that defines the corpus (recipe, specs, configs, the sample) installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_ROOT = _PACKAGE_DIR.parent.parent


def spec_dir(name: str) -> Path:
    """Top-level data folder `name` (gap_replay, guidelines, configs): the wheel's copy, else the checkout's."""
    installed = _PACKAGE_DIR / "_specs" / name
    if installed.is_dir():
        return installed
    checkout = _CHECKOUT_ROOT / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"data folder {name!r} not found in {installed} or {checkout}")


def default_recipe_path() -> Path:
    return spec_dir("gap_replay") / "recipe.yaml"


def sample_dir() -> Path:
    """The bundled offline sample (fixture sites, tokenizer) shipped inside the package."""
    return _PACKAGE_DIR / "sample"


def sample_sites_dir() -> Path:
    return sample_dir() / "sites"
