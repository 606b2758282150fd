"""`imgclf train`: a model from the registry trained on `<data>/train`, checked on `<data>/val`,
written as a run directory (`imgclf.records.run`) that `evaluate` / `predict` read back.

What a run does, in order:

0. Creates the `tf.distribute` strategy, first: `multiworker` (`MultiWorkerMirroredStrategy`,
   the cluster from `TF_CONFIG`, `imgclf.cluster`) can only be made before TensorFlow's
   runtime starts. With several workers they then agree before anything is written: each one's
   start-up status, a fingerprint of the split it sees, and the chief's resume state.
1. Lists the split folders (`imgclf.inputs.list_images`); the classes are the folders of `train/`.
2. Seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`); `deterministic` turns
   on `tf.config.experimental.enable_op_determinism`. Sets the mixed-precision policy
   (`mixed_float16` on a GPU, `mixed_bfloat16` on a CPU).
3. Class weights: scikit-learn `compute_class_weight("balanced")` on the train labels
   (`n_samples / (n_classes * count_c)`), a warning when the largest class is more than
   `imbalance_warn_ratio` times the smallest.
4. Builds the model (`imgclf.models.create_model`) inside the strategy scope, compiles it
   (cross-entropy with optional label smoothing, accuracy) and fits with these Keras callbacks:
   `BackupAndRestore` (`<run>/backup/phaseN`, kept after the run, so a killed run resumes
   and a finished run continues when `epochs` is raised), `ModelCheckpoint` best
   (`best.keras`, lowest `val_loss`) and last (`last.keras`), both written atomically,
   `EarlyStopping(restore_best_weights=True)` and (schedule "plateau") `ReduceLROnPlateau` on
   `val_loss`, `CSVLogger` (`history.csv`), `TensorBoard` (`logs/`), and a rich progress bar.
   With `ema_momentum`, the optimizer keeps the weights' exponential moving average (Polyak
   averaging) and `SwapEMAWeights` puts it in the model for validation and for the callbacks
   above, so the checkpoints hold the average; the trained weights are swapped back before
   `BackupAndRestore` saves the epoch.
5. Pretrained backbones (`weights` imagenet or a file, models with `pretrained=True`) train in
   two phases, as in the Keras transfer-learning guide: phase 1 trains the head with the
   backbone frozen; phase 2 starts from `best.keras`, unfreezes the top `fine_tune_layers`
   backbone layers (or all) except BatchNormalization layers — which stay frozen and so run in
   inference mode (Keras 3: a non-trainable BatchNormalization uses its moving statistics) —
   recompiles with `fine_tune_learning_rate`, and trains `fine_tune_epochs` more epochs.
6. Writes `run.json` (status "finished", best epoch), `training_curves.png`, and one summary line.
7. With `track` (`--track mlflow`), the run is also one tracker run (`imgclf.track`): params
   and tags when it starts, each epoch's logs from a Keras callback in the list above
   (`imgclf.track.callback`), the model and the run's files when it ends. Its id is kept in
   `run.json`, so a resumed run logs into the same one; a tracker that fails is reported once
   and training goes on. With several workers only the chief opens the tracker run and logs.

`default` and `mirrored` fit with `model.fit`; `multiworker` with `imgclf.train_loop` (Keras 3's
`fit` cannot run under `MultiWorkerMirroredStrategy`), which drives the same callbacks. With
several workers each reads its shard of the files, only the chief (worker 0) writes the run
folder and runs the callbacks that write; the others run the ones that decide (docs/scale.md).

Images are loaded by `imgclf.data.image_dataset` (the run's `InputSpec`). An unreadable file is
left out and listed in `train_rejects.csv` (and "none could be read" stops the run); any other
exception the loader meets is a bug: training stops with one line naming the file and the
exception (`imgclf.errors.LoaderError`), and the traceback is appended to `<run>/errors.log`.

`best.keras` is the model to use: it is the best epoch by `val_loss` whether or not early
stopping fired. It is saved compiled; losses are sparse cross-entropy, or categorical
cross-entropy on one-hot labels when `label_smoothing > 0` (Keras' sparse loss has no
smoothing), so callers that evaluate should compile it themselves or use `predict`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.cluster import Cluster, ClusterError, Collectives, cluster_errors, read_cluster, start_strategy
from imgclf.config import TrackConfig, TrainConfig
from imgclf.data import image_dataset, raising_loader_bugs
from imgclf.errors import ConfigError, DataError, ImageError, ImgclfError, LoaderError, ModelError
from imgclf.fsutil import atomic_write_text, tmp_path_for
from imgclf.inputs import ImageListing, InputSpec, infer_image_size, list_images, load_item
from imgclf.prepare import read_prepare_record
from imgclf.records.run import (
    BACKUP_DIR,
    BEST_MODEL,
    CURVES,
    HISTORY,
    LAST_MODEL,
    LOG_DIR,
    RUN_FILE,
    TRAIN_REJECTS,
    Distribution,
    RunInfo,
    TrainState,
    best_epoch_row,
    history_columns,
    library_versions,
    load_run_info,
    load_train_state,
    read_history,
    save_run_info,
    save_train_state,
)
from imgclf.report import plot_training_curves
from imgclf.runtime import import_tensorflow_quietly
from imgclf.track import Tracker, check_backend, finish_training, start_training
from imgclf.track.callback import tracking_callback
from imgclf.ui import console, progress, summary, warn

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

#: Where a run keeps the traceback of a loader bug that stopped it (inside the run folder).
ERRORS_LOG = "errors.log"


# ------------------------------------------------------------------------------- helpers
def compute_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Returns balanced class weights `n_samples / (n_classes * count_c)`.

    Uses `sklearn.utils.class_weight.compute_class_weight("balanced")` (King & Zeng, 2001
    heuristic, as in scikit-learn).

    Args:
        labels: int array of shape `(n,)`, values in `[0, num_classes)`.
        num_classes: int. Every class must occur at least once.

    Returns:
        dict `{class_index: weight}`.

    Raises:
        DataError: if a class has no sample.
    """
    from sklearn.utils.class_weight import compute_class_weight

    counts = np.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        raise DataError(f"class index {int(np.argmin(counts))} has no training images")
    w = compute_class_weight("balanced", classes=np.arange(num_classes), y=labels)
    return {i: float(v) for i, v in enumerate(w)}


