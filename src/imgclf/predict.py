"""`imgclf predict`: top-k labels for image files, folders and URLs, from a run or an exported model.

The stage is map -> reduce -> apply (docs/architecture.md), with the model in between:

- list: `imgclf.inputs.collect_inputs` expands files, folders and URLs into `InputItem`s.
- map: `load_input(item, spec=..., download=...)`, pure and picklable: one input -> its model
  input `(size, size, 3)` uint8, or the `ImageError` saying why it cannot be used. It is
  `imgclf.inputs.load_item` -- `load_image`, the very function training used -- with URLs
  fetched by the scraper's safe downloader. It runs through an `imgclf.engine` executor
  (`make_executor("local", workers)` by default: a thread pool, which never imports
  TensorFlow), grouped into batches of `batch_size` one batch ahead of the model
  (`imgclf.parallel.batched_ahead`).
- model: `score_batch` runs the model on each batch in the driver (never one `predict()` call
  per image) and gives one `ScoredInput` per input: its probabilities or its error. On a Ray
  cluster (`executor.name == "ray"`) the map and the model run together on the workers,
  batch by batch (`score_inputs`: the same batches of `batch_size` inputs in input order, so
  the same model calls), each worker loading the model once; the driver receives only the
  probabilities.
- reduce: `reduce_predictions(scored, ...)`, pure: the `Prediction` rows in input order and the
  `PredictSummary` (counts, failures by reason). An unreadable input is a row with its error,
  never dropped.
- apply: `predictions_json`, `predictions_csv` / `save_predictions_csv` (the CLI's `--json` and
  `--csv` outputs).

`predict_inputs` wires these together. Exit status policy (used by the CLI): an input that
cannot be read (missing file, not an image, download failure...) is reported for that input
and the others go on; the command succeeds if at least one input was predicted and fails
(exit 1) if none was.

This module is on the cold-start path: it imports no TensorFlow, Keras, scikit-learn or
matplotlib at module level (`imgclf.runtime` imports a model's runtime only when it loads one).
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from typing import Any

import numpy as np

from imgclf.engine import Executor, make_executor
from imgclf.errors import ImageError
from imgclf.fsutil import atomic_write_text
from imgclf.inputs import Fetch, InputItem, InputSpec, collect_inputs, load_item
from imgclf.net.image import fetch_image
from imgclf.parallel import batched_ahead
from imgclf.runtime import TTA_MODES, Predictor, load_model
from imgclf.ui import progress


# ---------------------------------------------------------------------------------- the map
@dataclass
class DownloadOptions:
    """Safe-downloader limits for URL inputs (see `imgclf.net.image.fetch_image`).

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


def fetch_url(url: str, *, download: DownloadOptions) -> bytes:
    """Downloads one image URL with the scraper's safe downloader; returns its bytes.

    Args:
        url: str. An http(s) URL.
        download: DownloadOptions. Size cap, timeouts, retries.

    Returns:
        bytes, the encoded image.

    Raises:
        ImageError: (a `DownloadError`) when the download fails or is not an image.
    """
    return fetch_image(
        url,
        max_bytes=download.max_bytes,
        connect_timeout=download.connect_timeout,
        read_timeout=download.read_timeout,
        retries=download.retries,
    ).data


def make_fetch(dl: DownloadOptions | None = None) -> Fetch:
    """A picklable `url -> bytes` function over the scraper's safe downloader (`fetch_url`).

    Args:
        dl: DownloadOptions or None (defaults).

    Returns:
        callable `url -> bytes`; it raises the downloader's errors (`imgclf.inputs.load_item`
        reports them as `download_failed` for that URL).
    """
    return partial(fetch_url, download=dl or DownloadOptions())


