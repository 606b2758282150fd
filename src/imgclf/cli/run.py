"""`imgclf run CONFIG`: the whole pipeline from one YAML file."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.compare import print_leaderboard
from imgclf.cli.options import plain_opt
from imgclf.cli.train import TRACK, TRACK_EXPERIMENT, TRACK_URI
from imgclf.config import drop_none, load_run_config, parse_override
from imgclf.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Adds `run` to `app`."""

    @app.command("run")
    def run(
        config: Path = typer.Argument(..., help="Run config YAML, e.g. configs/digits.yaml."),
        set_: list[str] = typer.Option(
            [], "--set", "-s", help="Override any key: --set train.epochs=3 (repeatable; value parsed as YAML)."
        ),
        stages: str | None = plain_opt(
            None,
            "--stages",
            help="Comma-separated subset, e.g. train,evaluate,predict.",
            default_text="the config's stages",
        ),
        model: str | None = plain_opt(None, "--model", help="Override train.model.", default_text="the config's"),
        models: str | None = plain_opt(
            None,
            "--models",
            help="Several models, comma-separated (e.g. mlp,cnn): each trained and evaluated, then compared; "
            "overrides train.models.",
            default_text="the config's train.models",
        ),
        repeats: int | None = plain_opt(
            None,
            "--repeats",
            help="Seeds per model (train.seed, +1, ...; split fixed); results as mean ± std.",
            default_text="the config's train.repeats",
        ),
        epochs: int | None = plain_opt(None, "--epochs", help="Override train.epochs.", default_text="the config's"),
        data_dir: Path | None = plain_opt(None, "--data-dir", help="Override data_dir.", default_text="the config's"),
        models_dir: Path | None = plain_opt(
            None, "--models-dir", help="Override models_dir.", default_text="the config's"
        ),
        seed: int | None = plain_opt(None, "--seed", help="Override the top-level seed.", default_text="the config's"),
        track: str | None = TRACK,
        track_uri: str | None = TRACK_URI,
        track_experiment: str | None = TRACK_EXPERIMENT,
    ) -> None:
        """Run every stage of CONFIG in order: source -> clean -> prepare -> split -> train -> evaluate -> predict.

        With several models (--models, train.models) or seeds (--repeats), each gets its own run folder, and the leaderboard is written to MODELS_DIR/NAME-compare and printed.

        With --track mlflow (or track: in CONFIG) each training run is an MLflow run, its evaluation included.
        """  # noqa: E501 - typer's rich help keeps a docstring's line breaks: a paragraph is one line
        overrides = [parse_override(item) for item in set_]
        top = drop_none(
            {"data_dir": data_dir and str(data_dir), "models_dir": models_dir and str(models_dir), "seed": seed}
        )
        if model is not None and models is not None:
            raise ConfigError("give --model or --models, not both")
        names = [m.strip() for m in models.split(",") if m.strip()] if models is not None else None
        if names is not None and not names:
            raise ConfigError(f"--models {models!r} names no model", "e.g. --models mlp,cnn")
        train = drop_none({"model": model, "epochs": epochs, "models": names, "repeats": repeats})
        if train:
            top["train"] = train
        if stages:
            top["stages"] = [s.strip() for s in stages.split(",") if s.strip()]
        tracking = drop_none({"backend": track, "uri": track_uri, "experiment": track_experiment})
        if tracking:
            top["track"] = tracking
        cfg = load_run_config(config, overrides + ([top] if top else []))
        from imgclf.track import check_backend

        check_backend(cfg.track)
        if {"train", "evaluate", "predict"} & set(cfg.stages):
            from imgclf.runtime import import_tensorflow_quietly

            import_tensorflow_quietly()
        from imgclf.cli.render import print_predictions  # loads imgclf.predict
        from imgclf.run import run_pipeline

        run_pipeline(
            cfg,
            on_predictions=lambda preds: print_predictions(preds, top_k=cfg.predict.top_k),
            on_comparison=print_leaderboard,
        )