def make_strategy(
    name: str, *, cluster: Cluster | None = None, start_timeout: int = 300, heartbeat_timeout: int = 30
) -> tf.distribute.Strategy:
    """Returns the `tf.distribute` strategy for `name`.

    Args:
        name: str. `"default"` (the current/default strategy, one device), `"mirrored"`
            (`MirroredStrategy` over all GPUs, or over all logical CPU devices when there is
            no GPU, reducing on one device), `"multiworker"`
            (`MultiWorkerMirroredStrategy`: with `cluster`, through
            `imgclf.cluster.start_strategy`, which bounds the start-up wait and detects lost
            workers; without, TensorFlow reads `TF_CONFIG` itself, or trains one worker).
        cluster: Cluster or None, default None. The `TF_CONFIG` cluster
            (`imgclf.cluster.read_cluster`); `"multiworker"` only.
        start_timeout: int, default 300. Seconds the workers wait for each other to join.
        heartbeat_timeout: int, default 30. Seconds after which a silent worker is lost.

    Returns:
        tf.distribute.Strategy.

    Raises:
        ValueError: if `name` is not one of the three.
        ClusterError: the cluster did not form (`imgclf.cluster.start_strategy`).
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multiworker":
        return start_strategy(cluster, start_timeout=start_timeout, heartbeat_timeout=heartbeat_timeout)
    raise ValueError(f"strategy must be one of 'default', 'mirrored', 'multiworker', received strategy={name!r}")


def _cluster(cfg: TrainConfig) -> Cluster | None:
    """The `TF_CONFIG` cluster; refused unless `strategy` is "multiworker" (every worker would
    train its own model into the same run folder)."""
    cluster = read_cluster()
    if cluster is not None and cfg.strategy != "multiworker":
        raise ConfigError(
            f"TF_CONFIG names {cluster.num_workers} workers but --strategy is {cfg.strategy!r}",
            "pass --strategy multiworker on every worker, or unset TF_CONFIG",
        )
    return cluster


@contextmanager
def precision_policy(mixed: bool) -> Iterator[str]:
    """Sets Keras' global dtype policy for the block and restores the previous one after.

    Args:
        mixed: bool. True: `"mixed_float16"` when a GPU is visible, else `"mixed_bfloat16"`
            (CPUs have no fast float16; bfloat16 needs no loss scaling). False: `"float32"`.

    Yields:
        str: the policy name in force.
    """
    import keras
    import tensorflow as tf

    before = keras.mixed_precision.global_policy().name
    name = ("mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16") if mixed else "float32"
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(before)


# ----------------------------------------------------------------------------- callbacks
@functools.cache
def _callback_classes() -> SimpleNamespace:
    """imgclf's Keras callbacks, classes made on first use (importing this module imports no Keras)."""
    import keras

    return SimpleNamespace(
        AtomicModelCheckpoint=_atomic_model_checkpoint(keras),
        LearningRateLogger=_learning_rate_logger(keras),
        RichProgress=_rich_progress(keras),
        SwapEMAWeightsBack=_swap_ema_weights_back(keras),
    )


def _atomic_model_checkpoint(keras: Any) -> type:
    """The `AtomicModelCheckpoint` callback class."""

    class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
        """`ModelCheckpoint` that writes to a hidden temporary file then `os.replace`s it, so a
        `kill -9` during a save never leaves a half-written `best.keras` / `last.keras`."""

        filepath: str

        def _save_model(self, epoch, batch, logs):
            final = self.filepath
            tmp = str(tmp_path_for(final))
            self.filepath = tmp
            try:
                super()._save_model(epoch, batch, logs)
            finally:
                self.filepath = final
            if os.path.exists(tmp):
                os.replace(tmp, final)

    return AtomicModelCheckpoint


