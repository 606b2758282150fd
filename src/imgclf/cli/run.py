"""CLI commands for this stage (being built)."""

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
