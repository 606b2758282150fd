"""The files one stage writes and later commands read back, as typed contracts.

The writer of a file is also its reader (Keras' BackupAndRestore rule): every such file has
its name, its pydantic model, its `save_*` and its `load_*` here, in one place.

A training run directory (`train` writes it; `evaluate`, `predict`, `serve`, `export`,
`explain`, `embed`, `compare` read it, and never ask the user to repeat a training option):

    models/<run>/
      run.json          RunInfo: model, class names, input specification (size, resize policy,
                        interpolation, how EXIF / alpha / 16-bit / CMYK are handled), resolved
                        config, seed, library versions, status, best epoch, timings,
                        distribution (strategy, loop, workers, global batch, steps per epoch),
                        and the experiment tracker's run it logs to (`TrackingRef`, if tracked)
      best.keras        best model by val_loss, preprocessing inside (feeds raw RGB [0, 255])
      last.keras        model after the last finished epoch
      history.csv       Keras CSVLogger, one row per epoch
      train_state.json  TrainState: which training phases finished, with how many epochs
      train_rejects.csv files of the split that could not be read (path, reason), if any
      backup/phaseN/    Keras BackupAndRestore (resume after a crash)
      logs/             TensorBoard
      metrics.json      written by `evaluate` (metrics_<split>.json for other splits); the part
                        later commands read is `MetricsRecord` (fingerprint of the test split,
                        confidence intervals, parameters, predict latency)
      predictions.csv   written by `evaluate` (predictions_<split>.csv): one row per scored test
                        image -- path, sha256, label, predicted, correct, probabilities
                        (`ImagePredictions`); `compare` pairs runs image by image with it
      export/model.onnx | model.tflite | saved_model/ (+ <file>.json: ExportMeta)

An exported model's sidecar `<file>.json` (`ExportMeta`) carries the class names and the input
specification, so `predict --model model.onnx` needs nothing else. An autoencoder run
(`imgclf autoencoder train`) holds `autoencoder.keras`, `autoencoder.json` (`AutoencoderInfo`)
and `history.csv`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, model_validator

from imgclf.errors import ModelError
from imgclf.fsutil import atomic_write_json, atomic_write_text
from imgclf.inputs import InputSpec

RUN_FILE = "run.json"
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
PREDICTIONS = "predictions.csv"
CURVES = "training_curves.png"
STATE_FILE = "train_state.json"
TRAIN_REJECTS = "train_rejects.csv"
BACKUP_DIR = "backup"
LOG_DIR = "logs"
EXPORT_DIR = "export"

#: Suffix of the metadata file written next to an exported model (`model.onnx.json`).
EXPORT_META_SUFFIX = ".json"

AUTOENCODER_MODEL = "autoencoder.keras"
AUTOENCODER_INFO = "autoencoder.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _legacy_input_spec(data: Any) -> Any:
    """Files written before the input specification existed stored `image_size` + `resize`."""
    if isinstance(data, dict) and "input_spec" not in data and "image_size" in data:
        data = dict(data)
        data["input_spec"] = {"size": data["image_size"], "resize": data.get("resize", "center_crop")}
    return data


# --------------------------------------------------------------------------------- run.json
class Distribution(BaseModel):
    """How a run spread over devices and workers (`run.json` "distribution").

    Attributes:
        strategy: str. `default`, `mirrored` or `multiworker` (`tf.distribute`).
        loop: str. `fit` (Keras `model.fit`) or `custom` (`imgclf.train_loop`, multiworker).
        workers: int. Training processes (`TF_CONFIG`), 1 without a cluster.
        replicas: int. Model replicas over all workers (`num_replicas_in_sync`).
        global_batch_size: int. Examples per optimizer step, over all replicas.
        per_replica_batch_size: int. `global_batch_size // replicas`.
        steps_per_epoch: int. Optimizer steps (global steps) per epoch, which the learning-rate
            schedule counts: `ceil(n_train / global_batch_size)`.
    """

    model_config = ConfigDict(extra="ignore")

    strategy: str = "default"
    loop: str = "fit"
    workers: int = 1
    replicas: int = 1
    global_batch_size: int | None = None
    per_replica_batch_size: int | None = None
    steps_per_epoch: int | None = None


class TrackingRef(BaseModel):
    """Where a run is tracked (`run.json` -> `tracking`), so `evaluate` and a resumed `train`
    log into the same tracker run (`imgclf.track`).

    Attributes:
        backend: str. The tracker, e.g. `"mlflow"`.
        uri: str. Tracking URI the run logs to (a relative SQLite or file path made absolute).
        run_id: str. The tracker's run id.
        experiment_id: str or None. The tracker's experiment id.
        model_uri: str or None. URI of the model logged last (`models:/m-...`), when one was.
    """

    model_config = ConfigDict(extra="ignore")

    backend: str
    uri: str
    run_id: str
    experiment_id: str | None = None
    model_uri: str | None = None


class RunInfo(BaseModel):
    """Metadata of one training run, stored as `run.json` (declared fields only).

    Attributes:
        model: str. Registry name, e.g. `"cnn"`.
        class_names: list of str. Index i = output unit i.
        input_spec: InputSpec. How an image file becomes this model's input.
        data_dir: str or None. The split folder trained on.
        seed: int or None.
        config: dict. The resolved `TrainConfig`.
        versions: dict. Python and library versions (`library_versions`).
        status: str. `"running"` or `"finished"`.
        created: str. ISO 8601 time, UTC.
        precision_policy: str or None. Keras dtype policy trained under (`"float32"`,
            `"mixed_bfloat16"`...).
        epochs_done: int. Epochs in `history.csv`.
        best_epoch: int or None. 1-based epoch of `best.keras` (lowest `val_loss`).
        best_val_loss, best_val_accuracy: float or None. That epoch's validation figures.
        train_seconds: float. Wall time of training, summed over resumed sessions.
        train_rejects: int. Files of the train / val splits that could not be read.
        label: str or None. Name of the run's model configuration in comparisons: the `name`
            of its `train.models` entry, set by `imgclf run`; None = the model name.
        distribution: Distribution or None. Strategy, workers, global batch size and steps per
            epoch (None in runs written before it was recorded).
        tracking: TrackingRef or None. The experiment tracker's run this run logs to
            (`--track mlflow`); None = not tracked.
    """

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    model: str
    class_names: list[str]
    input_spec: InputSpec
    data_dir: str | None = None
    seed: int | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    status: str = "running"
    created: str = Field(default_factory=_now)
    precision_policy: str | None = None
    epochs_done: int = 0
    best_epoch: int | None = None
    best_val_loss: float | None = None
    best_val_accuracy: float | None = None
    train_seconds: float = 0.0
    train_rejects: int = 0
    label: str | None = None
    distribution: Distribution | None = None
    tracking: TrackingRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _legacy_input_spec(data)

    @computed_field  # type: ignore[prop-decorator]  # written too, for people reading run.json by hand
    @property
    def image_size(self) -> int:
        """Input side in pixels (`input_spec.size`)."""
        return self.input_spec.size

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_flip(self) -> str | None:
        """The run's `train.augment.flip` (`"none"`, `"horizontal"`...), None when unknown."""
        return ((self.config or {}).get("augment") or {}).get("flip")