def _learning_rate_logger(keras: Any) -> type:
    """The `LearningRateLogger` callback class."""

    class LearningRateLogger(keras.callbacks.Callback):
        """Adds the current learning rate to the epoch logs (so `history.csv` has it)."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    return LearningRateLogger


def _rich_progress(keras: Any) -> type:
    """The `RichProgress` callback class."""

    class RichProgress(keras.callbacks.Callback):
        """Epoch progress bar (`imgclf.ui.progress`) with the batch and metrics as status, and
        one printed line per finished epoch."""

        def __init__(self, description: str, total_epochs: int, steps: int):
            super().__init__()
            self.description = description
            self.total_epochs = total_epochs
            self.steps = steps
            self._cm: Any = None
            self._advance: Any = None
            self._started = False
            self._epoch = 0
            self._t = 0.0
            self._last = 0.0

        def on_train_begin(self, logs=None):
            self._cm = progress(self.description, total=self.total_epochs)
            self._advance = self._cm.__enter__()
            self._started = False

        def on_epoch_begin(self, epoch, logs=None):
            if not self._started:  # after BackupAndRestore: start the bar at the resumed epoch
                self._advance(epoch, status=f"resumed at epoch {epoch + 1}" if epoch else "")
                self._started = True
            self._epoch = epoch
            self._t = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            now = time.monotonic()
            if now - self._last > 0.5 and self._advance is not None:
                self._last = now
                loss = (logs or {}).get("loss")
                shown = f" loss {float(loss):.4f}" if loss is not None else ""
                self._advance(0, status=f"epoch {self._epoch + 1} batch {batch + 1}/{self.steps}{shown}")

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            parts = [
                f"{k} {float(logs[k]):.4g}"
                for k in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
                if k in logs
            ]
            line = f"epoch {epoch + 1}/{self.total_epochs} ({time.monotonic() - self._t:.0f}s): " + ", ".join(parts)
            if self._advance is not None:
                self._advance(1, status=line)
            console.print(f"  {line}", highlight=False)

        def on_train_end(self, logs=None):
            self.close()

        def close(self):
            if self._cm is not None:
                cm, self._cm, self._advance = self._cm, None, None
                cm.__exit__(None, None, None)

    return RichProgress


def _swap_ema_weights_back(keras: Any) -> type:
    """The `SwapEMAWeightsBack` callback class."""

    class SwapEMAWeightsBack(keras.callbacks.Callback):
        """Puts the trained weights back in the model at the end of an epoch, after the callbacks
        that must see the moving average (validation, checkpoints, early stopping) and before
        `BackupAndRestore`, so a resumed run continues from the trained weights with the average
        in the optimizer. Partner of `keras.callbacks.SwapEMAWeights(swap_on_epoch=True)`, which
        swaps the average in at the end of an epoch and back only at the next epoch's start.
        Uses that callback's own swap (`_swap_variables`, `_ema_weights_in_model`: Keras 3
        internals, exercised by tests/test_train.py) so the two never disagree on where the
        average is."""

        def __init__(self, swap: keras.callbacks.SwapEMAWeights):
            super().__init__()
            self.swap = swap

        def on_epoch_end(self, epoch, logs=None):
            if self.swap._ema_weights_in_model:
                self.swap._swap_variables()
                self.swap._ema_weights_in_model = False

    return SwapEMAWeightsBack


# --------------------------------------------------------------------------------- train
def _set_trainable_for_phase(model: keras.Model, phase: int, fine_tune_layers: int | str) -> int:
    """Freezes / unfreezes backbone layers for `phase`; returns the number of trainable
    backbone layers. BatchNormalization layers always stay frozen (inference mode)."""
    import keras

    from imgclf.models._backbone import backbone_layer_names

    names = backbone_layer_names(model)
    if phase == 1:
        unfrozen: set[str] = set()
    elif fine_tune_layers == "all":
        unfrozen = set(names)
    else:
        unfrozen = set(names[len(names) - int(fine_tune_layers) :]) if int(fine_tune_layers) > 0 else set()
    n = 0
    for name in names:
        layer = model.get_layer(name)
        trainable = name in unfrozen and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable
        n += bool(trainable and layer.weights)
    return n


def build_optimizer(cfg: TrainConfig, learning_rate: Any, *, ema: bool = True) -> keras.optimizers.Optimizer:
    """The Keras optimizer a `TrainConfig` names.

    Args:
        cfg: TrainConfig. Reads `optimizer` (`"adam"`, `"adamw"` or `"sgd"`), `weight_decay`
            and `ema_momentum`.
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
        ema: bool, default True. Keep the weights' exponential moving average when
            `cfg.ema_momentum` is set (Polyak & Juditsky, 1992; Keras keeps
            `avg = m * avg + (1 - m) * w` per step). False for callers that never swap the
            averaged weights in (the audit's `--cv-train` folds).

    Returns:
        `keras.optimizers.Adam` (no weight decay); `keras.optimizers.AdamW` with decoupled
        weight decay `cfg.weight_decay` (Loshchilov & Hutter, 2019); or `keras.optimizers.SGD`
        with Nesterov momentum 0.9 (Sutskever et al., 2013) and weight decay
        `cfg.weight_decay`, applied by Keras as `w -= learning_rate * weight_decay * w` each
        step, outside the momentum (SGDW in Loshchilov & Hutter, 2019). An L2 penalty added
        to the gradient (PyTorch's `SGD(weight_decay=...)`) goes through the momentum too and
        so shrinks the weights about `1 / (1 - 0.9) = 10` times as much: PyTorch's usual
        `5e-4` corresponds to about `5e-3` here.
    """
    import keras

    extra = {"use_ema": True, "ema_momentum": cfg.ema_momentum} if ema and cfg.ema_momentum is not None else {}
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate, **extra)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=cfg.weight_decay, **extra)
    wd = {"weight_decay": cfg.weight_decay} if cfg.weight_decay > 0 else {}
    return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, **wd, **extra)


def _learning_rate(cfg: TrainConfig, base: float, epochs: int, steps: int, schedule: str):
    """A float for "plateau"; for "cosine", `CosineDecay` with linear warmup from base/10
    (Loshchilov & Hutter, 2017, SGDR; Goyal et al., 2017, warmup), stepped per batch."""
    import keras

    if schedule != "cosine":
        return base
    warmup = min(cfg.warmup_epochs, max(epochs - 1, 0)) * steps
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=base / 10 if warmup else base,
        decay_steps=max(epochs * steps - warmup, 1),
        alpha=0.0,
        warmup_target=base if warmup else None,
        warmup_steps=warmup,
        name="cosine",
    )


def _compile(model: keras.Model, cfg: TrainConfig, learning_rate: Any) -> None:
    import keras

    if cfg.label_smoothing > 0:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=build_optimizer(cfg, learning_rate),
        loss=loss,
        metrics=metrics,
        jit_compile=bool(cfg.jit),
        steps_per_execution=cfg.steps_per_execution,
    )


def _new_run_dir(models_dir: Path, cfg: TrainConfig) -> Path:
    name = cfg.run_name or f"{cfg.model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    return Path(models_dir) / name


def _check_resume(run_dir: Path, cfg: TrainConfig, class_names: list[str], spec: InputSpec) -> RunInfo | None:
    if not (run_dir / RUN_FILE).is_file():
        if run_dir.is_dir() and any(not p.name.startswith(".") for p in run_dir.iterdir()):
            raise ModelError(
                f"{run_dir} exists and is not a training run (no {RUN_FILE})",
                "pass a new --run-dir, or an empty folder",
            )
        return None
    info = load_run_info(run_dir)
    problems = []
    if info.model != cfg.model:
        problems.append(f"model {info.model!r} (now {cfg.model!r})")
    if info.class_names != class_names:
        problems.append(f"classes {info.class_names} (now {class_names})")
    if info.input_spec != spec:
        problems.append(f"input {info.input_spec.describe()} (now {spec.describe()})")
    if (info.config.get("model_options") or {}) != cfg.model_options:
        problems.append(f"model_options {info.config.get('model_options')} (now {cfg.model_options})")
    if problems:
        raise ModelError(
            f"{run_dir} is a run with a different " + "; ".join(problems),
            "resume it with the same model and data, or pass a new --run-dir / --run-name",
        )
    return info


# --------------------------------------------------------------------------- pure cores
@dataclass(frozen=True)
class Phase:
    """One `model.fit` of a training run.

    Attributes:
        number: int. 1 (the only phase, or the head of a pretrained model), or 2 (fine-tuning).
        initial_epoch: int. Epochs already behind this phase (Keras' `initial_epoch`).
        end_epoch: int. Epoch count when it ends (Keras' `epochs`).
        learning_rate: float. Peak learning rate.
        schedule: str. "plateau" (ReduceLROnPlateau) or "cosine".
        frozen_backbone: bool. Phase 1 of a pretrained model: the backbone is frozen.
    """

    number: int
    initial_epoch: int
    end_epoch: int
    learning_rate: float
    schedule: str
    frozen_backbone: bool = False


def plan_phases(cfg: TrainConfig, pretrained: bool, state: TrainState, phase2_started: bool = False) -> list[Phase]:
    """The phases a run still has to fit, from its config and what already finished.

    A model trained from scratch has one phase of `cfg.epochs`. A pretrained backbone
    (`pretrained` and `cfg.weights` not "none") trains in two, as in the Keras transfer-learning
    guide: the head with the backbone frozen for `cfg.epochs`, then fine-tuning for
    `cfg.fine_tune_epochs` (0 = as many) at `cfg.fine_tune_learning_rate` with ReduceLROnPlateau.
    A phase that finished with at least its end epoch is left out; phase 1 is also left out once
    phase 2 has started (it has a backup).

    Args:
        cfg: TrainConfig.
        pretrained: bool. The registry model has an ImageNet-style backbone (`ModelSpec.pretrained`).
        state: TrainState. What finished before (`train_state.json`).
        phase2_started: bool, default False. Phase 2 has a `BackupAndRestore` folder.

    Returns:
        list of Phase, in order; empty when nothing is left to do.
    """
    two_phase = pretrained and cfg.weights.lower() != "none"
    e1 = cfg.epochs
    phases = []
    if not state.finished(1, e1) and not (two_phase and phase2_started):
        phases.append(Phase(1, 0, e1, cfg.learning_rate, cfg.schedule, frozen_backbone=two_phase))
    if two_phase:
        e2 = e1 + (cfg.fine_tune_epochs or cfg.epochs)
        if not state.finished(2, e2):
            phases.append(Phase(2, e1, e2, cfg.fine_tune_learning_rate, "plateau"))
    return phases


def resolve_input_spec(cfg: TrainConfig, data_dir: Path, train_listing: ImageListing) -> InputSpec:
    """The run's `InputSpec`, resolved once: options, else what `prepare` recorded, else defaults.

    Args:
        cfg: TrainConfig. `image_size`, `resize`, `interpolation` (None = not given).
        data_dir: Path. The split folder (its `_reports/prepare.json`, copied by `split`).
        train_listing: ImageListing of the training split (its first image gives the size when
            neither the options nor the record do).

    Returns:
        InputSpec.

    Raises:
        DataError: no size given or recorded and the first training image is not square.
    """
    prepared = read_prepare_record(data_dir)
    size = cfg.image_size or (prepared.size if prepared else None)
    if size is None:
        size = infer_image_size(train_listing, "pass --image-size N (files are resized by --resize)")
    resize = cfg.resize or (prepared.resize if prepared else "center_crop")
    interpolation = cfg.interpolation or (prepared.interpolation if prepared else "auto")
    pad = prepared.pad_color if prepared else (0, 0, 0)
    if prepared and cfg.resize and cfg.resize != prepared.resize:
        warn(
            f"--resize {cfg.resize}: the training images were prepared with {prepared.resize}; "
            f"new photos will be made input with {cfg.resize}, which the model never saw whole"
        )
    return InputSpec(size=size, resize=resize, interpolation=interpolation, pad_color=pad)


def _write_rejects(run_dir: Path, rejects: dict[str, str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "reason"])
    w.writerows(sorted(rejects.items()))
    atomic_write_text(run_dir / TRAIN_REJECTS, buf.getvalue())


@dataclass
class _Data:
    """The split a run trains on, resolved once in `train`."""

    data_dir: Path
    train: ImageListing
    val: ImageListing
    spec: InputSpec
    model_spec: Any  # imgclf.models.ModelSpec

    @property
    def class_names(self) -> list[str]:
        """The classes: the folders of `train/`."""
        return self.train.class_names


@dataclass
class _Loads:
    """What the loaders met while training: unreadable files by listing index, and bugs."""

    train: dict[int, ImageError] = field(default_factory=dict)
    val: dict[int, ImageError] = field(default_factory=dict)
    bugs: list[LoaderError] = field(default_factory=list)

    def rejects(self, data: _Data) -> dict[str, str]:
        """Rows of `train_rejects.csv`: `"<split>/<path>" -> "<reason>: <detail>"`."""
        out = {f"train/{data.train.entries[i].rel}": f"{e.reason}: {e.detail}" for i, e in self.train.items()}
        out.update({f"val/{data.val.entries[i].rel}": f"{e.reason}: {e.detail}" for i, e in self.val.items()})
        return out


@dataclass
class _Resume:
    """What the chief's run folder says about work already done (the same on every worker)."""

    state: TrainState = field(default_factory=TrainState)
    phase2_started: bool = False  # backup/phase2 exists
    resumed: bool = False  # backup/phase1 exists: every weight comes back from the backups


@dataclass
class _Run:
    """One call of `train`, once every worker agreed on it (`_open_run`)."""

    run_dir: Path
    cfg: TrainConfig
    data: _Data
    strategy: Any
    workers: Collectives
    previous: RunInfo | None
    resume: _Resume
    loads: _Loads = field(default_factory=_Loads)

    @property
    def custom_loop(self) -> bool:
        """`imgclf.train_loop` (multiworker) rather than `model.fit`."""
        return self.cfg.strategy == "multiworker"

    @property
    def steps(self) -> int:
        """Global steps per epoch: `ceil(n_train / batch_size)`."""
        return math.ceil(len(self.data.train) / self.cfg.batch_size)

    def distribution(self) -> Distribution:
        """How this run spreads over devices and workers, for `run.json`."""
        replicas = int(self.strategy.num_replicas_in_sync)
        return Distribution(
            strategy=self.cfg.strategy,
            loop="custom" if self.custom_loop else "fit",
            workers=self.workers.num_workers,
            replicas=replicas,
            global_batch_size=self.cfg.batch_size,
            per_replica_batch_size=self.cfg.batch_size // replicas,
            steps_per_epoch=self.steps,
        )


@dataclass
class _Fit:
    """What every phase of one run shares (built once in `_fit_phases`)."""

    run_dir: Path
    cfg: TrainConfig
    model: Any
    strategy: Any
    train_ds: Any
    val_ds: Any
    steps: int
    class_weight: dict[int, float] | None
    description: str
    two_phase: bool
    workers: Collectives  # the cluster (one worker unless --strategy multiworker with TF_CONFIG)
    custom_loop: bool = False  # imgclf.train_loop (multiworker) instead of model.fit
    tracker: Tracker | None = None  # experiment tracking (imgclf.track); None = off


def _phase_callbacks(fit: _Fit, phase: Phase) -> list[Any]:
    """The Keras callbacks of one phase, in the order they must run (see the module docstring)."""
    import keras

    cb = _callback_classes()
    cfg, run_dir = fit.cfg, fit.run_dir
    # Only the chief writes the run folder; the other workers run the callbacks that decide
    # (learning rate, early stopping, EMA swaps), on the same logs, so they decide alike.
    chief = fit.workers.is_chief
    best_row = best_epoch_row(read_history(run_dir)) if chief else None
    best_so_far = best_row["val_loss"] if best_row else None
    # Order matters: history.csv and the checkpoints are written before the backup of the
    # epoch, so a kill between them repeats the epoch (read_history keeps the last row)
    # instead of losing its row.
    writers = [
        keras.callbacks.CSVLogger(str(run_dir / HISTORY), append=True),
        cb.AtomicModelCheckpoint(
            str(run_dir / BEST_MODEL), monitor="val_loss", save_best_only=True, initial_value_threshold=best_so_far
        ),
        cb.AtomicModelCheckpoint(str(run_dir / LAST_MODEL), save_best_only=False),
    ]
    cbs: list[Any] = [
        cb.LearningRateLogger(),
        *(writers if chief else []),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=cfg.early_stopping_patience, restore_best_weights=True
        ),
    ]
    if chief and fit.tracker is not None and fit.tracker.active:  # logs what history.csv got, after the files are safe
        cbs.append(tracking_callback(fit.tracker))
    if cfg.ema_momentum is not None:
        # The moving average is what validation, history.csv, both checkpoints and early stopping see.
        swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
        cbs = [swap, *cbs, cb.SwapEMAWeightsBack(swap)]
    if phase.schedule == "plateau":
        cbs.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
            )
        )
    if not chief:
        return cbs
    return [
        *cbs,
        keras.callbacks.TensorBoard(log_dir=str(run_dir / LOG_DIR), write_graph=False),
        keras.callbacks.BackupAndRestore(
            str(run_dir / BACKUP_DIR / f"phase{phase.number}"), double_checkpoint=True, delete_checkpoint=False
        ),
    ]


def _fit_phase(fit: _Fit, phase: Phase) -> None:
    """Runs one `Phase`: compile, callbacks, `model.fit`, then records it in `train_state.json`."""
    cfg, run_dir = fit.cfg, fit.run_dir
    if fit.two_phase:
        n = _set_trainable_for_phase(fit.model, phase.number, cfg.fine_tune_layers)
        if phase.number == 2 and n == 0:
            warn("fine_tune_layers unfroze no layer with weights: phase 2 trains the head only")
    lr = _learning_rate(cfg, phase.learning_rate, phase.end_epoch - phase.initial_epoch, fit.steps, phase.schedule)
    with fit.strategy.scope():
        _compile(fit.model, cfg, lr)
    cbs = _phase_callbacks(fit, phase)
    bar = _callback_classes().RichProgress(
        fit.description + (f" phase {phase.number}" if fit.two_phase else ""), phase.end_epoch, fit.steps
    )
    cbs.append(bar)
    try:
        if fit.custom_loop:
            _custom_loop_phase(fit, phase, cbs)
        else:
            with warnings.catch_warnings():
                # The pipeline drops unreadable files, so its length is known only after the
                # first epoch; Keras warns about that "running out of data", which is expected.
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                fit.model.fit(
                    fit.train_ds,
                    validation_data=fit.val_ds,
                    epochs=phase.end_epoch,
                    initial_epoch=phase.initial_epoch,
                    class_weight=fit.class_weight,
                    callbacks=cbs,
                    shuffle=False,  # the dataset reshuffles itself every epoch
                    verbose=0,
                )
    finally:
        bar.close()
    if fit.workers.is_chief:
        state = load_train_state(run_dir)
        state.phases[str(phase.number)] = phase.end_epoch
        save_train_state(run_dir, state)


def _custom_loop_phase(fit: _Fit, phase: Phase, cbs: list[Any]) -> None:
    """Runs one `Phase` with `imgclf.train_loop` and the same callbacks (multi-worker)."""
    import keras
    import tensorflow as tf

    from imgclf.train_loop import LoopPlan, run_loop

    cfg = fit.cfg
    plan = LoopPlan(
        phase.initial_epoch,
        phase.end_epoch,
        fit.steps,
        cfg.steps_per_execution,
        cfg.batch_size,
        fit.class_weight,
        cfg.label_smoothing,
        jit=bool(cfg.jit),
    )
    callbacks = keras.callbacks.CallbackList(cbs, model=fit.model, epochs=phase.end_epoch, steps=fit.steps, verbose=0)
    try:
        run_loop(fit.model, fit.strategy, callbacks, fit.train_ds, fit.val_ds, plan, fit.workers)
    except tf.errors.OutOfRangeError:  # a shard whose every file is unreadable ends at once
        raise DataError(
            f"{fit.workers.describe()}: none of the images of its shard of the training split could be read",
            "see the warnings above; check the files",
        ) from None


# -------------------------------------------------------------------------------- train
def check_split_folders(data_dir: str | os.PathLike) -> tuple[Path, Path]:
    """The `train/` and `val/` folders of a split, checked to exist.

    Args:
        data_dir: path. A `split` output (`train/<class>/`, `val/<class>/`, optionally `test/`).

    Returns:
        (train folder, val folder), as Paths.

    Raises:
        DataError: one of them is not a folder, naming it and the command that makes it.
    """
    data_dir = Path(data_dir)
    train_dir, val_dir = data_dir / "train", data_dir / "val"
    for d in (train_dir, val_dir):
        if not d.is_dir():
            raise DataError(
                f"{d} not found: training needs {data_dir}/train/<class>/ and {data_dir}/val/<class>/",
                f"run `imgclf split <prepared folder> --out {data_dir}` first",
            )
    return train_dir, val_dir


def _listings(data_dir: Path) -> tuple[ImageListing, ImageListing]:
    train_dir, val_dir = check_split_folders(data_dir)
    train_files = list_images(train_dir, layout="classes")
    class_names = train_files.class_names
    if len(class_names) < 2:
        raise DataError(f"{train_dir} has {len(class_names)} class folder(s); a classifier needs at least 2")
    counts = train_files.counts()
    empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"class(es) {empty} have no images in {train_dir}", "add images or remove the folder")
    val_files = list_images(val_dir, class_names=class_names, layout="classes")
    if not len(val_files):
        raise DataError(f"{val_dir} holds no images", "run `imgclf split` first, or check the path")
    for listing in (train_files, val_files):
        if listing.strays:
            raise DataError(
                f"{listing.root}: {len(listing.strays)} file(s) outside class folders, e.g. {listing.strays[0]}",
                "move them into a class folder or delete them",
            )
    return train_files, val_files


