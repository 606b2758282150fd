"""`vgg`: VGG-style plain network (Simonyan & Zisserman, 2015, "Very Deep Convolutional
Networks for Large-Scale Image Recognition", Table 1).

Layout: Rescaling 1/255 -> `blocks` blocks of `convs_per_block` x (Conv3x3-BN-ReLU), filters
`width`, 2*width, 4*width, ... (doubling per block), MaxPool 2x2 after every block except the
last -> ReLU of the last conv `"last_conv"` -> GlobalAveragePooling -> Dense(`fc_units`, ReLU)
-> Dropout -> Dense(`fc_units // 2`, ReLU, `"embedding"`) -> Dropout -> Dense softmax. Batch
norm (not in the 2015 paper) makes it train from scratch without the staged initialization
VGG needed.
"""

from __future__ import annotations

import keras
from keras import layers

from imgclf.models._common import check_dropout, classifier_head, conv_bn_relu, load_own_weights
from imgclf.models.registry import register_model


@register_model(
    "vgg",
    default_size=64,
    min_size=8,
    preprocessing="Rescaling 1/255 -> [0, 1]",
    description="VGG-style 3x3 conv blocks, filters doubling, max-pooling, dense head",
)
def vgg(input_shape, num_classes, dropout=0.4, weights=None, width=32, blocks=4, convs_per_block=2, fc_units=256):
    """Builds the VGG-style network.

    Args:
        input_shape: tuple `(height, width, 3)`, pixels; each side >= 2**(blocks - 1).
        num_classes: int, >= 2.
        dropout: float in `[0, 1)`, default 0.4. Rate after each dense layer.
        weights: str or None, default None. Local weights file (see `load_own_weights`).
        width: int, default 32. Filters of the first block.
        blocks: int, default 4. Conv blocks (filters double per block).
        convs_per_block: int, default 2. 3x3 convolutions per block.
        fc_units: int, default 256. Units of the first dense layer.

    Returns:
        keras.Model: `(batch, h, w, 3)` raw RGB in `[0, 255]` -> `(batch, num_classes)`.

    Raises:
        ValueError: if an argument is out of range or the input is too small for `blocks`.
    """
    check_dropout(dropout)
    if blocks < 1 or convs_per_block < 1 or width < 1 or fc_units < 2:
        raise ValueError(
            f"blocks, convs_per_block, width must be >= 1 and fc_units >= 2, received "
            f"blocks={blocks}, convs_per_block={convs_per_block}, width={width}, fc_units={fc_units}"
        )
    if min(input_shape[:2]) < 2 ** (blocks - 1):
        raise ValueError(
            f"input_shape={tuple(input_shape)} is too small for blocks={blocks} (needs >= {2 ** (blocks - 1)})"
        )
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for b in range(blocks):
        for c in range(convs_per_block):
            last = b == blocks - 1 and c == convs_per_block - 1
            x = conv_bn_relu(x, width * 2**b, 3, f"block{b + 1}_conv{c + 1}", act_name="last_conv" if last else None)
        if b < blocks - 1:
            x = layers.MaxPooling2D(2, name=f"block{b + 1}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(fc_units, activation="relu", name="fc1")(x)
    x = layers.Dropout(dropout, name="fc1_dropout")(x)
    x = layers.Dense(fc_units // 2, activation="relu", name="embedding")(x)
    outputs = classifier_head(x, num_classes, dropout)
    return load_own_weights(keras.Model(inputs, outputs, name="vgg"), weights)
