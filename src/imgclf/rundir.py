"""The run directory contract (DESIGN.md §2): what `train` writes and `evaluate` / `predict` /
`export` / `embed` read back, so no one has to repeat a training option.

    models/<run>/
      run.json        RunInfo below: model, class names, input size, resize policy, config,
                      seed, library versions, status
      best.keras      best model by val_loss, preprocessing inside (feeds raw RGB [0, 255])
      last.keras      model after the last finished epoch
      history.csv     CSVLogger output, one row per epoch
      metrics.json    written by `evaluate`
      *.png, report.html
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imgclf.errors import ModelError
from imgclf.fsutil import atomic_write_text

RUN_FILE = "run.json"
BEST_MODEL = "best.keras"
LAST_MODEL = "last.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"


class RunInfo(BaseModel):
    """Metadata of one training run, stored as `run.json`."""

    model_config = ConfigDict(extra="allow")

    model: str  # registry name, e.g. "cnn"
    class_names: list[str]  # index i = output unit i
    image_size: int  # pixels; input is (image_size, image_size, 3), raw RGB in [0, 255]
    resize: str = "center_crop"  # shortest side resized to image_size, then center-cropped
    data_dir: str | None = None  # the split folder trained on
    seed: int | None = None
    config: dict[str, Any] = Field(default_factory=dict)  # resolved TrainConfig
    versions: dict[str, str] = Field(default_factory=dict)  # python, tensorflow, keras, numpy...
    status: str = "running"  # running | finished
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


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