def _warn_imbalance(counts: np.ndarray, class_names: list[str], cfg: TrainConfig) -> None:
    ratio = float(counts.max() / counts.min())
    if ratio > cfg.imbalance_warn_ratio:
        big, small = class_names[int(np.argmax(counts))], class_names[int(np.argmin(counts))]
        warn(
            f"classes are imbalanced: {big!r} has {int(counts.max())} training images, {small!r} "
            f"{int(counts.min())} ({ratio:.1f}x > imbalance_warn_ratio {cfg.imbalance_warn_ratio:g}); "
            + ("class weights are on" if cfg.class_weights else "class weights are OFF (class_weights: false)")
        )


def _resolve_data(data_dir: Path, cfg: TrainConfig) -> _Data:
    """The model's registry entry, the split's listings and the run's `InputSpec`, checked."""
    from imgclf.models import get_spec  # imports Keras

    model_spec = get_spec(cfg.model)
    train_files, val_files = _listings(data_dir)
    spec = resolve_input_spec(cfg, data_dir, train_files)
    if spec.size < model_spec.min_size:
        raise ModelError(
            f"model {model_spec.name!r} needs images of at least {model_spec.min_size} pixels, "
            f"the input is {spec.size}",
            f"pass --image-size {max(model_spec.min_size, model_spec.default_size)} (images are resized) "
            "or prepare larger images",
        )
    return _Data(data_dir, train_files, val_files, spec, model_spec)


