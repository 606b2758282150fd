"""`--cv-train`: train the real model K times, once per fold, in memory.

Each fold's model is a fresh registry model (`imgclf.models.create_model`) trained on the images
of the other folds and then asked for the probabilities of its own fold, so, as with the linear
probe, no image is scored by a model that saw it (nor a duplicate of it, with groups).

This is a lean path written for the audit rather than `imgclf.train.train` on K temporary split
folders: the images are decoded once (`imgclf.inputs.iter_batches`) into one uint8 array that
every fold slices, and a fold trains for a fixed number of epochs with no validation split, no
checkpoints, no early stopping and no TensorBoard logs. What it takes from a `TrainConfig` (a
run's `run.json` config, a run YAML's `train:` section, or `default_recipe()`):

- `model`, `weights`, `model_options`, `dropout`: the architecture (`create_model`);
- `epochs`, `batch_size`, `learning_rate`, `optimizer` (`adam`, `adamw` with `weight_decay`,
  `sgd` with Nesterov momentum 0.9 and `weight_decay`; `imgclf.train.build_optimizer`),
  `warmup_epochs`: a per-step cosine decay with linear warmup from `learning_rate / 10`
  (Loshchilov & Hutter, 2017; Goyal et al., 2017). `schedule: plateau` has no validation loss
  to watch here, so it is replaced by the same cosine decay;
- `label_smoothing`, `class_weights` (scikit-learn `compute_class_weight("balanced")` on the
  fold's training labels), `augment` (`imgclf.data.build_augmenter`), `seed` (fold k uses
  `seed + k`);
- pretrained backbones (`weights` imagenet or a file on a model with `pretrained=True`): the
  backbone is frozen and the head trained (phase 1 of `imgclf train`); no fine-tuning phase.

Each fold's model also embeds (layer `"embedding"`) its own fold and a sample of its training
images, for the outlier scores (`fold_outlier_scores`).

Prediction averages the image and its mirror image when the config flips horizontally
(`augment.flip` `horizontal` or `horizontal_and_vertical`), as `imgclf evaluate --tta flip` does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.config import AuditConfig, TrainConfig, stage_config
from imgclf.data import build_augmenter
from imgclf.errors import ConfigError, DataError, ImageError
from imgclf.images import open_image
from imgclf.inputs import InputSpec
from imgclf.records.run import is_run_dir, load_run_info
from imgclf.train import build_optimizer
from imgclf.ui import progress

#: The audit's own quick recipe when no run or train config is given (`default_recipe`).
DEFAULT_RECIPE: dict[str, Any] = {
    "model": "cnn",
    "model_options": {"width": 16, "depth": [1, 1, 1, 1, 1]},
    "epochs": 3,
    "batch_size": 256,
    "optimizer": "adamw",
    "learning_rate": 0.003,
    "weight_decay": 0.05,
    "schedule": "cosine",
    "warmup_epochs": 1,
    "augment": {"flip": "horizontal"},
}

#: The recipe trains at least this many steps per fold (small folders get smaller batches and
#: more epochs, see `fit_recipe_to_data`).
RECIPE_MIN_STEPS = 500

#: Training images per fold embedded as the reference set of the outlier scores.
OUTLIER_REFERENCE = 10000


def default_recipe(**overrides: Any) -> TrainConfig:
    """The `TrainConfig` `--cv-train` uses without `--model RUN` or `--train-config`.

    `DEFAULT_RECIPE`: the residual `cnn` with width 16 and 5 stages (the Fashion-MNIST recipe's
    architecture, configs/fashion_mnist.yaml), AdamW (lr 3e-3, weight decay 0.05), cosine decay
    with 1 warmup epoch, batch 256, horizontal flips, 3 epochs: 5 folds of 60,000 Fashion-MNIST
    images in 13-16 minutes on 2 idle CPU cores (scripts/bench/bench_audit.py). Scored with rule
    `both`, five epochs found the flipped labels of one fold with F1 0.787 where three gave
    0.775, for 1.6 times the time; label smoothing 0.1 gave 0.778; fewer folds trained longer
    scored lower (more of the wrong labels learnt): scripts/bench/bench_audit_recipes.py,
    docs/benchmarks.md.
    `fit_recipe_to_data` adapts batch size and epochs to small folders.

    Args:
        **overrides: TrainConfig fields replacing the recipe's (None values are ignored).

    Returns:
        TrainConfig.
    """
    values = {**DEFAULT_RECIPE, **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig.model_validate(values)


def fit_recipe_to_data(cfg: TrainConfig, n_train: int, min_steps: int = RECIPE_MIN_STEPS) -> TrainConfig:
    """Adapts the recipe to a folder's size: at least `min_steps` optimizer steps per fold.

    The batch shrinks to `n_train // 40` (at least 16) when that is below the recipe's, and the
    epochs grow to `ceil(min_steps / steps per epoch)` when that is above the recipe's. Large
    folders (Fashion-MNIST: 48,000 training images per fold) keep the recipe as it is; 1,437
    digits get batch 35 and 12 epochs.

    Args:
        cfg: TrainConfig, the recipe.
        n_train: int. Training images per fold.
        min_steps: int, default `RECIPE_MIN_STEPS`.

    Returns:
        TrainConfig.
    """
    batch = max(16, min(cfg.batch_size, n_train // 40))
    epochs = max(cfg.epochs, math.ceil(min_steps / max(1, math.ceil(n_train / batch))))
    return cfg.model_copy(update={"batch_size": batch, "epochs": epochs})


@dataclass
class FoldModels:
    """What `cv_train_probabilities` measured.

    Attributes:
        pred_probs: float64 `(n, num_classes)`, out of fold.
        outlier_distance: float64 `(n,)`: mean distance of each image's embedding to its
            `k` nearest training images of its fold's model, divided by the median over that
            fold (1 = typical image of the fold).
        seconds_per_fold: list of float. Wall time of each fold (train + predict).
        config: TrainConfig used (epochs included).
    """

    pred_probs: np.ndarray
    outlier_distance: np.ndarray
    seconds_per_fold: list[float] = field(default_factory=list)
    config: TrainConfig | None = None


def _learning_rate(cfg: TrainConfig, epochs: int, steps: int):
    import keras

    warmup = min(cfg.warmup_epochs, max(epochs - 1, 0)) * steps
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.learning_rate / 10 if warmup else cfg.learning_rate,
        decay_steps=max(epochs * steps - warmup, 1),
        alpha=0.0,
        warmup_target=cfg.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def _freeze_backbone(model: Any) -> None:
    import keras

    from imgclf.models import HEAD_LAYERS  # imgclf.models imports TensorFlow

    for layer in model.layers:
        if layer.name not in HEAD_LAYERS and not isinstance(layer, keras.layers.InputLayer):
            layer.trainable = False


def _knn_ratio(reference: np.ndarray, query: np.ndarray, k: int, pca: int | None, seed: int) -> np.ndarray:
    """Mean distance of `query` rows to their k nearest `reference` rows (standardized + PCA
    fitted on `reference`), divided by its median over `query`."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(reference)
    ref, q = scaler.transform(reference), scaler.transform(query)
    if pca is not None and pca < ref.shape[1] and pca < len(ref):
        p = PCA(pca, random_state=seed, svd_solver="randomized").fit(ref)
        ref, q = p.transform(ref), p.transform(q)
    kk = max(1, min(k, len(ref)))
    d, _ = NearestNeighbors(n_neighbors=kk).fit(ref).kneighbors(q)
    dist = d.mean(axis=1)
    med = float(np.median(dist))
    return dist / med if med > 0 else dist


