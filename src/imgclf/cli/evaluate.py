"""`imgclf evaluate [RUN] [--split test] [--data DIR] [--top-k K] [--json]`."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import opt, plain_opt
from imgclf.cli.train import TRACK, TRACK_EXPERIMENT, TRACK_URI, track_config
from imgclf.config import EvaluateConfig, stage_config


def register(app: typer.Typer) -> None:
    """Adds `evaluate` to `app`."""
    E = EvaluateConfig

    @app.command("evaluate")
    def evaluate(
        run: Path | None = typer.Argument(
            None, help="Run directory (models/<run>); the most recent run when left out."
        ),
        split: str | None = opt(E, "split", "--split", help="train | val | test."),
        data: Path | None = plain_opt(
            None, "--data", help="Split folder (holds train/ val/ test/).", default_text="the one in run.json"
        ),
        top_k: int | None = opt(E, "top_k", "--top-k", help="k of the top-k accuracy."),
        batch_size: int | None = opt(E, "batch_size", "--batch-size", help="Images per model call."),
        tta: str | None = opt(
            E, "tta", "--tta", help="Test-time augmentation: none | flip (mean with the mirror image)."
        ),
        resamples: int | None = opt(
            E, "bootstrap_resamples", "--resamples", help="Bootstrap resamples of the confidence intervals."
        ),
        level: float | None = opt(E, "ci_level", "--level", help="Confidence level of the intervals, in (0, 1)."),
        leak_audit: bool | None = opt(
            E,
            "leak_audit",
            "--leak-audit/--no-leak-audit",
            help="Count evaluated images with a verified near copy in train / val.",
        ),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
        as_json: bool = typer.Option(False, "--json", help="Print metrics.json to stdout."),
        config: Path | None = plain_opt(None, "--config", help="Run config YAML; its evaluate: section is used."),
        track: str | None = TRACK,
        track_uri: str | None = TRACK_URI,
        track_experiment: str | None = TRACK_EXPERIMENT,
    ) -> None:
        """Test metrics, confusion matrix, calibration, worst errors and an HTML report, written into RUN.

        With --track mlflow the metrics, their intervals and the files also go to the run's MLflow run.
        """
        import json

        from imgclf.runtime import import_tensorflow_quietly, resolve_model_path

        cfg = stage_config(
            EvaluateConfig,
            "evaluate",
            config,
            split=split,
            top_k=top_k,
            batch_size=batch_size,
            tta=tta,
            bootstrap_resamples=resamples,
            ci_level=level,
            leak_audit=leak_audit,
        )
        tracking = track_config(config, track, track_uri, track_experiment)
        run_dir = resolve_model_path(run, models_dir)
        import_tensorflow_quietly()
        from imgclf.evaluate import evaluate_run

        metrics = evaluate_run(
            run_dir,
            split=cfg.split,
            data_dir=data,
            top_k=cfg.top_k,
            batch_size=cfg.batch_size,
            tta=cfg.tta,
            bootstrap_resamples=cfg.bootstrap_resamples,
            ci_level=cfg.ci_level,
            bootstrap_seed=cfg.bootstrap_seed,
            leak_audit=cfg.leak_audit,
            track=tracking,
        )
        if as_json:
            typer.echo(json.dumps(metrics, indent=2))
