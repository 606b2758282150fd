"""`imgclf datasets NAME --out DIR`: bundled real datasets as PNG folders."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import plain_opt


def register(app: typer.Typer) -> None:
    """Adds `datasets` to `app`."""

    @app.command("datasets")
    def datasets(
        name: str = typer.Argument(..., help="digits | fashion-mnist", metavar="NAME"),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (ImageFolder layout)."),
        official_split: bool = typer.Option(
            False, "--official-split", help="fashion-mnist: write train/ and test/ (the published split)."
        ),
        limit_per_class: int | None = plain_opt(
            None, "--limit-per-class", min=1, help="Keep at most N images per class (quick runs).", default_text="all"
        ),
    ) -> None:
        """Write a bundled dataset (no internet needed) as PNG files into OUT/<class>/."""
        from imgclf.datasets import export_dataset

        export_dataset(name, out, official_split=official_split, limit_per_class=limit_per_class)