# ------------------------------------------------------------------ what to train, at which size
@dataclass
class CvSetup:
    """What `--cv-train` trains and how images become its input.

    Attributes:
        train: TrainConfig. The model and recipe trained once per fold.
        spec: InputSpec. How files become input (a run's own, else a center crop).
        description: str. Where the config came from, e.g. `"audit recipe"`, `"run models/r1"`.
        is_recipe: bool. The audit's own recipe (`fit_recipe_to_data` may adapt it).
    """

    train: TrainConfig
    spec: InputSpec
    description: str
    is_recipe: bool = False


def probe_side(paths: list[Path], lo: int = 8, hi: int = 64) -> int:
    """The shorter side of the first readable file among the first 50, clipped to `[lo, hi]` pixels.

    Raises:
        DataError: none of them opens as an image.
    """
    for p in paths[:50]:
        try:
            img = open_image(p)
        except ImageError:
            continue
        return int(min(hi, max(lo, min(img.size))))
    raise DataError(
        f"none of the first {min(50, len(paths))} files can be opened as an image", "check the folder contents"
    )


def _with_epochs(train: TrainConfig, epochs: int | None) -> TrainConfig:
    return train.model_copy(update={"epochs": epochs}) if epochs else train


def _run_config(path: Path, cfg: AuditConfig) -> tuple[TrainConfig, InputSpec]:
    """The TrainConfig and InputSpec of a training run folder."""
    if not is_run_dir(path):
        raise ConfigError(
            f"--model {cfg.model} is a folder but not a training run (no run.json)",
            "with --cv-train give a run folder from `imgclf train`, a registry name, or nothing",
        )
    info = load_run_info(path)
    values = dict(info.config or {})
    values.setdefault("model", info.model)
    train = TrainConfig.model_validate({k: v for k, v in values.items() if k in TrainConfig.model_fields})
    return _with_epochs(train, cfg.cv_epochs), info.input_spec


