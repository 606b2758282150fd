"""`imgclf export`: a run's model as ONNX, TFLite (LiteRT) or a TensorFlow SavedModel, checked.

Conversion uses Keras' own exporters (`keras.Model.export`, Keras >= 3.10): `format="onnx"`
goes through tf2onnx, `format="litert"` through `tf.lite.TFLiteConverter` (from a SavedModel),
`format="tf_saved_model"` writes a SavedModel with a `serve` endpoint. The batch dimension stays
dynamic in every format. Preprocessing is inside the model, so the exported file takes raw RGB
`(batch, size, size, 3)` float32 in [0, 255] like `best.keras`.

Every export is checked for parity: the exported file is loaded with its own runtime (the one
`imgclf predict --model FILE` uses) and compared with the Keras model on the run's test images.
Top-1 agreement must be >= `MIN_AGREEMENT` (99.9 %); the largest absolute probability difference
is reported. The check runs before the file is put in place: an export that fails it is
deleted (an earlier good export at the same path is kept) and `ModelError` raised. When the
test split cannot be found, `PARITY_FALLBACK_IMAGES` random images are used instead (and this
is said).

Next to the exported file a sidecar `<file>.json` holds the class names, input size, resize
policy, source run and the parity figures; `imgclf predict --model FILE` reads it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import DataError, ModelError, suggest
from imgclf.evaluate import list_split, resolve_split_dir
from imgclf.fsutil import tmp_path_for
from imgclf.inputs import iter_batches
from imgclf.records.run import BEST_MODEL, EXPORT_DIR, ExportMeta, RunInfo, load_run_info, save_export_meta
from imgclf.runtime import Predictor, load_exported, load_keras_model
from imgclf.ui import progress, summary, warn

#: Formats `export_run` writes, and the file name each gets inside `<run>/export/`.
FORMATS: dict[str, str] = {"onnx": "model.onnx", "tflite": "model.tflite", "saved_model": "saved_model"}

#: Keras' name for each format (`keras.Model.export(format=...)`).
_KERAS_FORMAT = {"onnx": "onnx", "tflite": "litert", "saved_model": "tf_saved_model"}

#: Smallest top-1 agreement with the Keras model an export must reach (fraction).
MIN_AGREEMENT = 0.999

#: Random images used for the parity check when the run's test split is not available.
PARITY_FALLBACK_IMAGES = 64


@dataclass
class ExportResult:
    """What `export_run` wrote and how well it agrees with the Keras model.

    Attributes:
        path: Path. The exported file (or SavedModel folder).
        format: str. `"onnx"`, `"tflite"` or `"saved_model"`.
        n_images: int. Images compared in the parity check.
        parity_source: str. Where they came from (the test folder, or "random").
        agreement: float in [0, 1]. Fraction of images with the same top-1 class.
        max_prob_diff: float. Largest absolute difference of any class probability.
        size_bytes: int. Size of the export on disk, in bytes.
    """

    path: Path
    format: str
    n_images: int
    parity_source: str
    agreement: float
    max_prob_diff: float
    size_bytes: int


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def _parity_batches(
    run_dir: Path, info: RunInfo, data_dir: str | os.PathLike | None, batch_size: int
) -> tuple[Iterator[tuple[np.ndarray, int]], int, str]:
    """Batches `(images, files in the batch)` for the parity check: the run's test split loaded
    by the one loader (`imgclf.inputs.iter_batches` with the run's `InputSpec`), else random
    images; with the number of files and where they come from."""
    try:
        split_dir = resolve_split_dir(run_dir, "test", data_dir)
        listing = list_split(split_dir, info.class_names)
        batches = (
            (b.images, len(b.items)) for b in iter_batches(listing.items(), info.input_spec, batch_size=batch_size)
        )
        return batches, len(listing), str(split_dir)
    except DataError as exc:
        if data_dir is not None:
            raise
        warn(f"export: parity check on {PARITY_FALLBACK_IMAGES} random images, the test split is not available ({exc})")
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(PARITY_FALLBACK_IMAGES, *info.input_spec.shape), dtype=np.uint8)
        chunks = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
        return ((c, len(c)) for c in chunks), len(images), "random"


@dataclass
class _Parity:
    """Running totals of the parity check: top-1 agreements, images compared, largest difference."""

    agree: int = 0
    total: int = 0
    max_diff: float = 0.0

    def add(self, probs: np.ndarray, reference: np.ndarray) -> None:
        """Adds one batch: the export's and the Keras model's probabilities, `(batch, classes)`."""
        self.agree += int(np.sum(probs.argmax(1) == reference.argmax(1)))
        self.total += len(probs)
        self.max_diff = max(self.max_diff, float(np.max(np.abs(probs - reference))))

    @property
    def agreement(self) -> float:
        return self.agree / self.total


def _convert(model: Any, tmp: Path, format: str, source: Path) -> None:
    """`model.export` to `tmp` in `format`; a missing converter or a failure is a `ModelError`."""
    try:
        model.export(str(tmp), format=_KERAS_FORMAT[format], verbose=False)
    except ImportError as exc:
        _remove(tmp)
        pkg = {"onnx": "tf2onnx onnx onnxruntime", "tflite": "ai-edge-litert"}.get(format, "tensorflow")
        raise ModelError(
            f"export to {format} needs a package that is not installed ({exc})", f"pip install {pkg}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - converter failures come as many exception types
        _remove(tmp)
        raise ModelError(f"export of {source} to {format} failed: {type(exc).__name__}: {exc}") from None


def _check_parity(
    model: Any, exported: Predictor, format: str, batches: Iterator[tuple[np.ndarray, int]], n_files: int
) -> _Parity:
    """Runs the exported model (its own runtime) and the Keras model on `batches`; returns the totals."""
    parity = _Parity()
    with progress(f"export: parity ({format})", total=n_files) as advance:
        for images, n_batch_files in batches:
            advance(n_batch_files)
            if len(images):
                reference = np.asarray(model(images.astype(np.float32), training=False))
                parity.add(exported.predict_batch(images), reference)
    return parity


def _require_parity(parity: _Parity, format: str, source: str, min_agreement: float) -> None:
    """Raises unless the parity check saw images and reached `min_agreement`."""
    if parity.total == 0:
        raise DataError(f"no readable image for the parity check in {source}", "pass --data DIR with a test/ folder")
    if parity.agreement < min_agreement:
        raise ModelError(
            f"export to {format} FAILED the parity check: top-1 agreement {parity.agreement:.4%} < "
            f"{min_agreement:.1%} on {parity.total} images ({source}), largest probability difference "
            f"{parity.max_diff:.3g}; nothing was written",
            "report this with the model name; try another --format",
        )


def export_run(
    run_dir: str | os.PathLike,
    format: str,
    out: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    min_agreement: float = MIN_AGREEMENT,
) -> ExportResult:
    """Exports `run_dir/best.keras` and checks that the export predicts the same.

    Args:
        run_dir: path. A run directory written by `imgclf train`.
        format: str. One of `"onnx"`, `"tflite"`, `"saved_model"`.
        out: path or None. Destination file (folder for saved_model); None =
            `run_dir/export/model.onnx` | `model.tflite` | `saved_model/`.
        data_dir: path or None. The split folder whose `test/` images are used for the parity
            check; None = the `data_dir` in `run.json`.
        batch_size: int, default 64. Images per model call in the parity check.
        min_agreement: float in [0, 1], default `MIN_AGREEMENT` (0.999). Smallest top-1
            agreement accepted.

    Returns:
        ExportResult.

    Raises:
        ModelError: if `format` is unknown, the converter is not installed,
            conversion fails, or the parity check fails (then nothing is written).
        DataError: if `data_dir` is given but holds no usable test images.
        LoaderError: a bug while loading a parity image (not an unreadable one).
    """
    if format not in FORMATS:
        raise ModelError(f"unknown export format {format!r}.{suggest(format, FORMATS)}", f"use one of {list(FORMATS)}")
    run_dir = Path(run_dir)
    info = load_run_info(run_dir)
    dest = Path(out) if out is not None else run_dir / EXPORT_DIR / FORMATS[format]
    dest.parent.mkdir(parents=True, exist_ok=True)
    model = load_keras_model(run_dir / BEST_MODEL)
    model(np.zeros((1, *info.input_spec.shape), np.float32), training=False)  # exporters need a called model
    tmp = tmp_path_for(dest)
    _remove(tmp)
    _convert(model, tmp, format, run_dir / BEST_MODEL)
    # the check runs on the temporary file: an export that fails it never replaces a good one
    passed = False
    try:
        exported = load_exported(tmp, format, info.class_names, info.input_spec)
        batches, n_files, source = _parity_batches(run_dir, info, data_dir, batch_size)
        parity = _check_parity(model, exported, format, batches, n_files)
        del exported
        _require_parity(parity, format, source, min_agreement)
        passed = True
    finally:
        if not passed:
            _remove(tmp)
    _remove(dest)
    os.replace(tmp, dest)
    result = ExportResult(dest, format, parity.total, source, parity.agreement, parity.max_diff, _size(dest))
    meta = ExportMeta(
        class_names=info.class_names,
        input_spec=info.input_spec,
        model=info.model,
        format=format,
        source_run=str(run_dir),
        run_name=run_dir.name,
        train_flip=info.train_flip,
        parity={
            "images": parity.total,
            "source": source,
            "top1_agreement": parity.agreement,
            "max_prob_diff": parity.max_diff,
        },
    )
    save_export_meta(dest, meta)
    summary(
        f"export: {format} -> {dest} ({result.size_bytes / 1e6:.2f} MB); parity on {parity.total} images "
        f"({source}): top-1 agreement {parity.agreement:.2%}, largest probability difference {parity.max_diff:.2e}"
    )
    return result
