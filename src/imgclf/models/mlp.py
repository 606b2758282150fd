"""`mlp`: a multilayer perceptron baseline on flattened pixels.

Layout: Rescaling `[0, 255] -> [0, 1]` -> Flatten -> Dense(`hidden`) -> BatchNorm -> ReLU ->
Dropout -> Dense(`hidden // 2`, ReLU, `"embedding"`) -> Dropout -> Dense softmax. It has no
convolutions, so no Grad-CAM layer (`last_conv_layer=None`).
"""

from __future__ import annotations

import keras
from keras import layers

from imgclf.models._common import BN_MOMENTUM, check_dropout, classifier_head, load_own_weights
from imgclf.models.registry import register_model


@register_model(
    "mlp",
    default_size=28,
    min_size=8,
    preprocessing="Rescaling 1/255 -> [0, 1]",
    description="Multilayer perceptron on flattened pixels (baseline)",
    last_conv_layer=None,
)
def mlp(input_shape, num_classes, dropout=0.3, weights=None, hidden=512):
    """Builds the MLP.

    Args:
        input_shape: tuple `(height, width, 3)`, pixels.
        num_classes: int, >= 2.
        dropout: float in `[0, 1)`, default 0.3. Rate after each hidden layer.
        weights: str or None, default None. Local weights file (see `load_own_weights`).
        hidden: int, default 512. Units of the first hidden layer (the second has half).

    Returns:
        keras.Model: `(batch, h, w, 3)` raw RGB in `[0, 255]` -> `(batch, num_classes)`.

    Raises:
        ValueError: if `dropout` or `hidden` is out of range.
    """
    check_dropout(dropout)
    if hidden < 2:
        raise ValueError(f"hidden must be >= 2, received hidden={hidden}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden, use_bias=False, name="fc1")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="fc1_bn")(x)
    x = layers.Activation("relu", name="fc1_relu")(x)
    x = layers.Dropout(dropout, name="fc1_dropout")(x)
    x = layers.Dense(hidden // 2, activation="relu", name="embedding")(x)
    outputs = classifier_head(x, num_classes, dropout)
    return load_own_weights(keras.Model(inputs, outputs, name="mlp"), weights)
