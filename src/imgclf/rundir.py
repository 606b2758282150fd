"""The files one stage writes and later commands read back, as typed contracts (DESIGN.md §2).

The writer of a file is also its reader (Keras' BackupAndRestore rule): every such file has
its name, its pydantic model, its `save_*` and its `load_*` here, in one place.

A training run directory (`train` writes it; `evaluate`, `predict`, `serve`, `export`,
`explain`, `embed`, `compare` read it, and never ask the user to repeat a training option):

    models/<run>/
      run.json          RunInfo: model, class names, input specification (size, resize policy,
                        interpolation, how EXIF / alpha / 16-bit / CMYK are handled), resolved
                        config, seed, library versions, status, best epoch, timings
      best.keras        best model by val_loss, preprocessing inside (feeds raw RGB [0, 255])
      last.keras        model after the last finished epoch
      history.csv       Keras CSVLogger, one row per epoch
      train_state.json  TrainState: which training phases finished, with how many epochs
      train_rejects.csv files of the split that could not be read (path, reason), if any
      backup/phaseN/    Keras BackupAndRestore (resume after a crash)
      logs/             TensorBoard
      metrics.json      written by `evaluate` (metrics_<split>.json for other splits)
      export/model.onnx | model.tflite | saved_model/ (+ <file>.json: ExportMeta)

An exported model's sidecar `<file>.json` (`ExportMeta`) carries the class names and the input
specification, so `predict --model model.onnx` needs nothing else. An autoencoder run
(`imgclf autoencoder train`) holds `autoencoder.keras`, `autoencoder.json` (`AutoencoderInfo`)
and `history.csv`.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, model_validator

from imgclf.errors import ModelError
from imgclf.fsutil import atomic_write_text
from imgclf.inputs import InputSpec

RUN_FILE = "run.json"
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
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
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _legacy_input_spec(data: Any) -> Any:
    """Files written before the input specification existed stored `image_size` + `resize`."""
    if isinstance(data, dict) and "input_spec" not in data and "image_size" in data:
        data = dict(data)
        data["input_spec"] = {"size": data["image_size"], "resize": data.get("resize", "center_crop")}
    return data


# --------------------------------------------------------------------------------- run.json
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

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        return _legacy_input_spec(data)

    @computed_field  # written too, for people and tools that read run.json by hand
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
        raise ModelError(
            f"{run_dir} is not a training run (no {RUN_FILE})", "give a folder written by `imgclf train`"
        )
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
        raw = {"phases": {k.removeprefix("phase"): int(v.get("epochs", 0)) for k, v in raw.items()
                          if isinstance(v, dict) and v.get("done")}}
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

    @computed_field  # written too, for people and tools that read the sidecar by hand
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
                class_names=info.class_names, input_spec=info.input_spec, model=info.model,
                source_run=str(folder), run_name=folder.name, train_flip=info.train_flip,
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

    @computed_field
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
