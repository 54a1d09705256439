"""A click group that imports a subcommand's module only when it runs (fast --help, no Ray import);
expected failures end in one line (cli/errors.py)."""

from __future__ import annotations

import importlib

import click

from gap_replay.cli.errors import OneLineErrors


class LazyGroup(OneLineErrors):
    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy_commands:
            module_name, attr = self.lazy_commands[name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, name)
