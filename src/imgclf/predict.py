"""`imgclf predict`: top-k labels for image files, folders and URLs, from a run or an exported model.

Images are prepared exactly as in training (`imgclf.prepare.load_for_model`: safe open, EXIF
orientation, RGB, shortest side resized to the run's `image_size`, center crop) and predicted
in batches of `batch_size` (never one `predict()` call per image). Two loaders feed the
batches, both bounded in memory whatever the folder size and both preparing pixels with the
very code that prepared the training images (Pillow; `tf.image` resizing differs):

- Keras and SavedModel models (TensorFlow is loaded anyway): a `tf.data` pipeline over the
  input indices, `map(tf.numpy_function(load_for_model ...), num_parallel_calls=workers,
  deterministic=True)` -> `batch` -> `prefetch(AUTOTUNE)`. An input that fails to load yields
  a blank image with an "ok" flag of False, and its error is reported instead of a label.
- ONNX and TFLite models: a thread pool decoding one batch ahead of the model, because that
  path must not import TensorFlow at all (its cold start is the reason to export).

Models (`load_model`):

- a run directory (`models/<run>/`: `best.keras` + `run.json`) or a `.keras` file inside one,
  loaded with `keras.saving.load_model(..., safe_mode=True)` (a model file from elsewhere is
  untrusted input: no Python lambdas are deserialized);
- an exported `.onnx` file (ONNX Runtime) or `.tflite` file (LiteRT: `ai_edge_litert`, else
  `tflite_runtime`, else TensorFlow's `tf.lite.Interpreter`) — these never import TensorFlow
  when their runtime is installed, which is what makes a cold start fast;
- an exported SavedModel folder (TensorFlow).

An exported model carries its class names and input size in a sidecar `<file>.json` written by
`imgclf export` (`EXPORT_META_SUFFIX`).

Exit status policy (used by the CLI): an input that cannot be read (missing file, not an image,
download failure...) is reported for that input and the others go on; the command succeeds if
at least one input was predicted and fails (exit 1) if none was.

This module is on the cold-start path: it imports no TensorFlow, Keras, scikit-learn,
matplotlib or scraping code at module level.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import DataError, ImageError, ImgclfError, ModelError
from imgclf.images import IMAGE_EXTENSIONS, list_images
from imgclf.parallel import default_workers, threaded_batches
from imgclf.prepare import load_for_model
from imgclf.rundir import BEST_MODEL, RUN_FILE, load_run_info

#: Suffix of the metadata file written next to an exported model (`model.onnx.json`).
EXPORT_META_SUFFIX = ".json"

#: Model file kinds `load_model` understands.
MODEL_KINDS = ("keras", "onnx", "tflite", "saved_model")
TENSORFLOW_KINDS = ("keras", "saved_model")  # kinds whose runtime is TensorFlow: tf.data loader
TTA_MODES = ("none", "flip")  # test-time augmentation, see Predictor.predict_batch


# ------------------------------------------------------------------------------------ models
class Predictor:
    """A loaded classifier: raw RGB batches in, class probabilities out.

    Attributes:
        class_names: list of str. Index i is output unit i.
        image_size: int. Input side in pixels; inputs are `(batch, image_size, image_size, 3)`.
        resize: str. Resize policy of the run (`"center_crop"`).
        kind: str. One of `MODEL_KINDS`.
        source: Path. The file or folder the model was loaded from.
        train_flip: str or None. The run's `train.augment.flip` ("none", "horizontal", ...);
            None when unknown (an exported model).
    """

    def __init__(
        self, kind: str, source: Path, class_names: list[str], image_size: int, resize: str, fn: Any,
        train_flip: str | None = None,
    ):
        self.kind = kind
        self.train_flip = train_flip
        self.source = source
        self.class_names = list(class_names)
        self.image_size = int(image_size)
        self.resize = resize
        self._fn = fn

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def predict_batch(self, images: np.ndarray, tta: str = "none") -> np.ndarray:
        """Class probabilities of one batch.

        Args:
            images: np.ndarray of shape `(batch, image_size, image_size, 3)`, uint8 or float,
                raw RGB values in [0, 255] (the model rescales inside).
            tta: str, default "none". Test-time augmentation: "none", or "flip" = the mean of
                the probabilities of each image and of its left-right mirror image (two model
                calls; the horizontal-flip test-time augmentation of Krizhevsky et al. 2012 and
                fastai's `Learner.tta`). Only sound for a model trained with horizontal flips.

        Returns:
            np.ndarray of shape `(batch, num_classes)`, float32, rows summing to 1.

        Raises:
            ValueError: if `tta` is not one of `TTA_MODES`.
        """
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, received tta={tta!r}")
        x = np.ascontiguousarray(images, dtype=np.float32)
        if x.shape[0] == 0:
            return np.zeros((0, self.num_classes), np.float32)
        probs = np.asarray(self._fn(x), dtype=np.float32)
        if tta == "flip":
            mirrored = np.asarray(self._fn(np.ascontiguousarray(x[:, :, ::-1, :])), dtype=np.float32)
            probs = (probs + mirrored) / 2
        return probs


def _keras_fn(model: Any) -> Any:
    def fn(x: np.ndarray) -> np.ndarray:
        # A direct call (eager) instead of model.predict(): no tf.data / tf.function setup per
        # call, which dominates for the one-photo case; batches are formed by the caller.
        return np.asarray(model(x, training=False))

    return fn


def _onnx_fn(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            f"{path}: predicting with an ONNX model needs onnxruntime", "pip install onnxruntime"
        ) from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for invalid files
        raise ModelError(f"{path}: not a usable ONNX model ({exc})") from None
    name = sess.get_inputs()[0].name

    def fn(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x})[0]

    return fn


def _tflite_interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter  # noqa: N806
    try:
        return Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a usable TFLite model ({exc})") from None


def _tflite_fn(path: Path) -> Any:
    interp = _tflite_interpreter(path)
    inp = interp.get_input_details()[0]
    out_index = interp.get_output_details()[0]["index"]
    state = {"batch": None}

    def fn(x: np.ndarray) -> np.ndarray:
        if state["batch"] != x.shape[0]:
            interp.resize_tensor_input(inp["index"], list(x.shape))
            interp.allocate_tensors()
            state["batch"] = x.shape[0]
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        return interp.get_tensor(out_index).copy()

    return fn


def _saved_model_fn(path: Path) -> Any:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a usable SavedModel ({exc})") from None
    def fn(x: np.ndarray) -> np.ndarray:
        # `loaded` must stay referenced: its variables die with it (tf.saved_model.load)
        serve = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
        out = serve(tf.constant(x))
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return out.numpy()

    return fn


def export_meta_path(model_path: str | os.PathLike) -> Path:
    """Returns the sidecar metadata file of an exported model (`model.onnx` -> `model.onnx.json`)."""
    p = Path(model_path)
    return p.with_name(p.name + EXPORT_META_SUFFIX)


def read_export_meta(model_path: str | os.PathLike) -> dict[str, Any]:
    """Reads the class names / input size of an exported model.

    Looks for the sidecar `<file>.json` written by `imgclf export`; else for a `run.json` in the
    folder holding the file or its parent (an export inside a run directory).

    Raises:
        ModelError: if neither is found or the sidecar is invalid.
    """
    p = Path(model_path)
    meta = export_meta_path(p)
    if meta.is_file():
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            return {
                "class_names": list(data["class_names"]),
                "image_size": int(data["image_size"]),
                "resize": str(data.get("resize", "center_crop")),
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{meta}: invalid export metadata ({exc})", "re-run `imgclf export`") from None
    for folder in (p.parent, p.parent.parent):
        if (folder / RUN_FILE).is_file():
            info = load_run_info(folder)
            return {"class_names": info.class_names, "image_size": info.image_size, "resize": info.resize}
    raise ModelError(
        f"{p}: class names unknown (no {meta.name} next to it)", "keep the .json file `imgclf export` wrote with it"
    )


def model_kind(path: str | os.PathLike) -> str:
    """Tells what kind of model `path` is: `"keras"` (run folder or .keras), `"onnx"`, `"tflite"`,
    `"saved_model"` (folder with `saved_model.pb`).

    Raises:
        ModelError: if `path` does not exist or is none of these.
    """
    p = Path(path)
    if p.is_dir():
        if (p / RUN_FILE).is_file():
            return "keras"
        if (p / "saved_model.pb").is_file():
            return "saved_model"
        raise ModelError(
            f"{p} is neither a training run (no {RUN_FILE}) nor a SavedModel (no saved_model.pb)",
            "pass a folder under models/ or an exported .onnx / .tflite file",
        )
    if not p.is_file():
        raise ModelError(f"model not found: {p}", "pass a run folder (models/<run>) or a .keras/.onnx/.tflite file")
    suffix = p.suffix.lower()
    kinds = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite"}
    if suffix not in kinds:
        raise ModelError(f"{p}: unknown model file type {suffix!r}", "use a .keras, .onnx or .tflite file, or a run folder")
    return kinds[suffix]


def load_keras_model(path: str | os.PathLike) -> Any:
    """Loads a `.keras` file with `safe_mode=True` and without its optimizer state.

    Raises:
        ModelError: if the file is missing or cannot be deserialized safely.
    """
    import keras

    import imgclf.models.layers  # noqa: F401  (registers imgclf's own layers for deserialization)

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}", "train a model first with `imgclf train`")
    try:
        return keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError / TypeError / OSError for bad files
        raise ModelError(f"{p}: cannot load the model safely ({type(exc).__name__}: {exc})") from None


def load_model(model: str | os.PathLike | None = None, models_dir: str | os.PathLike = "models") -> Predictor:
    """Loads a classifier for prediction.

    Args:
        model: path or None, default None. A run folder, a `.keras` file inside a run folder, an
            exported `.onnx` / `.tflite` file (with its `.json` sidecar) or a SavedModel folder.
            None means the most recent run in `models_dir`.
        models_dir: path, default `"models"`. Where runs live (used when `model` is None).

    Returns:
        Predictor.

    Raises:
        ModelError: no run found, unknown file type, missing metadata, or an unloadable model.
    """
    from imgclf.rundir import latest_run

    path = Path(model) if model is not None else latest_run(models_dir)
    kind = model_kind(path)
    if kind == "keras":
        run_dir = path if path.is_dir() else path.parent
        info = load_run_info(run_dir)
        model_file = run_dir / BEST_MODEL if path.is_dir() else path
        m = load_keras_model(model_file)
        flip = ((info.config or {}).get("augment") or {}).get("flip")
        return Predictor("keras", model_file, info.class_names, info.image_size, info.resize, _keras_fn(m), flip)
    meta = read_export_meta(path)
    return load_exported(path, kind, meta["class_names"], meta["image_size"], meta["resize"])


def load_exported(path: str | os.PathLike, kind: str, class_names: list[str], image_size: int, resize: str = "center_crop") -> Predictor:
    """Loads an exported model with its own runtime, given its metadata.

    Args:
        path: path of the `.onnx` / `.tflite` file or the SavedModel folder.
        kind: str. `"onnx"`, `"tflite"` or `"saved_model"`.
        class_names: list of str. Output unit i is `class_names[i]`.
        image_size: int. Input side in pixels.
        resize: str, default "center_crop". Resize policy of the run.

    Returns:
        Predictor.

    Raises:
        ModelError: if the runtime is missing or the file is not a usable model.
    """
    loaders = {"onnx": _onnx_fn, "tflite": _tflite_fn, "saved_model": _saved_model_fn}
    if kind not in loaders:
        raise ModelError(f"{path}: unknown exported model kind {kind!r}", f"one of {sorted(loaders)}")
    return Predictor(kind, Path(path), class_names, image_size, resize, loaders[kind](Path(path)))


# ------------------------------------------------------------------------------------ inputs
def is_url(item: str) -> bool:
    """True if `item` is an http(s) URL."""
    return item.lower().startswith(("http://", "https://"))


@dataclass
class InputItem:
    """One thing to predict: a file path or a URL, as the user named it."""

    name: str
    path: Path | None = None
    url: str | None = None
    error: str | None = None  # set when the input cannot even be listed (missing path)


def collect_inputs(items: Sequence[str | os.PathLike | InputItem]) -> list[InputItem]:
    """Expands the inputs of `imgclf predict` into single images.

    Args:
        items: paths of image files, folders (searched recursively; names starting with `_`
            or `.` skipped; only files with an image extension), http(s) URLs, or
            already-collected InputItem objects (kept as they are).

    Returns:
        list of InputItem in the given order (folder contents sorted). A path that does not
        exist becomes an item with `error` set, so it is reported with the others.

    Raises:
        DataError: if `items` is empty.
    """
    if not items:
        raise DataError("no images given", "pass image files, folders or URLs, e.g. `imgclf predict photo.jpg`")
    out: list[InputItem] = []
    for raw in items:
        if isinstance(raw, InputItem):
            out.append(raw)
            continue
        s = str(raw)
        if is_url(s):
            out.append(InputItem(name=s, url=s))
            continue
        p = Path(s)
        if p.is_dir():
            files = [f for f in list_images(p) if f.suffix.lower() in IMAGE_EXTENSIONS]
            if not files:
                out.append(InputItem(name=s, path=p, error="no image files in this folder"))
            out.extend(InputItem(name=str(f), path=f) for f in files)
        elif p.is_file():
            out.append(InputItem(name=s, path=p))
        else:
            out.append(InputItem(name=s, path=p, error="file not found"))
    return out


@dataclass
class DownloadOptions:
    """Safe-downloader limits for URL inputs (see `imgclf.scrape.download.fetch_image`)."""

    max_bytes: int = 20_000_000  # bytes
    connect_timeout: float = 10.0  # seconds
    read_timeout: float = 30.0  # seconds
    retries: int = 2


def _load_item(item: InputItem, size: int, dl: DownloadOptions) -> np.ndarray:
    if item.error:
        raise ImageError(item.name, "unreadable", item.error)
    if item.url is not None:
        from imgclf.scrape.download import fetch_image  # lazy: keeps requests off the file path

        result = fetch_image(
            item.url,
            max_bytes=dl.max_bytes,
            connect_timeout=dl.connect_timeout,
            read_timeout=dl.read_timeout,
            retries=dl.retries,
        )
        return load_for_model(result.data, size, name=item.url)
    return load_for_model(item.path, size, name=item.name)


# ----------------------------------------------------------------------------------- predict
@dataclass
class Prediction:
    """The answer for one input.

    Attributes:
        input: str. The path or URL as given.
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
        """JSON-ready form: input, label, probability, low_confidence, top_k, error."""
        return {
            "input": self.input,
            "label": self.label,
            "probability": self.probability,
            "low_confidence": self.low_confidence,
            "top_k": [{"label": lab, "probability": p} for lab, p in self.top_k],
            "error": self.error,
        }


def _load_or_error(item: InputItem, size: int, dl: DownloadOptions) -> np.ndarray | ImageError:
    """One prepared image `(size, size, 3)` uint8, or the ImageError saying why it failed."""
    try:
        return _load_item(item, size, dl)
    except ImageError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - one bad URL / file must not stop the others
        if item.url is None and not isinstance(exc, ImgclfError):
            raise  # a local file only ever fails with ImageError; anything else is a bug
        return ImageError(item.name, "download_failed" if item.url else "unreadable", f"{type(exc).__name__}: {exc}")


Batch = tuple[list[InputItem], list[np.ndarray | ImageError]]


def _batches(items: list[InputItem], size: int, batch_size: int, workers: int, dl: DownloadOptions) -> Iterator[Batch]:
    """Yields (items, decoded arrays or errors) per batch; a thread pool decodes one batch ahead.

    The loader of the TensorFlow-free path (ONNX, TFLite).
    """

    for chunk, loaded in threaded_batches(lambda item: _load_or_error(item, size, dl), items, batch_size, workers):
        yield list(chunk), loaded


def _tf_batches(items: list[InputItem], size: int, batch_size: int, workers: int, dl: DownloadOptions) -> Iterator[Batch]:
    """Yields (items, decoded arrays or errors) per batch from a `tf.data` pipeline.

    `Dataset.range(n)` -> `map(tf.numpy_function(load), num_parallel_calls=workers,
    deterministic=True)` -> `batch(batch_size)` -> `prefetch(AUTOTUNE)`: images are decoded
    in parallel by tf.data's threads, in input order, a few batches ahead of the model. `load`
    is the same Pillow preparation as training (`load_for_model`); an input that fails gives a
    blank image and `ok=False`, and its ImageError is kept here (keyed by index) for the caller.
    The loader of the Keras / SavedModel path, where TensorFlow is already imported.
    """
    import tensorflow as tf

    errors: dict[int, ImageError] = {}
    bugs: list[BaseException] = []
    blank = np.zeros((size, size, 3), np.uint8)

    def load(index: np.int64) -> tuple[np.ndarray, np.bool_]:
        i = int(index)
        try:
            a = _load_or_error(items[i], size, dl)
        except BaseException as exc:  # a bug: raised again below, outside tf.data
            bugs.append(exc)
            return blank, np.bool_(False)
        if isinstance(a, ImageError):
            errors[i] = a
            return blank, np.bool_(False)
        return a, np.bool_(True)

    def load_tf(index):
        image, ok = tf.numpy_function(load, [index], (tf.uint8, tf.bool))
        image.set_shape((size, size, 3))
        ok.set_shape(())
        return image, ok

    ds = (
        tf.data.Dataset.range(len(items))
        .map(load_tf, num_parallel_calls=max(1, workers), deterministic=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    start = 0
    for images, ok in ds.as_numpy_iterator():
        if bugs:
            raise bugs[0]
        chunk = items[start : start + len(images)]
        loaded: list[np.ndarray | ImageError] = [
            images[j] if ok[j] else errors.pop(start + j) for j in range(len(chunk))
        ]
        start += len(chunk)
        yield chunk, loaded


def check_tta(predictor: Predictor, tta: str) -> None:
    """Validates `tta` and warns when flip TTA does not suit how the model was trained.

    Args:
        predictor: Predictor. Its `train_flip` says whether training used horizontal flips.
        tta: str. "none" or "flip".

    Raises:
        ValueError: if `tta` is not one of `TTA_MODES`.
    """
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, received tta={tta!r}")
    if tta == "flip" and predictor.train_flip is not None and "horizontal" not in predictor.train_flip:
        from imgclf.ui import warn

        warn(
            f"--tta flip averages with mirror images, but this model was trained without horizontal flips "
            f"(train.augment.flip: {predictor.train_flip}); its mirror-image predictions may be worse"
        )


def predict_arrays(predictor: Predictor, images: np.ndarray, batch_size: int = 64, tta: str = "none") -> np.ndarray:
    """Class probabilities of many prepared images, `batch_size` at a time.

    Args:
        predictor: Predictor from `load_model`.
        images: np.ndarray `(n, image_size, image_size, 3)`, raw RGB in [0, 255].
        batch_size: int, default 64.
        tta: str, default "none". "none" or "flip" (see `Predictor.predict_batch`).

    Returns:
        np.ndarray `(n, num_classes)`, float32.
    """
    parts = [predictor.predict_batch(images[i : i + batch_size], tta) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, predictor.num_classes), np.float32)


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
        items: sequence of paths / folders / URLs (see `collect_inputs`).
        model: Predictor, path or None, default None. A loaded Predictor, or anything
            `load_model` accepts (run folder, `.keras`, `.onnx`, `.tflite`, SavedModel folder);
            None = the most recent run in `models_dir`.
        models_dir: path, default "models". Used when `model` is None.
        top_k: int >= 1, default 3. Labels returned per image (capped at the number of classes).
        threshold: float in [0, 1], default 0.5. A top-1 probability below it sets
            `low_confidence`.
        batch_size: int, default 64. Images per model call.
        workers: int or None. Images decoded / downloaded in parallel (tf.data's
            `num_parallel_calls` for Keras and SavedModel models with more than one input, a
            thread pool otherwise); None = min(8, 2 x CPUs).
        download: DownloadOptions or None. Limits for URL inputs.
        show_progress: bool, default True. Show a progress bar (stderr) for more than one batch.
        tta: str, default "none". Test-time augmentation: "none" or "flip" (the mean with the
            mirror image; see `Predictor.predict_batch`).

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
    check_tta(predictor, tta)
    k = min(top_k, predictor.num_classes)
    dl = download or DownloadOptions()
    workers = workers or default_workers()
    results: list[Prediction] = []
    if show_progress and len(inputs) > batch_size:
        from imgclf.ui import progress

        bar = progress("predict", total=len(inputs))
    else:
        from contextlib import nullcontext

        bar = nullcontext(lambda *a, **kw: None)
    with bar as advance:
        loader = _tf_batches if predictor.kind in TENSORFLOW_KINDS and len(inputs) > 1 else _batches
        for chunk, loaded in loader(inputs, predictor.image_size, batch_size, workers, dl):
            good = [i for i, a in enumerate(loaded) if isinstance(a, np.ndarray)]
            probs = predictor.predict_batch(np.stack([loaded[i] for i in good]), tta) if good else None
            row = {i: r for r, i in enumerate(good)}
            for i, (item, a) in enumerate(zip(chunk, loaded)):
                if isinstance(a, ImageError):
                    detail = f"{a.reason}" + (f": {a.detail}" if a.detail else "")
                    results.append(Prediction(input=item.name, error=detail))
                    continue
                p = probs[row[i]]  # type: ignore[index]
                order = np.argsort(-p, kind="stable")[:k]
                top = [(predictor.class_names[j], float(p[j])) for j in order]
                results.append(Prediction(input=item.name, top_k=top, low_confidence=top[0][1] < threshold))
            advance(len(chunk))
    return results


def print_predictions(predictions: Sequence[Prediction], top_k: int = 3, console: Any = None) -> None:
    """Prints predictions as a table: input, top-k labels with probabilities, flags, errors.

    Args:
        predictions: sequence of Prediction.
        top_k: int, default 3. How many labels to show per image.
        console: rich Console or None. None = a console on stdout (this is the command's output).
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console(highlight=False)
    table = Table(show_header=True, header_style="bold")
    table.add_column("input", overflow="fold")
    table.add_column("prediction")
    table.add_column("p", justify="right")
    table.add_column(f"top-{top_k}" if top_k > 1 else "", overflow="fold")
    for p in predictions:
        if not p.ok:
            table.add_row(p.input, "[red]unreadable[/]", "", f"[red]{p.error}[/]")
            continue
        label = f"[yellow]{p.label} (low confidence)[/]" if p.low_confidence else f"[green]{p.label}[/]"
        rest = ", ".join(f"{lab} {prob:.3f}" for lab, prob in p.top_k[1:top_k])
        table.add_row(p.input, label, f"{p.probability:.3f}", rest)
    console.print(table)


def prediction_summary(predictions: Sequence[Prediction], threshold: float) -> str:
    """One line: how many predicted, how many flagged low-confidence, how many failed and why."""
    ok = [p for p in predictions if p.ok]
    low = sum(p.low_confidence for p in ok)
    failed: dict[str, int] = {}
    for p in predictions:
        if not p.ok:
            reason = (p.error or "error").split(":")[0]
            failed[reason] = failed.get(reason, 0) + 1
    why = f" ({', '.join(f'{n} {r}' for r, n in sorted(failed.items()))})" if failed else ""
    return (
        f"predict: {len(ok)} of {len(predictions)} images predicted, {low} below the {threshold:.2f} "
        f"confidence threshold, {len(predictions) - len(ok)} failed{why}"
    )


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
