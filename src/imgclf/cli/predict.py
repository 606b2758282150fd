"""`imgclf predict PATH|DIR|URL... [--model RUN|FILE]`: top-k labels with probabilities.

Kept light: nothing heavy is imported until the command runs, and only what the chosen model
needs (no TensorFlow at all for an exported .onnx / .tflite model).
"""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.engine_options import engine_config, engine_opt, ray_address_opt, stage_executor
from imgclf.cli.options import opt, plain_opt
from imgclf.config import PredictConfig, stage_config
from imgclf.errors import ConfigError
from imgclf.ui import summary


def register(app: typer.Typer) -> None:
    """Adds `predict` to `app`."""
    P = PredictConfig

    @app.command("predict")
    def predict(
        inputs: list[str] = typer.Argument(..., help="Image files, folders (recursive) or http(s) URLs."),
        model: Path | None = plain_opt(
            None,
            "--model",
            "-m",
            help="Run folder, .keras, exported .onnx/.tflite or SavedModel.",
            default_text="the most recent run",
        ),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
        top_k: int | None = opt(P, "top_k", "--top-k", "-k", help="Labels per image."),
        threshold: float | None = opt(
            P, "threshold", "--threshold", help="Flag predictions whose top probability is below this."
        ),
        batch_size: int | None = opt(P, "batch_size", "--batch-size", help="Images per model call."),
        tta: str | None = opt(
            P, "tta", "--tta", help="Test-time augmentation: none | flip (mean with the mirror image)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON to stdout."),
        csv_file: Path | None = plain_opt(None, "--csv", help="Write the predictions to this CSV file."),
        engine: str | None = engine_opt(),
        ray_address: str | None = ray_address_opt(),
        config: Path | None = plain_opt(
            None, "--config", help="Run config YAML; its predict: (and engine:) sections are used."
        ),
    ) -> None:
        """Top-k labels with probabilities for images, folders and URLs.

        An unreadable input is reported and the others go on; the exit code is 0 if at least
        one image was predicted, 1 if none was.
        """
        from imgclf.cli.render import prediction_summary, print_predictions  # loads imgclf.predict
        from imgclf.predict import predict_inputs, predictions_json, save_predictions_csv
        from imgclf.runtime import load_model

        if as_json and csv_file is not None:
            raise ConfigError("--json and --csv cannot be used together", "choose one output")
        cfg = stage_config(
            PredictConfig, "predict", config, top_k=top_k, threshold=threshold, batch_size=batch_size, tta=tta
        )
        predictor = load_model(model, models_dir)  # imports TensorFlow (quietly) only for Keras / SavedModel
        files = [p for p in inputs if "://" not in p]
        engine_cfg = engine_config(config, engine, ray_address)  # the model's calls: one thread per task
        with stage_executor(engine_cfg, [*files, predictor.source], threads=1) as executor:
            results = predict_inputs(
                inputs,
                model=predictor,
                top_k=cfg.top_k,
                threshold=cfg.threshold,
                batch_size=cfg.batch_size,
                tta=cfg.tta,
                executor=executor,
            )
        if as_json:
            typer.echo(predictions_json(results))
        elif csv_file is not None:
            save_predictions_csv(csv_file, results)
        else:
            print_predictions(results, top_k=cfg.top_k)
        line = prediction_summary(results, cfg.threshold)
        summary(
            f"{line}; model {predictor.source} ({predictor.kind})" + (f" -> {csv_file}" if csv_file is not None else "")
        )
        if not any(r.ok for r in results):
            raise typer.Exit(1)
