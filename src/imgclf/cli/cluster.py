"""`imgclf cluster DIR|FILE.npz --k K|auto --out OUT`: candidate classes for unlabeled images."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.embed import MODEL_HELP, embed_options
from imgclf.cli.options import opt, plain_opt
from imgclf.config import stage_config
from imgclf.explore.options import ClusterOptions, EmbedOptions


def register(app: typer.Typer) -> None:
    """Adds `cluster` to `app`."""
    C, E = ClusterOptions, EmbedOptions

    @app.command("cluster")
    def cluster(
        source: Path = typer.Argument(..., help="Folder of images, or an .npz from `imgclf embed`."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (cluster_<i>/, clusters.csv, sheets, map)."),
        k: str | None = opt(C, "k", "--k", help="Number of clusters, or 'auto' (best silhouette)."),
        k_min: int | None = opt(C, "k_min", "--k-min", help="Smallest k tried by --k auto."),
        k_max: int | None = opt(C, "k_max", "--k-max", help="Largest k tried by --k auto."),
        seed: int | None = opt(C, "seed", "--seed", help="KMeans random_state."),
        n_init: int | None = opt(C, "n_init", "--n-init", help="KMeans restarts."),
        map_method: str | None = opt(C, "map", "--map", help="2-D map: pca or tsne."),
        sheet_images: int | None = opt(C, "sheet_images", "--sheet-images", help="Images per contact sheet."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace clusters written earlier in --out."),
        model: str | None = opt(E, "model", "--model", "-m", help="When SOURCE is a folder: " + MODEL_HELP),
        weights: str | None = opt(
            E, "weights", "--weights", help="Registry names only: imagenet, none, or a weights file."
        ),
        size: int | None = opt(E, "size", "--size", help="Input side in pixels."),
        batch_size: int | None = opt(E, "batch_size", "--batch-size", help="Images per batch."),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Where --model autoencoder looks."),
    ) -> None:
        """Sort images into KMeans clusters: folders, a CSV, contact sheets and a 2-D map."""
        from imgclf.explore.cluster import cluster_images

        opts = stage_config(
            ClusterOptions,
            "cluster",
            None,
            k=k,
            k_min=k_min,
            k_max=k_max,
            seed=seed,
            n_init=n_init,
            map=map_method,
            sheet_images=sheet_images,
            overwrite=overwrite or None,
        )
        eopts = embed_options(model, weights, size, batch_size)
        cluster_images(source, out, opts, eopts, models_dir=models_dir)
