"""CLI commands for this stage (being built; see the open issue)."""

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
