"""Loading a trained model of any kind into a `Predictor`: raw RGB batches in, probabilities out.

The one model runtime of imgclf: `predict`, `evaluate`, `serve`, `export`'s parity check,
`explain`, `embed` and `compare` all load models here. A `Predictor` carries what is needed to
use the model -- class names and the `InputSpec` that turns files into its input (from
`run.json` or an export sidecar, `imgclf.records.run`) -- so no command asks for a training option.

Kinds (`model_kind`):

- `"keras"`: a run directory (`models/<run>/`: `best.keras` + `run.json`) or a `.keras` file
  inside one, loaded with `keras.saving.load_model(..., safe_mode=True)` (a model file from
  elsewhere is untrusted input: no Python lambdas are deserialized);
- `"onnx"`: an exported `.onnx` file (ONNX Runtime) and `"tflite"`: an exported `.tflite` file
  (LiteRT: `ai_edge_litert`, else `tflite_runtime`, else TensorFlow's `tf.lite.Interpreter`)
  -- these never import TensorFlow when their runtime is installed, which makes a cold start
  fast;
- `"saved_model"`: an exported SavedModel folder (TensorFlow).

This module is on the cold-start path: it imports no TensorFlow, Keras, scikit-learn or
matplotlib at module level.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import ModelError
from imgclf.inputs import InputSpec
from imgclf.records.run import BEST_MODEL, is_run_dir, latest_run, load_export_meta, load_run_info

#: Model file kinds `load_model` understands.
MODEL_KINDS: tuple[str, ...] = ("keras", "onnx", "tflite", "saved_model")

#: Kinds whose runtime is TensorFlow (their callers may use the tf.data loader).
TENSORFLOW_KINDS: tuple[str, ...] = ("keras", "saved_model")

#: Test-time augmentations `Predictor.predict_batch` knows.
TTA_MODES: tuple[str, ...] = ("none", "flip")


def import_tensorflow_quietly() -> Any:
    """Imports TensorFlow (once) with its C++ start-up chatter hidden; returns the module.

    TensorFlow 2.21 writes oneDNN / CUDA / cpu_feature_guard lines to file descriptor 2 before
    its logging is configured, so `TF_CPP_MIN_LOG_LEVEL` alone does not silence them. They go
    to a temporary file instead, which is shown if the import fails. Every code path that needs
    TensorFlow calls this first (a later `import tensorflow` is then free and silent).

    Returns:
        The `tensorflow` module.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (embedded interpreters): import as is
        import tensorflow as tf

        return tf
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf


class Predictor:
    """A loaded classifier: raw RGB batches in, class probabilities out.

    Attributes:
        kind: str. One of `MODEL_KINDS`.
        source: Path. The file or folder the model was loaded from.
        class_names: list of str. Index i is output unit i.
        spec: InputSpec. How image files become this model's input (`imgclf.inputs.load_image`).
        train_flip: str or None. The run's `train.augment.flip` ("none", "horizontal", ...);
            None when unknown.
        run_name: str or None. The run directory's folder name, when known.
        keras_model: keras.Model or None. The Keras model itself (kind "keras"), for Grad-CAM,
            embeddings and export.
    """

    def __init__(
        self,
        kind: str,
        source: Path,
        class_names: list[str],
        spec: InputSpec,
        fn: Any,
        *,
        train_flip: str | None = None,
        run_name: str | None = None,
        keras_model: Any = None,
    ):
        self.kind = kind
        self.source = Path(source)
        self.class_names = list(class_names)
        self.spec = spec
        self.train_flip = train_flip
        self.run_name = run_name
        self.keras_model = keras_model
        self._fn = fn

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        """Input side in pixels (`spec.size`)."""
        return self.spec.size

    @property
    def uses_tensorflow(self) -> bool:
        """True for Keras and SavedModel models (TensorFlow is loaded)."""
        return self.kind in TENSORFLOW_KINDS

    def predict_batch(self, images: np.ndarray, tta: str = "none") -> np.ndarray:
        """Class probabilities of one batch.

        Args:
            images: np.ndarray of shape `(batch, size, size, 3)`, uint8 or float, raw RGB values
                in [0, 255] (the model rescales inside), e.g. `imgclf.inputs.Batch.images`.
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
        probs: np.ndarray = np.asarray(self._fn(x), dtype=np.float32)
        if tta == "flip":
            mirrored = np.asarray(self._fn(np.ascontiguousarray(x[:, :, ::-1, :])), dtype=np.float32)
            probs = (probs + mirrored) / 2
        return probs

    def predict_arrays(self, images: np.ndarray, batch_size: int = 64, tta: str = "none") -> np.ndarray:
        """Class probabilities of many prepared images, `batch_size` at a time.

        Args:
            images: np.ndarray `(n, size, size, 3)`, raw RGB in [0, 255].
            batch_size: int, default 64.
            tta: str, default "none". "none" or "flip" (see `predict_batch`).

        Returns:
            np.ndarray `(n, num_classes)`, float32.
        """
        parts = [self.predict_batch(images[i : i + batch_size], tta) for i in range(0, len(images), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.num_classes), np.float32)

    def check_tta(self, tta: str) -> None:
        """Validates `tta` and warns when flip TTA does not suit how the model was trained.

        Args:
            tta: str. "none" or "flip".

        Raises:
            ValueError: if `tta` is not one of `TTA_MODES`.
        """
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, received tta={tta!r}")
        if tta == "flip" and self.train_flip is not None and "horizontal" not in self.train_flip:
            from imgclf.ui import warn  # imgclf.ui loads rich: kept off this module's import (predict's cold start)

            warn(
                f"--tta flip averages with mirror images, but this model was trained without horizontal flips "
                f"(train.augment.flip: {self.train_flip}); its mirror-image predictions may be worse"
            )

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: kind, source, run name, class names, input specification."""
        return {
            "kind": self.kind,
            "source": str(self.source),
            "run_name": self.run_name,
            "class_names": self.class_names,
            "input_spec": self.spec.model_dump(mode="json"),
        }


