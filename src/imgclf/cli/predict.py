"""`imgclf predict`, `imgclf export`, `imgclf explain`: using a trained model.

Kept light: nothing heavy is imported until a command runs, and `predict` imports only what the
chosen model needs (no TensorFlow at all for an exported .onnx / .tflite model).
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Adds `predict`, `export` and `explain` to `app`."""

    @app.command("predict")
    def predict(
        inputs: list[str] = typer.Argument(..., help="Image files, folders (recursive) or http(s) URLs."),
        model: Path | None = typer.Option(
            None, "--model", "-m", help="Run folder, .keras, exported .onnx/.tflite or SavedModel (default: most recent run)."
        ),
        models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
        top_k: int | None = typer.Option(None, "--top-k", "-k", help="Labels per image (default: 3)."),
        threshold: float | None = typer.Option(
            None, "--threshold", help="Flag predictions whose top probability is below this (default: 0.5)."
        ),
        batch_size: int | None = typer.Option(None, "--batch-size", help="Images per model call (default: 64)."),
        tta: str | None = typer.Option(
            None, "--tta", help="Test-time augmentation: none | flip (mean with the mirror image) (default: none)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON to stdout."),
        csv_file: Path | None = typer.Option(None, "--csv", help="Write the predictions to this CSV file."),
        config: Path | None = typer.Option(None, "--config", help="Run config YAML; its predict: section is used."),
    ) -> None:
        """Top-k labels with probabilities for images, folders and URLs.

        An unreadable input is reported and the others go on; the exit code is 0 if at least
        one image was predicted, 1 if none was.
        """
        import json

        from imgclf.cli.common import stage_config
        from imgclf.config import PredictConfig
        from imgclf.errors import ConfigError

        if as_json and csv_file is not None:
            raise ConfigError("--json and --csv cannot be used together", "choose one output")
        cfg = stage_config(
            PredictConfig, "predict", config, top_k=top_k, threshold=threshold, batch_size=batch_size, tta=tta
        )
        from imgclf.predict import load_model, predict_inputs, prediction_summary, predictions_csv, print_predictions
        from imgclf.ui import summary

        predictor = load_model(model, models_dir)
        results = predict_inputs(
            inputs, model=predictor, top_k=cfg.top_k, threshold=cfg.threshold, batch_size=cfg.batch_size, tta=cfg.tta
        )
        if as_json:
            typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
        elif csv_file is not None:
            from imgclf.fsutil import atomic_write_text

            atomic_write_text(csv_file, predictions_csv(results))
        else:
            print_predictions(results, top_k=cfg.top_k)
        line = prediction_summary(results, cfg.threshold)
        summary(f"{line}; model {predictor.source} ({predictor.kind})" + (f" -> {csv_file}" if csv_file is not None else ""))
        if not any(r.ok for r in results):
            raise typer.Exit(1)

    @app.command("export")
    def export(
        run: Path | None = typer.Argument(None, help="Run directory (models/<run>) (default: the most recent run)."),
        fmt: str = typer.Option(..., "--format", "-f", help="onnx | tflite | saved_model."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output file (default: RUN/export/model.<ext>)."),
        data: Path | None = typer.Option(None, "--data", help="Split folder whose test/ images check parity (default: run.json's)."),
        models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
    ) -> None:
        """Export the model to ONNX, TFLite or SavedModel and check it predicts the same (top-1 >= 99.9 %)."""
        from imgclf.export import export_run
        from imgclf.rundir import latest_run

        export_run(run if run is not None else latest_run(models_dir), fmt, out=out, data_dir=data)

    @app.command("explain")
    def explain(
        image: Path = typer.Argument(..., help="An image file."),
        model: Path | None = typer.Option(None, "--model", "-m", help="Run folder or its .keras file (default: most recent run)."),
        out: Path | None = typer.Option(None, "--out", "-o", help="PNG to write (default: <image>_gradcam.png next to the image)."),
        class_name: str | None = typer.Option(None, "--class", help="Class to explain (default: the predicted class)."),
        layer: str | None = typer.Option(None, "--layer", help="Target layer (default: last_conv, else the last 4-D layer)."),
        models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
    ) -> None:
        """Grad-CAM overlay PNG (same size as IMAGE): where the model looked for its top class."""
        from imgclf.explain import explain_image
        from imgclf.rundir import latest_run
        from imgclf.ui import summary

        result, dest = explain_image(
            image, model if model is not None else latest_run(models_dir), out=out, class_name=class_name, layer_name=layer
        )
        summary(f"explain: {image} -> {result.label} ({result.probability:.3f}), Grad-CAM on layer {result.layer!r} -> {dest}")