def save_run_info(run_dir: str | os.PathLike, info: RunInfo) -> Path:
    """Writes `run_dir/run.json` atomically and returns its path."""
    return atomic_write_text(Path(run_dir) / RUN_FILE, info.model_dump_json(indent=2) + "\n")


def load_run_info(run_dir: str | os.PathLike) -> RunInfo:
    """Reads `run_dir/run.json`.

    Raises:
        ModelError: if the folder or its `run.json` is missing or invalid.
    """
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise ModelError(f"{run_dir} is not a training run (no {RUN_FILE})", "give a folder written by `imgclf train`")
    try:
        return RunInfo.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise ModelError(f"{path} is invalid: {exc.errors()[0].get('msg')}") from None


def is_run_dir(path: str | os.PathLike) -> bool:
    """True if `path` is a folder holding `run.json`."""
    return (Path(path) / RUN_FILE).is_file()


def latest_run(models_dir: str | os.PathLike = "models") -> Path:
    """Returns the most recently modified run folder (one holding run.json and best.keras).

    Raises:
        ModelError: if `models_dir` holds no finished run.
    """
    models_dir = Path(models_dir)
    runs = [p.parent for p in models_dir.glob(f"*/{RUN_FILE}") if (p.parent / BEST_MODEL).is_file()]
    if not runs:
        raise ModelError(
            f"no trained model found in {models_dir}/", "train one with `imgclf train`, or pass --model RUN"
        )
    return max(runs, key=lambda p: (p / BEST_MODEL).stat().st_mtime)


