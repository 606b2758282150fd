"""keras.applications backbones with imgclf's head (shared by `densenet201` and `xception`).

The backbone is built on the output of the preprocessing layers (`input_tensor=`), so its
layers sit flat in the returned model under their Keras names (Grad-CAM can reach them, and
`imgclf.train` can freeze / unfreeze them by name). Pretrained weights are loaded into a
separately built reference backbone and copied layer by layer by name, which keeps Keras'
own download-and-cache path (`weights="imagenet"`) and its local-file path (`weights=PATH`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers

from imgclf.errors import ModelError
from imgclf.models._common import check_dropout, classifier_head
from imgclf.models.registry import HEAD_LAYERS

WEIGHTS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


def _reference_backbone(app: Callable[..., keras.Model], input_shape, weights: str, file_name: str, url_dir: str):
    """Builds `app(include_top=False)` with `weights` ("imagenet" or a file path)."""
    if weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise ModelError(
                f"weights file not found: {path}",
                f"pass --weights imagenet, none, or the path of a Keras weights file such as {file_name}",
            )
        if not path.name.endswith((".h5", ".hdf5", ".keras")):
            raise ModelError(
                f"weights file {path} must end in .weights.h5, .h5 or .keras",
                f"e.g. Keras' {file_name}",
            )
    try:
        return app(include_top=False, weights=weights, input_shape=tuple(input_shape))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - network errors (URL fetch failure) or a mismatching file
        if weights == "imagenet":
            raise ModelError(
                f"could not download the ImageNet weights {file_name} ({type(exc).__name__}: {exc})",
                f"on a machine with internet download {WEIGHTS_BASE_URL}{url_dir}/{file_name}, copy it here "
                f"and pass --weights /path/to/{file_name} (or put it in ~/.keras/models/)",
            ) from None
        raise ModelError(
            f"cannot load weights {weights} into the {app.__name__} backbone: {exc}",
            f"the file must be a {app.__name__} include_top=False weights file such as {file_name}",
        ) from None


def build_backbone_model(
    *,
    name: str,
    app: Callable[..., keras.Model],
    preprocess: list[layers.Layer],
    input_shape,
    num_classes: int,
    dropout: float,
    weights: str | None,
    file_name: str,
    url_dir: str,
) -> keras.Model:
    """Preprocessing layers -> `app` backbone (include_top=False) -> GAP `"embedding"` ->
    Dropout -> Dense softmax `"predictions"`.

    Args:
        name: str. Model name.
        app: a `keras.applications` constructor, e.g. `keras.applications.Xception`.
        preprocess: list of Keras layers reproducing the backbone's `preprocess_input` on raw
            `[0, 255]` RGB.
        input_shape: tuple `(height, width, 3)`, pixels.
        num_classes: int, >= 2.
        dropout: float in `[0, 1)`.
        weights: None (random), `"imagenet"`, or a path to a weights file of `app` with
            `include_top=False` (e.g. Keras' `file_name`, or one saved with `save_weights`).
        file_name: str. Keras' no-top weights file name (for error messages).
        url_dir: str. Its folder under `WEIGHTS_BASE_URL`.

    Returns:
        keras.Model.

    Raises:
        ModelError: if the weights cannot be downloaded or loaded.
    """
    check_dropout(dropout)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for layer in preprocess:
        x = layer(x)
    backbone = app(include_top=False, weights=None, input_tensor=x)
    _name_auto_named_layers(backbone.layers)
    features = layers.GlobalAveragePooling2D(name="embedding")(backbone.output)
    outputs = classifier_head(features, num_classes, dropout)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        ref = _reference_backbone(app, input_shape, weights, file_name, url_dir)
        # Same constructor, same topological order: copy layer by layer by position (Keras
        # leaves some layers auto-named, e.g. Xception's shortcut "conv2d_4").
        ours = [layer for layer in backbone.layers if layer.weights]
        theirs = [layer for layer in ref.layers if layer.weights]
        if [type(a) for a in ours] != [type(b) for b in theirs]:
            raise ModelError(f"the {app.__name__} reference backbone does not match the model's layers")
        for a, b in zip(ours, theirs):
            a.set_weights(b.get_weights())
        del ref
    return model


_AUTO_NAME = re.compile(r"(conv2d|batch_normalization|add|activation|zero_padding2d)(_\d+)?")
_AUTO_ROLE = {
    "conv2d": "shortcut_conv",
    "batch_normalization": "shortcut_bn",
    "add": "add",
    "activation": "act",
    "zero_padding2d": "pad",
}


def _name_auto_named_layers(backbone_layers: list[layers.Layer]) -> None:
    """Gives stable names to the layers a `keras.applications` constructor left auto-named
    (`conv2d_4` depends on how many models were built before): `<block>_shortcut_conv`,
    `<block>_shortcut_bn`, `<block>_add`, after the block of the preceding named layer."""
    block = "backbone"
    taken = {layer.name for layer in backbone_layers}
    for i, layer in enumerate(backbone_layers):
        m = _AUTO_NAME.fullmatch(layer.name)
        if m is None:
            b = re.match(r"(block\d+|conv\d+_block\d+|conv\d+|pool\d+)[_/]", layer.name)
            if b:
                block = b.group(1)
            continue
        new = f"{block}_{_AUTO_ROLE[m.group(1)]}"
        if new in taken:
            new = f"{new}_{i}"
        taken.discard(layer.name)
        taken.add(new)
        layer.name = new


def backbone_layer_names(model: keras.Model) -> list[str]:
    """Names of the backbone layers of a model built by `build_backbone_model`, in order
    (everything between the preprocessing and the head)."""
    pre = {"image", "rescale", "normalize"}
    return [layer.name for layer in model.layers if layer.name not in HEAD_LAYERS and layer.name not in pre]
