"""Experiment tracking: a training run in the tracker people already compare experiments in.

With `--track mlflow` (`imgclf.config.TrackConfig`), one imgclf training run is one tracker run:

    train     params    the resolved config, flattened (`train.epochs`, `train.augment.flip`,
                        `input.size`...; values cut to `MAX_PARAM_LENGTH` characters; the whole
                        config is in the run.json artifact)
              tags      model, classes, run folder, split sizes (`data.train_images`...)
              metrics   every epoch's logs (`loss`, `accuracy`, `val_loss`, `val_accuracy`,
                        `learning_rate`) with the epoch as step (0-based, as `history.csv`);
                        at the end `best_epoch`, `best_val_loss`, `best_val_accuracy`...
              artifacts run.json, history.csv, training_curves.png (train_rejects.csv)
              model     `best.keras` as an MLflow model: raw RGB `(batch, size, size, 3)`
                        uint8 in [0, 255] in, probabilities `(batch, classes)` out
    evaluate  metrics   `<split>/<metric>` and its interval `<split>/<metric>_ci_low|_ci_high`,
                        the leak audit's count `<split>/leak_images`, at the last epoch's step
              tags      the split's fingerprint and size (`data.test_fingerprint`...)
              artifacts metrics.json, predictions.csv, report.html, every plot, run.json,
                        history.csv

The tracker run's id is kept in `run.json` (`imgclf.records.run.TrackingRef`), so `evaluate`
and a resumed `train` log into the same tracker run. A run folder that was never tracked gets a
tracker run the first time it is (its params, history and model are logged then).

Tracking never stops training: `Tracker` forwards every call to the backend and, at the first
failure (an unreachable server, a full disk), prints one warning line and switches itself off;
the run folder has everything. Only the chief worker of a multi-worker cluster tracks (`is_chief`).

Layout:

- `imgclf.track` (this module): `Tracker`, `open_tracker`, `check_backend`, the stage hooks
  `start_training` / `finish_training` (train) and `log_evaluation` (evaluate), and the pure mappings from
  imgclf's records to params, tags and metrics (`flatten_params`, `epoch_metrics`,
  `evaluation_metrics`, `evaluation_tags`).
- `imgclf.track.callback`: `tracking_callback`, the Keras callback that logs each epoch.
- `imgclf.track.mlflow`: the MLflow backend (imported only with `--track mlflow`).
- `imgclf.track.pyfunc_model`: the MLflow model's code (`mlflow.pyfunc`, models from code),
  which predicts with `imgclf.runtime.load_model`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from imgclf.config import RunConfig, TrackConfig
from imgclf.errors import ConfigError
from imgclf.inputs import ImageListing
from imgclf.records.run import (
    CURVES,
    HISTORY,
    RUN_FILE,
    TRAIN_REJECTS,
    RunInfo,
    TrackingRef,
    load_run_info,
    read_history,
    save_run_info,
)
from imgclf.ui import console, warn

#: Longest param value sent to a tracker, in characters (MLflow's historical limit, which some
#: servers still enforce); longer values are cut and end with "...".
MAX_PARAM_LENGTH = 500

#: Longest tag value sent (MLflow accepts 8,000 characters; a class list can be longer).
MAX_TAG_LENGTH = 5000

#: The install command named when a backend's package is missing.
INSTALL_HINT = {"mlflow": "pip install 'imgclf[mlflow]'"}

#: How a tracker run ends: the training finished, raised, or was interrupted.
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"

_WARNED: set[str] = set()  # warning lines already printed in this process (one per failure)


class TrackingBackend(Protocol):
    """What a tracker backend does for one tracker run (`imgclf.track.mlflow.MlflowBackend`).

    Every method may raise anything: `Tracker` turns the first failure into one warning.
    """

    ref: TrackingRef
    created: bool  # True: the tracker run was made now; False: an existing one was reopened

    @property
    def url(self) -> str | None: ...  # the run's web page, when the tracker has one

    def log_params(self, params: Mapping[str, str]) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_artifacts(self, files: Sequence[Path]) -> None: ...

    def log_model(self, run_dir: Path, info: RunInfo, step: int) -> str | None: ...

    def finish(self, status: str) -> None: ...


class Tracker:
    """The tracker run a stage logs to; every method is safe to call and never raises.

    Forwards to its backend. At the backend's first exception it prints one warning line and
    switches itself off, so training and evaluation go on with the run folder intact. A
    `Tracker` without backend (tracking off, or a non-chief worker) does nothing. Used as a
    context manager, it ends the tracker run when the block ends: `FINISHED`, or `FAILED` /
    `KILLED` (Ctrl+C) when the block raises.

    Args:
        backend: TrackingBackend or None, default None (tracking off).
        config: TrackConfig or None, default None.
    """

    def __init__(self, backend: TrackingBackend | None = None, config: TrackConfig | None = None):
        self._backend = backend
        self.config = config or TrackConfig()

    @property
    def active(self) -> bool:
        """True while the tracker logs (a backend, no failure yet)."""
        return self._backend is not None

    @property
    def ref(self) -> TrackingRef | None:
        """Where the tracker run is (for `run.json`), None when tracking is off."""
        return self._backend.ref if self._backend is not None else None

    @property
    def created(self) -> bool:
        """True when the tracker run was made by this `Tracker` (not reopened)."""
        return self._backend is not None and self._backend.created

    def _call(self, what: str, method: str, *args: Any) -> Any:
        if self._backend is None:
            return None
        try:
            return getattr(self._backend, method)(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must never stop the run, whatever the backend raises
            self._backend = None
            _warn_once(
                f"tracking: {what} failed ({_describe_error(exc)}); tracking is off for the rest of this run, "
                "the run folder has everything"
            )
            return None

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Logs params (values as str, cut to `MAX_PARAM_LENGTH`); a value changed since an
        earlier session of the run is kept as the tag `param.<key>` (params are write-once)."""
        if params:
            self._call("logging params", "log_params", {k: param_value(v) for k, v in params.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Sets tags (values as str, cut to `MAX_TAG_LENGTH`)."""
        if tags:
            self._call("setting tags", "set_tags", {k: _cut(str(v), MAX_TAG_LENGTH) for k, v in tags.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Logs metrics at `step` (an int, the epoch for per-epoch metrics)."""
        if metrics:
            self._call("logging metrics", "log_metrics", dict(metrics), int(step))

    def log_artifacts(self, files: Iterable[Path]) -> None:
        """Uploads the files that exist, each at the root of the tracker run's artifacts."""
        present = [Path(f) for f in files if Path(f).is_file()]
        if present:
            self._call("uploading artifacts", "log_artifacts", present)

    def log_model(self, run_dir: Path, info: RunInfo, step: int = 0) -> str | None:
        """Logs the run's `best.keras` as the tracker's model; returns its URI, or None."""
        if not (Path(run_dir) / "best.keras").is_file():
            return None
        uri = self._call("logging the model", "log_model", Path(run_dir), info, int(step))
        return uri if isinstance(uri, str) else None

    def finish(self, status: str = FINISHED) -> None:
        """Ends the tracker run with `status` (`FINISHED`, `FAILED` or `KILLED`); then off."""
        self._call("ending the run", "finish", status)
        self._backend = None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.finish(FINISHED)
        else:
            self.finish(KILLED if issubclass(exc_type, KeyboardInterrupt) else FAILED)


# ------------------------------------------------------------------------------- opening
def _warn_once(line: str) -> None:
    """Prints `line` as a warning, once per process (a tracker down for `train` is not
    reported again by `evaluate` in the same `imgclf run`)."""
    if line not in _WARNED:
        _WARNED.add(line)
        warn(line)


def _describe_error(exc: BaseException) -> str:
    """`Type: first line of the message`, at most 200 characters."""
    text = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def is_chief(tf_config: str | None = None) -> bool:
    """True on the worker that tracks: always, except in a `tf.distribute` cluster where this
    task is not the chief (`TF_CONFIG`: task `chief`, else `worker` 0 when there is no chief).

    Args:
        tf_config: str or None, default None (the `TF_CONFIG` environment variable). JSON.

    Returns:
        bool.
    """
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    try:
        conf = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return True
    task = conf.get("task") or {}
    kind, index = task.get("type"), int(task.get("index", 0) or 0)
    if not kind:
        return True
    has_chief = bool((conf.get("cluster") or {}).get("chief"))
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief)


def check_backend(cfg: TrackConfig | None) -> None:
    """Checks that the chosen backend's package is installed, before any work starts.

    Args:
        cfg: TrackConfig or None (None or backend "none": nothing to check).

    Raises:
        ConfigError: the backend's package is missing (one line naming the install command).
    """
    if cfg is None or not cfg.enabled:
        return
    import importlib.util

    if importlib.util.find_spec(cfg.backend) is None:
        raise ConfigError(
            f"--track {cfg.backend} needs the {cfg.backend} package, which is not installed: "
            f"{INSTALL_HINT.get(cfg.backend, f'pip install {cfg.backend}')}"
        )


def open_tracker(cfg: TrackConfig | None, run_dir: Path, info: RunInfo) -> Tracker:
    """The tracker run of a run folder: the one `run.json` names, else a new one.

    Args:
        cfg: TrackConfig or None. None or backend "none": tracking off.
        run_dir: Path. The run folder (its name is the tracker run's name).
        info: RunInfo. The run (`info.tracking` names the tracker run to reopen).

    Returns:
        Tracker: active, or inactive when tracking is off, this worker is not the chief, or the
        tracker cannot be reached (one warning line says why).

    Raises:
        ConfigError: the backend's package is not installed.
    """
    if cfg is None or not cfg.enabled or not is_chief():
        return Tracker(None, cfg)
    check_backend(cfg)
    from imgclf.track.mlflow import MlflowBackend  # imports MLflow

    try:
        backend = MlflowBackend.open(cfg, Path(run_dir).name, info.tracking)
    except Exception as exc:  # noqa: BLE001 - an unreachable or broken tracker must not stop the run
        why = str(exc) if isinstance(exc, ConnectionError) else _describe_error(exc)
        _warn_once(f"tracking: {why}; going on without tracking (the run folder has everything)")
        return Tracker(None, cfg)
    ref = backend.ref
    where = backend.url or ref.uri
    console.print(
        f"tracking: {ref.backend} run {ref.run_id} ({'new' if backend.created else 'resumed'}) -> {where}",
        highlight=False,
        soft_wrap=True,
    )
    return Tracker(backend, cfg)


# ------------------------------------------------------------------------- pure mappings
def param_value(value: Any) -> str:
    """A param value as the text a tracker stores.

    Args:
        value: any config value.

    Returns:
        str: JSON for lists and dicts (`[2, 2]`), `str(value)` otherwise (`None`, `0.001`),
        cut to `MAX_PARAM_LENGTH` characters (then ending in "...").
    """
    text = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
    return _cut(text, MAX_PARAM_LENGTH)


def _cut(text: str, limit: int) -> str:
    """`text`, or its first `limit - 3` characters and "..." when it is longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flattens a nested config into dotted keys: `{"augment": {"flip": "h"}}` -> `{"augment.flip": "h"}`.

    Lists stay values (`param_value` writes them as JSON); an empty dict is one value `{}`.

    Args:
        config: mapping, e.g. `TrainConfig.model_dump(mode="json")`.
        prefix: str, default "". Put before every key (`"train."`).

    Returns:
        dict dotted key -> value, sorted by key.
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, name + "."))
        else:
            out[name] = value
    return dict(sorted(out.items()))


def _number(value: Any) -> float | None:
    """`value` as a float when it is a real number (bools excluded), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def epoch_metrics(logs: Mapping[str, Any] | None) -> dict[str, float]:
    """The numeric, finite entries of a Keras epoch's logs (or a `history.csv` row), by name.

    Args:
        logs: mapping or None. E.g. `{"loss": 0.3, "val_accuracy": 0.9, "learning_rate": 1e-3}`.

    Returns:
        dict name -> float; the `epoch` column and non-numbers are left out.
    """
    out = {}
    for key, value in (logs or {}).items():
        number = _number(value)
        if key != "epoch" and number is not None:
            out[str(key)] = number
    return out


#: Headline metrics of `metrics.json` logged by `evaluation_metrics` (see `MetricsRecord`).
EVALUATION_METRICS = ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro", "top_k_accuracy", "ece")


def evaluation_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The tracker metrics of one evaluation, from `metrics.json`'s content.

    Names are prefixed by the split (`test/accuracy`): `EVALUATION_METRICS`, each interval
    bound `<split>/<metric>_ci_low` / `_ci_high` (`confidence_intervals`), `<split>/images`
    scored, `<split>/set_aside`, the leak audit's `<split>/leak_images` (evaluated images with a
    near copy in train / val) and `<split>/leak_pairs` when it ran, `<split>/predict_ms_per_image`,
    and `parameters`.

    Args:
        metrics: mapping. `imgclf.evaluate.evaluate_run`'s result (`metrics.json`).

    Returns:
        dict name -> float.
    """
    split = str(metrics.get("split", "test"))
    out: dict[str, float | None] = {f"{split}/{k}": _number(metrics.get(k)) for k in EVALUATION_METRICS}
    for name, interval in ((metrics.get("confidence_intervals") or {}).get("metrics") or {}).items():
        out[f"{split}/{name}_ci_low"] = _number(interval.get("low"))
        out[f"{split}/{name}_ci_high"] = _number(interval.get("high"))
    out[f"{split}/images"] = _number(metrics.get("n_images"))
    out[f"{split}/set_aside"] = _number((metrics.get("set_aside") or {}).get("count"))
    leaks = metrics.get("leaks") or {}
    if leaks.get("checked"):
        out[f"{split}/leak_images"] = _number(leaks.get("test_images_with_copy"))
        out[f"{split}/leak_pairs"] = _number(leaks.get("pairs"))
    out[f"{split}/predict_ms_per_image"] = _number(metrics.get("predict_ms_per_image"))
    out["parameters"] = _number(metrics.get("parameters"))
    return {k: v for k, v in out.items() if v is not None}


def evaluation_tags(metrics: Mapping[str, Any]) -> dict[str, str]:
    """The tracker tags of one evaluation: the split's fingerprint and size, how it was scored.

    Args:
        metrics: mapping. `metrics.json`'s content.

    Returns:
        dict: `data.<split>_fingerprint` (sha256 of the split's files, `imgclf.records.run.split_fingerprint`),
        `data.<split>_files`, `data.<split>_dir`, `<split>.tta`, `<split>.ci_level`, `<split>.top_k`,
        `<split>.leak_audit` ("checked", or why not).
    """
    split = str(metrics.get("split", "test"))
    fp = metrics.get("fingerprint") or {}
    ci = metrics.get("confidence_intervals") or {}
    leaks = metrics.get("leaks") or {}
    tags = {
        f"data.{split}_fingerprint": fp.get("sha256"),
        f"data.{split}_files": fp.get("n_files"),
        f"data.{split}_dir": metrics.get("data_dir"),
        f"{split}.tta": metrics.get("tta"),
        f"{split}.ci_level": ci.get("level"),
        f"{split}.top_k": metrics.get("top_k"),
        f"{split}.leak_audit": "checked" if leaks.get("checked") else leaks.get("reason", "not run"),
    }
    return {k: str(v) for k, v in tags.items() if v is not None}


def run_params(info: RunInfo, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The params of a training run.

    Args:
        info: RunInfo. The run (`run.json`).
        extra: mapping or None, default None. More params, e.g. `pipeline_params` of an
            `imgclf run` config.

    Returns:
        dict: `train.*` (the resolved config, flattened), `input.*` (the input specification),
        `data.dir` (the split folder), then `extra`.
    """
    params = flatten_params(info.config, "train.")
    params.update(flatten_params(info.input_spec.model_dump(mode="json"), "input."))
    params["data.dir"] = info.data_dir
    params.update(extra or {})
    return params


def run_tags(run_dir: Path, info: RunInfo, listings: Sequence[tuple[str, ImageListing]] = ()) -> dict[str, Any]:
    """The tags of a training run.

    Args:
        run_dir: Path. The run folder.
        info: RunInfo. The run.
        listings: sequence of (split name, ImageListing), default (). Splits whose size to tag.

    Returns:
        dict: `imgclf.model`, `imgclf.label`, `imgclf.run_dir` (absolute), `imgclf.version`,
        `data.classes` (comma-separated), `data.num_classes`, `data.<split>_images`.
    """
    from imgclf import __version__

    tags: dict[str, Any] = {
        "imgclf.model": info.model,
        "imgclf.label": info.label or info.model,
        "imgclf.run_dir": str(Path(run_dir).resolve()),
        "imgclf.version": __version__,
        "data.classes": ",".join(info.class_names),
        "data.num_classes": info.num_classes,
    }
    for split, listing in listings:
        tags[f"data.{split}_images"] = len(listing)
    return tags


#: Sections of an `imgclf run` config that shape its training runs, logged as params beside
#: `train.*` (`pipeline_params`); the others (downloads, audit, serve...) do not change a model.
PIPELINE_SECTIONS = ("name", "source", "clean", "prepare", "split")


def pipeline_params(cfg: RunConfig) -> dict[str, Any]:
    """The params an `imgclf run` config adds to each of its training runs: `PIPELINE_SECTIONS`,
    flattened (`prepare.size`, `split.seed`, `source.dataset.name`...).

    Args:
        cfg: RunConfig.

    Returns:
        dict dotted key -> value.
    """
    data = cfg.model_dump(mode="json", include=set(PIPELINE_SECTIONS))
    return flatten_params({k: data[k] for k in PIPELINE_SECTIONS if k in data})


def final_metrics(info: RunInfo) -> dict[str, float]:
    """The metrics a finished training run adds.

    Args:
        info: RunInfo. The finished run.

    Returns:
        dict: `best_epoch` (1-based, as `run.json`), `best_val_loss`, `best_val_accuracy`,
        `epochs_done`, `train_seconds` (seconds, all sessions), `train_rejects` (unreadable
        files); the ones `run.json` lacks are left out.
    """
    values = {
        "best_epoch": info.best_epoch,
        "best_val_loss": info.best_val_loss,
        "best_val_accuracy": info.best_val_accuracy,
        "epochs_done": info.epochs_done,
        "train_seconds": info.train_seconds,
        "train_rejects": info.train_rejects,
    }
    return {k: n for k, v in values.items() if (n := _number(v)) is not None}


# ------------------------------------------------------------------------- stage hooks
def _backfill(tracker: Tracker, run_dir: Path, info: RunInfo, params: Mapping[str, Any]) -> None:
    """A tracker run made for a run folder that already holds epochs: its params, tags and
    every `history.csv` row (with its epoch as step)."""
    tracker.log_params(params)
    tracker.set_tags(run_tags(run_dir, info))
    for row in read_history(run_dir):
        tracker.log_metrics(epoch_metrics(row), step=int(row.get("epoch", 0)))


def _log_model(tracker: Tracker, run_dir: Path, info: RunInfo) -> None:
    """Logs the run's model at the last epoch's step and records its URI in `run.json`."""
    uri = tracker.log_model(run_dir, info, step=last_step(info))
    if uri is not None and info.tracking is not None:
        info.tracking = info.tracking.model_copy(update={"model_uri": uri})
        save_run_info(run_dir, info)


def last_step(info: RunInfo) -> int:
    """The step of a run's last epoch (0-based, as `history.csv`); 0 before any epoch."""
    return max(info.epochs_done - 1, 0)


def start_training(
    cfg: TrackConfig | None,
    run_dir: Path,
    info: RunInfo,
    listings: Sequence[tuple[str, ImageListing]] = (),
    extra_params: Mapping[str, Any] | None = None,
) -> Tracker:
    """Opens the tracker run of a training run (`imgclf.train`), before its first epoch.

    Logs the params (`run_params`), the tags (`run_tags`: split sizes from `listings`) and,
    when the tracker run is new and the folder already has epochs (a resumed run that was not
    tracked), the `history.csv` rows. Sets `info.tracking` (the caller saves `run.json`).

    Args:
        cfg: TrackConfig or None. None or backend "none": tracking off.
        run_dir: Path. The run folder.
        info: RunInfo. The run, its config resolved.
        listings: sequence of (split name, ImageListing), default (). The train / val splits.
        extra_params: mapping or None. More params (`imgclf run`: the other config sections).

    Returns:
        Tracker (inactive when tracking is off or failed).

    Raises:
        ConfigError: the backend's package is not installed.
    """
    tracker = open_tracker(cfg, run_dir, info)
    if tracker.ref is None:
        return tracker
    info.tracking = tracker.ref
    params = run_params(info, extra_params)
    if tracker.created:
        _backfill(tracker, run_dir, info, params)
    else:
        tracker.log_params(params)
    tracker.set_tags({**run_tags(run_dir, info, listings), "imgclf.status": "running"})
    return tracker


def finish_training(tracker: Tracker, run_dir: Path, info: RunInfo) -> None:
    """Logs what a finished training run adds: `final_metrics`, the model (`TrackConfig.log_model`),
    and `run.json`, `history.csv`, `training_curves.png` (and `train_rejects.csv`) as artifacts.
    Saves `run.json` again when the model's URI changed. The caller ends the tracker run.

    Args:
        tracker: Tracker (inactive: nothing happens).
        run_dir: Path. The run folder.
        info: RunInfo. The finished run (`run.json`).
    """
    if not tracker.active:
        return
    tracker.log_metrics(final_metrics(info), step=last_step(info))
    tracker.set_tags({"imgclf.status": info.status})
    if tracker.config.log_model:
        _log_model(tracker, run_dir, info)
    tracker.log_artifacts(run_dir / name for name in (RUN_FILE, HISTORY, CURVES, TRAIN_REJECTS))


def log_evaluation(
    cfg: TrackConfig | None, run_dir: Path, metrics: Mapping[str, Any], files: Mapping[str, Path]
) -> None:
    """Logs one evaluation (`imgclf.evaluate.evaluate_run`) into the run's tracker run.

    Reopens the tracker run `run.json` names, or makes one (then the run's params, history and
    model are logged too, and `run.json` records it). Logs `evaluation_metrics` at the step of
    the last epoch trained (`last_step`), `evaluation_tags`, and the evaluation's files, `run.json` and `history.csv` as
    artifacts; ends the tracker run.

    Args:
        cfg: TrackConfig or None. None or backend "none": nothing happens.
        run_dir: Path. The evaluated run folder.
        metrics: mapping. `metrics.json`'s content.
        files: mapping kind -> Path. The files the evaluation wrote (`imgclf.evaluate.output_files`).

    Raises:
        ConfigError: the backend's package is not installed.
    """
    if cfg is None or not cfg.enabled:
        return
    run_dir = Path(run_dir)
    info = load_run_info(run_dir)
    with open_tracker(cfg, run_dir, info) as tracker:
        if tracker.ref is None:
            return
        if tracker.ref != info.tracking:
            info.tracking = tracker.ref
            save_run_info(run_dir, info)
        if tracker.created:
            _backfill(tracker, run_dir, info, run_params(info))
            tracker.set_tags({"imgclf.status": info.status})
            if cfg.log_model:
                _log_model(tracker, run_dir, info)
        tracker.log_metrics(evaluation_metrics(metrics), step=last_step(info))
        tracker.set_tags({**evaluation_tags(metrics), "imgclf.label": info.label or info.model})
        tracker.log_artifacts([*files.values(), run_dir / RUN_FILE, run_dir / HISTORY])
