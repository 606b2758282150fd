"""`cnn`: a small residual network (ResNet v1 basic blocks with batch norm), built for
28-64 px images such as Fashion-MNIST.

Layout (He et al., 2016, "Deep Residual Learning for Image Recognition", §4.2, the CIFAR
variant: 3x3 stem, then stages of basic blocks, filters doubling and resolution halving per
stage, global average pooling):

    Rescaling 1/255 -> stem Conv3x3(width)-BN-ReLU
    -> stage 1: `depth[0]` blocks of width          (stride 1)
    -> stage 2: `depth[1]` blocks of 2 * width      (first block stride 2)
    -> stage 3: `depth[2]` blocks of 4 * width      (first block stride 2)
    -> ... one stage per entry of `depth` (1 to 6), each doubling the filters and halving
       the resolution ("same" padding: 28 -> 14 -> 7 -> 4 -> 2 -> 1)
    -> ReLU `"last_conv"` -> GlobalAveragePooling `"embedding"` -> Dropout -> Dense softmax

A basic block is Conv3x3-BN-ReLU-Conv3x3-BN plus the shortcut (identity, or Conv1x1-BN when
the shape changes), then ReLU.
"""

from __future__ import annotations

import keras
from keras import layers

from imgclf.models._common import batch_norm, check_dropout, classifier_head, conv_bn_relu, load_own_weights
from imgclf.models.registry import register_model


def _basic_block(x, filters: int, strides: int, name: str, out_name: str | None = None):
    shortcut = x
    y = conv_bn_relu(x, filters, 3, f"{name}_1", strides=strides)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = batch_norm(f"{name}_2_bn")(y)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_0_conv")(shortcut)
        shortcut = batch_norm(f"{name}_0_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=out_name or f"{name}_out")(y)


@register_model(
    "cnn",
    default_size=32,
    min_size=8,
    preprocessing="Rescaling 1/255 -> [0, 1]",
    description="Small ResNet (3 stages of basic blocks, batch norm, GAP head)",
)
def cnn(input_shape, num_classes, dropout=0.2, weights=None, width=32, depth=(1, 1, 1)):
    """Builds the residual `cnn`.

    Args:
        input_shape: tuple `(height, width, 3)`, pixels (>= 8).
        num_classes: int, >= 2.
        dropout: float in `[0, 1)`, default 0.2. Rate before the classifier.
        weights: str or None, default None. Local weights file (see `load_own_weights`).
        width: int, default 32. Filters of the stem and stage 1 (stages 2, 3: x2, x4).
        depth: sequence of 1 to 6 ints >= 1, default `(1, 1, 1)`. Basic blocks per stage; its
            length is the number of stages. More stages reach a lower resolution with more
            filters, which is cheaper per image: at 28x28 px, `width=16, depth=(1,) * 6`
            costs about half the multiply-adds of `width=32, depth=(1, 1, 1)`.

    Returns:
        keras.Model: `(batch, h, w, 3)` raw RGB in `[0, 255]` -> `(batch, num_classes)`.

    Raises:
        ValueError: if `dropout`, `width` or `depth` is out of range.
    """
    check_dropout(dropout)
    depth = tuple(int(d) for d in depth)
    if not 1 <= len(depth) <= 6 or min(depth) < 1:
        raise ValueError(f"depth must be 1 to 6 integers >= 1, received depth={depth}")
    if width < 1:
        raise ValueError(f"width must be >= 1, received width={width}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = conv_bn_relu(x, width, 3, "stem")
    for s, n_blocks in enumerate(depth):
        for b in range(n_blocks):
            last = s == len(depth) - 1 and b == n_blocks - 1
            strides = 2 if s > 0 and b == 0 else 1
            x = _basic_block(
                x, width * 2**s, strides, f"stage{s + 1}_block{b + 1}", out_name="last_conv" if last else None
            )
    x = layers.GlobalAveragePooling2D(name="embedding")(x)
    outputs = classifier_head(x, num_classes, dropout)
    return load_own_weights(keras.Model(inputs, outputs, name="cnn"), weights)
