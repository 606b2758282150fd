"""`imgclf explain`: where the model looked — a Grad-CAM heat map over the input image.

Grad-CAM (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", ICCV, eq. 1-2): the gradients of the class score y^c (the
pre-softmax logit) with respect to the feature maps A^k of the last convolutional layer are
global-average-pooled into weights a_k^c; the map is ReLU(sum_k a_k^c A^k), upsampled to the
image. Here the logit is obtained by running the final Dense layer with a linear activation
(as in the Keras Grad-CAM example), and the map is normalized to [0, 1].

The target layer is the one the model registry declares for the run's model
(`ModelSpec.last_conv_layer`: "last_conv" for imgclf's own conv nets, the backbone's last
activation for DenseNet201 / Xception), else the layer named `LAST_CONV`, else the last
top-level layer with a 4-D output (a Conv2D, or a nested backbone model).

The model sees the image exactly as in training (`imgclf.inputs.load_image` with the run's
`InputSpec`); the heat map covers the region of the original image that became the input
(the center square for `center_crop`, the whole image for `squish` and `pad`), and the overlay
PNG has the size of the original image (after EXIF rotation), with cropped-away margins left
uncoloured.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.errors import ModelError, suggest
from imgclf.fsutil import atomic_write_bytes
from imgclf.images import open_image
from imgclf.inputs import load_image
from imgclf.records.run import load_run_info
from imgclf.runtime import load_model

#: Name of the layer used as the Grad-CAM target when the model has one.
LAST_CONV = "last_conv"


@dataclass
class Explanation:
    """A Grad-CAM result.

    Attributes:
        heatmap: np.ndarray `(h, w)` float32 in [0, 1], at the target layer's resolution.
        class_index: int. The explained class.
        label: str. Its name.
        probability: float. The model's probability for it.
        layer: str. The target layer's name.
    """

    heatmap: np.ndarray
    class_index: int
    label: str
    probability: float
    layer: str


def find_target_layer(model: Any, layer_name: str | None = None) -> Any:
    """Returns the Grad-CAM target layer of a Keras model.

    Args:
        model: keras.Model (functional).
        layer_name: str or None. A top-level layer name; None = `LAST_CONV` if present, else
            the last layer whose output is 4-D `(batch, height, width, channels)`.

    Returns:
        keras.layers.Layer.

    Raises:
        ModelError: if the named layer does not exist or the model has no 4-D layer
            (e.g. an MLP: Grad-CAM needs a convolutional model).
    """
    names = [layer.name for layer in model.layers]
    if layer_name is not None:
        if layer_name not in names:
            raise ModelError(f"the model has no layer {layer_name!r}.{suggest(layer_name, names)}")
        return model.get_layer(layer_name)
    if LAST_CONV in names:
        return model.get_layer(LAST_CONV)
    for layer in reversed(model.layers[1:]):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4 and not layer.name.startswith(("rescaling", "input")):
            return layer
    raise ModelError(
        f"model {model.name!r} has no convolutional layer to explain",
        "Grad-CAM works for convolutional models (not mlp)",
    )


def registry_target_layer(model_name: str, model: Any) -> str | None:
    """The Grad-CAM layer the model registry declares for `model_name` (`ModelSpec.last_conv_layer`).

    Args:
        model_name: str. The run's registry name (`run.json` `model`).
        model: keras.Model. The loaded model (the layer must exist in it).

    Returns:
        str or None: the layer name, or None when the registry does not know the model or the
        layer is absent (then `find_target_layer` decides).

    Raises:
        ModelError: if the registry says the model has no convolutional layer (e.g. `mlp`).
    """
    try:
        from imgclf.models.registry import get_spec  # the models package imports Keras

        spec = get_spec(model_name)
    except (ImportError, ModelError):
        return None
    if spec.last_conv_layer is None:
        raise ModelError(
            f"model {model_name!r} has no convolutional layer to explain",
            "Grad-CAM works for convolutional models (not mlp)",
        )
    names = {layer.name for layer in model.layers}
    return spec.last_conv_layer if spec.last_conv_layer in names else None


def grad_cam(
    model: Any, image: np.ndarray, class_index: int | None = None, layer_name: str | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Computes a Grad-CAM heat map for one prepared image.

    Args:
        model: keras.Model taking raw RGB `(batch, size, size, 3)` in [0, 255], softmax output.
        image: np.ndarray `(size, size, 3)`, uint8 or float, in [0, 255].
        class_index: int or None. The class to explain; None = the top class.
        layer_name: str or None. Target layer (see `find_target_layer`).

    Returns:
        (heatmap, probs, layer): heatmap np.ndarray `(h, w)` float32 in [0, 1] at the layer's
        resolution (all zeros if no location has a positive contribution); probs np.ndarray
        `(num_classes,)`; layer the target layer's name.

    Raises:
        ModelError: see `find_target_layer`.
    """
    import keras
    import tensorflow as tf

    layer = find_target_layer(model, layer_name)
    last = model.layers[-1]
    softmax = keras.activations.get("softmax")
    swap = getattr(last, "activation", None) is softmax
    x = tf.convert_to_tensor(image[None].astype(np.float32))
    probs = np.asarray(model(x, training=False))[0]
    c = int(np.argmax(probs)) if class_index is None else int(class_index)
    # The feature map is computed outside the tape and only the head (feature map -> score) is
    # differentiated: the gradient needs nothing before the target layer, and TensorFlow 2.21's
    # eager Conv2D filter gradient under oneDNN corrupts the heap on some small inputs.
    try:
        features = keras.Model(model.inputs, layer.output)
        head = keras.Model(layer.output, model.outputs[0])
    except (ValueError, TypeError):  # a head that reaches back before the layer: whole model
        features = head = None
    try:
        if swap:
            last.activation = keras.activations.linear  # y^c before the softmax (Selvaraju et al.)
        if head is not None:
            import warnings

            with warnings.catch_warnings():  # Keras: a sub-model's input is named like a layer
                warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
                fmap = tf.convert_to_tensor(features(x, training=False))
                with tf.GradientTape() as tape:
                    tape.watch(fmap)
                    score = head(fmap, training=False)[:, c]
        else:
            grad_model = keras.Model(model.inputs, [layer.output, model.outputs[0]])
            with tf.GradientTape() as tape:
                fmap, out = grad_model(x, training=False)
                score = out[:, c]
        grads = tape.gradient(score, fmap)
    finally:
        if swap:
            last.activation = softmax
    if grads is None:
        raise ModelError(f"no gradient flows from the output to layer {layer.name!r}; pass another --layer")
    weights = tf.reduce_mean(grads, axis=(1, 2))  # (1, channels): a_k^c
    cam = tf.nn.relu(tf.reduce_sum(fmap * weights[:, None, None, :], axis=-1))[0].numpy()
    peak = float(cam.max())
    cam = cam / peak if peak > 0 else np.zeros_like(cam)
    return cam.astype(np.float32), probs, layer.name


