"""`imgclf train`: a registry model trained on DATA/train, validated on DATA/val, as a run folder.

Thin: resolve the config (a YAML `train:` section, then the options that were given), call
`imgclf.train.train`, print the run folder.
"""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import opt, plain_opt
from imgclf.config import TrainConfig


def _parse_fine_tune_layers(value: str | None) -> int | str | None:
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        from imgclf.errors import ConfigError

        raise ConfigError(f"--fine-tune-layers must be an integer or 'all', got {value!r}") from None


def register(app: typer.Typer) -> None:
    """Adds `train` to `app`."""
    T = TrainConfig

    @app.command("train")
    def train_cmd(
        data: Path = plain_opt(
            Path("data/split"), "--data", "-d", help="Split folder holding train/ and val/ (from `imgclf split`)."
        ),
        model: str | None = opt(T, "model", "--model", "-m", help="Registry name, see `imgclf models`."),
        weights: str | None = opt(T, "weights", "--weights", help="none | imagenet | PATH to a weights file."),
        epochs: int | None = opt(T, "epochs", "--epochs", "-e", help="Epochs (phase 1 for pretrained models)."),
        batch_size: int | None = opt(T, "batch_size", "--batch-size", "-b", help="Global batch size."),
        learning_rate: float | None = opt(T, "learning_rate", "--learning-rate", "--lr", help="Peak learning rate."),
        optimizer: str | None = opt(T, "optimizer", "--optimizer", help="adam | adamw | sgd."),
        schedule: str | None = opt(
            T, "schedule", "--schedule", help="plateau (ReduceLROnPlateau) | cosine (warmup + cosine decay)."
        ),
        dropout: float | None = opt(
            T, "dropout", "--dropout", help="Dropout before the classifier; none = the model's own."
        ),
        label_smoothing: float | None = opt(
            T, "label_smoothing", "--label-smoothing", help="Label smoothing in [0, 1)."
        ),
        class_weights: bool | None = opt(
            T, "class_weights", "--class-weights/--no-class-weights", help="Balanced class weights."
        ),
        image_size: int | None = opt(
            T, "image_size", "--image-size", help="Input side in pixels; other sizes are resized."
        ),
        resize: str | None = opt(
            T, "resize", "--resize", help="center_crop | pad | squish: how images of another size become input."
        ),
        fine_tune_layers: str | None = opt(
            T,
            "fine_tune_layers",
            "--fine-tune-layers",
            help="Pretrained: top backbone layers unfrozen in phase 2, or 'all'.",
        ),
        fine_tune_epochs: int | None = opt(
            T, "fine_tune_epochs", "--fine-tune-epochs", help="Pretrained: phase-2 epochs, 0 = as many as --epochs."
        ),
        seed: int | None = opt(T, "seed", "--seed", help="Seed for Python, NumPy and TensorFlow."),
        deterministic: bool | None = opt(
            T, "deterministic", "--deterministic/--no-deterministic", help="TensorFlow op determinism (slower)."
        ),
        mixed_precision: bool | None = opt(
            T,
            "mixed_precision",
            "--mixed-precision/--no-mixed-precision",
            help="float16 (GPU) / bfloat16 (CPU) compute.",
        ),
        jit: bool | None = opt(T, "jit", "--jit/--no-jit", help="XLA-compile the train step."),
        strategy: str | None = opt(
            T, "strategy", "--strategy", help="default | mirrored | multiworker (tf.distribute)."
        ),
        cache: bool | None = opt(
            T, "cache", "--cache/--no-cache", help="Cache decoded images in memory; none = when they fit."
        ),
        run_name: str | None = opt(
            T, "run_name", "--run-name", help="Run folder name under --models-dir; none = <model>-<time>."
        ),
        run_dir: Path | None = plain_opt(
            None,
            "--run-dir",
            help="Run folder; an existing one is resumed / continued.",
            default_text="models-dir/run-name",
        ),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Parent of new run folders."),
        config: Path | None = plain_opt(None, "--config", "-c", help="Run config YAML; its train: section is used."),
    ) -> None:
        """Train a model on DATA/train, validate on DATA/val; writes a run folder (best.keras, history, plots).

        Rerun with the same --run-dir (or --run-name) to resume after an interruption, or with a
        higher --epochs to continue a finished run.
        """
        from imgclf.config import stage_config
        from imgclf.runtime import import_tensorflow_quietly
        from imgclf.train import train

        cfg = stage_config(
            TrainConfig,
            "train",
            config,
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
            resize=resize,
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
        if cfg.models or cfg.repeats > 1:
            from imgclf.errors import ConfigError

            raise ConfigError(
                f"{config}: train.models / train.repeats train several runs, which `imgclf train` does not do",
                f"use `imgclf run {config}` (it trains each model, evaluates it and writes the comparison)",
            )
        import_tensorflow_quietly()
        out = train(data, cfg, models_dir=models_dir, run_dir=run_dir)
        typer.echo(str(out))
