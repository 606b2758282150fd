"""One registry for every model `imgclf train --model NAME` can build (timm `_registry.py` /
`_factory.py` style; docs/architecture.md, "Models").

A builder is registered with its defaults declared as data next to it::

    @register_model("cnn", default_size=32, min_size=8, preprocessing="rescale [0, 1]",
                    description="...", last_conv_layer="last_conv")
    def cnn(input_shape, num_classes, dropout=0.2, weights=None, **kwargs) -> keras.Model: ...

Every builder takes `(input_shape, num_classes, dropout, weights)` and returns a `keras.Model`
that:

- takes raw RGB pixels in `[0, 255]` (uint8 or float) of shape `(batch, height, width, 3)`;
  its preprocessing (`Rescaling`, or the backbone's own `preprocess_input` as layers) is inside;
- outputs softmax probabilities of shape `(batch, num_classes)` from a Dense layer named
  `"predictions"` (float32 even under mixed precision);
- names every layer; the layer feeding the classifier (through dropout only) is `"embedding"`
  (`imgclf embed` reads `model.get_layer("embedding").output`);
- exposes its last 4-D feature map `(batch, h, w, channels)` as the layer named
  `ModelSpec.last_conv_layer` (`"last_conv"` for imgclf's own conv nets, the backbone's own
  layer name for DenseNet201 / Xception, None for the MLP) — Grad-CAM (`imgclf explain`) uses it.

`create_model` drops overrides left as None, so a CLI option left unset never overrides a
builder default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imgclf.errors import ModelError, suggest

#: Names of the head layers every builder adds on top of its features (never frozen).
HEAD_LAYERS: frozenset[str] = frozenset({"embedding", "head_dropout", "predictions"})


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model, declared next to its builder.

    Attributes:
        name: str. Registry name, e.g. `"cnn"`.
        builder: callable `(input_shape, num_classes, dropout, weights, **kwargs) -> keras.Model`.
        default_size: int. Input side in pixels the model is designed for.
        min_size: int. Smallest input side in pixels the architecture accepts.
        preprocessing: str. What the model does to raw `[0, 255]` pixels inside itself.
        description: str. One line for `imgclf models`.
        pretrained: bool. Whether `weights="imagenet"` is available (a keras.applications
            backbone); such models train in two phases (head, then fine-tuning).
        last_conv_layer: str or None. Layer whose output is the last 4-D feature map, for
            Grad-CAM; None for models without convolutions.
        defaults: dict. Keyword defaults of the builder (for documentation).
    """

    name: str
    builder: Callable[..., Any]
    default_size: int
    min_size: int
    preprocessing: str
    description: str
    pretrained: bool = False
    last_conv_layer: str | None = "last_conv"
    defaults: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    default_size: int,
    preprocessing: str,
    description: str,
    pretrained: bool = False,
    min_size: int = 8,
    last_conv_layer: str | None = "last_conv",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a model builder under `name`.

    Args:
        name: str. Registry name (lowercase, unique).
        default_size: int. Input side in pixels the model is designed for.
        preprocessing: str. Human description of the in-model preprocessing.
        description: str. One line shown by `imgclf models`.
        pretrained: bool, default False. True if ImageNet weights exist for the backbone.
        min_size: int, default 8. Smallest accepted input side in pixels.
        last_conv_layer: str or None, default `"last_conv"`. See `ModelSpec`.

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ValueError: if `name` is already registered.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered")
        import inspect

        defaults = {
            k: p.default
            for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=fn,
            default_size=default_size,
            min_size=min_size,
            preprocessing=preprocessing,
            description=description,
            pretrained=pretrained,
            last_conv_layer=last_conv_layer,
            defaults=defaults,
        )
        return fn

    return deco


def _ensure_loaded() -> None:
    # Importing the package registers the built-in architectures.
    import imgclf.models  # noqa: F401


def list_models() -> list[ModelSpec]:
    """Returns every registered model, in registration order (mlp, cnn, vgg, peetznet,
    densenet201, xception)."""
    _ensure_loaded()
    return list(_REGISTRY.values())


def model_names() -> list[str]:
    """Returns the registered model names."""
    return [s.name for s in list_models()]


def get_spec(name: str) -> ModelSpec:
    """Returns the `ModelSpec` registered under `name`.

    Args:
        name: str. A registry name (case-insensitive), e.g. `"xception"`.

    Raises:
        ModelError: if no model has that name; the message suggests close matches.
    """
    _ensure_loaded()
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise ModelError(
            f"unknown model {name!r}.{suggest(key, _REGISTRY)}",
            f"choose one of: {', '.join(_REGISTRY)} (see `imgclf models`)",
        )
    return _REGISTRY[key]


def create_model(
    name: str,
    *,
    num_classes: int,
    input_shape: tuple[int, int, int] | None = None,
    dropout: float | None = None,
    weights: str | None = None,
    **overrides: Any,
):
    """Builds a registered model.

    Args:
        name: str. Registry name, see `list_models()`.
        num_classes: int, >= 2. Number of output units (softmax).
        input_shape: tuple `(height, width, 3)` or None, default None (the model's
            `default_size`). Each side must be >= the model's `min_size` pixels.
        dropout: float in `[0, 1)` or None, default None (the builder's default). Dropout rate
            before the classifier.
        weights: str or None, default None. `None`/`"none"` = random initialization,
            `"imagenet"` = Keras' pretrained backbone (download-and-cache; pretrained models
            only), or a path to a local weights file (see each builder).
        **overrides: builder-specific keyword arguments (e.g. `width=48` for `cnn`); values
            left as None are dropped so they never override a default.

    Returns:
        keras.Model taking `(batch, height, width, 3)` raw RGB in `[0, 255]` and returning
        `(batch, num_classes)` softmax probabilities.

    Raises:
        ModelError: unknown model, bad `num_classes` / `input_shape`, unknown override, an
            option value the builder rejects, or weights that cannot be loaded.
    """
    spec = get_spec(name)
    if num_classes < 2:
        raise ModelError(f"num_classes must be >= 2, received num_classes={num_classes}")
    shape = tuple(int(v) for v in input_shape) if input_shape is not None else (spec.default_size, spec.default_size, 3)
    if len(shape) != 3 or shape[2] != 3:
        raise ModelError(f"input_shape must be (height, width, 3), received input_shape={shape}")
    if min(shape[:2]) < spec.min_size:
        raise ModelError(
            f"model {spec.name!r} needs images of at least {spec.min_size}x{spec.min_size} pixels, "
            f"received input_shape={shape}",
            f"use --image-size {max(spec.min_size, spec.default_size)} or prepare larger images",
        )
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(kwargs) - set(spec.defaults))
    if unknown:
        raise ModelError(
            f"model {spec.name!r} has no option {unknown[0]!r}.{suggest(unknown[0], spec.defaults)}",
            f"its options are: {', '.join(k for k in spec.defaults if k not in ('dropout', 'weights'))}",
        )
    if dropout is not None:
        kwargs["dropout"] = dropout
    w = None if weights is None or str(weights).lower() == "none" else str(weights)
    if w == "imagenet" and not spec.pretrained:
        raise ModelError(
            f"model {spec.name!r} has no ImageNet weights",
            "use --weights none, or a pretrained model: "
            + ", ".join(s.name for s in _REGISTRY.values() if s.pretrained),
        )
    try:
        return spec.builder(shape, num_classes, weights=w, **kwargs)
    except ValueError as exc:  # a builder's own range checks (dropout, width, depth...)
        raise ModelError(
            f"model {spec.name!r}: {exc}", "see `imgclf models` and docs/models.md for its options"
        ) from exc
