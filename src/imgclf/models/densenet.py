"""`densenet201`: Keras' DenseNet201 backbone (Huang et al., 2017, "Densely Connected
Convolutional Networks") with imgclf's head.

Preprocessing inside the model reproduces `keras.applications.densenet.preprocess_input`
("torch" mode): Rescaling 1/255, then Normalization with the ImageNet channel mean
`(0.485, 0.456, 0.406)` and std `(0.229, 0.224, 0.225)`. Grad-CAM layer: `"relu"` (the
backbone's final BN-ReLU, `(batch, h/32, w/32, 1920)`).
"""

from __future__ import annotations

import keras
from keras import layers

from imgclf.models._backbone import build_backbone_model
from imgclf.models.registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@register_model(
    "densenet201",
    default_size=224,
    min_size=32,
    preprocessing="torch: /255, minus ImageNet mean, / std",
    description="DenseNet201 backbone (keras.applications), GAP head",
    pretrained=True,
    last_conv_layer="relu",
)
def densenet201(input_shape, num_classes, dropout=0.3, weights=None):
    """Builds DenseNet201 + imgclf head.

    Args:
        input_shape: tuple `(height, width, 3)`, pixels (>= 32).
        num_classes: int, >= 2.
        dropout: float in `[0, 1)`, default 0.3. Rate before the classifier.
        weights: None, `"imagenet"` or a path to a DenseNet201 `include_top=False` weights file
            (Keras' `densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5`, or a
            `.weights.h5` saved from `keras.applications.DenseNet201(include_top=False)`).

    Returns:
        keras.Model: `(batch, h, w, 3)` raw RGB in `[0, 255]` -> `(batch, num_classes)`.

    Raises:
        ModelError: if the weights cannot be downloaded or loaded.
    """
    return build_backbone_model(
        name="densenet201",
        app=keras.applications.DenseNet201,
        preprocess=[
            layers.Rescaling(1.0 / 255, name="rescale"),
            layers.Normalization(mean=list(IMAGENET_MEAN), variance=[s**2 for s in IMAGENET_STD], name="normalize"),
        ],
        input_shape=input_shape,
        num_classes=num_classes,
        dropout=dropout,
        weights=weights,
        file_name="densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5",
        url_dir="densenet",
    )