def metrics_file(split: str = "test") -> str:
    """Name of `evaluate`'s metrics file for `split`: `metrics.json`, `metrics_val.json`..."""
    return METRICS if split == "test" else f"metrics_{split}.json"


def predictions_file(split: str = "test") -> str:
    """Name of `evaluate`'s per-image file for `split`: `predictions.csv`, `predictions_val.csv`..."""
    return PREDICTIONS if split == "test" else f"predictions_{split}.csv"


# ---------------------------------------------------------------- metrics.json (evaluate)
#: How `split_fingerprint` hashes a split; stored next to every fingerprint.
FINGERPRINT_METHOD = (
    "sha256 over the sorted lines '<relative path>\\t<label>\\t<file sha256>\\n' (UTF-8) of every file "
    "listed in the split folder, readable or not"
)


def split_fingerprint(rows: Any) -> str:
    """Fingerprint of a labelled split: sha256 over its sorted (relative path, label, file sha256).

    Two evaluations have the same fingerprint exactly when they listed the same files, under
    the same class folders, with the same bytes. Each triple becomes the UTF-8 line
    `f"{rel}\\t{label}\\t{sha256}\\n"`; the lines are sorted (so listing order does not
    matter) and hashed together (`FINGERPRINT_METHOD`).

    Args:
        rows: iterable of (str, str, str): path relative to the split folder ("/"-separated),
            class name, hex sha256 of the file's bytes.

    Returns:
        str: 64 hex characters.
    """
    import hashlib

    h = hashlib.sha256()
    for line in sorted(f"{rel}\t{label}\t{sha}\n" for rel, label, sha in rows):
        h.update(line.encode("utf-8"))
    return h.hexdigest()