def _split_fingerprint(data: _Data) -> float:
    """48 bits of the sha256 of the split's listing (paths and labels), exact in a float64."""
    h = hashlib.sha256()
    for listing in (data.train, data.val):
        for entry, label in zip(listing.entries, listing.labels):
            h.update(f"{entry.rel}\t{label}\n".encode())
    return float(int(h.hexdigest()[:12], 16))


def _agree(workers: Collectives, error: ImgclfError | None, data: _Data | None, resume: _Resume) -> _Resume:
    """Exchanges every worker's start-up status and split fingerprint, and the chief's resume
    facts; raises when a worker failed or sees another split. Returns the chief's `_Resume`."""
    done = resume.state.phases
    row = [
        error is None,
        _split_fingerprint(data) if data is not None else -1.0,
        done.get("1", -1),
        done.get("2", -1),
        resume.phase2_started,
        resume.resumed,
    ]
    table = workers.gather(row)
    if error is not None:
        raise error
    cluster = workers.cluster
    if cluster is not None:
        failed = np.flatnonzero(table[:, 0] == 0)
        if len(failed):
            raise ClusterError(
                f"{cluster.describe(int(failed[0]))} stopped before training (its own output says why)",
                "fix it, then start the same command on every worker again",
            )
        other = np.flatnonzero(table[:, 1] != table[0, 1])
        if len(other):
            raise DataError(
                f"{cluster.describe(int(other[0]))} does not see the same split folder as {cluster.describe(0)} "
                "(other files, names or classes)",
                "give every worker the same split (a shared disk, or identical copies at the same path)",
            )
    chief = table[0]
    phases = {key: int(v) for key, v in (("1", chief[2]), ("2", chief[3])) if v >= 0}
    return _Resume(TrainState(phases=phases), bool(chief[4]), bool(chief[5]))


