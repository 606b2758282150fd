"""`imgclf train`: a model from the registry trained on `<data>/train`, checked on `<data>/val`,
written as a run directory (`imgclf.rundir`) that `evaluate` / `predict` read back.

What a run does, in order:

1. Lists the split folders (`imgclf.data.list_split`); the classes are the folders of `train/`.
2. Seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`); `deterministic` turns
   on `tf.config.experimental.enable_op_determinism`. Sets the mixed-precision policy
   (`mixed_float16` on a GPU, `mixed_bfloat16` on a CPU) and the `tf.distribute` strategy.
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
5. Pretrained backbones (`weights` imagenet or a file, models with `pretrained=True`) train in
   two phases, as in the Keras transfer-learning guide: phase 1 trains the head with the
   backbone frozen; phase 2 starts from `best.keras`, unfreezes the top `fine_tune_layers`
   backbone layers (or all) except BatchNormalization layers — which stay frozen and so run in
   inference mode (Keras 3: a non-trainable BatchNormalization uses its moving statistics) —
   recompiles with `fine_tune_learning_rate`, and trains `fine_tune_epochs` more epochs.
6. Writes `run.json` (status "finished", best epoch), `training_curves.png`, and one summary line.

`best.keras` is the model to use: it is the best epoch by `val_loss` whether or not early
stopping fired. It is saved compiled; losses are sparse cross-entropy, or categorical
cross-entropy on one-hot labels when `label_smoothing > 0` (Keras' sparse loss has no
smoothing), so callers that evaluate should compile it themselves or use `predict`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.config import TrainConfig
from imgclf.errors import DataError, ModelError
from imgclf.fsutil import atomic_write_text, tmp_path_for
from imgclf.rundir import (
    BEST_MODEL,
    HISTORY,
    LAST_MODEL,
    RUN_FILE,
    RunInfo,
    history_columns,
    library_versions,
    load_run_info,
    read_history,
    save_run_info,
)
from imgclf.ui import progress, summary, warn

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

CURVES = "training_curves.png"
STATE_FILE = "train_state.json"
BACKUP_DIR = "backup"
LOG_DIR = "logs"


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


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Returns the `tf.distribute` strategy for `name`.

    Args:
        name: str. `"default"` (the current/default strategy, one device), `"mirrored"`
            (`MirroredStrategy` over all GPUs, or over all logical CPU devices when there is
            no GPU, reducing on one device), `"multiworker"`
            (`MultiWorkerMirroredStrategy`; the cluster comes from the `TF_CONFIG` environment
            variable TensorFlow reads itself; without it, one worker).

    Returns:
        tf.distribute.Strategy.

    Raises:
        ValueError: if `name` is not one of the three.
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
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of 'default', 'mirrored', 'multiworker', received strategy={name!r}")


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


def _read_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}
    return {}


def _write_state(run_dir: Path, state: dict[str, Any]) -> None:
    atomic_write_text(run_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")


# ----------------------------------------------------------------------------- callbacks
def _callbacks_module():
    import keras

    class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
        """`ModelCheckpoint` that writes to a hidden temporary file then `os.replace`s it, so a
        `kill -9` during a save never leaves a half-written `best.keras` / `last.keras`."""

        def _save_model(self, epoch, batch, logs):  # noqa: D401 (Keras hook)
            final = self.filepath
            tmp = str(tmp_path_for(final))
            self.filepath = tmp
            try:
                super()._save_model(epoch, batch, logs)
            finally:
                self.filepath = final
            if os.path.exists(tmp):
                os.replace(tmp, final)

    class LearningRateLogger(keras.callbacks.Callback):
        """Adds the current learning rate to the epoch logs (so `history.csv` has it)."""

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    class RichProgress(keras.callbacks.Callback):
        """Epoch progress bar (`imgclf.ui.progress`) with the batch and metrics as status, and
        one printed line per finished epoch."""

        def __init__(self, description: str, total_epochs: int, steps: int):
            super().__init__()
            self.description = description
            self.total_epochs = total_epochs
            self.steps = steps
            self._cm = None
            self._advance = None
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
            parts = [f"{k} {float(logs[k]):.4g}" for k in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate") if k in logs]
            line = f"epoch {epoch + 1}/{self.total_epochs} ({time.monotonic() - self._t:.0f}s): " + ", ".join(parts)
            if self._advance is not None:
                self._advance(1, status=line)
            from imgclf.ui import console

            console.print(f"  {line}", highlight=False)

        def on_train_end(self, logs=None):
            self.close()

        def close(self):
            if self._cm is not None:
                cm, self._cm, self._advance = self._cm, None, None
                cm.__exit__(None, None, None)

    return AtomicModelCheckpoint, LearningRateLogger, RichProgress


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


def _optimizer(cfg: TrainConfig, learning_rate: Any):
    import keras

    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=cfg.weight_decay)
    return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)


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
        optimizer=_optimizer(cfg, learning_rate),
        loss=loss,
        metrics=metrics,
        jit_compile=bool(cfg.jit),
        steps_per_execution=cfg.steps_per_execution,
    )


def _new_run_dir(models_dir: Path, cfg: TrainConfig) -> Path:
    name = cfg.run_name or f"{cfg.model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    return Path(models_dir) / name


def _check_resume(run_dir: Path, cfg: TrainConfig, class_names: list[str], image_size: int) -> RunInfo | None:
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
    if info.image_size != image_size:
        problems.append(f"image size {info.image_size} (now {image_size})")
    if (info.config.get("model_options") or {}) != cfg.model_options:
        problems.append(f"model_options {info.config.get('model_options')} (now {cfg.model_options})")
    if problems:
        raise ModelError(
            f"{run_dir} is a run with a different " + "; ".join(problems),
            "resume it with the same model and data, or pass a new --run-dir / --run-name",
        )
    return info


def train(
    data_dir: Path,
    cfg: TrainConfig,
    *,
    models_dir: Path = Path("models"),
    run_dir: Path | None = None,
) -> Path:
    """Trains `cfg.model` on a split folder and writes a run directory.

    Rerunning with the same `run_dir` resumes an interrupted run from its last finished epoch
    (`BackupAndRestore`), and continues a finished one when `cfg.epochs` was raised.

    Args:
        data_dir: Path. A split folder with `train/<class>/` and `val/<class>/` (from
            `imgclf split`); images square, as `imgclf prepare` writes them.
        cfg: TrainConfig. The resolved training configuration.
        models_dir: Path, default `models`. Parent of new run directories.
        run_dir: Path or None, default None (`models_dir / (cfg.run_name or
            "<model>-<YYYYmmdd-HHMMSS>")`). An existing run directory is resumed.

    Returns:
        Path: the run directory (`best.keras`, `last.keras`, `run.json`, `history.csv`,
        `training_curves.png`, `logs/`).

    Raises:
        DataError: missing split folders, a class without training images, fewer than 2 classes.
        ModelError: unknown model, unusable weights, or `run_dir` holding a different run.
        ConfigError: an augmentation this Keras cannot do.
    """
    import keras
    import tensorflow as tf

    from imgclf.data import image_dataset, infer_image_size, list_split
    from imgclf.models import create_model, get_spec

    t_start = time.monotonic()
    data_dir = Path(data_dir)
    spec = get_spec(cfg.model)
    train_dir, val_dir = data_dir / "train", data_dir / "val"
    for d in (train_dir, val_dir):
        if not d.is_dir():
            raise DataError(
                f"{d} not found: training needs {data_dir}/train/<class>/ and {data_dir}/val/<class>/",
                f"run `imgclf split <prepared folder> --out {data_dir}` first",
            )
    train_files = list_split(train_dir)
    class_names = train_files.class_names
    if len(class_names) < 2:
        raise DataError(f"{train_dir} has {len(class_names)} class folder(s); a classifier needs at least 2")
    counts = train_files.counts()
    empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"class(es) {empty} have no images in {train_dir}", "add images or remove the folder")
    val_files = list_split(val_dir, class_names)
    image_size = cfg.image_size or infer_image_size(train_dir)
    if image_size < spec.min_size:
        raise ModelError(
            f"model {spec.name!r} needs images of at least {spec.min_size} pixels, the data is {image_size}",
            f"pass --image-size {max(spec.min_size, spec.default_size)} (images are resized) or prepare larger images",
        )

    run_dir = Path(run_dir) if run_dir is not None else _new_run_dir(models_dir, cfg)
    previous = _check_resume(run_dir, cfg, class_names, image_size)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = _read_state(run_dir)

    # Imbalance: warn, and weight the loss by default.
    ratio = float(counts.max() / counts.min())
    if ratio > cfg.imbalance_warn_ratio:
        big, small = class_names[int(np.argmax(counts))], class_names[int(np.argmin(counts))]
        warn(
            f"classes are imbalanced: {big!r} has {int(counts.max())} training images, {small!r} "
            f"{int(counts.min())} ({ratio:.1f}x > imbalance_warn_ratio {cfg.imbalance_warn_ratio:g}); "
            + ("class weights are on" if cfg.class_weights else "class weights are OFF (class_weights: false)")
        )
    class_weight = compute_class_weights(train_files.labels, len(class_names)) if cfg.class_weights else None

    # Reproducibility.
    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()

    info = previous or RunInfo(model=cfg.model, class_names=class_names, image_size=image_size)
    info.data_dir = str(data_dir)
    info.seed = cfg.seed
    info.config = cfg.model_dump(mode="json")
    info.versions = library_versions()
    info.status = "running"
    save_run_info(run_dir, info)

    train_ds = image_dataset(
        train_files, class_names, image_size, cfg.batch_size, shuffle=True, augment=cfg.augment, cache=cfg.cache, seed=cfg.seed
    )
    val_ds = image_dataset(val_files, class_names, image_size, cfg.batch_size, shuffle=False, cache=cfg.cache, seed=cfg.seed)
    if cfg.label_smoothing > 0:
        k = len(class_names)
        train_ds = train_ds.map(lambda x, y: (x, tf.one_hot(y, k)))
        val_ds = val_ds.map(lambda x, y: (x, tf.one_hot(y, k)))
    steps = math.ceil(len(train_files) / cfg.batch_size)

    weights = None if cfg.weights.lower() == "none" else cfg.weights
    two_phase = spec.pretrained and weights is not None
    e1 = cfg.epochs
    e2 = (cfg.fine_tune_epochs or cfg.epochs) if two_phase else 0
    backup = run_dir / BACKUP_DIR
    resumed = (backup / "phase1").exists()

    AtomicModelCheckpoint, LearningRateLogger, RichProgress = _callbacks_module()
    with precision_policy(cfg.mixed_precision) as policy:
        strategy = make_strategy(cfg.strategy)
        with strategy.scope():
            model = create_model(
                cfg.model,
                num_classes=len(class_names),
                input_shape=(image_size, image_size, 3),
                dropout=cfg.dropout,
                # a resumed run gets every weight back from its backup / best.keras
                weights=None if resumed else weights,
                **cfg.model_options,
            )

        def fit_phase(phase: int, initial_epoch: int, end_epoch: int, lr: Any, schedule: str) -> None:
            history = read_history(run_dir)
            best_so_far = min((r["val_loss"] for r in history if "val_loss" in r), default=None)
            with strategy.scope():
                _compile(model, cfg, lr)
            # Order matters: history.csv and the checkpoints are written before the backup of
            # the epoch, so a kill between them repeats the epoch (read_history keeps the last
            # row) instead of losing its row.
            cbs: list[keras.callbacks.Callback] = [
                LearningRateLogger(),
                keras.callbacks.CSVLogger(str(run_dir / HISTORY), append=True),
                AtomicModelCheckpoint(
                    str(run_dir / BEST_MODEL), monitor="val_loss", save_best_only=True, initial_value_threshold=best_so_far
                ),
                AtomicModelCheckpoint(str(run_dir / LAST_MODEL), save_best_only=False),
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=cfg.early_stopping_patience, restore_best_weights=True
                ),
            ]
            if schedule == "plateau":
                cbs.append(
                    keras.callbacks.ReduceLROnPlateau(
                        monitor="val_loss", factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
                    )
                )
            cbs += [
                keras.callbacks.TensorBoard(log_dir=str(run_dir / LOG_DIR), write_graph=False),
                keras.callbacks.BackupAndRestore(str(backup / f"phase{phase}"), double_checkpoint=True, delete_checkpoint=False),
            ]
            desc = f"train {cfg.model}" + (f" phase {phase}" if two_phase else "")
            bar = RichProgress(desc, end_epoch, steps)
            cbs.append(bar)
            try:
                model.fit(
                    train_ds,
                    validation_data=val_ds,
                    epochs=end_epoch,
                    initial_epoch=initial_epoch,
                    class_weight=class_weight,
                    callbacks=cbs,
                    shuffle=False,  # the dataset reshuffles itself every epoch
                    verbose=0,
                )
            finally:
                bar.close()
            state[f"phase{phase}"] = {"done": True, "epochs": end_epoch}
            _write_state(run_dir, state)

        def phase_needed(phase: int, end_epoch: int) -> bool:
            done = state.get(f"phase{phase}", {})
            return not (done.get("done") and done.get("epochs", 0) >= end_epoch)

        if two_phase:
            _set_trainable_for_phase(model, 1, cfg.fine_tune_layers)
        # Phase 1 (or the only phase). Skipped when it finished before with as many epochs,
        # or when fine-tuning already started (phase 2 has a backup).
        phase2_started = two_phase and (backup / "phase2").exists()
        if phase_needed(1, e1) and not phase2_started:
            fit_phase(1, 0, e1, _learning_rate(cfg, cfg.learning_rate, e1, steps, cfg.schedule), cfg.schedule)
        if two_phase and phase_needed(2, e1 + e2):
            best = keras.models.load_model(run_dir / BEST_MODEL, compile=False)
            model.set_weights(best.get_weights())
            del best
            n = _set_trainable_for_phase(model, 2, cfg.fine_tune_layers)
            if n == 0:
                warn("fine_tune_layers unfroze no layer with weights: phase 2 trains the head only")
            fit_phase(2, e1, e1 + e2, cfg.fine_tune_learning_rate, "plateau")

    history = read_history(run_dir)
    if history:
        from imgclf.report import plot_training_curves

        plot_training_curves(history_columns(history), run_dir / CURVES)
    if not (run_dir / BEST_MODEL).is_file():
        raise ModelError(f"training finished without writing {run_dir / BEST_MODEL}", "check the log above")
    best_row = min((r for r in history if "val_loss" in r), key=lambda r: r["val_loss"], default=None)
    info.status = "finished"
    setattr(info, "precision_policy", policy)
    setattr(info, "epochs_done", len(history))
    if best_row is not None:
        setattr(info, "best_epoch", int(best_row["epoch"]) + 1)
        setattr(info, "best_val_loss", best_row["val_loss"])
        setattr(info, "best_val_accuracy", best_row.get("val_accuracy"))
    setattr(info, "train_seconds", round(time.monotonic() - t_start, 1) + float(getattr(previous, "train_seconds", 0) or 0))
    save_run_info(run_dir, info)
    best_txt = (
        f"best epoch {int(best_row['epoch']) + 1}: val_loss {best_row['val_loss']:.4f}, val_accuracy {best_row.get('val_accuracy', math.nan):.4f}"
        if best_row
        else "no epoch run"
    )
    summary(
        f"train: {cfg.model} on {len(train_files)} train / {len(val_files)} val images, {len(class_names)} classes, "
        f"{len(history)} epochs ({best_txt}) in {time.monotonic() - t_start:.0f}s -> {run_dir}/{BEST_MODEL}"
    )
    return run_dir