def overlay(
    original: Any, heatmap: np.ndarray, alpha: float = 0.45, colormap: str = "jet", resize: str = "center_crop"
) -> Any:
    """Blends a heat map over the region of an image the model saw, at the image's own size.

    Args:
        original: PIL.Image.Image, RGB, any size (width W, height H).
        heatmap: np.ndarray `(h, w)` in [0, 1], over the model's input square.
        alpha: float in [0, 1], default 0.45. Opacity of the heat map.
        colormap: str, default "jet". A matplotlib colormap name.
        resize: str, default "center_crop". The run's resize policy
            (`imgclf.inputs.InputSpec.resize`), which says where the input square came from:
            `"center_crop"` the center `min(W, H)` square, `"squish"` the whole image,
            `"pad"` a `max(W, H)` square around the image (the padding is cut off again).

    Returns:
        PIL.Image.Image, RGB, size (W, H).
    """
    from matplotlib import colormaps
    from PIL import Image

    w, h = original.size
    hm = Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8))
    base = np.asarray(original, dtype=np.float32).copy()
    if resize == "squish":
        box, region_of_hm = (0, 0, w, h), hm.resize((w, h), Image.Resampling.BICUBIC)
    elif resize == "pad":
        side = max(w, h)
        big = hm.resize((side, side), Image.Resampling.BICUBIC)
        left, top = (side - w) // 2, (side - h) // 2
        box, region_of_hm = (0, 0, w, h), big.crop((left, top, left + w, top + h))
    else:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        box, region_of_hm = (left, top, left + side, top + side), hm.resize((side, side), Image.Resampling.BICUBIC)
    coloured = (colormaps[colormap](np.asarray(region_of_hm) / 255.0)[..., :3] * 255).astype(np.float32)
    x0, y0, x1, y1 = box
    region = base[y0:y1, x0:x1]
    base[y0:y1, x0:x1] = (1 - alpha) * region + alpha * coloured
    return Image.fromarray(np.clip(base, 0, 255).round().astype(np.uint8), mode="RGB")


def explain_image(
    image: str | os.PathLike,
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    class_name: str | None = None,
    layer_name: str | None = None,
    alpha: float = 0.45,
) -> tuple[Explanation, Path]:
    """Writes a Grad-CAM overlay PNG for one image file, the same size as that image.

    Args:
        image: path. An image file (opened with `imgclf.images.open_image`).
        run_dir: path. A run directory (or its `.keras` file).
        out: path or None. PNG to write; None = `<image stem>_gradcam.png` next to the image.
        class_name: str or None. Class to explain; None = the predicted (top) class.
        layer_name: str or None. Target layer; None = "last_conv" / last 4-D layer.
        alpha: float, default 0.45. Heat map opacity.

    Returns:
        (Explanation, path of the PNG written).

    Raises:
        ImageError: if the image cannot be opened.
        ModelError: bad run, unknown class or layer, or a model without convolutions.
    """
    predictor = load_model(run_dir)
    if predictor.keras_model is None:
        raise ModelError(f"{run_dir}: Grad-CAM needs a Keras training run, not an exported {predictor.kind} model")
    run_path = predictor.source.parent
    info = load_run_info(run_path)
    model = predictor.keras_model
    original = open_image(image, background=info.input_spec.background)
    prepared = load_image(image, info.input_spec)
    class_index = None
    if class_name is not None:
        if class_name not in info.class_names:
            raise ModelError(
                f"unknown class {class_name!r}.{suggest(class_name, info.class_names)}", f"classes: {info.class_names}"
            )
        class_index = info.class_names.index(class_name)
    if layer_name is None:
        layer_name = registry_target_layer(info.model, model)
    heatmap, probs, layer = grad_cam(model, prepared, class_index, layer_name)
    c = int(np.argmax(probs)) if class_index is None else class_index
    result = Explanation(heatmap, c, info.class_names[c], float(probs[c]), layer)
    img_path = Path(image)
    dest = Path(out) if out is not None else img_path.with_name(f"{img_path.stem}_gradcam.png")
    buf = io.BytesIO()
    overlay(original, heatmap, alpha=alpha, resize=info.input_spec.resize).save(buf, format="PNG")
    atomic_write_bytes(dest, buf.getvalue())
    return result, dest