def load_input(item: InputItem, *, spec: InputSpec, download: DownloadOptions | None = None) -> np.ndarray | ImageError:
    """The map of `imgclf predict`: one input -> its model input, or why it cannot be used.

    Pure and picklable (pass it as `functools.partial(load_input, spec=spec, download=dl)`):
    it depends only on its arguments, reads the file (or fetches the URL) and prints nothing.

    Args:
        item: InputItem. A file, URL or bytes (`imgclf.inputs.collect_inputs`).
        spec: InputSpec. How the model's training turned files into input (its `run.json`).
        download: DownloadOptions or None, default None (defaults). Limits for a URL.

    Returns:
        np.ndarray `(size, size, 3)` uint8 in [0, 255], or the `ImageError` of an input that
        cannot be read (missing file, not an image, truncated, download failed...).

    Raises:
        LoaderError: a bug in the loader (anything but an unreadable input), naming the input,
            so the run stops instead of dropping the image (`imgclf.inputs.load_item`).
    """
    return load_item(item, spec, make_fetch(download) if item.url is not None else None)


# ------------------------------------------------------------------------ the model (driver)
@dataclass(frozen=True, eq=False)  # no field-wise ==: `probs` is an array
class ScoredInput:
    """One input after the model: its class probabilities, or why it could not be used.

    Attributes:
        index: int. Position among all inputs (the reduce sorts by it).
        name: str. The path or URL as given, or an upload's file name.
        probs: np.ndarray `(num_classes,)` float in [0, 1], or None when the input failed.
        error: ImageError or None. Why the input could not be used.
    """

    index: int
    name: str
    probs: np.ndarray | None = None
    error: ImageError | None = None


def stack_loaded(
    loaded: Sequence[np.ndarray | ImageError], shape: tuple[int, int, int]
) -> tuple[np.ndarray, list[int]]:
    """The model batch of a list of map results: the images that loaded, stacked.

    Args:
        loaded: sequence of `load_input` results.
        shape: tuple `(size, size, 3)`. The shape of one model input (for an empty batch).

    Returns:
        tuple `(images, ok)`: uint8 `(len(ok), size, size, 3)`, and the positions in `loaded`
        of its rows, ascending.
    """
    ok = [i for i, a in enumerate(loaded) if isinstance(a, np.ndarray)]
    arrays = [a for a in loaded if isinstance(a, np.ndarray)]
    return (np.stack(arrays) if arrays else np.zeros((0, *shape), np.uint8)), ok


def scored_inputs(
    names: Sequence[str], loaded: Sequence[np.ndarray | ImageError], probs: np.ndarray | None, start: int = 0
) -> list[ScoredInput]:
    """Joins map results with the model's rows for the ones that loaded.

    Args:
        names: sequence of str. The inputs' names, one per `loaded`.
        loaded: sequence of `load_input` results.
        probs: np.ndarray `(n_loaded, num_classes)`, one row per array of `loaded` in order, or
            None when none loaded.
        start: int, default 0. Index of `loaded[0]` among all inputs.

    Returns:
        list of ScoredInput, one per input, in order.
    """
    out, row = [], 0
    for i, (name, a) in enumerate(zip(names, loaded)):
        if isinstance(a, ImageError):
            out.append(ScoredInput(start + i, name, error=a))
        else:
            assert probs is not None
            out.append(ScoredInput(start + i, name, probs=probs[row]))
            row += 1
    return out


def score_batch(
    predictor: Predictor,
    items: Sequence[InputItem],
    loaded: Sequence[np.ndarray | ImageError],
    start: int = 0,
    tta: str = "none",
) -> list[ScoredInput]:
    """Runs the model once on the inputs of one batch that loaded.

    Args:
        predictor: Predictor. The model.
        items: sequence of InputItem. The batch's inputs.
        loaded: sequence of `load_input` results, one per item.
        start: int, default 0. Index of `items[0]` among all inputs.
        tta: str, default "none". "none" or "flip" (`Predictor.predict_batch`).

    Returns:
        list of ScoredInput, one per item, in order.
    """
    images, ok = stack_loaded(loaded, predictor.spec.shape)
    probs = predictor.predict_batch(images, tta) if ok else None
    return scored_inputs([it.name for it in items], loaded, probs, start)


