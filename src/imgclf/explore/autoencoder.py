"""A small convolutional autoencoder: train it on a folder, look at its reconstructions, and use
its bottleneck as an embedding.

Architecture (`build_autoencoder`, input side `S`, a multiple of 4; bottleneck `B`, default 32):

    image (S, S, 3) raw RGB [0, 255] -> Rescaling(1/255)
    encoder: Conv2D 32, 3x3, stride 2, ReLU   -> (S/2, S/2, 32)
             Conv2D 64, 3x3, stride 2, ReLU   -> (S/4, S/4, 64)
             Flatten -> Dense B (linear)      -> "embedding" (the bottleneck, length B)
    decoder: Dense (S/4)*(S/4)*64, ReLU -> Reshape (S/4, S/4, 64)
             Conv2DTranspose 64, 3x3, stride 2, ReLU -> (S/2, S/2, 64)
             Conv2DTranspose 32, 3x3, stride 2, ReLU -> (S, S, 32)
             Conv2D 3, 3x3, sigmoid           -> "reconstruction" (S, S, 3) in [0, 1]

Loss: mean squared error between the reconstruction and the input scaled to [0, 1]; Adam.
Only two downsamplings, with strided convolutions rather than max-pooling: in the original
experiments this project comes from, reconstructions stayed blurry until max-pooling was
reduced. The pattern (conv encoder, dense code, transposed-conv decoder) follows F. Chollet,
"Building Autoencoders in Keras" (blog.keras.io, 2016); the idea is Hinton & Salakhutdinov,
"Reducing the Dimensionality of Data with Neural Networks" (Science, 2006).

An autoencoder run directory holds:

    RUN_DIR/autoencoder.keras   the whole model (feeds raw RGB [0, 255])
    RUN_DIR/autoencoder.json    kind, size, bottleneck, epochs, final losses, data, versions
    RUN_DIR/history.csv         Keras CSVLogger, one row per epoch
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import DataError, ModelError
from imgclf.explore.loading import Reject, load_all, reasons, scan_folder
from imgclf.explore.options import AutoencoderOptions
from imgclf.explore.sheets import reconstruction_grid
from imgclf.fsutil import tmp_path_for
from imgclf.inputs import InputSpec
from imgclf.records.run import AUTOENCODER_INFO as INFO_FILE
from imgclf.records.run import AUTOENCODER_MODEL as MODEL_FILE
from imgclf.records.run import (
    AutoencoderInfo,
    is_autoencoder_run,
    library_versions,
    load_autoencoder_info,
    save_autoencoder_info,
)
from imgclf.runtime import load_keras_model
from imgclf.ui import progress, summary

HISTORY_FILE = "history.csv"
EMBEDDING_LAYER = "embedding"


def build_autoencoder(size: int = 32, bottleneck: int = 32):
    """Builds the convolutional autoencoder described in the module docstring.

    Args:
        size: int, default 32. Input side in pixels, a multiple of 4, >= 8.
        bottleneck: int, default 32. Length of the code vector (layer `"embedding"`).

    Returns:
        keras.Model (uncompiled) mapping `(batch, size, size, 3)` raw RGB in [0, 255] to
        `(batch, size, size, 3)` in [0, 1]; the bottleneck is `model.get_layer("embedding")`.

    Raises:
        ValueError: if `size` is not a multiple of 4 or below 8, or `bottleneck` < 1.
    """
    import keras
    from keras import layers

    if size < 8 or size % 4:
        raise ValueError(f"size must be a multiple of 4 and >= 8 pixels, received size={size}")
    if bottleneck < 1:
        raise ValueError(f"bottleneck must be >= 1, received bottleneck={bottleneck}")
    q = size // 4
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="enc_conv1")(x)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="enc_conv2")(x)
    x = layers.Flatten(name="enc_flatten")(x)
    z = layers.Dense(bottleneck, name=EMBEDDING_LAYER)(x)
    x = layers.Dense(q * q * 64, activation="relu", name="dec_dense")(z)
    x = layers.Reshape((q, q, 64), name="dec_reshape")(x)
    x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu", name="dec_deconv1")(x)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu", name="dec_deconv2")(x)
    out = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inp, out, name=f"conv_autoencoder_{size}px_b{bottleneck}")


def encoder_of(model):
    """Returns the encoder half of an autoencoder: input -> `"embedding"` layer output.

    Args:
        model: keras.Model built by `build_autoencoder` (or loaded from `autoencoder.keras`).

    Returns:
        keras.Model mapping `(batch, size, size, 3)` raw RGB [0, 255] to `(batch, bottleneck)`.
    """
    import keras

    return keras.Model(model.inputs, model.get_layer(EMBEDDING_LAYER).output, name="encoder")


def latest_autoencoder_run(models_dir: str | os.PathLike = "models") -> Path:
    """Returns the newest autoencoder run under `models_dir` (by `autoencoder.keras` mtime).

    Raises:
        ModelError: if there is none.
    """
    runs = [p.parent for p in Path(models_dir).glob(f"*/{INFO_FILE}") if is_autoencoder_run(p.parent)]
    if not runs:
        raise ModelError(
            f"no autoencoder run found in {models_dir}/",
            "train one with `imgclf autoencoder train DIR --out RUN_DIR`, or pass --model autoencoder:RUN_DIR",
        )
    return max(runs, key=lambda p: (p / MODEL_FILE).stat().st_mtime)


def load_autoencoder(run_dir: str | os.PathLike) -> tuple[Any, AutoencoderInfo]:
    """Loads an autoencoder run.

    Args:
        run_dir: path. A folder written by `train_autoencoder`.

    Returns:
        tuple `(model, info)`: the keras.Model and its `AutoencoderInfo` (`imgclf.records.run`).

    Raises:
        ModelError: if the folder, its json or its model file is missing or unreadable.
    """
    run_dir = Path(run_dir)
    info = load_autoencoder_info(run_dir)
    return load_keras_model(run_dir / MODEL_FILE), info


@dataclass
class AutoencoderRun:
    """What `train_autoencoder` wrote."""

    run_dir: Path
    images: int
    epochs: int
    loss: float
    val_loss: float | None
    rejects: list[Reject] = field(default_factory=list)


def _epoch_progress(total: int):
    """A Keras callback advancing an `imgclf.ui.progress` bar once per epoch."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def __init__(self, advance):
            super().__init__()
            self.advance = advance

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k in ("loss", "val_loss"))
            self.advance(status=shown)

    return EpochProgress


