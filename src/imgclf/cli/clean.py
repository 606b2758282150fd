"""`imgclf clean SRC --out OUT`: verified, de-duplicated images plus rejects and reports."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.engine_options import engine_config, engine_opt, ray_address_opt, stage_executor
from imgclf.cli.options import opt, plain_opt
from imgclf.config import CleanConfig, stage_config


def register(app: typer.Typer) -> None:
    """Adds `clean` to `app`."""
    C = CleanConfig

    @app.command("clean")
    def clean(
        src: Path = typer.Argument(
            ..., help="Input ImageFolder: SRC/<class>/<file> or SRC/{train,test}/<class>/<file>."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (kept images, _rejected/, _reports/)."),
        min_size: int | None = opt(C, "min_size", "--min-size", help="Smallest width/height in pixels."),
        dedupe: bool | None = opt(C, "dedupe", "--dedupe/--no-dedupe", help="Group and remove duplicates."),
        radius: int | None = opt(
            C, "radius", "--radius", help="Candidate radius in bits of each 64-bit perceptual hash (0-32)."
        ),
        max_residual: float | None = opt(
            C,
            "max_residual",
            "--max-residual",
            help="Largest residual, in grey levels, of a verified near duplicate; lower is stricter.",
        ),
        flips: bool | None = opt(
            C, "flips", "--flips/--no-flips", help="Also find mirrored copies; reported separately and grouped."
        ),
        label_conflicts: str | None = opt(
            C, "label_conflicts", "--label-conflicts", help="keep | reject duplicates across classes."
        ),
        reject_blurry: bool | None = opt(
            C, "reject_blurry", "--reject-blurry/--keep-blurry", help="Set aside blurry images."
        ),
        blur_threshold: float | None = opt(
            C, "blur_threshold", "--blur-threshold", help="Variance of the Laplacian below which an image is blurry."
        ),
        reject_uniform: bool | None = opt(
            C, "reject_uniform", "--reject-uniform/--keep-uniform", help="Set aside near-uniform images."
        ),
        uniform_std: float | None = opt(
            C, "uniform_std", "--uniform-std", help="Grayscale standard deviation below which an image is near-uniform."
        ),
        workers: int | None = opt(C, "workers", "--workers", help="Parallel workers."),
        engine: str | None = engine_opt(),
        ray_address: str | None = ray_address_opt(),
        config: Path | None = plain_opt(
            None, "--config", help="Run config YAML; its clean: (and engine:) sections are used."
        ),
    ) -> None:
        """Verify every image, group exact and near duplicates, score blur; copy kept images to OUT."""
        from imgclf.clean import clean_folder

        cfg = stage_config(
            CleanConfig,
            "clean",
            config,
            min_size=min_size,
            dedupe=dedupe,
            radius=radius,
            max_residual=max_residual,
            flips=flips,
            label_conflicts=label_conflicts,
            reject_blurry=reject_blurry,
            blur_threshold=blur_threshold,
            reject_uniform=reject_uniform,
            uniform_std=uniform_std,
            workers=workers,
        )
        with stage_executor(engine_config(config, engine, ray_address), [src], [out]) as executor:
            clean_folder(src, out, cfg, executor=executor)
