"""`imgclf embed DIR --model RUN|NAME|autoencoder:DIR|raw --out FILE.npz`: one vector per image."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import opt, plain_opt
from imgclf.config import stage_config
from imgclf.explore.options import EmbedOptions

MODEL_HELP = (
    "What makes the vectors: raw (pixels), autoencoder[:RUN_DIR], a training run folder, "
    "a .keras file, or a registry name (cnn, xception, densenet201, ...)."
)


def embed_options(model: str | None, weights: str | None, size: int | None, batch_size: int | None) -> EmbedOptions:
    """`EmbedOptions` from the options of `embed` / `cluster`, validated once; quiet TensorFlow
    is imported when a model (not raw pixels) makes the vectors."""

    opts = stage_config(EmbedOptions, "embed", None, model=model, weights=weights, size=size, batch_size=batch_size)
    if opts.model != "raw":
        from imgclf.runtime import import_tensorflow_quietly

        import_tensorflow_quietly()
    return opts


def register(app: typer.Typer) -> None:
    """Adds `embed` to `app`."""
    E = EmbedOptions

    @app.command("embed")
    def embed(
        data_dir: Path = typer.Argument(..., help="Folder of images (flat, or <dir>/<class>/<file> to keep labels)."),
        out: Path = typer.Option(..., "--out", "-o", help="The .npz file to write."),
        model: str | None = opt(E, "model", "--model", "-m", help=MODEL_HELP),
        weights: str | None = opt(
            E, "weights", "--weights", help="Registry names only: imagenet, none, or a weights file."
        ),
        size: int | None = opt(E, "size", "--size", help="Input side in pixels."),
        batch_size: int | None = opt(E, "batch_size", "--batch-size", help="Images per batch."),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Where --model autoencoder looks."),
    ) -> None:
        """One vector per image (the model's 'embedding' layer), saved with the paths and labels."""
        opts = embed_options(model, weights, size, batch_size)
        from imgclf.explore.embed import embed_to_file

        embed_to_file(data_dir, out, opts, models_dir=models_dir)