#: Inputs loaded at once inside one batch of `score_inputs` (files and downloads wait on I/O).
LOAD_THREADS = 4


_MODEL_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _load_once(source: str, stamp: float) -> Predictor:
    return load_model(source)


def _worker_model(source: str, stamp: float) -> Predictor:
    """The model of `source` in this worker process, loaded once (`stamp`: its mtime), by one
    thread at a time (two threads importing TensorFlow at once deadlock)."""
    with _MODEL_LOCK:
        return _load_once(source, stamp)


def score_inputs(
    items: Sequence[InputItem], *, model: str, tta: str = "none", download: DownloadOptions | None = None
) -> list[ScoredInput]:
    """The map and the model together, on one batch of inputs (where a cluster runs them).

    Pure but for a per-process cache of the loaded model (loaded once per worker): loads each
    input (`load_input`, a few at once), runs the model once on those that loaded
    (`score_batch`).

    Args:
        items: sequence of InputItem. One model batch, in input order.
        model: str. The model's path (`Predictor.source`), the same on every node.
        tta: str, default "none". "none" or "flip".
        download: DownloadOptions or None. Limits for URL inputs.

    Returns:
        list of ScoredInput, indices from 0 (the caller numbers them).

    Raises:
        ModelError: the model cannot be loaded here.
        LoaderError: a bug in the loader.
    """
    predictor = _worker_model(model, os.stat(model).st_mtime)
    load = partial(load_input, spec=predictor.spec, download=download)
    with ThreadPoolExecutor(min(LOAD_THREADS, max(1, len(items)))) as pool:
        loaded = list(pool.map(load, items))
    return score_batch(predictor, items, loaded, 0, tta)


# ------------------------------------------------------------------------------- the reduce
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


@dataclass(frozen=True)
class PredictSummary:
    """Counts over a set of predictions (the CLI's one-line summary).

    Attributes:
        total: int. Inputs.
        predicted: int. Inputs the model predicted.
        low_confidence: int. Predicted inputs whose top probability is below the threshold.
        failed: dict str -> int. Inputs that could not be used, by reason (sorted by reason).
    """

    total: int
    predicted: int
    low_confidence: int
    failed: dict[str, int]

    @property
    def failed_total(self) -> int:
        return self.total - self.predicted


def summarize(predictions: Sequence[Prediction]) -> PredictSummary:
    """Counts predictions: predicted, low-confidence, failed by reason (the part of `error`
    before its first colon)."""
    ok = [p for p in predictions if p.ok]
    failed: dict[str, int] = {}
    for p in predictions:
        if not p.ok:
            reason = (p.error or "error").split(":")[0]
            failed[reason] = failed.get(reason, 0) + 1
    return PredictSummary(
        total=len(predictions),
        predicted=len(ok),
        low_confidence=sum(p.low_confidence for p in ok),
        failed=dict(sorted(failed.items())),
    )


@dataclass
class PredictPlan:
    """What the reduce of `imgclf predict` gives.

    Attributes:
        predictions: list of Prediction, one per input, in input order.
        summary: PredictSummary.
    """

    predictions: list[Prediction]
    summary: PredictSummary


def reduce_predictions(
    scored: Sequence[ScoredInput], class_names: Sequence[str], top_k: int = 3, threshold: float = 0.5
) -> PredictPlan:
    """The reduce of `imgclf predict`: prediction rows and their summary, in input order.

    Pure: no I/O, and the same answer whatever order `scored` comes in (it is sorted by index).

    Args:
        scored: sequence of ScoredInput, one per input.
        class_names: sequence of str. The model's labels, in the order of its outputs.
        top_k: int >= 1, default 3. Labels per input (capped at the number of classes).
        threshold: float in [0, 1], default 0.5. A top-1 probability below it sets
            `low_confidence`.

    Returns:
        PredictPlan. A failed input is a row with its `error` (and counted in
        `summary.failed`), never dropped.
    """
    rows = []
    for s in sorted(scored, key=lambda s: s.index):
        if s.probs is not None:
            rows.append(prediction_of(s.name, s.probs, class_names, top_k, threshold))
        else:
            rows.append(error_prediction(s.name, s.error or ImageError(s.name, "unreadable", "no probabilities")))
    return PredictPlan(rows, summarize(rows))


