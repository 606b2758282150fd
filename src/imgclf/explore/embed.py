"""`imgclf embed`: one vector per image, from raw pixels, an autoencoder or a trained network.

Where the vectors come from (`EmbedOptions.model`):

- `raw`: the prepared image `(size, size, 3)` flattened and scaled to [0, 1] (length
  `size * size * 3`). A baseline that needs no model.
- `autoencoder`, `autoencoder:RUN_DIR`, or an autoencoder run folder: the bottleneck
  (layer `"embedding"`) of `imgclf.explore.autoencoder`.
- a training run folder (`run.json` + `best.keras`) or a `.keras` file: the output of the
  layer named `"embedding"` (the global-pooled penultimate layer of every registry model).
- a registry name (`cnn`, `xception`, `densenet201`, ...): a fresh model from
  `imgclf.models.registry.create_model` with `--weights` (`imagenet`, `none` or a file), cut at
  `"embedding"`. With `none`, the vectors come from random weights: only useful for testing.

Images are loaded by the one loader (`imgclf.inputs.load_image`; a training run's own
`InputSpec`, else shortest-side resize + center crop) and streamed in batches through `tf.data`
(`Dataset.from_generator` + `prefetch`, so decoding the next batch overlaps the model working on
this one). Unreadable files are skipped and recorded with their reason; a bug in the loader
stops the command (`imgclf.errors.LoaderError`).

The `.npz` file (`Embeddings.save`) holds:

    embeddings        float32 (n, d)
    paths             str (n,)  relative to the embedded folder, "/"-separated
    labels            str (n,)  class folder names, only for ImageFolder-style folders
    model             str       what made the vectors, e.g. "raw", "autoencoder:models/ae"
    root              str       the embedded folder (absolute), used by `cluster` to find images
    size              int       image side in pixels fed to the model
    rejected_paths, rejected_reasons, rejected_details   str (m,)  skipped files
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import ConfigError, DataError, ModelError, suggest
from imgclf.explore import autoencoder as ae
from imgclf.explore.loading import Reject, load_batches, probe_size, reasons, report_rejects, scan_folder
from imgclf.explore.options import EmbedOptions
from imgclf.fsutil import atomic_write_bytes
from imgclf.inputs import InputSpec
from imgclf.records.run import BEST_MODEL, load_run_info
from imgclf.runtime import load_keras_model
from imgclf.ui import summary

EMBEDDING_LAYER = "embedding"


@dataclass
class Embeddings:
    """Vectors for the images of one folder.

    Attributes:
        embeddings: float32 array `(n, d)`.
        paths: list of str, length n. Relative to `root`, "/"-separated.
        labels: list of str (length n) or None. Class folder names (ImageFolder layout).
        model: str. What made the vectors.
        root: str. The folder the paths are relative to.
        size: int. Image side in pixels fed to the model.
        rejects: list of Reject. Files skipped, with the reason.
    """

    embeddings: np.ndarray
    paths: list[str]
    labels: list[str] | None
    model: str
    root: str
    size: int
    rejects: list[Reject] = field(default_factory=list)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the `.npz` file described in the module docstring, atomically.

        Returns:
            Path: `path`.
        """
        arrays: dict[str, Any] = {
            "embeddings": np.asarray(self.embeddings, dtype=np.float32),
            "paths": np.asarray(self.paths, dtype=np.str_),
            "model": np.asarray(self.model, dtype=np.str_),
            "root": np.asarray(self.root, dtype=np.str_),
            "size": np.asarray(self.size, dtype=np.int64),
            "rejected_paths": np.asarray([r.path for r in self.rejects], dtype=np.str_),
            "rejected_reasons": np.asarray([r.reason for r in self.rejects], dtype=np.str_),
            "rejected_details": np.asarray([r.detail for r in self.rejects], dtype=np.str_),
        }
        if self.labels is not None:
            arrays["labels"] = np.asarray(self.labels, dtype=np.str_)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Embeddings:
        """Reads a file written by `save` (no pickles are loaded).

        Raises:
            DataError: if the file is missing, not an `.npz`, or lacks `embeddings` / `paths`.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"embeddings file not found: {path}", "write one with `imgclf embed DIR --out FILE.npz`")
        try:
            with np.load(path, allow_pickle=False) as d:
                keys = set(d.files)
                missing = {"embeddings", "paths"} - keys
                if missing:
                    raise DataError(
                        f"{path} lacks {', '.join(sorted(missing))}", "write it with `imgclf embed DIR --out FILE.npz`"
                    )
                emb = np.asarray(d["embeddings"], dtype=np.float32)
                paths = [str(p) for p in d["paths"]]
                labels = [str(v) for v in d["labels"]] if "labels" in keys else None
                model = str(d["model"]) if "model" in keys else "unknown"
                root = str(d["root"]) if "root" in keys else ""
                size = int(d["size"]) if "size" in keys else 0
                rejects = []
                if "rejected_paths" in keys:
                    rejects = [
                        Reject(str(p), str(r), str(t))
                        for p, r, t in zip(d["rejected_paths"], d["rejected_reasons"], d["rejected_details"])
                    ]
        except DataError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
            raise DataError(
                f"{path} is not a readable embeddings .npz file ({exc})",
                "write one with `imgclf embed DIR --out FILE.npz`",
            ) from None
        if emb.ndim != 2 or len(emb) != len(paths) or (labels is not None and len(labels) != len(paths)):
            raise DataError(f"{path}: embeddings {emb.shape}, {len(paths)} paths and labels do not match")
        return cls(emb, paths, labels, model, root, size, rejects)


@dataclass
class Encoder:
    """A resolved `--model`: its display name, input side in pixels, the Keras model cut at the
    embedding layer (None for `raw`), and how files become its input (a training run's own
    `InputSpec`; a center crop at `size` otherwise)."""

    name: str
    size: int
    model: Any | None = None
    spec: InputSpec | None = None

    def __post_init__(self) -> None:
        if self.spec is None:
            self.spec = InputSpec(size=self.size)


def _embedding_submodel(model: Any, source: str):
    import keras

    try:
        layer = model.get_layer(EMBEDDING_LAYER)
    except ValueError:
        names = [layer.name for layer in model.layers]
        raise ModelError(
            f"{source} has no layer named {EMBEDDING_LAYER!r}.{suggest(EMBEDDING_LAYER, names)}",
            "use a model built by imgclf (every registry model names its pooled penultimate layer 'embedding')",
        ) from None
    return keras.Model(model.inputs, layer.output, name=f"{model.name}_embedding")


def _import_registry():
    try:
        from imgclf.models import registry  # imports Keras
    except ImportError:
        return None
    return registry


def _input_side(model: Any, source: str) -> int | None:
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    if len(shape) != 4 or shape[-1] != 3:
        raise ModelError(f"{source} takes inputs of shape {shape}, not (batch, height, width, 3) images")
    return int(shape[1]) if shape[1] is not None and shape[1] == shape[2] else None


def resolve_encoder(
    spec: str,
    *,
    weights: str | None = None,
    size: int | None = None,
    files: list[Path] | None = None,
    models_dir: str | os.PathLike = "models",
) -> Encoder:
    """Turns a `--model` value into an `Encoder` (see the module docstring for the forms).

    Args:
        spec: str. `raw`, `autoencoder`, `autoencoder:RUN_DIR`, a run folder, a `.keras` file,
            or a registry name.
        weights: str or None. Registry names only: `none`, `imagenet` or a weights file path.
        size: int or None. Input side in pixels; None = the model's own. A model with a fixed
            input size refuses a different one.
        files: list of Path or None. Used to choose the `raw` size when `size` is None.
        models_dir: path, default "models". Where plain `autoencoder` looks for the newest run.

    Returns:
        Encoder.

    Raises:
        ModelError: unknown name (with close matches), unreadable run or file, no
            `"embedding"` layer.
        ConfigError: `size` conflicts with the model's fixed input size.
    """
    if weights is not None and (
        spec in ("raw", "autoencoder") or spec.startswith("autoencoder:") or Path(spec).exists()
    ):
        raise ConfigError(f"--weights applies to registry model names only, not to --model {spec}")
    if spec == "raw":
        side = size or (probe_size(files) if files else 32)
        return Encoder("raw", side)
    run_path = _autoencoder_run(spec, models_dir)
    if run_path is not None:
        return _autoencoder_encoder(run_path, size)
    path = Path(spec)
    if path.is_dir():
        return _run_encoder(path, size)
    if path.suffix == ".keras" or path.is_file():
        return _file_encoder(path, size)
    return _registry_encoder(spec, weights, size)


def _autoencoder_run(spec: str, models_dir: str | os.PathLike) -> Path | None:
    """The autoencoder run folder `spec` names (`autoencoder`, `autoencoder:DIR`, a folder), or None."""
    if spec == "autoencoder":
        return ae.latest_autoencoder_run(models_dir)
    if spec.startswith("autoencoder:"):
        return Path(spec.split(":", 1)[1])
    if ae.is_autoencoder_run(spec):
        return Path(spec)
    return None


def _autoencoder_encoder(run_path: Path, size: int | None) -> Encoder:
    """The bottleneck of an autoencoder run, at the run's own input size."""
    model, info = ae.load_autoencoder(run_path)
    fixed = info.size
    if size is not None and size != fixed:
        raise ConfigError(f"--size {size} differs from the autoencoder's input size {fixed} ({run_path})")
    return Encoder(f"autoencoder:{run_path}", fixed, ae.encoder_of(model), info.input_spec)