def _train_config(cfg: AuditConfig) -> tuple[TrainConfig, InputSpec | None, str, bool]:
    """The TrainConfig to retrain, the run's InputSpec (or None), a description, and whether it
    is the audit's recipe."""
    model = cfg.model
    if cfg.train_config is not None:
        train = stage_config(TrainConfig, "train", cfg.train_config)
        return _with_epochs(train, cfg.cv_epochs), None, f"train config {cfg.train_config}", False
    path = Path(model)
    if path.is_dir():
        train, spec = _run_config(path, cfg)
        return train, spec, f"run {path}", False
    if model in ("raw", ""):
        return default_recipe(epochs=cfg.cv_epochs, seed=cfg.seed), None, "audit recipe", cfg.cv_epochs is None
    if model.startswith("autoencoder") or path.suffix == ".keras":
        raise ConfigError(
            f"--cv-train cannot retrain --model {model}",
            "give a training run folder, a registry name (cnn, xception, ...), or no --model",
        )
    from imgclf.models import get_spec  # imgclf.models imports TensorFlow

    get_spec(model)  # unknown names fail here, with close matches
    train = default_recipe(
        model=model,
        model_options=None if model == DEFAULT_RECIPE["model"] else {},
        weights=cfg.weights,
        epochs=cfg.cv_epochs,
        seed=cfg.seed,
    )
    return train, None, f"registry model {model}", cfg.cv_epochs is None


def resolve_cv_setup(cfg: AuditConfig, paths: list[Path]) -> CvSetup:
    """What `--cv-train` trains: a run's config, a run YAML's `train:` section, a registry model
    with the audit's recipe, or the recipe itself (`--model raw`, the default).

    Args:
        cfg: AuditConfig. `model`, `train_config`, `cv_epochs`, `weights`, `size`, `seed`.
        paths: list of Path. The listed files (the recipe's image side is the first one's).

    Returns:
        CvSetup.

    Raises:
        ConfigError: a model that cannot be retrained, `--size` different from the run's.
        ModelError: an unknown registry name (with close matches).
        DataError: no file among the first 50 opens as an image (size from the data).
    """
    train, run_spec, description, is_recipe = _train_config(cfg)
    if run_spec is not None:
        if cfg.size is not None and cfg.size != run_spec.size:
            raise ConfigError(f"--size {cfg.size} differs from the run's input size {run_spec.size}")
        return CvSetup(train, run_spec, description, is_recipe)
    return CvSetup(train, InputSpec(size=cfg.size or probe_side(paths)), description, is_recipe)