def train_autoencoder(
    data_dir: str | os.PathLike, run_dir: str | os.PathLike, options: AutoencoderOptions | None = None
) -> AutoencoderRun:
    """Trains the convolutional autoencoder on every image of a folder and saves the run.

    Labels are not used (the folder may be flat or ImageFolder-style). Images are prepared
    with shortest-side resize + center crop to `options.size`. A random `val_fraction` of
    the images (by `seed`) is held out to report `val_loss`.

    Args:
        data_dir: path. Folder of images (searched recursively; `_`/`.` names skipped).
        run_dir: path. Output folder; created if missing. Existing files there are replaced.
        options: AutoencoderOptions or None. Size, bottleneck, epochs, ... (defaults if None).

    Returns:
        AutoencoderRun with the number of images, final losses and skipped files.

    Raises:
        DataError: if the folder is missing or has fewer than 2 readable images.
    """
    import keras

    opts = options or AutoencoderOptions()
    data_dir, run_dir = Path(data_dir), Path(run_dir)
    files, _ = scan_folder(data_dir)
    x, _, rejects = load_all(files, InputSpec(size=opts.size), root=data_dir, description="autoencoder: loading")
    if len(x) < 2:
        raise DataError(
            f"need at least 2 readable images to train an autoencoder, found {len(x)} in {data_dir}",
            "add images to the folder",
        )
    keras.utils.set_random_seed(opts.seed)
    order = np.random.default_rng(opts.seed).permutation(len(x))
    n_val = int(round(len(x) * opts.val_fraction)) if len(x) >= 10 else 0
    val, train = order[:n_val], order[n_val:]
    run_dir.mkdir(parents=True, exist_ok=True)
    history = _fit_autoencoder(x, train, val, opts, run_dir)
    loss = float(history["loss"][-1])
    val_loss = float(history["val_loss"][-1]) if n_val else None
    save_autoencoder_info(
        run_dir,
        AutoencoderInfo(
            input_spec=InputSpec(size=opts.size),
            bottleneck=opts.bottleneck,
            options=opts.model_dump(mode="json"),
            data_dir=str(data_dir),
            images=int(len(train)),
            val_images=int(n_val),
            rejected=[dict(r.__dict__) for r in rejects],
            loss=loss,
            val_loss=val_loss,
            versions=library_versions(),
        ),
    )
    shown_val = f", val_loss {val_loss:.4f}" if val_loss is not None else ""
    summary(
        f"autoencoder: trained on {len(train)} images ({n_val} held out) for {opts.epochs} epochs, "
        f"loss {loss:.4f}{shown_val}, {len(rejects)} skipped ({reasons(rejects)}) -> {run_dir}"
    )
    return AutoencoderRun(run_dir, len(train), opts.epochs, loss, val_loss, rejects)


