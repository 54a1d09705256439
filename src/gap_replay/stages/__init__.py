"""Shared processing steps; each is a small Stage with a `run` generator (see stages/base.py)."""
