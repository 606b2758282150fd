"""`imgclf clean SRC --out OUT`: verified, de-duplicated images plus rejects and reports."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Adds `clean` to `app`."""

    @app.command("clean")
    def clean(
        src: Path = typer.Argument(..., help="Input ImageFolder: SRC/<class>/<file> or SRC/{train,test}/<class>/<file>."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (kept images, _rejected/, _reports/)."),
        min_size: int | None = typer.Option(None, "--min-size", help="Smallest width/height in pixels \\[default: 0]."),
        dedupe: bool | None = typer.Option(None, "--dedupe/--no-dedupe", help="Group and remove duplicates \\[default: on]."),
        hash_name: str | None = typer.Option(None, "--hash", help="phash | dhash | ahash | whash \\[default: phash]."),
        hash_size: int | None = typer.Option(None, "--hash-size", help="Hash grid side; bits = size^2 \\[default: 16]."),
        threshold: int | None = typer.Option(None, "--threshold", help="Near-duplicate radius in bits \\[default: measured, 16 for phash-256]."),
        label_conflicts: str | None = typer.Option(None, "--label-conflicts", help="keep | reject duplicates across classes \\[default: keep]."),
        reject_blurry: bool | None = typer.Option(None, "--reject-blurry/--keep-blurry", help="Set aside blurry images \\[default: keep]."),
        blur_threshold: float | None = typer.Option(None, "--blur-threshold", help="Variance of Laplacian below = blurry \\[default: 100]."),
        reject_uniform: bool | None = typer.Option(None, "--reject-uniform/--keep-uniform", help="Set aside near-uniform images \\[default: reject]."),
        uniform_std: float | None = typer.Option(None, "--uniform-std", help="Grayscale std below = near-uniform \\[default: 2]."),
        workers: int | None = typer.Option(None, "--workers", help="Parallel workers."),
        config: Path | None = typer.Option(None, "--config", help="Run config YAML; its clean: section is used."),
    ) -> None:
        """Verify every image, group exact and near duplicates, score blur; copy kept images to OUT."""
        from imgclf.clean import clean_folder
        from imgclf.cli.common import stage_config
        from imgclf.config import CleanConfig

        cfg = stage_config(
            CleanConfig, "clean", config, min_size=min_size, dedupe=dedupe, hash=hash_name, hash_size=hash_size,
            threshold=threshold, label_conflicts=label_conflicts, reject_blurry=reject_blurry,
            blur_threshold=blur_threshold, reject_uniform=reject_uniform, uniform_std=uniform_std, workers=workers,
        )
        clean_folder(src, out, cfg)