class SplitFingerprint(BaseModel):
    """Which images a metric was computed on (`metrics.json` -> `fingerprint`).

    Attributes:
        sha256: str. `split_fingerprint` of the split's files.
        n_files: int. Files listed (scored and set aside).
        method: str. How the hash is made (`FINGERPRINT_METHOD`).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    sha256: str
    n_files: int
    method: str = FINGERPRINT_METHOD

    @property
    def short(self) -> str:
        """First 12 hex characters, for messages."""
        return self.sha256[:12]


class ConfidentError(BaseModel):
    """One of the most confidently wrong images of an evaluated split (`metrics.json`).

    Attributes:
        file: str. The image, as evaluate listed it.
        true: str. Its class folder.
        predicted: str. The predicted class.
        probability: float in [0, 1]. The probability of `predicted`.
    """

    model_config = ConfigDict(extra="ignore")

    file: str
    true: str
    predicted: str
    probability: float


class MetricsRecord(BaseModel):
    """The part of `metrics.json` that later commands (`compare`) read back.

    `evaluate` writes more (per-class table, confusion matrix, calibration bins, errors...);
    those keys are kept in the file and ignored here.

    Attributes:
        accuracy, loss, precision_macro, recall_macro, f1_macro, top_k_accuracy, ece: float.
            See `imgclf.evaluate.compute_metrics`.
        top_k: int. k of `top_k_accuracy`.
        n_images: int. Images scored.
        class_names: list of str.
        split: str. `"train"`, `"val"` or `"test"`.
        tta: str. `"none"` or `"flip"`.
        fingerprint: SplitFingerprint or None (files written before fingerprints existed).
        confidence_intervals: dict or None. `imgclf.stats.BootstrapResult.as_dict()`.
        parameters: int or None. Model parameters (trainable and not).
        predict_ms_per_image: float or None. Milliseconds of model time per image, in batches
            of `predict_batch_size`, decoding excluded, first batch (warm-up) excluded when
            there are several.
        predict_batch_size: int or None.
        files: dict kind -> file name in the run directory.
    """

    model_config = ConfigDict(extra="ignore")

    accuracy: float
    loss: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    top_k: int
    top_k_accuracy: float
    ece: float
    n_images: int
    class_names: list[str]
    split: str = "test"
    tta: str = "none"
    fingerprint: SplitFingerprint | None = None
    confidence_intervals: dict[str, Any] | None = None
    parameters: int | None = None
    predict_ms_per_image: float | None = None
    predict_batch_size: int | None = None
    files: dict[str, str] = Field(default_factory=dict)
    confident_errors: list[ConfidentError] = Field(default_factory=list)


def save_metrics(run_dir: str | os.PathLike, split: str, metrics: dict[str, Any]) -> Path:
    """Writes `metrics.json` (`metrics_<split>.json`) atomically, after checking `MetricsRecord`.

    Args:
        run_dir: path. The run directory.
        split: str. The split evaluated (names the file, `metrics_file`).
        metrics: dict. Everything `evaluate` computed; must satisfy `MetricsRecord`.

    Returns:
        Path written.

    Raises:
        ValueError: if `metrics` lacks a field of `MetricsRecord` (a programming error).
    """

    MetricsRecord.model_validate(metrics)
    return atomic_write_json(Path(run_dir) / metrics_file(split), metrics)


def load_metrics(run_dir: str | os.PathLike, split: str = "test") -> MetricsRecord:
    """Reads `metrics.json` (`metrics_<split>.json`) of a run.

    Raises:
        ModelError: if the file is missing (the run was not evaluated) or invalid.
    """
    path = Path(run_dir) / metrics_file(split)
    if not path.is_file():
        raise ModelError(
            f"{run_dir} has no {path.name}",
            f"evaluate it first: imgclf evaluate {run_dir}" + ("" if split == "test" else f" --split {split}"),
        )
    return read_metrics_file(path)


def read_metrics_file(path: str | os.PathLike) -> MetricsRecord:
    """Reads one metrics file written by `evaluate` (`metrics.json`, `metrics_<split>.json`).

    Args:
        path: path. The file.

    Returns:
        MetricsRecord.

    Raises:
        ModelError: if the file cannot be read or is not an `imgclf evaluate` metrics file.
    """
    path = Path(path)
    try:
        return MetricsRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise ModelError(
            f"{path} is invalid ({_first_error(exc)})", f"re-evaluate: imgclf evaluate {path.parent}"
        ) from None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
    return str(exc).splitlines()[0]


# ------------------------------------------------------------- predictions.csv (evaluate)
#: Fixed leading columns of `predictions.csv`; one `p:<class>` column per class follows.
PREDICTION_COLUMNS: tuple[str, ...] = ("path", "sha256", "label", "predicted", "correct")

#: Prefix of the probability columns of `predictions.csv`.
PROB_PREFIX = "p:"


@dataclass
class ImagePredictions:
    """A model's probabilities on each scored image of a split (`predictions.csv`).

    Attributes:
        class_names: list of str. Column j of `probs` is `class_names[j]`.
        paths: list of str. Path of each image relative to the split folder ("/"-separated,
            `<class>/<file>`), the key that pairs two runs' rows.
        sha256: list of str. Hex sha256 of each file's bytes.
        labels: np.ndarray `(n,)` int64, true class index.
        probs: np.ndarray `(n, num_classes)` float32, rows summing to 1 (to ~1e-6: stored with
            7 significant digits).
    """

    class_names: list[str]
    paths: list[str]
    sha256: list[str]
    labels: np.ndarray
    probs: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def predicted(self) -> np.ndarray:
        """`(n,)` int64: argmax class index."""
        return self.probs.argmax(axis=1) if len(self) else np.zeros(0, np.int64)

    @property
    def correct(self) -> np.ndarray:
        """`(n,)` bool: top-1 prediction equals the label."""
        return self.predicted == self.labels

    def keys(self) -> list[tuple[str, str]]:
        """(path, sha256) of each row: equal keys are the same image."""
        return list(zip(self.paths, self.sha256))


def save_predictions(run_dir: str | os.PathLike, split: str, preds: ImagePredictions) -> Path:
    """Writes `predictions.csv` (`predictions_<split>.csv`) atomically.

    Columns: `path, sha256, label, predicted, correct` (labels as class names, correct 0/1),
    then `p:<class>` for every class, probabilities with 7 significant digits.

    Returns:
        Path written.
    """
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*PREDICTION_COLUMNS, *(PROB_PREFIX + c for c in preds.class_names)])
    names = preds.class_names
    for i, (rel, sha) in enumerate(zip(preds.paths, preds.sha256)):
        y, p = int(preds.labels[i]), int(preds.predicted[i])
        w.writerow([rel, sha, names[y], names[p], int(y == p), *(f"{v:.7g}" for v in preds.probs[i])])
    return atomic_write_text(Path(run_dir) / predictions_file(split), buf.getvalue())


def load_predictions(run_dir: str | os.PathLike, split: str = "test") -> ImagePredictions:
    """Reads `predictions.csv` (`predictions_<split>.csv`) of a run.

    Raises:
        ModelError: if the file is missing (evaluated before per-image predictions were kept,
            or never evaluated) or malformed.
    """
    import csv

    path = Path(run_dir) / predictions_file(split)
    if not path.is_file():
        raise ModelError(
            f"{run_dir} has no {path.name} (per-image predictions)",
            f"(re-)evaluate it: imgclf evaluate {run_dir}" + ("" if split == "test" else f" --split {split}"),
        )
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        n_fixed = len(PREDICTION_COLUMNS)
        if tuple(header[:n_fixed]) != PREDICTION_COLUMNS or not all(
            h.startswith(PROB_PREFIX) for h in header[n_fixed:]
        ):
            raise ModelError(
                f"{path}: not a predictions file (header {header[: n_fixed + 1]})",
                f"re-evaluate: imgclf evaluate {run_dir}",
            )
        names = [h[len(PROB_PREFIX) :] for h in header[n_fixed:]]
        index = {c: i for i, c in enumerate(names)}
        paths, shas, labels, probs = [], [], [], []
        for line_no, row in enumerate(reader, start=2):
            try:
                paths.append(row[0])
                shas.append(row[1])
                labels.append(index[row[2]])
                probs.append([float(v) for v in row[n_fixed:]])
                if len(probs[-1]) != len(names):
                    raise ValueError("wrong number of columns")
            except (IndexError, KeyError, ValueError) as exc:
                raise ModelError(
                    f"{path}, line {line_no}: malformed row ({exc})", f"re-evaluate: imgclf evaluate {run_dir}"
                ) from None
    return ImagePredictions(
        names,
        paths,
        shas,
        np.asarray(labels, np.int64),
        np.asarray(probs, np.float32).reshape(len(paths), len(names)),
    )


# ------------------------------------------------------------------------ train_state.json
class TrainState(BaseModel):
    """Which training phases finished, with how many epochs (`train_state.json`).

    Resume itself is Keras' `BackupAndRestore` (`backup/phaseN`); this file says which phase
    needs no more epochs, so a finished phase is skipped and a raised `epochs` continues it.

    Attributes:
        phases: dict phase number (as str) -> epoch count it finished with (its end epoch).
    """

    model_config = ConfigDict(extra="ignore")

    phases: dict[str, int] = Field(default_factory=dict)

    def finished(self, phase: int, end_epoch: int) -> bool:
        """True when `phase` finished with at least `end_epoch` epochs."""
        return self.phases.get(str(phase), -1) >= end_epoch


def load_train_state(run_dir: str | os.PathLike) -> TrainState:
    """Reads `run_dir/train_state.json`; an absent or unreadable file is an empty state."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return TrainState()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return TrainState()
    if isinstance(raw, dict) and "phases" not in raw:  # written before TrainState existed
        raw = {
            "phases": {
                k.removeprefix("phase"): int(v.get("epochs", 0))
                for k, v in raw.items()
                if isinstance(v, dict) and v.get("done")
            }
        }
    try:
        return TrainState.model_validate(raw)
    except ValidationError:
        return TrainState()


