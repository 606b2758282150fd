"""`imgclf augment-preview DIR --out FILE.png`: what the training augmentation does to images."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import opt, plain_opt
from imgclf.config import AugmentConfig, stage_config
from imgclf.ui import summary


def register(app: typer.Typer) -> None:
    """Adds `augment-preview` to `app`."""
    A = AugmentConfig

    @app.command("augment-preview")
    def augment_preview_cmd(
        data: Path = typer.Argument(..., help="Folder of class sub-folders, e.g. data/split/train."),
        out: Path = plain_opt(Path("augment_preview.png"), "--out", "-o", help="PNG to write."),
        flip: str | None = opt(A, "flip", "--flip", help="none | horizontal | vertical | horizontal_and_vertical."),
        rotation: float | None = opt(A, "rotation", "--rotation", help="Fraction of a full turn, e.g. 0.05."),
        zoom: float | None = opt(A, "zoom", "--zoom", help="Fraction of the side, e.g. 0.1."),
        translation: float | None = opt(A, "translation", "--translation", help="Fraction of the side, e.g. 0.1."),
        contrast: float | None = opt(A, "contrast", "--contrast", help="Contrast factor, e.g. 0.2."),
        brightness: float | None = opt(A, "brightness", "--brightness", help="Brightness factor, e.g. 0.2."),
        shear: float | None = opt(A, "shear", "--shear", help="Shear factor (keras.layers.RandomShear), e.g. 0.1."),
        erasing: float | None = opt(A, "erasing", "--erasing", help="Random erasing probability per image, e.g. 0.5."),
        fill_mode: str | None = opt(A, "fill_mode", "--fill-mode", help="reflect | constant | nearest | wrap."),
        n_images: int = plain_opt(6, "--images", help="Rows (sample images)."),
        n_variants: int = plain_opt(7, "--variants", help="Augmented copies per row."),
        seed: int = plain_opt(42, "--seed", help="Sample choice and augmentation seed."),
        config: Path | None = plain_opt(
            None, "--config", "-c", help="Run config YAML; its train.augment: section is used."
        ),
    ) -> None:
        """Write a grid PNG: each row one training image, then augmented copies of it."""
        from imgclf.runtime import import_tensorflow_quietly

        cfg = stage_config(
            AugmentConfig,
            "train.augment",
            config,
            flip=flip,
            rotation=rotation,
            zoom=zoom,
            translation=translation,
            contrast=contrast,
            brightness=brightness,
            shear=shear,
            erasing=erasing,
            fill_mode=fill_mode,
        )
        import_tensorflow_quietly()
        from imgclf.data import augment_preview

        path = augment_preview(data, cfg, out, n_images=n_images, n_variants=n_variants, seed=seed)
        on = ", ".join(
            f"{k}={v}" for k, v in cfg.model_dump().items() if v not in (0, 0.0, "none") and k != "fill_mode"
        )
        summary(f"augment-preview: {n_images} images x {n_variants} variants ({on or 'no augmentation'}) -> {path}")
