"""`imgclf embed`, `imgclf cluster`, `imgclf autoencoder train|reconstruct`: explore a folder of
unlabeled images before labelling it (see `imgclf.explore`)."""

from __future__ import annotations

from pathlib import Path

import typer

MODEL_HELP = (
    "What makes the vectors: raw (pixels), autoencoder[:RUN_DIR], a training run folder, "
    "a .keras file, or a registry name (cnn, xception, densenet201, ...)."
)


autoencoder_app = typer.Typer(
    name="autoencoder",
    help="Train a small convolutional autoencoder on a folder and look at its reconstructions.",
    no_args_is_help=True,
)


def _embed_options(model, weights, size, batch_size):
    from imgclf.config import drop_none, validate
    from imgclf.explore.options import EmbedOptions

    values = drop_none({"model": model, "weights": weights, "size": size, "batch_size": batch_size})
    return validate(EmbedOptions, values, origin="options")


def embed(
    data_dir: Path = typer.Argument(..., help="Folder of images (flat, or <dir>/<class>/<file> to keep labels)."),
    out: Path = typer.Option(..., "--out", "-o", help="The .npz file to write."),
    model: str = typer.Option("raw", "--model", "-m", help=MODEL_HELP),
    weights: str | None = typer.Option(None, "--weights", help="Registry names only: imagenet, none, or a weights file."),
    size: int | None = typer.Option(None, "--size", help="Input side in pixels (default: the model's own)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Images per batch (default: 64)."),
    models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Where --model autoencoder looks."),
) -> None:
    """One vector per image (the model's 'embedding' layer), saved with the paths and labels."""
    from imgclf.explore.embed import embed_to_file

    opts = _embed_options(model, weights, size, batch_size)
    embed_to_file(data_dir, out, opts, models_dir=models_dir)


def cluster(
    source: Path = typer.Argument(..., help="Folder of images, or an .npz from `imgclf embed`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (cluster_<i>/, clusters.csv, sheets, map)."),
    k: str | None = typer.Option(None, "--k", help="Number of clusters, or 'auto' (best silhouette) (default: auto)."),
    k_min: int | None = typer.Option(None, "--k-min", help="Smallest k tried by --k auto (default: 2)."),
    k_max: int | None = typer.Option(None, "--k-max", help="Largest k tried by --k auto (default: 10)."),
    seed: int | None = typer.Option(None, "--seed", help="KMeans random_state (default: 42)."),
    n_init: int | None = typer.Option(None, "--n-init", help="KMeans restarts (default: 10)."),
    map_method: str | None = typer.Option(None, "--map", help="2-D map: pca or tsne (default: pca)."),
    sheet_images: int | None = typer.Option(None, "--sheet-images", help="Images per contact sheet (default: 64)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace clusters written earlier in --out."),
    model: str | None = typer.Option(None, "--model", "-m", help="When SOURCE is a folder: " + MODEL_HELP + " (default: raw)"),
    weights: str | None = typer.Option(None, "--weights", help="Registry names only: imagenet, none, or a weights file."),
    size: int | None = typer.Option(None, "--size", help="Input side in pixels (default: the model's own)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Images per batch (default: 64)."),
    models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Where --model autoencoder looks."),
) -> None:
    """Sort images into KMeans clusters: folders, a CSV, contact sheets and a 2-D map."""
    from imgclf.config import drop_none, validate
    from imgclf.explore.cluster import cluster_images
    from imgclf.explore.options import ClusterOptions

    values = {
        "k": k,
        "k_min": k_min,
        "k_max": k_max,
        "seed": seed,
        "n_init": n_init,
        "map": map_method,
        "sheet_images": sheet_images,
        "overwrite": overwrite or None,
    }
    opts = validate(ClusterOptions, drop_none(values), origin="options")
    eopts = _embed_options(model, weights, size, batch_size)
    cluster_images(source, out, opts, eopts, models_dir=models_dir)


@autoencoder_app.command("train")
def autoencoder_train(
    data_dir: Path = typer.Argument(..., help="Folder of images (labels, if any, are not used)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder to write (default: models/autoencoder-<time>)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Epochs (default: 10)."),
    size: int | None = typer.Option(None, "--size", help="Input side in pixels, a multiple of 4 (default: 32)."),
    bottleneck: int | None = typer.Option(None, "--bottleneck", help="Length of the code vector (default: 32)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Images per batch (default: 64)."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="Adam learning rate (default: 1e-3)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default: 42)."),
    models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Parent of the default --out."),
) -> None:
    """Train the convolutional autoencoder; writes autoencoder.keras, autoencoder.json, history.csv."""
    from datetime import datetime

    from imgclf.config import drop_none, validate
    from imgclf.explore.autoencoder import train_autoencoder
    from imgclf.explore.options import AutoencoderOptions

    values = {
        "epochs": epochs,
        "size": size,
        "bottleneck": bottleneck,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
    }
    opts = validate(AutoencoderOptions, drop_none(values), origin="options")
    run_dir = out or models_dir / f"autoencoder-{datetime.now():%Y%m%d-%H%M%S}"
    train_autoencoder(data_dir, run_dir, opts)


@autoencoder_app.command("reconstruct")
def autoencoder_reconstruct(
    data_dir: Path = typer.Argument(..., help="Folder of images to reconstruct."),
    model: Path | None = typer.Option(
        None, "--model", "-m", help="Autoencoder run folder (default: the newest one under --models-dir)."
    ),
    out: Path = typer.Option(Path("reconstructions.png"), "--out", "-o", help="PNG grid to write."),
    count: int = typer.Option(16, "--count", "-n", min=1, max=1024, help="Images shown, spread over the folder."),
    columns: int = typer.Option(8, "--columns", min=1, max=64, help="Images per row."),
    cell: int = typer.Option(64, "--cell", min=8, max=512, help="Side of each shown image, in pixels."),
    models_dir: Path = typer.Option(Path("models"), "--models-dir", help="Where the newest autoencoder run is looked for."),
) -> None:
    """Write a grid of originals above their reconstructions."""
    from imgclf.explore.autoencoder import latest_autoencoder_run, reconstruct_folder

    reconstruct_folder(data_dir, model or latest_autoencoder_run(models_dir), out, count=count, columns=columns, cell=cell)


def register(app: typer.Typer) -> None:
    """Adds `embed`, `cluster` and the `autoencoder` group to `app`."""
    app.command("embed")(embed)
    app.command("cluster")(cluster)
    app.add_typer(autoencoder_app, name="autoencoder")