def _open_run(data_dir: Path, cfg: TrainConfig, run_dir: Path, strategy: Any, workers: Collectives) -> _Run:
    """Resolves the split and (on the chief) the run folder, on every worker, and makes the
    workers agree (`_agree`) before anything is written."""
    error: ImgclfError | None = None
    data: _Data | None = None
    previous: RunInfo | None = None
    resume = _Resume()
    try:
        data = _resolve_data(data_dir, cfg)
        replicas = int(strategy.num_replicas_in_sync)
        if cfg.strategy == "multiworker" and cfg.batch_size % replicas:
            raise ConfigError(
                f"--batch-size {cfg.batch_size} (global) is not a multiple of the {replicas} replicas",
                f"pass a multiple of {replicas}, e.g. {replicas * max(1, round(cfg.batch_size / replicas))}",
            )
        if workers.is_chief:
            previous = _check_resume(run_dir, cfg, data.class_names, data.spec)
            backup = run_dir / BACKUP_DIR
            resume = _Resume(load_train_state(run_dir), (backup / "phase2").exists(), (backup / "phase1").exists())
    except ImgclfError as exc:
        error = exc
    resume = _agree(workers, error, data, resume)
    assert data is not None  # _agree raised otherwise
    if workers.is_chief:
        run_dir.mkdir(parents=True, exist_ok=True)
    return _Run(run_dir, cfg, data, strategy, workers, previous, resume)


def _gather_rejects(run: _Run) -> tuple[dict[str, str], int]:
    """The rows of `train_rejects.csv` (complete on the chief) and the number of unreadable
    training files: with several workers each knows its shards' only, so the chief collects
    the others' (a 0/1 mask, summed) and reads those files again for the reason."""
    data, loads = run.data, run.loads
    if run.workers.num_workers == 1:
        return loads.rejects(data), len(loads.train)
    n_train = len(data.train)
    mask = np.zeros(n_train + len(data.val))
    mask[list(loads.train)] = 1
    mask[[n_train + i for i in loads.val]] = 1
    hits = np.flatnonzero(run.workers.sum(mask) > 0)
    if run.workers.is_chief:
        items = {"train": data.train.items(), "val": data.val.items()}
        for j in map(int, hits):
            split, errors, i = ("train", loads.train, j) if j < n_train else ("val", loads.val, j - n_train)
            if i not in errors:  # another worker's: read it again here for the reason
                got = load_item(items[split][i], data.spec)
                errors[i] = got if isinstance(got, ImageError) else ImageError(items[split][i].name, "unreadable")
    return loads.rejects(data), int((hits < n_train).sum())