# ------------------------------------------------------------------------ training the folds
def cv_train_probabilities(
    images: np.ndarray,
    labels: np.ndarray,
    fold_ids: np.ndarray,
    num_classes: int,
    cfg: TrainConfig,
    *,
    outlier_k: int = 10,
    predict_batch_size: int = 512,
) -> FoldModels:
    """Trains `cfg`'s model once per fold and predicts each fold with the model that did not see it.

    Args:
        images: uint8 array `(n, size, size, 3)`, RGB in [0, 255] (already resized).
        labels: int array `(n,)`, class indices in `[0, num_classes)`.
        fold_ids: int array `(n,)` from `imgclf.audit.oof.assign_folds`.
        num_classes: int >= 2.
        cfg: TrainConfig. See the module docstring for the fields used.
        outlier_k: int, default 10. Neighbours of the outlier distance.
        predict_batch_size: int, default 512.

    Returns:
        FoldModels.

    Raises:
        ModelError: unknown model, unusable weights (from `create_model`).
        ConfigError: an augmentation this Keras cannot do.
    """
    import tensorflow as tf

    # A fresh model per fold retraces its predict function: TensorFlow warns about it each
    # time, which says nothing useful here.
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel("ERROR")
    try:
        return _train_folds(
            _Folds(
                np.asarray(images, dtype=np.uint8),
                np.asarray(labels, dtype=np.int64),
                np.asarray(fold_ids),
                num_classes,
                cfg,
                outlier_k,
                predict_batch_size,
            )
        )
    finally:
        tf_logger.setLevel(level)


@dataclass
class _Folds:
    """The arrays and settings every fold shares."""

    x: np.ndarray
    y: np.ndarray
    fold_ids: np.ndarray
    num_classes: int
    cfg: TrainConfig
    outlier_k: int
    predict_batch_size: int

    @property
    def folds(self) -> np.ndarray:
        return np.unique(self.fold_ids)


def _compiled_model(f: _Folds, k: int, steps: int) -> Any:
    """A fresh model for fold `k`, compiled (backbone frozen when pretrained)."""
    import keras

    from imgclf.models import create_model, get_spec  # imgclf.models imports TensorFlow

    cfg = f.cfg
    weights = None if cfg.weights.lower() == "none" else cfg.weights
    keras.utils.set_random_seed(cfg.seed + k)
    size = int(f.x.shape[1])
    model = create_model(
        cfg.model,
        num_classes=f.num_classes,
        input_shape=(size, size, 3),
        dropout=cfg.dropout,
        weights=weights,
        **cfg.model_options,
    )
    if get_spec(cfg.model).pretrained and weights is not None:
        _freeze_backbone(model)
    loss = (
        keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        if cfg.label_smoothing > 0
        else keras.losses.SparseCategoricalCrossentropy()
    )
    model.compile(optimizer=build_optimizer(cfg, _learning_rate(cfg, cfg.epochs, steps), ema=False), loss=loss)
    return model


