"""A click group that ends expected failures in one `Error:` line (gap_replay.errors), exit 1.

Put on the top-level groups only, so every subcommand gets it; `-v` also prints the traceback.
Unexpected exceptions (bugs) keep their traceback.
"""

from __future__ import annotations

import traceback

import click


class OneLineErrors(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            from gap_replay.errors import describe

            line = describe(exc)
            if line is None:
                raise
            if ctx.find_root().params.get("verbose"):
                click.echo(traceback.format_exc().rstrip(), err=True)
            raise click.ClickException(line) from exc


class InvalidRecipe(click.ClickException):
    """`invalid recipe: FILE: KEY: problem`, one line per problem (RecipeError.problems);
    `error` is kept so preflight can still check the tokenizer (check_tokenizer_of_invalid)."""

    def __init__(self, error, suffix: str = "") -> None:
        self.problems = error.prefixed("invalid recipe: ", suffix).problems
        super().__init__("\n".join(self.problems))
        self.error = error