# --------------------------------------------------------------------------- model kinds
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
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for invalid files
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
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            tf = import_tensorflow_quietly()
            Interpreter = tf.lite.Interpreter
    try:
        return Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a usable TFLite model ({exc})") from None


def _tflite_fn(path: Path) -> Any:
    import threading

    interp = _tflite_interpreter(path)
    inp = interp.get_input_details()[0]
    out_index = interp.get_output_details()[0]["index"]
    state: dict[str, Any] = {"batch": None}
    lock = threading.Lock()  # one interpreter: calls from several threads take turns

    def fn(x: np.ndarray) -> np.ndarray:
        with lock:
            if state["batch"] != x.shape[0]:
                interp.resize_tensor_input(inp["index"], list(x.shape))
                interp.allocate_tensors()
                state["batch"] = x.shape[0]
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            return interp.get_tensor(out_index).copy()

    return fn


def _saved_model_fn(path: Path) -> Any:
    tf = import_tensorflow_quietly()
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


def model_kind(path: str | os.PathLike) -> str:
    """Tells what kind of model `path` is: `"keras"` (run folder or .keras), `"onnx"`, `"tflite"`,
    `"saved_model"` (folder with `saved_model.pb`).

    Raises:
        ModelError: if `path` does not exist or is none of these.
    """
    p = Path(path)
    if p.is_dir():
        if is_run_dir(p):
            return "keras"
        if (p / "saved_model.pb").is_file():
            return "saved_model"
        raise ModelError(
            f"{p} is neither a training run (no run.json) nor a SavedModel (no saved_model.pb)",
            "pass a folder under models/ or an exported .onnx / .tflite file",
        )
    if not p.is_file():
        raise ModelError(f"model not found: {p}", "pass a run folder (models/<run>) or a .keras/.onnx/.tflite file")
    kinds = {".keras": "keras", ".onnx": "onnx", ".tflite": "tflite"}
    suffix = p.suffix.lower()
    if suffix not in kinds:
        raise ModelError(
            f"{p}: unknown model file type {suffix!r}", "use a .keras, .onnx or .tflite file, or a run folder"
        )
    return kinds[suffix]


def load_keras_model(path: str | os.PathLike) -> Any:
    """Loads a `.keras` file with `safe_mode=True` and without its optimizer state.

    Args:
        path: path of a `.keras` file.

    Returns:
        keras.Model.

    Raises:
        ModelError: if the file is missing or cannot be deserialized safely.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file not found: {p}", "train a model first with `imgclf train`")
    import_tensorflow_quietly()
    import keras

    import imgclf.models.layers  # noqa: F401  (registers imgclf's own layers for deserialization; imports Keras)

    try:
        return keras.saving.load_model(p, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError / TypeError / OSError for bad files
        raise ModelError(f"{p}: cannot load the model safely ({type(exc).__name__}: {exc})") from None


def resolve_model_path(model: str | os.PathLike | None = None, models_dir: str | os.PathLike = "models") -> Path:
    """The model a command should use: `model` itself, or the most recent run in `models_dir`.

    Raises:
        ModelError: when `model` is None and `models_dir` holds no finished run.
    """
    return Path(model) if model is not None else latest_run(models_dir)


def load_model(model: str | os.PathLike | None = None, models_dir: str | os.PathLike = "models") -> Predictor:
    """Loads a classifier of any kind, with its class names and input specification.

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
    path = resolve_model_path(model, models_dir)
    kind = model_kind(path)
    if kind == "keras":
        run_dir = path if path.is_dir() else path.parent
        info = load_run_info(run_dir)
        model_file = run_dir / BEST_MODEL if path.is_dir() else path
        m = load_keras_model(model_file)
        return Predictor(
            "keras",
            model_file,
            info.class_names,
            info.input_spec,
            _keras_fn(m),
            train_flip=info.train_flip,
            run_name=run_dir.name,
            keras_model=m,
        )
    meta = load_export_meta(path)
    return load_exported(
        path, kind, meta.class_names, meta.input_spec, train_flip=meta.train_flip, run_name=meta.run_name
    )


def load_exported(
    path: str | os.PathLike,
    kind: str,
    class_names: list[str],
    spec: InputSpec,
    *,
    train_flip: str | None = None,
    run_name: str | None = None,
) -> Predictor:
    """Loads an exported model with its own runtime, given its metadata.

    Args:
        path: path of the `.onnx` / `.tflite` file or the SavedModel folder.
        kind: str. `"onnx"`, `"tflite"` or `"saved_model"`.
        class_names: list of str. Output unit i is `class_names[i]`.
        spec: InputSpec. The run's input specification.
        train_flip: str or None. The run's `train.augment.flip`, when known.
        run_name: str or None. The exported run's name, when known.

    Returns:
        Predictor.

    Raises:
        ModelError: if the runtime is missing or the file is not a usable model.
    """
    loaders = {"onnx": _onnx_fn, "tflite": _tflite_fn, "saved_model": _saved_model_fn}
    if kind not in loaders:
        raise ModelError(f"{path}: unknown exported model kind {kind!r}", f"one of {sorted(loaders)}")
    return Predictor(
        kind, Path(path), class_names, spec, loaders[kind](Path(path)), train_flip=train_flip, run_name=run_name
    )
