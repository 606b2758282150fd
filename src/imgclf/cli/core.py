"""The Typer classes every `imgclf` command is built with.

`ImgclfTyper` is `typer.Typer` whose groups and commands show flags (`--json`, `--help`,
`--version`, `--dedupe/--no-dedupe`) without a `<bool>` type placeholder in `--help`: a flag
takes no value, so nothing should follow it. The root app (`imgclf.cli.main`) and the command
groups (`scrape`, `autoencoder`) are `ImgclfTyper`s; a command registered on one of them gets
`FlagCommand` unless it names its own class.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def hide_flag_placeholders(params: list[Any]) -> list[Any]:
    """Gives every flag of `params` an empty metavar, so help shows no type after it.

    Args:
        params: list of Typer parameters (a command's `get_params(ctx)`, `--help` included).

    Returns:
        The same list; flags (options that take no value) now have `metavar == ""`. An option
        that takes a value keeps its placeholder (`<int>`, `<path>`, ...).
    """
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


class FlagCommand(TyperCommand):
    """A Typer command whose help shows no `<bool>` after its flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return hide_flag_placeholders(super().get_params(ctx))


class FlagGroup(TyperGroup):
    """A Typer command group whose help shows no `<bool>` after its flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return hide_flag_placeholders(super().get_params(ctx))


class ImgclfTyper(typer.Typer):
    """`typer.Typer` with `FlagGroup` and `FlagCommand` as the default classes."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("cls", FlagGroup)
        super().__init__(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        """Registers a command (`typer.Typer.command`), as a `FlagCommand` by default."""
        kwargs.setdefault("cls", FlagCommand)
        return super().command(*args, **kwargs)
