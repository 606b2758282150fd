"""Typed options of the explore commands (`embed`, `cluster`, `autoencoder train|reconstruct`).

Kept here rather than in `imgclf.config` because `imgclf run` does not run these commands; the
CLI builds them with `imgclf.config.drop_none` + `imgclf.config.validate`, so an option left
unset keeps the default below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), defer_build=True)


class EmbedOptions(_Options):
    """How `embed` turns images into vectors.

    Attributes:
        model: str, default `"raw"`. One of `"raw"` (flattened pixels scaled to [0, 1]),
            `"autoencoder"` (newest autoencoder run under `models/`), `"autoencoder:RUN_DIR"`,
            a run directory (training run or autoencoder run), a `.keras` file with a layer
            named `"embedding"`, or a registry model name (`cnn`, `xception`, ...).
        weights: str or None, default None. Registry models only: `"none"`, `"imagenet"` or a
            path to a weights file. None = the registry's default.
        size: int or None, default None. Input side in pixels. None = the model's own size
            (run directory, autoencoder json, registry `default_size`); for `raw`, the shorter
            side of the first readable image, clipped to [8, 64].
        batch_size: int, default 64. Images per batch.
    """

    model: str = "raw"
    weights: str | None = None
    size: int | None = Field(default=None, ge=8, le=1024, json_schema_extra={"default_text": "the model's own"})
    batch_size: int = Field(default=64, ge=1, le=4096)


class ClusterOptions(_Options):
    """How `cluster` groups embeddings.

    Attributes:
        k: int >= 2 or `"auto"`, default `"auto"`. Number of clusters; `"auto"` picks the `k` in
            `[k_min, k_max]` with the highest silhouette score (Rousseeuw, 1987).
        k_min: int, default 2. Smallest `k` tried by `"auto"`.
        k_max: int, default 10. Largest `k` tried by `"auto"` (capped at n_images - 1).
        seed: int, default 42. `random_state` of KMeans, the silhouette sample, PCA and t-SNE.
        n_init: int, default 10. KMeans restarts (scikit-learn `n_init`); the best inertia wins.
        map: `"pca"` or `"tsne"`, default `"pca"`. 2-D projection drawn in the map PNG.
        silhouette_sample: int, default 2000. Images sampled to score each `k` (silhouette is
            quadratic in the number of images); all images if fewer.
        sheet_images: int, default 64. Images per contact sheet at most (closest to the centre).
        thumb: int, default 64. Side of a contact-sheet thumbnail, in pixels.
        overwrite: bool, default False. Replace the cluster folders of an earlier run in `out`.
    """

    k: int | Literal["auto"] = "auto"
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=10, ge=2)
    seed: int = 42
    n_init: int = Field(default=10, ge=1)
    map: Literal["pca", "tsne"] = "pca"
    silhouette_sample: int = Field(default=2000, ge=10)
    sheet_images: int = Field(default=64, ge=1, le=1024)
    thumb: int = Field(default=64, ge=8, le=512)
    overwrite: bool = False

    @field_validator("k")
    @classmethod
    def _k_at_least_two(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 2:
            raise ValueError(f"k must be 'auto' or an integer >= 2, got {v}")
        return v

    @model_validator(mode="after")
    def _range(self) -> ClusterOptions:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must be <= k_max ({self.k_max})")
        return self


class AutoencoderOptions(_Options):
    """How `autoencoder train` builds and fits the model (see `imgclf.explore.autoencoder`).

    Attributes:
        size: int, default 32. Input side in pixels; a multiple of 4 in [8, 128] (two stride-2
            convolutions halve it twice).
        bottleneck: int, default 32. Length of the code vector (the `"embedding"` layer).
        epochs: int, default 10.
        batch_size: int, default 64.
        learning_rate: float, default 1e-3. Adam.
        val_fraction: float, default 0.1. Share of images held out for `val_loss`
            (none when fewer than 10 images).
        seed: int, default 42. Weights, shuffling and the validation split.
    """

    size: int = Field(default=32, ge=8, le=128)
    bottleneck: int = Field(default=32, ge=2, le=4096)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=64, ge=1, le=4096)
    learning_rate: float = Field(default=1e-3, gt=0)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42

    @field_validator("size")
    @classmethod
    def _multiple_of_four(cls, v: int) -> int:
        if v % 4:
            raise ValueError(f"size must be a multiple of 4 pixels (two stride-2 convolutions), got {v}")
        return v
