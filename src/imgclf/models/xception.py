"""`xception`: Keras' Xception backbone (Chollet, 2017, "Xception: Deep Learning with
Depthwise Separable Convolutions") with imgclf's head.

Preprocessing inside the model reproduces `keras.applications.xception.preprocess_input`
("tf" mode): Rescaling `x / 127.5 - 1` to `[-1, 1]`. Grad-CAM layer: `"block14_sepconv2_act"`
(`(batch, h/32, w/32, 2048)`), as in the Keras Grad-CAM example.
"""

from __future__ import annotations

import keras
from keras import layers

from imgclf.models._backbone import build_backbone_model
from imgclf.models.registry import register_model


@register_model(
    "xception",
    default_size=299,
    min_size=71,
    preprocessing="tf: x / 127.5 - 1 -> [-1, 1]",
    description="Xception backbone (keras.applications), GAP head",
    pretrained=True,
    last_conv_layer="block14_sepconv2_act",
)
def xception(input_shape, num_classes, dropout=0.3, weights=None):
    """Builds Xception + imgclf head.

    Args:
        input_shape: tuple `(height, width, 3)`, pixels (>= 71).
        num_classes: int, >= 2.
        dropout: float in `[0, 1)`, default 0.3. Rate before the classifier.
        weights: None, `"imagenet"` or a path to an Xception `include_top=False` weights file
            (Keras' `xception_weights_tf_dim_ordering_tf_kernels_notop.h5`, or a `.weights.h5`
            saved from `keras.applications.Xception(include_top=False)`).

    Returns:
        keras.Model: `(batch, h, w, 3)` raw RGB in `[0, 255]` -> `(batch, num_classes)`.

    Raises:
        ModelError: if the weights cannot be downloaded or loaded.
    """
    return build_backbone_model(
        name="xception",
        app=keras.applications.Xception,
        preprocess=[layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")],
        input_shape=input_shape,
        num_classes=num_classes,
        dropout=dropout,
        weights=weights,
        file_name="xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url_dir="xception",
    )
