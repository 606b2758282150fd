"""`imgclf evaluate [RUN] [--split test] [--data DIR] [--top-k K] [--json]`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Adds `evaluate` to `app`."""

    @app.command("evaluate")
    def evaluate(
        run: Path | None = typer.Argument(None, help="Run directory (models/<run>) (default: the most recent run)."),
        split: str | None = typer.Option(None, "--split", help="train | val | test (default: test)."),
        data: Path | None = typer.Option(None, "--data", help="Split folder (holds train/ val/ test/) (default: the one in run.json)."),
        top_k: int | None = typer.Option(None, "--top-k", help="k of the top-k accuracy (default: 3)."),
        batch_size: int | None = typer.Option(None, "--batch-size", help="Images per model call (default: 64)."),
        tta: str | None = typer.Option(
            None, "--tta", help="Test-time augmentation: none | flip (mean with the mirror image) (default: none)."
        ),
        models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
        as_json: bool = typer.Option(False, "--json", help="Print metrics.json to stdout."),
        config: Path | None = typer.Option(None, "--config", help="Run config YAML; its evaluate: section is used."),
    ) -> None:
        """Test metrics, confusion matrix, calibration, worst errors and an HTML report, written into RUN."""
        import json

        from imgclf.cli.common import stage_config
        from imgclf.config import EvaluateConfig
        from imgclf.evaluate import evaluate_run
        from imgclf.rundir import latest_run

        cfg = stage_config(EvaluateConfig, "evaluate", config, split=split, top_k=top_k, batch_size=batch_size, tta=tta)
        run_dir = run if run is not None else latest_run(models_dir)
        metrics = evaluate_run(run_dir, split=cfg.split, data_dir=data, top_k=cfg.top_k, batch_size=cfg.batch_size, tta=cfg.tta)
        if as_json:
            typer.echo(json.dumps(metrics, indent=2))