def _fit_autoencoder(
    x: np.ndarray, train: np.ndarray, val: np.ndarray, opts: AutoencoderOptions, run_dir: Path
) -> dict[str, list[float]]:
    """Fits a new autoencoder on `x[train]` (validated on `x[val]` if any), writes
    `history.csv` and `autoencoder.keras` (atomically) into `run_dir`; returns Keras' history."""
    import keras
    import tensorflow as tf

    def dataset(idx: np.ndarray, shuffle: bool):
        ds = tf.data.Dataset.from_tensor_slices(x[idx])
        if shuffle:
            ds = ds.shuffle(len(idx), seed=opts.seed, reshuffle_each_iteration=True)
        ds = ds.batch(opts.batch_size).map(lambda b: (b, tf.cast(b, tf.float32) / 255.0))
        return ds.prefetch(tf.data.AUTOTUNE)

    model = build_autoencoder(opts.size, opts.bottleneck)
    model.compile(optimizer=keras.optimizers.Adam(opts.learning_rate), loss="mse")
    with progress("autoencoder: training", total=opts.epochs) as advance:
        hist = model.fit(
            dataset(train, True),
            validation_data=dataset(val, False) if len(val) else None,
            epochs=opts.epochs,
            shuffle=False,  # the tf.data pipeline shuffles (seeded)
            verbose=0,
            callbacks=[
                keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE)),
                _epoch_progress(opts.epochs)(advance),
            ],
        )
    tmp = tmp_path_for(run_dir / MODEL_FILE)
    model.save(tmp)
    os.replace(tmp, run_dir / MODEL_FILE)
    return hist.history


@dataclass
class ReconstructResult:
    """What `reconstruct_folder` wrote: the grid, the images shown and their mean squared error
    (per pixel, images scaled to [0, 1])."""

    out: Path
    images: int
    mse: float
    rejects: list[Reject] = field(default_factory=list)


def reconstruct_folder(
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    count: int = 16,
    columns: int = 8,
    cell: int = 64,
) -> ReconstructResult:
    """Writes a PNG grid of original images above their autoencoder reconstructions.

    `count` images are taken evenly spaced over the sorted file list (so an ImageFolder tree
    shows several classes). Each group of rows is: originals, then reconstructions.

    Args:
        data_dir: path. Folder of images.
        run_dir: path. An autoencoder run (`train_autoencoder`).
        out: path. The PNG to write (atomically).
        count: int, default 16. Images shown (fewer if the folder has fewer).
        columns: int, default 8. Images per row.
        cell: int, default 64. Side of each shown image in pixels (nearest-neighbour upscaling
            for small images, so pixels stay visible).

    Returns:
        ReconstructResult.

    Raises:
        DataError: if the folder holds no readable image.
        ModelError: if `run_dir` is not an autoencoder run.
    """
    data_dir = Path(data_dir)
    model, info = load_autoencoder(run_dir)
    files, _ = scan_folder(data_dir)
    count = max(1, count)
    pick = sorted(set(np.linspace(0, len(files) - 1, num=min(count, len(files))).round().astype(int).tolist()))
    x, _, rejects = load_all(
        [files[i] for i in pick], info.input_spec, root=data_dir, description="reconstruct: loading"
    )
    if len(x) == 0:
        raise DataError(f"no readable image among the {len(pick)} files picked in {data_dir}", "check the folder")
    recon = np.asarray(model.predict(x, batch_size=64, verbose=0), dtype=np.float32)
    mse = float(np.mean((recon - x.astype(np.float32) / 255.0) ** 2))
    recon_u8 = np.clip(recon * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = reconstruction_grid(x, recon_u8, out, columns=columns, cell=cell)
    summary(
        f"reconstruct: {len(x)} images (mse {mse:.4f} per pixel in [0, 1]), "
        f"{len(rejects)} skipped ({reasons(rejects)}) -> {out}"
    )
    return ReconstructResult(Path(out), len(x), mse, rejects)
