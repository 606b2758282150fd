"""`imgclf run CONFIG`: the whole pipeline from one YAML file."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Adds `run` to `app`."""

    @app.command("run")
    def run(
        config: Path = typer.Argument(..., help="Run config YAML, e.g. configs/digits.yaml."),
        set_: list[str] = typer.Option(
            [], "--set", "-s", help="Override any key: --set train.epochs=3 (repeatable; value parsed as YAML)."
        ),
        stages: str | None = typer.Option(
            None, "--stages", help="Comma-separated subset, e.g. train,evaluate,predict."
        ),
        model: str | None = typer.Option(None, "--model", help="Override train.model."),
        epochs: int | None = typer.Option(None, "--epochs", help="Override train.epochs."),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Override data_dir."),
        models_dir: Path | None = typer.Option(None, "--models-dir", help="Override models_dir."),
        seed: int | None = typer.Option(None, "--seed", help="Override the top-level seed."),
    ) -> None:
        """Run every stage of CONFIG in order: source -> clean -> prepare -> split -> train -> evaluate -> predict."""
        from imgclf.config import drop_none, load_run_config, parse_override
        from imgclf.pipeline import run_pipeline

        overrides = [parse_override(item) for item in set_]
        top = drop_none({"data_dir": data_dir and str(data_dir), "models_dir": models_dir and str(models_dir), "seed": seed})
        train = drop_none({"model": model, "epochs": epochs})
        if train:
            top["train"] = train
        if stages:
            top["stages"] = [s.strip() for s in stages.split(",") if s.strip()]
        cfg = load_run_config(config, overrides + ([top] if top else []))
        run_pipeline(cfg)
