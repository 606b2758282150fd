"""`imgclf explain IMAGE [--model RUN]`: a Grad-CAM overlay of where the model looked."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import plain_opt
from imgclf.ui import summary


def register(app: typer.Typer) -> None:
    """Adds `explain` to `app`."""

    @app.command("explain")
    def explain(
        image: Path = typer.Argument(..., help="An image file."),
        model: Path | None = plain_opt(
            None, "--model", "-m", help="Run folder or its .keras file.", default_text="the most recent run"
        ),
        out: Path | None = plain_opt(
            None, "--out", "-o", help="PNG to write.", default_text="<image>_gradcam.png next to the image"
        ),
        class_name: str | None = plain_opt(
            None, "--class", help="Class to explain.", default_text="the predicted class"
        ),
        layer: str | None = plain_opt(
            None, "--layer", help="Target layer.", default_text="the model's last_conv, else the last 4-D layer"
        ),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
    ) -> None:
        """Grad-CAM overlay PNG (same size as IMAGE): where the model looked for its top class."""
        from imgclf.runtime import import_tensorflow_quietly, resolve_model_path

        import_tensorflow_quietly()
        from imgclf.explain import explain_image

        result, dest = explain_image(
            image, resolve_model_path(model, models_dir), out=out, class_name=class_name, layer_name=layer
        )
        summary(
            f"explain: {image} -> {result.label} ({result.probability:.3f}), "
            f"Grad-CAM on layer {result.layer!r} -> {dest}"
        )
