"""Building blocks shared by imgclf's own architectures (not part of the public API)."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from imgclf.errors import ModelError
from imgclf.models.layers import FusedBatchNormalization

#: BatchNormalization momentum of imgclf's own models. Keras' 0.99 averages over ~100 steps,
#: which small datasets (a few dozen steps per epoch) never reach: validation would then run
#: with unsettled statistics. 0.9 (the PyTorch / original ResNet value) settles in ~10 steps.
BN_MOMENTUM = 0.9

#: The batch-norm layer class of imgclf's convolutional models (`cnn`, `vgg`, `peetznet`).
#: `scripts/bench/bench_train_throughput.py` swaps in `keras.layers.BatchNormalization` to
#: measure what the fused kernel saves.
BATCH_NORM = FusedBatchNormalization


def batch_norm(name: str):
    """A `BATCH_NORM` layer with imgclf's momentum (`BN_MOMENTUM`), named `name`."""
    return BATCH_NORM(momentum=BN_MOMENTUM, name=name)


def check_dropout(dropout: float) -> None:
    """Raises ValueError naming the argument if `dropout` is outside `[0, 1)`."""
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), received dropout={dropout}")


def conv_bn_relu(x, filters: int, kernel_size: int, name: str, strides: int = 1, act_name: str | None = None):
    """Conv2D (no bias) -> BatchNormalization -> ReLU, layers named `name_conv|_bn|_relu`."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = batch_norm(f"{name}_bn")(x)
    return layers.Activation("relu", name=act_name or f"{name}_relu")(x)


def classifier_head(embedding, num_classes: int, dropout: float):
    """Dropout (`"head_dropout"`) -> Dense softmax (`"predictions"`, float32 even under mixed
    precision, so probabilities sum to 1 in full precision)."""
    x = layers.Dropout(dropout, name="head_dropout")(embedding)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)


def load_own_weights(model: keras.Model, weights: str | None) -> keras.Model:
    """Loads a local weights file into an imgclf architecture (random init if `weights` is None).

    Args:
        model: keras.Model. The freshly built model.
        weights: str or None. Path to a `.weights.h5` or `.keras` file saved from the same
            architecture with the same number of classes (e.g. a previous run's `best.keras`).

    Returns:
        `model`.

    Raises:
        ModelError: if the file is missing or does not fit the architecture.
    """
    if weights is None:
        return model
    path = Path(weights)
    if not path.is_file():
        raise ModelError(
            f"weights file not found: {path}",
            "pass --weights none, or the path of a .weights.h5 / .keras file saved from this model",
        )
    try:
        model.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError / OSError / KeyError for mismatches
        raise ModelError(
            f"cannot load weights {path} into model {model.name!r}: {exc}",
            "the file must come from the same model and number of classes",
        ) from None
    return model
