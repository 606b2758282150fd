"""`imgclf train`, `imgclf models`, `imgclf augment-preview`.

Thin: build the pydantic config (YAML `train:` section, then options that were given), call
the library, print. TensorFlow is imported inside the commands only.
"""

from __future__ import annotations

from pathlib import Path

import typer


def _parse_fine_tune_layers(value: str | None) -> int | str | None:
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        from imgclf.errors import ConfigError

        raise ConfigError(f"--fine-tune-layers must be an integer or 'all', got {value!r}") from None


def register(app: typer.Typer) -> None:
    """Adds `train`, `models` and `augment-preview` to `app`."""

    @app.command("train")
    def train_cmd(
        data: Path = typer.Option(Path("data/split"), "--data", "-d", help="Split folder holding train/ and val/ (from `imgclf split`)."),
        model: str | None = typer.Option(None, "--model", "-m", help="Registry name, see `imgclf models` [default: cnn]."),
        weights: str | None = typer.Option(None, "--weights", help="none | imagenet | PATH to a weights file [default: none]."),
        epochs: int | None = typer.Option(None, "--epochs", "-e", help="Epochs (phase 1 for pretrained models) [default: 20]."),
        batch_size: int | None = typer.Option(None, "--batch-size", "-b", help="Global batch size [default: 32]."),
        learning_rate: float | None = typer.Option(None, "--learning-rate", "--lr", help="Peak learning rate [default: 1e-3]."),
        optimizer: str | None = typer.Option(None, "--optimizer", help="adam | adamw | sgd [default: adam]."),
        schedule: str | None = typer.Option(None, "--schedule", help="plateau (ReduceLROnPlateau) | cosine (warmup + cosine) [default: plateau]."),
        dropout: float | None = typer.Option(None, "--dropout", help="Dropout before the classifier [default: the model's]."),
        label_smoothing: float | None = typer.Option(None, "--label-smoothing", help="Label smoothing in [0, 1) [default: 0]."),
        class_weights: bool | None = typer.Option(None, "--class-weights/--no-class-weights", help="Balanced class weights [default: on]."),
        image_size: int | None = typer.Option(None, "--image-size", help="Input side in pixels [default: the data's]."),
        fine_tune_layers: str | None = typer.Option(None, "--fine-tune-layers", help="Pretrained: top backbone layers unfrozen in phase 2, or 'all' [default: 30]."),
        fine_tune_epochs: int | None = typer.Option(None, "--fine-tune-epochs", help="Pretrained: phase-2 epochs, 0 = same as --epochs."),
        seed: int | None = typer.Option(None, "--seed", help="Seed for Python, NumPy, TensorFlow [default: 42]."),
        deterministic: bool | None = typer.Option(None, "--deterministic/--no-deterministic", help="TensorFlow op determinism (slower)."),
        mixed_precision: bool | None = typer.Option(None, "--mixed-precision/--no-mixed-precision", help="float16 (GPU) / bfloat16 (CPU) compute."),
        jit: bool | None = typer.Option(None, "--jit/--no-jit", help="XLA-compile the train step."),
        strategy: str | None = typer.Option(None, "--strategy", help="default | mirrored | multiworker (tf.distribute)."),
        cache: bool | None = typer.Option(None, "--cache/--no-cache", help="Cache decoded images in memory [default: when they fit]."),
        run_name: str | None = typer.Option(None, "--run-name", help="Run folder name under --models-dir [default: <model>-<time>]."),
        run_dir: Path | None = typer.Option(None, "--run-dir", help="Run folder; an existing one is resumed / continued."),
        models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Parent of new run folders."),
        config: Path | None = typer.Option(None, "--config", "-c", help="Run config YAML; its train: section is used."),
    ) -> None:
        """Train a model on DATA/train, validate on DATA/val; writes a run folder (best.keras, history, plots).

        Rerun with the same --run-dir (or --run-name) to resume after an interruption, or with a
        higher --epochs to continue a finished run.
        """
        from imgclf.config import TrainConfig, deep_merge, drop_none, read_yaml, validate
        from imgclf.train import train

        # (not cli.common.stage_config: its first parameter is called `model`, like our option)
        base, origin = {}, "command line"
        if config is not None:
            base, origin = read_yaml(config).get("train") or {}, f"{config} [train]"
        cli = dict(
            model=model,
            weights=weights,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            optimizer=optimizer,
            schedule=schedule,
            dropout=dropout,
            label_smoothing=label_smoothing,
            class_weights=class_weights,
            image_size=image_size,
            fine_tune_layers=_parse_fine_tune_layers(fine_tune_layers),
            fine_tune_epochs=fine_tune_epochs,
            seed=seed,
            deterministic=deterministic,
            mixed_precision=mixed_precision,
            jit=jit,
            strategy=strategy,
            cache=cache,
            run_name=run_name,
        )
        cfg = validate(TrainConfig, deep_merge(base, drop_none(cli)), origin=origin)
        out = train(data, cfg, models_dir=models_dir, run_dir=run_dir)
        typer.echo(str(out))

    @app.command("models")
    def models_cmd(
        num_classes: int = typer.Option(10, "--num-classes", help="Classes assumed for the parameter count."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List the registered models: default input size, parameter count, preprocessing."""
        import json

        from imgclf.models import create_model, list_models

        rows = []
        for spec in list_models():
            m = create_model(spec.name, num_classes=num_classes)
            rows.append(
                {
                    "name": spec.name,
                    "default_size": spec.default_size,
                    "min_size": spec.min_size,
                    "params": int(m.count_params()),
                    "preprocessing": spec.preprocessing,
                    "pretrained": spec.pretrained,
                    "gradcam_layer": spec.last_conv_layer,
                    "description": spec.description,
                }
            )
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"imgclf models (parameters at the default size, {num_classes} classes)")
        for col in ("name", "input", "params", "preprocessing", "imagenet", "description"):
            table.add_column(col, justify="right" if col == "params" else "left")
        for r in rows:
            table.add_row(
                r["name"],
                f"{r['default_size']}x{r['default_size']} (min {r['min_size']})",
                f"{r['params']:,}",
                r["preprocessing"],
                "yes" if r["pretrained"] else "-",
                r["description"],
            )
        Console().print(table)

    @app.command("augment-preview")
    def augment_preview_cmd(
        data: Path = typer.Argument(..., help="Folder of class sub-folders, e.g. data/split/train."),
        out: Path = typer.Option(Path("augment_preview.png"), "--out", "-o", help="PNG to write."),
        flip: str | None = typer.Option(None, "--flip", help="none | horizontal | vertical | horizontal_and_vertical."),
        rotation: float | None = typer.Option(None, "--rotation", help="Fraction of a full turn, e.g. 0.05."),
        zoom: float | None = typer.Option(None, "--zoom", help="Fraction of the side, e.g. 0.1."),
        translation: float | None = typer.Option(None, "--translation", help="Fraction of the side, e.g. 0.1."),
        contrast: float | None = typer.Option(None, "--contrast", help="Contrast factor, e.g. 0.2."),
        brightness: float | None = typer.Option(None, "--brightness", help="Brightness factor, e.g. 0.2."),
        shear: float | None = typer.Option(None, "--shear", help="Shear factor (keras.layers.RandomShear), e.g. 0.1."),
        erasing: float | None = typer.Option(None, "--erasing", help="Random erasing probability per image, e.g. 0.5."),
        fill_mode: str | None = typer.Option(None, "--fill-mode", help="reflect | constant | nearest | wrap."),
        n_images: int = typer.Option(6, "--images", help="Rows (sample images)."),
        n_variants: int = typer.Option(7, "--variants", help="Augmented copies per row."),
        seed: int = typer.Option(42, "--seed", help="Sample choice and augmentation seed."),
        config: Path | None = typer.Option(None, "--config", "-c", help="Run config YAML; its train.augment: section is used."),
    ) -> None:
        """Write a grid PNG: each row one training image, then augmented copies of it."""
        from imgclf.config import AugmentConfig, deep_merge, drop_none, read_yaml, validate
        from imgclf.data import augment_preview
        from imgclf.ui import summary

        base = {}
        origin = "command line"
        if config is not None:
            base = (read_yaml(config).get("train") or {}).get("augment") or {}
            origin = f"{config} [train.augment]"
        cli = drop_none(
            dict(flip=flip, rotation=rotation, zoom=zoom, translation=translation, contrast=contrast,
                 brightness=brightness, shear=shear, erasing=erasing, fill_mode=fill_mode)
        )
        cfg = validate(AugmentConfig, deep_merge(base, cli), origin=origin)
        path = augment_preview(data, cfg, out, n_images=n_images, n_variants=n_variants, seed=seed)
        on = ", ".join(f"{k}={v}" for k, v in cfg.model_dump().items() if v not in (0, 0.0, "none") and k != "fill_mode")
        summary(f"augment-preview: {n_images} images x {n_variants} variants ({on or 'no augmentation'}) -> {path}")
