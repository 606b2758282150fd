"""`imgclf predict`: top-k labels for image files, folders and URLs, from a run or an exported model.

The predict stage only: inputs are expanded by `imgclf.inputs.collect_inputs`, the model comes
from `imgclf.runtime.load_model` (any kind, with its class names and `InputSpec`), and images
are loaded by `imgclf.inputs.iter_batches` -- `load_image`, the very function training used --
in batches of `batch_size` (never one `predict()` call per image): through `tf.data` for Keras
and SavedModel models (TensorFlow is loaded anyway), through a thread pool for ONNX and TFLite
models, which never import TensorFlow (their cold start is the reason to export). URLs go
through the scraper's safe downloader (`imgclf.scrape.download.fetch_image`).

Exit status policy (used by the CLI): an input that cannot be read (missing file, not an image,
download failure...) is reported for that input and the others go on; the command succeeds if
at least one input was predicted and fails (exit 1) if none was.

This module is on the cold-start path: it imports no TensorFlow, Keras, scikit-learn,
matplotlib or scraping code at module level.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.data import tf_batches
from imgclf.errors import ImageError
from imgclf.inputs import Fetch, InputItem, collect_inputs, iter_batches
from imgclf.parallel import default_workers
from imgclf.runtime import TTA_MODES, Predictor, load_model


@dataclass
class DownloadOptions:
    """Safe-downloader limits for URL inputs (see `imgclf.scrape.download.fetch_image`).

    Attributes:
        max_bytes: int, default 20,000,000. Hard cap per download, in bytes.
        connect_timeout: float, default 10. Seconds.
        read_timeout: float, default 30. Seconds.
        retries: int, default 2. Extra tries after a timeout, connection error, 429 or 5xx.
    """

    max_bytes: int = 20_000_000
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 2


def make_fetch(dl: DownloadOptions | None = None) -> Fetch:
    """A `url -> bytes` function over the scraper's safe downloader, for `iter_batches`.

    Args:
        dl: DownloadOptions or None (defaults).

    Returns:
        callable `url -> bytes`; it raises the downloader's errors (`iter_batches` reports them
        as `download_failed` for that URL).
    """
    dl = dl or DownloadOptions()

    def fetch(url: str) -> bytes:
        from imgclf.scrape.download import fetch_image  # lazy: keeps requests off the file path

        return fetch_image(
            url,
            max_bytes=dl.max_bytes,
            connect_timeout=dl.connect_timeout,
            read_timeout=dl.read_timeout,
            retries=dl.retries,
        ).data

    return fetch


@dataclass
class Prediction:
    """The answer for one input.

    Attributes:
        input: str. The path or URL as given (or an upload's file name).
        top_k: list of (label, probability) pairs, most probable first; empty on error.
        low_confidence: bool. True if the top probability is below the threshold.
        error: str or None. Why the input could not be predicted (then `top_k` is empty).
    """

    input: str
    top_k: list[tuple[str, float]] = field(default_factory=list)
    low_confidence: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str | None:
        return self.top_k[0][0] if self.top_k else None

    @property
    def probability(self) -> float | None:
        return self.top_k[0][1] if self.top_k else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`imgclf predict --json`, `imgclf serve`): input, label, probability,
        low_confidence, top_k, error."""
        return {
            "input": self.input,
            "label": self.label,
            "probability": self.probability,
            "low_confidence": self.low_confidence,
            "top_k": [{"label": lab, "probability": p} for lab, p in self.top_k],
            "error": self.error,
        }


def prediction_of(name: str, probs: np.ndarray, class_names: Sequence[str], top_k: int, threshold: float) -> Prediction:
    """The `Prediction` of one image from its probability vector.

    Args:
        name: str. The input's name.
        probs: np.ndarray `(num_classes,)`. Class probabilities.
        class_names: sequence of str. Label of each probability.
        top_k: int >= 1. Labels kept (capped at the number of classes).
        threshold: float in [0, 1]. A top-1 probability below it sets `low_confidence`.

    Returns:
        Prediction, labels sorted by probability (ties: lower class index first).
    """
    order = np.argsort(-probs, kind="stable")[: min(top_k, len(class_names))]
    top = [(class_names[j], float(probs[j])) for j in order]
    return Prediction(input=name, top_k=top, low_confidence=top[0][1] < threshold)


def error_prediction(name: str, error: ImageError) -> Prediction:
    """The `Prediction` of an input that could not be loaded (`error` = `"reason: detail"`)."""
    return Prediction(input=name, error=f"{error.reason}" + (f": {error.detail}" if error.detail else ""))


def predict_inputs(
    items: Sequence[str | os.PathLike | InputItem],
    *,
    model: str | os.PathLike | Predictor | None = None,
    models_dir: str | os.PathLike = "models",
    top_k: int = 3,
    threshold: float = 0.5,
    batch_size: int = 64,
    workers: int | None = None,
    download: DownloadOptions | None = None,
    show_progress: bool = True,
    tta: str = "none",
) -> list[Prediction]:
    """Predicts image files, folders and URLs; unreadable inputs are reported, not fatal.

    Args:
        items: sequence of paths / folders / URLs / InputItems (see
            `imgclf.inputs.collect_inputs`).
        model: Predictor, path or None, default None. A loaded Predictor, or anything
            `imgclf.runtime.load_model` accepts (run folder, `.keras`, `.onnx`, `.tflite`,
            SavedModel folder); None = the most recent run in `models_dir`.
        models_dir: path, default "models". Used when `model` is None.
        top_k: int >= 1, default 3. Labels returned per image (capped at the number of classes).
        threshold: float in [0, 1], default 0.5. A top-1 probability below it sets
            `low_confidence`.
        batch_size: int, default 64. Images per model call.
        workers: int or None. Images decoded / downloaded in parallel; None = min(8, 2 x CPUs).
        download: DownloadOptions or None. Limits for URL inputs.
        show_progress: bool, default True. Show a progress bar (stderr) for more than one batch.
        tta: str, default "none". Test-time augmentation: "none" or "flip" (the mean with the
            mirror image; see `imgclf.runtime.Predictor.predict_batch`).

    Returns:
        list of Prediction, one per image, in input order (folders expanded); failed inputs
        have `error` set and no labels.

    Raises:
        DataError: if `items` is empty.
        ModelError: if the model cannot be loaded.
        ValueError: if `top_k` < 1 or `tta` is unknown.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, received top_k={top_k}")
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, received tta={tta!r}")
    inputs = collect_inputs(items)
    predictor = model if isinstance(model, Predictor) else load_model(model, models_dir)
    predictor.check_tta(tta)
    results: list[Prediction] = []
    if show_progress and len(inputs) > batch_size:
        from imgclf.ui import progress

        bar = progress("predict", total=len(inputs))
    else:
        from contextlib import nullcontext

        bar = nullcontext(lambda *a, **kw: None)
    source = tf_batches if predictor.uses_tensorflow else None
    with bar as advance:
        for batch in iter_batches(
            inputs,
            predictor.spec,
            batch_size=batch_size,
            workers=workers or default_workers(),
            fetch=make_fetch(download),
            source=source,
        ):
            probs = predictor.predict_batch(batch.images, tta)
            row = {i: r for r, i in enumerate(batch.ok)}
            for i, item in enumerate(batch.items):
                if i in batch.errors:
                    results.append(error_prediction(item.name, batch.errors[i]))
                else:
                    results.append(prediction_of(item.name, probs[row[i]], predictor.class_names, top_k, threshold))
            advance(len(batch.items))
    return results
