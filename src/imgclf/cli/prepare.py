"""`imgclf prepare SRC --out OUT --size N`: shortest-side resize + center crop."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Adds `prepare` to `app`."""

    @app.command("prepare")
    def prepare(
        src: Path = typer.Argument(..., help="Input ImageFolder (usually the clean output)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        size: int | None = typer.Option(None, "--size", help="Output side in pixels \\[default: 224]."),
        fmt: str | None = typer.Option(None, "--format", help="png | jpeg \\[default: png]."),
        quality: int | None = typer.Option(None, "--quality", help="JPEG quality 1-100 \\[default: 95]."),
        workers: int | None = typer.Option(None, "--workers", help="Parallel workers."),
        config: Path | None = typer.Option(None, "--config", help="Run config YAML; its prepare: section is used."),
    ) -> None:
        """Resize the shortest side to SIZE and center-crop to SIZE x SIZE, keeping the folders."""
        from imgclf.cli.common import stage_config
        from imgclf.config import PrepareConfig
        from imgclf.prepare import prepare_folder

        cfg = stage_config(PrepareConfig, "prepare", config, size=size, format=fmt, quality=quality, workers=workers)
        prepare_folder(src, out, cfg)