def _run_encoder(path: Path, size: int | None) -> Encoder:
    """The `"embedding"` layer of a training run's `best.keras`, with the run's `InputSpec`."""
    info = load_run_info(path)
    if not (path / BEST_MODEL).is_file():
        raise ModelError(f"{path} has no {BEST_MODEL}", "wait for `imgclf train` to finish, or pick another run")
    if size is not None and size != info.image_size:
        raise ConfigError(f"--size {size} differs from the run's image size {info.image_size} ({path})")
    model = load_keras_model(path / BEST_MODEL)  # the one model runtime (safe_mode, imgclf's layers)
    return Encoder(f"run:{path}", info.image_size, _embedding_submodel(model, str(path / BEST_MODEL)), info.input_spec)


def _file_encoder(path: Path, size: int | None) -> Encoder:
    """The `"embedding"` layer of a `.keras` file, at its fixed input size (else `size`)."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    model = load_keras_model(path)
    fixed = _input_side(model, str(path))
    if fixed is not None and size is not None and size != fixed:
        raise ConfigError(f"--size {size} differs from the input size {fixed} of {path}")
    side = fixed or size
    if side is None:
        raise ConfigError(f"{path} accepts any image size: pass --size")
    return Encoder(f"file:{path}", side, _embedding_submodel(model, str(path)))


def _registry_encoder(spec: str, weights: str | None, size: int | None) -> Encoder:
    """A fresh registry model with `weights`, cut at `"embedding"`."""
    registry = _import_registry()
    if registry is None:
        raise ModelError(
            f"unknown model {spec!r}: not raw, autoencoder, a run folder or a .keras file, "
            "and the model registry is not available"
        )
    try:
        spec_info = registry.get_spec(spec)
    except ModelError as exc:
        raise ModelError(
            f"{exc.message} It is not raw, autoencoder[:RUN_DIR], an existing run folder or .keras file either",
            exc.hint,
        ) from None
    side = size or int(spec_info.default_size)
    w = None if weights in (None, "none") else weights
    model = registry.create_model(spec, num_classes=2, input_shape=(side, side, 3), weights=w)
    return Encoder(f"{spec}" + (f" (weights {weights})" if weights else ""), side, _embedding_submodel(model, spec))


def _encode(files: list[Path], enc: Encoder, batch_size: int, root: Path, rejects: list[Reject]):
    """Returns `(vectors float32 (n_kept, d), kept positions int64 (n_kept,))`."""
    chunks: list[np.ndarray] = []
    kept: list[np.ndarray] = []

    def batches():
        spec = enc.spec or InputSpec(size=enc.size)
        yield from load_batches(files, spec, batch_size, rejects, root=root, description="embed")

    if enc.model is None:
        for x, idx in batches():
            chunks.append(x.reshape(len(x), -1).astype(np.float32) / 255.0)
            kept.append(idx)
    else:
        import tensorflow as tf

        spec = (
            tf.TensorSpec((None, enc.size, enc.size, 3), tf.uint8),
            tf.TensorSpec((None,), tf.int64),
        )
        ds = tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)
        for x, idx in ds:
            y = np.asarray(enc.model.predict_on_batch(x), dtype=np.float32)
            if y.ndim > 2:  # a feature map: global average pooling over the spatial axes
                y = y.mean(axis=tuple(range(1, y.ndim - 1)))
            chunks.append(y.reshape(len(y), -1))
            kept.append(idx.numpy())
    if not chunks:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(chunks), np.concatenate(kept)


def embed_folder(
    data_dir: str | os.PathLike,
    options: EmbedOptions | None = None,
    *,
    models_dir: str | os.PathLike = "models",
) -> Embeddings:
    """Computes one vector per readable image of a folder.

    Args:
        data_dir: path. A folder of images, flat or ImageFolder-style (`<dir>/<class>/<file>`,
            or `<dir>/{train,val,test}/<class>/<file>`); labels are kept in the latter cases.
        options: EmbedOptions or None. `model`, `weights`, `size`, `batch_size`.
        models_dir: path, default "models". Where `--model autoencoder` looks.

    Returns:
        Embeddings (see the class), with every skipped file in `rejects`.

    Raises:
        DataError: if the folder is missing, empty, or holds no readable image.
        ModelError, ConfigError: see `resolve_encoder`.
    """
    opts = options or EmbedOptions()
    root = Path(data_dir)
    files, labels = scan_folder(root)
    enc = resolve_encoder(opts.model, weights=opts.weights, size=opts.size, files=files, models_dir=models_dir)
    rejects: list[Reject] = []
    vectors, kept = _encode(files, enc, opts.batch_size, root, rejects)
    if len(kept) == 0:
        raise DataError(
            f"none of the {len(files)} files in {root} could be read as an image"
            f" (first: {rejects[0].path}: {rejects[0].reason})",
            "check the folder contents",
        )
    paths = [files[i].relative_to(root).as_posix() for i in kept]
    kept_labels = [labels[i] for i in kept] if labels is not None else None
    return Embeddings(vectors, paths, kept_labels, enc.name, str(root.resolve()), enc.size, rejects)


def embed_to_file(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    options: EmbedOptions | None = None,
    *,
    models_dir: str | os.PathLike = "models",
) -> Embeddings:
    """`embed_folder` + `Embeddings.save`, with skipped files listed and one summary line.

    Skipped files are also written to `<out without .npz>.rejects.csv` when there are any.

    Returns:
        Embeddings.
    """
    emb = embed_folder(data_dir, options, models_dir=models_dir)
    out = Path(out)
    emb.save(out)
    rej_csv = out.with_name(out.stem + ".rejects.csv") if emb.rejects else None
    report_rejects(emb.rejects, rej_csv)
    lab = f", labels from {len(set(emb.labels))} class folders" if emb.labels is not None else ""
    summary(
        f"embed: {len(emb.paths)} images -> {emb.embeddings.shape[1]}-d vectors ({emb.model}, "
        f"{emb.size}x{emb.size} px){lab}, {len(emb.rejects)} skipped ({reasons(emb.rejects)}) -> {out}"
    )
    return emb
