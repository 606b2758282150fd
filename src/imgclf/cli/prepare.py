"""`imgclf prepare SRC --out OUT --size N`: every image to an N x N square by the resize policy."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.engine_options import engine_config, engine_opt, ray_address_opt, stage_executor
from imgclf.cli.options import opt, plain_opt
from imgclf.config import PrepareConfig, stage_config


def register(app: typer.Typer) -> None:
    """Adds `prepare` to `app`."""
    P = PrepareConfig

    @app.command("prepare")
    def prepare(
        src: Path = typer.Argument(..., help="Input ImageFolder (usually the clean output)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        size: int | None = opt(P, "size", "--size", help="Output side in pixels."),
        resize: str | None = opt(
            P, "resize", "--resize", help="center_crop (shortest side, then the center) | pad (letterbox) | squish."
        ),
        interpolation: str | None = opt(
            P,
            "interpolation",
            "--interpolation",
            help="auto (Lanczos down, bicubic up) | lanczos | bicubic | bilinear | nearest.",
        ),
        fmt: str | None = opt(P, "format", "--format", help="png | jpeg."),
        quality: int | None = opt(P, "quality", "--quality", help="JPEG quality 1-100."),
        workers: int | None = opt(P, "workers", "--workers", help="Parallel workers."),
        engine: str | None = engine_opt(),
        ray_address: str | None = ray_address_opt(),
        config: Path | None = plain_opt(
            None, "--config", help="Run config YAML; its prepare: (and engine:) sections are used."
        ),
    ) -> None:
        """Make every image SIZE x SIZE (shortest side + center crop by default), keeping the folders."""
        from imgclf.prepare import prepare_folder

        cfg = stage_config(
            PrepareConfig,
            "prepare",
            config,
            size=size,
            resize=resize,
            interpolation=interpolation,
            format=fmt,
            quality=quality,
            workers=workers,
        )
        with stage_executor(engine_config(config, engine, ray_address), [src], [out]) as executor:
            prepare_folder(src, out, cfg, executor=executor)