def _start_run(
    run: _Run, track: TrackConfig | None = None, track_params: Mapping[str, Any] | None = None
) -> tuple[RunInfo | None, Tracker]:
    """On the chief, writes `run.json` with status "running" (a new run, or the resumed one's
    record) and opens the run's tracker run (`imgclf.track.start_training`; inactive when
    tracking is off). The other workers write nothing and track nothing: (None, inactive)."""
    if not run.workers.is_chief:
        return None, Tracker(None, track)
    run_dir, cfg, data, previous, distribution = run.run_dir, run.cfg, run.data, run.previous, run.distribution()
    info = previous or RunInfo(model=cfg.model, class_names=data.class_names, input_spec=data.spec)
    info.distribution = distribution
    info.data_dir = str(data.data_dir)
    info.seed = cfg.seed
    info.config = cfg.model_dump(mode="json")
    info.versions = library_versions()
    info.status = "running"
    tracker = start_training(track, run_dir, info, [("train", data.train), ("val", data.val)], track_params)
    save_run_info(run_dir, info)
    return info, tracker


def _datasets(data: _Data, cfg: TrainConfig, loads: _Loads) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The training and validation pipelines (`image_dataset`), one-hot labels with label smoothing."""
    common: dict[str, Any] = dict(cache=cfg.cache, seed=cfg.seed, bugs=loads.bugs)
    train_ds = image_dataset(
        data.train, data.spec, cfg.batch_size, shuffle=True, augment=cfg.augment, rejects=loads.train, **common
    )
    val_ds = image_dataset(data.val, data.spec, cfg.batch_size, shuffle=False, rejects=loads.val, **common)
    return _labels_for_loss(train_ds, data, cfg), _labels_for_loss(val_ds, data, cfg)


def _labels_for_loss(ds: tf.data.Dataset, data: _Data, cfg: TrainConfig) -> tf.data.Dataset:
    """One-hot labels when `label_smoothing > 0` (Keras' sparse loss has no smoothing)."""
    import tensorflow as tf

    if cfg.label_smoothing <= 0:
        return ds
    k = len(data.class_names)
    return ds.map(lambda x, y: (x, tf.one_hot(y, k)))


def _worker_datasets(run: _Run) -> tuple[Any, tf.data.Dataset]:
    """The multi-worker pipelines: an iterator over full global batches, each worker's replicas
    fed from its shard of `train/` (`distribute_datasets_from_function`, repeated), and this
    worker's shard of `val/` (scored locally, the sums all-reduced)."""
    cfg, data, loads = run.cfg, run.data, run.loads

    def train_fn(ctx: Any) -> tf.data.Dataset:
        ds = image_dataset(
            data.train,
            data.spec,
            ctx.get_per_replica_batch_size(cfg.batch_size),
            shuffle=True,
            augment=cfg.augment,
            cache=cfg.cache,
            seed=cfg.seed + ctx.input_pipeline_id,  # other shuffles and augmentations per worker
            rejects=loads.train,
            bugs=loads.bugs,
            shard=(ctx.num_input_pipelines, ctx.input_pipeline_id),
            repeat=True,
            drop_remainder=True,
        )
        return _labels_for_loss(ds, data, cfg)

    index = run.workers.cluster.index if run.workers.cluster else 0
    val_ds = image_dataset(
        data.val,
        data.spec,
        cfg.batch_size,
        shuffle=False,
        cache=cfg.cache,
        rejects=loads.val,
        bugs=loads.bugs,
        shard=(run.workers.num_workers, index),
    )
    return iter(run.strategy.distribute_datasets_from_function(train_fn)), _labels_for_loss(val_ds, data, cfg)


def _fit_phases(
    run: _Run, datasets: tuple[Any, Any], class_weight: dict[int, float] | None, tracker: Tracker | None = None
) -> str:
    """Builds the model and fits the phases still to do (`plan_phases`); returns the precision policy."""
    import keras

    from imgclf.models import create_model  # imports Keras

    cfg, data, run_dir, strategy = run.cfg, run.data, run.run_dir, run.strategy
    weights = None if cfg.weights.lower() == "none" else cfg.weights
    resume = run.resume
    phases = plan_phases(cfg, data.model_spec.pretrained, resume.state, resume.phase2_started)
    with precision_policy(cfg.mixed_precision) as policy:
        with strategy.scope():
            model = create_model(
                cfg.model,
                num_classes=len(data.class_names),
                input_shape=data.spec.shape,
                dropout=cfg.dropout,
                # a resumed run gets every weight back from its backup / best.keras
                weights=None if resume.resumed else weights,
                **cfg.model_options,
            )
        fit = _Fit(
            run_dir,
            cfg,
            model,
            strategy,
            *datasets,
            run.steps,
            class_weight,
            f"train {cfg.model}",
            data.model_spec.pretrained and weights is not None,
            run.workers,
            custom_loop=run.custom_loop,
            tracker=tracker,
        )
        for phase in phases:
            # fine-tune from the best head (on the chief; the custom loop broadcasts its weights)
            if phase.number == 2 and run.workers.is_chief and (run_dir / BEST_MODEL).is_file():
                best = keras.models.load_model(run_dir / BEST_MODEL, compile=False)
                model.set_weights(best.get_weights())
                del best
            _fit_phase(fit, phase)
            if not run.custom_loop and not len(data.train) - len(run.loads.train):
                raise DataError(
                    f"none of the {len(data.train)} training images could be read", f"see {run_dir / TRAIN_REJECTS}"
                )
    return policy


def _finish_run(
    run_dir: Path,
    info: RunInfo,
    policy: str,
    n_rejects: int,
    seconds: float,
    previous: RunInfo | None,
    tracker: Tracker | None = None,
) -> list[dict[str, Any]]:
    """Plots the curves, checks `best.keras`, writes `run.json` as "finished", logs the end of
    the run to its tracker (`imgclf.track.finish_training`); returns the history."""
    history = read_history(run_dir)
    if history:
        plot_training_curves(history_columns(history), run_dir / CURVES)
    if not (run_dir / BEST_MODEL).is_file():
        raise ModelError(f"training finished without writing {run_dir / BEST_MODEL}", "check the log above")
    best_row = best_epoch_row(history)
    info.status = "finished"
    info.precision_policy = policy
    info.epochs_done = len(history)
    info.train_rejects = n_rejects
    if best_row is not None:
        info.best_epoch = int(best_row["epoch"]) + 1
        info.best_val_loss = best_row["val_loss"]
        info.best_val_accuracy = best_row.get("val_accuracy")
    info.train_seconds = round(seconds, 1) + (previous.train_seconds if previous else 0.0)
    save_run_info(run_dir, info)
    if tracker is not None:
        finish_training(tracker, run_dir, info)
    return history


def _summary_line(cfg: TrainConfig, data: _Data, history: list[dict[str, Any]], run_dir: Path, seconds: float) -> str:
    """The one line `train` ends with."""
    best_row = best_epoch_row(history)
    best_txt = (
        f"best epoch {int(best_row['epoch']) + 1}: val_loss {best_row['val_loss']:.4f}, "
        f"val_accuracy {best_row.get('val_accuracy', math.nan):.4f}"
        if best_row
        else "no epoch run"
    )
    return (
        f"train: {cfg.model} on {len(data.train)} train / {len(data.val)} val images, {len(data.class_names)} "
        f"classes, input {data.spec.describe()}, {len(history)} epochs ({best_txt}) in {seconds:.0f}s "
        f"-> {run_dir}/{BEST_MODEL}"
    )


def _train_run(
    run: _Run,
    info: RunInfo | None,
    class_weight: dict[int, float] | None,
    errors: AbstractContextManager[None],
    tracker: Tracker,
    t_start: float,
) -> None:
    """Fits the phases, writes `train_rejects.csv` and finishes the run (the chief: `info`
    given); `errors` turns a lost worker into one `ClusterError` (`cluster_errors`);
    `t_start` is when `train` started (`time.monotonic`)."""
    run_dir, data = run.run_dir, run.data
    with errors:
        datasets = _worker_datasets(run) if run.custom_loop else _datasets(data, run.cfg, run.loads)
        try:
            with raising_loader_bugs(run.loads.bugs):
                policy = _fit_phases(run, datasets, class_weight, tracker)
        except LoaderError as bug:
            bug.save_traceback(run_dir / ERRORS_LOG if info is not None else None)
            raise
        rejects, n_train_rejects = _gather_rejects(run)
    if rejects and info is not None:
        _write_rejects(run_dir, rejects)
        warn(f"{len(rejects)} file(s) could not be read and were left out of training; see {run_dir / TRAIN_REJECTS}")
    if n_train_rejects == len(data.train):
        n = len(data.train)
        raise DataError(f"none of the {n} training images could be read", f"see {run_dir / TRAIN_REJECTS}")
    if info is not None:
        seconds = time.monotonic() - t_start
        history = _finish_run(run_dir, info, policy, len(rejects), seconds, run.previous, tracker)
        summary(_summary_line(run.cfg, data, history, run_dir, time.monotonic() - t_start))


def train(
    data_dir: Path,
    cfg: TrainConfig,
    *,
    models_dir: Path = Path("models"),
    run_dir: Path | None = None,
    track: TrackConfig | None = None,
    track_params: Mapping[str, Any] | None = None,
) -> Path:
    """Trains `cfg.model` on a split folder and writes a run directory.

    Rerunning with the same `run_dir` resumes an interrupted run from its last finished epoch
    (`BackupAndRestore`), and continues a finished one when `cfg.epochs` was raised.

    An unreadable image is left out and recorded in `train_rejects.csv`; a bug in the loader
    (anything else it raises) stops training with a `LoaderError`, its traceback appended to
    `<run>/errors.log`.

    Args:
        data_dir: Path. A split folder with `train/<class>/` and `val/<class>/` (from
            `imgclf split`). Images of any size: they become input through the run's
            `InputSpec` (`resolve_input_spec`), the one function `evaluate` and `predict` use.
        cfg: TrainConfig. The resolved training configuration.
        models_dir: Path, default `models`. Parent of new run directories.
        run_dir: Path or None, default None (`models_dir / (cfg.run_name or
            "<model>-<YYYYmmdd-HHMMSS>")`). An existing run directory is resumed.
        track: TrackConfig or None, default None (off). Experiment tracking (`imgclf.track`):
            one tracker run per run directory, its id kept in `run.json`, so a resumed run logs
            into the same one. A tracker that fails prints one warning and training goes on.
        track_params: mapping or None, default None. More params for the tracker run, besides
            the training config (`imgclf run`: the other sections of its config).

    Returns:
        Path: the run directory (`best.keras`, `last.keras`, `run.json`, `history.csv`,
        `training_curves.png`, `logs/`).

    Raises:
        DataError: missing split folders, a class without training images, fewer than 2
            classes, files outside class folders, no readable training image.
        ModelError: unknown model, unusable weights, or `run_dir` holding a different run.
        ConfigError: an augmentation this Keras cannot do; `track` names a backend whose package
            is not installed.
        LoaderError: a bug while loading an image (not an unreadable one), naming the file.
    """
    check_backend(track)
    tf = import_tensorflow_quietly()
    # The strategy comes first: a multi-worker one cannot be made once TensorFlow has started.
    cluster = _cluster(cfg)
    strategy = make_strategy(
        cfg.strategy, cluster=cluster, start_timeout=cfg.worker_start_timeout, heartbeat_timeout=cfg.worker_timeout
    )
    import keras

    t_start = time.monotonic()
    run_dir = Path(run_dir) if run_dir is not None else _new_run_dir(models_dir, cfg)
    resume_hint = f"rerun the same command on every worker: training resumes from the last epoch saved in {run_dir}"
    run = _open_run(Path(data_dir), cfg, run_dir, strategy, Collectives(strategy, cluster, resume_hint))
    data = run.data
    _warn_imbalance(data.train.counts(), data.class_names, cfg)
    class_weight = compute_class_weights(data.train.labels, len(data.class_names)) if cfg.class_weights else None

    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    info, tracker = _start_run(run, track, track_params)
    with tracker:  # the tracker run ends FINISHED, or FAILED / KILLED when training raises
        _train_run(run, info, class_weight, cluster_errors(cluster, resume_hint), tracker, t_start)
    with cluster_errors(cluster, resume_hint):
        run.workers.barrier()  # the others return once the chief has written the run
    if not run.workers.is_chief:
        summary(f"train: {run.workers.describe()} done; {cluster.describe(0) if cluster else ''} wrote {run_dir}")
    return run_dir
