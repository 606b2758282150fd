"""`imgclf export RUN --format onnx|tflite|saved_model`: a checked export of a run's model."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import plain_opt


def register(app: typer.Typer) -> None:
    """Adds `export` to `app`."""

    @app.command("export")
    def export(
        run: Path | None = typer.Argument(
            None, help="Run directory (models/<run>); the most recent run when left out."
        ),
        fmt: str = typer.Option(..., "--format", "-f", help="onnx | tflite | saved_model."),
        out: Path | None = plain_opt(None, "--out", "-o", help="Output file.", default_text="RUN/export/model.<ext>"),
        data: Path | None = plain_opt(
            None, "--data", help="Split folder whose test/ images check parity.", default_text="run.json's"
        ),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
    ) -> None:
        """Export the model to ONNX, TFLite or SavedModel and check it predicts the same (top-1 >= 99.9 %)."""
        from imgclf.runtime import import_tensorflow_quietly, resolve_model_path

        import_tensorflow_quietly()
        from imgclf.export import export_run

        export_run(resolve_model_path(run, models_dir), fmt, out=out, data_dir=data)