def save_train_state(run_dir: str | os.PathLike, state: TrainState) -> Path:
    """Writes `run_dir/train_state.json` atomically."""
    return atomic_write_text(Path(run_dir) / STATE_FILE, state.model_dump_json(indent=2) + "\n")


# ---------------------------------------------------------------------------- history.csv
def read_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """Reads `run_dir/history.csv` (Keras CSVLogger) into one row per epoch, in epoch order.

    An epoch written twice (a run resumed after an interruption repeats the epoch it was in)
    keeps its last row. Cells that are not numbers are left out.

    Args:
        run_dir: path. A training run folder.

    Returns:
        list of dict column -> float (`epoch` counted from 0, `loss`, `accuracy`, `val_loss`,
        `val_accuracy`, `learning_rate`...); empty if the file is missing or empty.
    """
    import csv

    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    rows: dict[int, dict[str, float]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            vals: dict[str, float] = {}
            for k, v in row.items():
                try:
                    vals[k] = float(v)
                except (TypeError, ValueError):
                    continue
            if "epoch" in vals:
                rows[int(vals["epoch"])] = vals
    return [rows[k] for k in sorted(rows)]


def best_epoch_row(history: list[dict[str, float]]) -> dict[str, float] | None:
    """The row of `read_history` with the lowest `val_loss` (the epoch of `best.keras`), or None."""
    return min((r for r in history if "val_loss" in r), key=lambda r: r["val_loss"], default=None)


def history_columns(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    """Turns `read_history` rows into columns (column -> value per epoch; NaN where missing)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: [r.get(k, float("nan")) for r in rows] for k in keys}


def library_versions() -> dict[str, str]:
    """Returns the versions of Python and the libraries that decide a run's numbers."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("imgclf", "tensorflow", "keras", "numpy", "pillow", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------- export sidecar .json
class ExportMeta(BaseModel):
    """The sidecar `<file>.json` of an exported model (written by `imgclf export`).

    Attributes:
        class_names: list of str. Output unit i is `class_names[i]`.
        input_spec: InputSpec. The run's input specification.
        model: str or None. Registry name of the exported run.
        format: str or None. `"onnx"`, `"tflite"` or `"saved_model"`.
        source_run: str or None. The run directory exported.
        run_name: str or None. Its folder name.
        input: str. What the exported file takes.
        parity: dict or None. The parity check: `images`, `source`, `top1_agreement`,
            `max_prob_diff`.
        train_flip: str or None. The run's `train.augment.flip`.
        created: str. ISO 8601 time, UTC.
    """

    model_config = ConfigDict(extra="ignore")

    class_names: list[str]
    input_spec: InputSpec
    model: str | None = None
    format: str | None = None
    source_run: str | None = None
    run_name: str | None = None
    input: str = "float32 (batch, size, size, 3), raw RGB in [0, 255]"
    parity: dict[str, Any] | None = None
    train_flip: str | None = None
    created: str = Field(default_factory=_now)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _legacy_input_spec(data)

    @computed_field  # type: ignore[prop-decorator]  # written too, for people reading the sidecar by hand
    @property
    def image_size(self) -> int:
        """Input side in pixels (`input_spec.size`)."""
        return self.input_spec.size


def export_meta_path(model_path: str | os.PathLike) -> Path:
    """Returns the sidecar metadata file of an exported model (`model.onnx` -> `model.onnx.json`)."""
    p = Path(model_path)
    return p.with_name(p.name + EXPORT_META_SUFFIX)


def save_export_meta(model_path: str | os.PathLike, meta: ExportMeta) -> Path:
    """Writes the sidecar of `model_path` atomically and returns its path."""
    return atomic_write_text(export_meta_path(model_path), meta.model_dump_json(indent=2) + "\n")


def load_export_meta(model_path: str | os.PathLike) -> ExportMeta:
    """Reads the class names and input specification of an exported model.

    Looks for the sidecar `<file>.json` written by `imgclf export`; else for a `run.json` in the
    folder holding the file or its parent (an export inside a run directory).

    Raises:
        ModelError: if neither is found or the sidecar is invalid.
    """
    p = Path(model_path)
    meta = export_meta_path(p)
    if meta.is_file():
        try:
            return ExportMeta.model_validate_json(meta.read_text(encoding="utf-8"))
        except (ValidationError, ValueError) as exc:
            raise ModelError(f"{meta}: invalid export metadata ({exc})", "re-run `imgclf export`") from None
    for folder in (p.parent, p.parent.parent):
        if is_run_dir(folder):
            info = load_run_info(folder)
            return ExportMeta(
                class_names=info.class_names,
                input_spec=info.input_spec,
                model=info.model,
                source_run=str(folder),
                run_name=folder.name,
                train_flip=info.train_flip,
            )
    raise ModelError(
        f"{p}: class names unknown (no {meta.name} next to it)", "keep the .json file `imgclf export` wrote with it"
    )


# ----------------------------------------------------------------------- autoencoder runs
class AutoencoderInfo(BaseModel):
    """`autoencoder.json` of an autoencoder run (`imgclf autoencoder train`).

    Attributes:
        kind: str. Always `"autoencoder"`.
        input_spec: InputSpec. How images became its input.
        bottleneck: int. Length of the code vector.
        options: dict. The `AutoencoderOptions` used.
        data_dir: str. The folder trained on.
        images, val_images: int. Images trained on / held out.
        rejected: list of dict. Files skipped (`path`, `reason`, `detail`).
        loss: float. Final training loss (mean squared error).
        val_loss: float or None.
        versions: dict. Library versions.
        created: str. ISO 8601 time, UTC.
    """

    model_config = ConfigDict(extra="ignore")

    kind: str = "autoencoder"
    input_spec: InputSpec
    bottleneck: int
    options: dict[str, Any] = Field(default_factory=dict)
    data_dir: str = ""
    images: int = 0
    val_images: int = 0
    rejected: list[dict[str, str]] = Field(default_factory=list)
    loss: float = float("nan")
    val_loss: float | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    created: str = Field(default_factory=_now)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        if isinstance(data, dict) and "input_spec" not in data and "size" in data:
            data = {**data, "input_spec": {"size": data["size"]}}
        return data

    @computed_field  # type: ignore[prop-decorator]  # pydantic: a computed property, written too
    @property
    def size(self) -> int:
        """Input side in pixels (`input_spec.size`)."""
        return self.input_spec.size


def is_autoencoder_run(path: str | os.PathLike) -> bool:
    """True if `path` is a folder holding `autoencoder.json` and `autoencoder.keras`."""
    p = Path(path)
    return (p / AUTOENCODER_INFO).is_file() and (p / AUTOENCODER_MODEL).is_file()


def save_autoencoder_info(run_dir: str | os.PathLike, info: AutoencoderInfo) -> Path:
    """Writes `run_dir/autoencoder.json` atomically."""
    return atomic_write_text(Path(run_dir) / AUTOENCODER_INFO, info.model_dump_json(indent=2) + "\n")


def load_autoencoder_info(run_dir: str | os.PathLike) -> AutoencoderInfo:
    """Reads `run_dir/autoencoder.json`.

    Raises:
        ModelError: if the folder is not an autoencoder run or the file is invalid.
    """
    run_dir = Path(run_dir)
    if not is_autoencoder_run(run_dir):
        raise ModelError(
            f"{run_dir} is not an autoencoder run (needs {AUTOENCODER_INFO} and {AUTOENCODER_MODEL})",
            "train one with `imgclf autoencoder train DIR --out RUN_DIR`",
        )
    try:
        return AutoencoderInfo.model_validate_json((run_dir / AUTOENCODER_INFO).read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise ModelError(f"{run_dir / AUTOENCODER_INFO} is invalid ({exc})", "retrain the autoencoder") from None