def _fold_dataset(f: _Folds, k: int, train: np.ndarray) -> Any:
    """The shuffled, batched (and augmented) training images of fold `k`."""
    import tensorflow as tf

    cfg = f.cfg
    augmenter = build_augmenter(cfg.augment, seed=cfg.seed + k)
    ds = tf.data.Dataset.from_tensor_slices((f.x[train], f.y[train]))
    ds = ds.shuffle(len(train), seed=cfg.seed + k, reshuffle_each_iteration=True).batch(cfg.batch_size)
    if augmenter is not None:
        ds = ds.map(
            lambda a, b: (augmenter(tf.cast(a, tf.float32), training=True), b),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if cfg.label_smoothing > 0:
        ds = ds.map(lambda a, b: (a, tf.one_hot(b, f.num_classes)))
    return ds.prefetch(2)


def _class_weight(cfg: TrainConfig, y: np.ndarray) -> dict[int, float] | None:
    """scikit-learn's "balanced" class weights of the fold's training labels, when asked for."""
    if not cfg.class_weights:
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    w = compute_class_weight("balanced", classes=present, y=y)
    return {int(c): float(v) for c, v in zip(present, w)}


def _epoch_callback(advance: Any, status: str, epochs: int) -> Any:
    """A Keras callback moving the progress bar once per epoch."""
    import keras

    class Advance(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            loss = (logs or {}).get("loss", float("nan"))
            advance(status=f"{status} epoch {epoch + 1}/{epochs} loss {loss:.4f}")

    return Advance()


def _predict_and_embed(f: _Folds, k: int, model: Any, train: np.ndarray, test: np.ndarray) -> tuple[Any, Any]:
    """Fold `k`'s probabilities (mirror-averaged when the recipe flips) and outlier distances."""
    import keras

    bs = f.predict_batch_size
    p = model.predict(f.x[test], batch_size=bs, verbose=0)
    if f.cfg.augment.flip in ("horizontal", "horizontal_and_vertical"):
        p = (p + model.predict(f.x[test][:, :, ::-1], batch_size=bs, verbose=0)) / 2
    embed = keras.Model(model.inputs, model.get_layer("embedding").output)
    rng = np.random.default_rng(f.cfg.seed + k)
    ref = train if len(train) <= OUTLIER_REFERENCE else rng.choice(train, OUTLIER_REFERENCE, replace=False)
    e_ref = np.asarray(embed.predict(f.x[ref], batch_size=bs, verbose=0), np.float64)
    e_test = np.asarray(embed.predict(f.x[test], batch_size=bs, verbose=0), np.float64)
    dist = _knn_ratio(e_ref.reshape(len(ref), -1), e_test.reshape(len(test), -1), f.outlier_k, 64, f.cfg.seed)
    return p, dist


def _train_one_fold(f: _Folds, k: int, advance: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trains fold `k`'s model on the other folds; returns `(test indices, probabilities, outlier distances)`."""
    import keras

    cfg = f.cfg
    train = np.flatnonzero(f.fold_ids != k)
    test = np.flatnonzero(f.fold_ids == k)
    model = _compiled_model(f, k, math.ceil(len(train) / cfg.batch_size))
    model.fit(
        _fold_dataset(f, k, train),
        epochs=cfg.epochs,
        class_weight=_class_weight(cfg, f.y[train]),
        shuffle=False,
        verbose=0,
        callbacks=[_epoch_callback(advance, f"fold {k + 1}/{len(f.folds)}", cfg.epochs)],
    )
    p, dist = _predict_and_embed(f, k, model, train, test)
    del model
    keras.backend.clear_session()
    return test, np.asarray(p, dtype=np.float64), dist


def _train_folds(f: _Folds) -> FoldModels:
    """Every fold in turn; probabilities renormalized to sum to 1."""
    n = len(f.x)
    probs = np.zeros((n, f.num_classes))
    outlier = np.zeros(n)
    seconds: list[float] = []
    with progress(f"audit: cv-train {f.cfg.model}", total=len(f.folds) * f.cfg.epochs) as advance:
        for k in f.folds:
            t0 = time.monotonic()
            test, p, dist = _train_one_fold(f, int(k), advance)
            probs[test] = p
            outlier[test] = dist
            seconds.append(time.monotonic() - t0)
    sums = probs.sum(axis=1, keepdims=True)
    probs = np.divide(probs, sums, out=np.full_like(probs, 1.0 / f.num_classes), where=sums > 0)
    return FoldModels(probs, outlier, seconds, f.cfg)
