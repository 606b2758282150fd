"""`peetznet`: two parallel convolution stacks over the same input, one going from large
kernels to small, the other from small to large, concatenated, then a dense head.

Exact layout (each conv is Conv-BN-ReLU, "same" padding; each stage ends with MaxPool 2x2
except the last, so both stacks keep the same spatial size at every depth):

    Rescaling 1/255 -+-> stack "coarse": Conv7x7(w)   -> pool -> Conv5x5(2w) -> pool -> Conv3x3(4w)
                     +-> stack "fine":   Conv3x3(w)   -> pool -> Conv5x5(2w) -> pool -> Conv7x7(4w)
    -> Concatenate `"last_conv"` (8w channels) -> GlobalAveragePooling
    -> Dense(`fc_units`, ReLU) -> Dropout -> Dense(`fc_units // 2`, ReLU, `"embedding"`)
    -> Dropout -> Dense softmax

The coarse stack sees shapes first and details later; the fine stack the reverse.
"""

from __future__ import annotations

import keras
from keras import layers

from imgclf.models._common import check_dropout, classifier_head, conv_bn_relu, load_own_weights
from imgclf.models.registry import register_model

_KERNELS = {"coarse": (7, 5, 3), "fine": (3, 5, 7)}


@register_model(
    "peetznet",
    default_size=64,
    min_size=8,
    preprocessing="Rescaling 1/255 -> [0, 1]",
    description="Two parallel conv stacks (kernels 7-5-3 and 3-5-7) concatenated, dense head",
)
def peetznet(input_shape, num_classes, dropout=0.4, weights=None, width=32, fc_units=256):
    """Builds PeetzNet.

    Args:
        input_shape: tuple `(height, width, 3)`, pixels (>= 8).
        num_classes: int, >= 2.
        dropout: float in `[0, 1)`, default 0.4. Rate after each dense layer.
        weights: str or None, default None. Local weights file (see `load_own_weights`).
        width: int, default 32. Filters of the first conv of each stack (x2, x4 deeper).
        fc_units: int, default 256. Units of the first dense layer.

    Returns:
        keras.Model: `(batch, h, w, 3)` raw RGB in `[0, 255]` -> `(batch, num_classes)`.

    Raises:
        ValueError: if an argument is out of range.
    """
    check_dropout(dropout)
    if width < 1 or fc_units < 2:
        raise ValueError(f"width must be >= 1 and fc_units >= 2, received width={width}, fc_units={fc_units}")
    inputs = keras.Input(shape=input_shape, name="image")
    x0 = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    stacks = []
    for stack, kernels in _KERNELS.items():
        x = x0
        for depth, k in enumerate(kernels):
            x = conv_bn_relu(x, width * 2**depth, k, f"{stack}{depth + 1}_k{k}")
            if depth < len(kernels) - 1:
                x = layers.MaxPooling2D(2, name=f"{stack}{depth + 1}_pool")(x)
        stacks.append(x)
    x = layers.Concatenate(name="last_conv")(stacks)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(fc_units, activation="relu", name="fc1")(x)
    x = layers.Dropout(dropout, name="fc1_dropout")(x)
    x = layers.Dense(fc_units // 2, activation="relu", name="embedding")(x)
    outputs = classifier_head(x, num_classes, dropout)
    return load_own_weights(keras.Model(inputs, outputs, name="peetznet"), weights)
