"""`imgclf autoencoder train|reconstruct DIR`: a small convolutional autoencoder on a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.core import ImgclfTyper
from imgclf.cli.options import opt, plain_opt
from imgclf.config import stage_config
from imgclf.explore.options import AutoencoderOptions

autoencoder_app = ImgclfTyper(
    name="autoencoder",
    help="Train a small convolutional autoencoder on a folder and look at its reconstructions.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
A = AutoencoderOptions


@autoencoder_app.command("train")
def autoencoder_train(
    data_dir: Path = typer.Argument(..., help="Folder of images (labels, if any, are not used)."),
    out: Path | None = plain_opt(
        None, "--out", "-o", help="Run folder to write.", default_text="models/autoencoder-<time>"
    ),
    epochs: int | None = opt(A, "epochs", "--epochs", help="Epochs."),
    size: int | None = opt(A, "size", "--size", help="Input side in pixels, a multiple of 4."),
    bottleneck: int | None = opt(A, "bottleneck", "--bottleneck", help="Length of the code vector."),
    batch_size: int | None = opt(A, "batch_size", "--batch-size", help="Images per batch."),
    learning_rate: float | None = opt(A, "learning_rate", "--learning-rate", help="Adam learning rate."),
    seed: int | None = opt(A, "seed", "--seed", help="Random seed."),
    models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Parent of the default --out."),
) -> None:
    """Train the convolutional autoencoder; writes autoencoder.keras, autoencoder.json, history.csv."""
    from datetime import datetime

    from imgclf.runtime import import_tensorflow_quietly

    opts = stage_config(
        AutoencoderOptions,
        "autoencoder",
        None,
        epochs=epochs,
        size=size,
        bottleneck=bottleneck,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    import_tensorflow_quietly()
    from imgclf.explore.autoencoder import train_autoencoder

    run_dir = out or models_dir / f"autoencoder-{datetime.now():%Y%m%d-%H%M%S}"
    train_autoencoder(data_dir, run_dir, opts)


@autoencoder_app.command("reconstruct")
def autoencoder_reconstruct(
    data_dir: Path = typer.Argument(..., help="Folder of images to reconstruct."),
    model: Path | None = plain_opt(
        None, "--model", "-m", help="Autoencoder run folder.", default_text="the newest one under --models-dir"
    ),
    out: Path = plain_opt(Path("reconstructions.png"), "--out", "-o", help="PNG grid to write."),
    count: int = plain_opt(16, "--count", "-n", min=1, max=1024, help="Images shown, spread over the folder."),
    columns: int = plain_opt(8, "--columns", min=1, max=64, help="Images per row."),
    cell: int = plain_opt(64, "--cell", min=8, max=512, help="Side of each shown image, in pixels."),
    models_dir: Path = plain_opt(
        Path("models"), "--models-dir", help="Where the newest autoencoder run is looked for."
    ),
) -> None:
    """Write a grid of originals above their reconstructions."""
    from imgclf.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from imgclf.explore.autoencoder import latest_autoencoder_run, reconstruct_folder

    reconstruct_folder(
        data_dir, model or latest_autoencoder_run(models_dir), out, count=count, columns=columns, cell=cell
    )


def register(app: typer.Typer) -> None:
    """Adds the `autoencoder` group to `app`."""
    app.add_typer(autoencoder_app, name="autoencoder")