# -------------------------------------------------------------------------------- the apply
def predictions_json(predictions: Sequence[Prediction]) -> str:
    """`imgclf predict --json`: a JSON list of `Prediction.to_dict()` records, indented."""
    return json.dumps([p.to_dict() for p in predictions], indent=2)


def predictions_csv(predictions: Sequence[Prediction]) -> str:
    """CSV text: input, label, probability, low_confidence, top_k (`label:prob;...`), error."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["input", "label", "probability", "low_confidence", "top_k", "error"])
    for p in predictions:
        w.writerow(
            [
                p.input,
                p.label or "",
                "" if p.probability is None else f"{p.probability:.6f}",
                int(p.low_confidence) if p.ok else "",
                ";".join(f"{lab}:{prob:.6f}" for lab, prob in p.top_k),
                p.error or "",
            ]
        )
    return buf.getvalue()


def save_predictions_csv(path: str | os.PathLike, predictions: Sequence[Prediction]) -> None:
    """Writes `predictions_csv(predictions)` to `path`, atomically (`imgclf predict --csv`)."""
    atomic_write_text(path, predictions_csv(predictions))


# ------------------------------------------------------------------------------- the stage
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
    executor: Executor | None = None,
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
        batch_size: int >= 1, default 64. Images per model call.
        workers: int or None. Images decoded / downloaded in parallel; None = min(8, 2 x CPUs).
            Ignored when `executor` is given.
        download: DownloadOptions or None. Limits for URL inputs.
        show_progress: bool, default True. Show a progress bar (stderr) for more than one batch.
        tta: str, default "none". Test-time augmentation: "none" or "flip" (the mean with the
            mirror image; see `imgclf.runtime.Predictor.predict_batch`).
        executor: Executor or None, default None (`imgclf.engine.make_executor("local",
            workers)`). Where the map (`load_input`) runs; on a Ray executor the model runs
            there too (`score_inputs`), loaded from `model`'s path on each worker.

    Returns:
        list of Prediction, one per image, in input order (folders expanded); failed inputs
        have `error` set and no labels.

    Raises:
        DataError: if `items` is empty.
        ModelError: if the model cannot be loaded.
        ValueError: if `top_k` < 1, `batch_size` < 1 or `tta` is unknown.
    """
    _check_options(top_k, batch_size, tta)
    inputs = collect_inputs(items)
    predictor = model if isinstance(model, Predictor) else load_model(model, models_dir)
    predictor.check_tta(tta)
    executor = executor or make_executor("local", workers)
    scored: list[ScoredInput] = []
    with _progress(show_progress and len(inputs) > batch_size, len(inputs)) as advance:
        if executor.name == "ray":  # the model runs on the workers, on the same batches
            score = partial(score_inputs, model=str(predictor.source), tta=tta, download=download)
            batches = [inputs[i : i + batch_size] for i in range(0, len(inputs), batch_size)]
            for part in executor.map(score, batches):
                scored += [replace(s, index=len(scored) + k) for k, s in enumerate(part)]
                advance(len(part))
        else:
            load = partial(load_input, spec=predictor.spec, download=download)
            for loaded in batched_ahead(executor.map(load, inputs), batch_size):
                start = len(scored)
                scored += score_batch(predictor, inputs[start : start + len(loaded)], loaded, start, tta)
                advance(len(loaded))
    return reduce_predictions(scored, predictor.class_names, top_k, threshold).predictions


def _check_options(top_k: int, batch_size: int, tta: str) -> None:
    """Raises ValueError naming the first invalid option."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, received top_k={top_k}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, received batch_size={batch_size}")
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, received tta={tta!r}")


@contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr when `show`, else a no-op `advance`."""
    if show:
        with progress("predict", total=total) as advance:
            yield advance
    else:
        yield lambda *a, **kw: None
