"""`AuditConfig`: the typed options of `imgclf audit` (kept here until it moves to `imgclf.config`).

The CLI builds it with `imgclf.config.stage_config(AuditConfig, "audit", CONFIG, **options)`, so
an option left unset keeps the default below, and a run YAML may hold an `audit:` section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AuditConfig(BaseModel):
    """How `imgclf audit` finds wrong labels and outliers.

    Attributes:
        model: str, default `"raw"`. What makes the embeddings of the default (linear probe)
            method: `raw` (pixels), `autoencoder[:RUN_DIR]`, a training run folder, a `.keras`
            file, or a registry name (see `imgclf.explore.embed.resolve_encoder`). With
            `cv_train`: a run folder (its model and training config are retrained per fold) or
            a registry name (trained with the audit's recipe); `raw` = the audit's recipe
            (`imgclf.audit.cvtrain.DEFAULT_RECIPE`).
        weights: str or None, default None. Registry names only: `none`, `imagenet` or a
            weights file.
        size: int or None, default None. Input side in pixels; None = the model's own (a run's
            input spec; for `raw`, the first image's shorter side clipped to [8, 64]; for the
            cv-train recipe, the first image's side).
        batch_size: int, default 64. Images per batch when embedding.
        folds: int, default 5. Cross-validation folds (K), >= 2.
        seed: int, default 42. Folds, PCA, training.
        method: str, default `"prune_by_noise_rate"`. Confident-learning rule
            (`imgclf.audit.confident.METHODS`).
        groups: bool, default True. Keep duplicate / provenance groups in one fold.
        classifier_c: float, default 0.01. Inverse L2 strength of the logistic regression.
        pca: int or None, default 256. Embeddings longer than this are reduced to this many
            whitened PCA components before the logistic regression (None = never).
        cv_train: bool, default False. Train the real model once per fold instead of the
            linear probe.
        cv_epochs: int or None, default None. Epochs per fold with `cv_train`; None = the
            config's own (the run's, `train_config`'s, or the recipe's 3, more for small folders:
            `imgclf.audit.cvtrain.fit_recipe_to_data`).
        train_config: str or None, default None. A run YAML whose `train:` section is the model
            `cv_train` trains (instead of a run folder or the recipe).
        outlier_k: int, default 10. Neighbours averaged by the outlier score.
        outlier_threshold: float, default 2.0. Images with an outlier score above this are
            flagged (`is_outlier`): twice the median image's distance to its neighbours.
        html_issues: int, default 200. Label issues shown with thumbnails in `audit.html`.
        html_outliers: int, default 50. Outliers shown with thumbnails in `audit.html`.
        manifest: str or None, default None. A scrape folder whose manifest gives the sources;
            None = found from the folder's stage reports.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    model: str = "raw"
    weights: str | None = None
    size: int | None = Field(default=None, ge=8, le=1024, json_schema_extra={"default_text": "the model's own"})
    batch_size: int = Field(default=64, ge=1, le=4096)
    folds: int = Field(default=5, ge=2, le=50)
    seed: int = 42
    method: Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_joint", "predicted_neq_given"] = (
        "prune_by_noise_rate"
    )
    groups: bool = True
    classifier_c: float = Field(default=0.01, gt=0)
    pca: int | None = Field(default=256, ge=2)
    cv_train: bool = False
    cv_epochs: int | None = Field(default=None, ge=1, json_schema_extra={"default_text": "the training config's"})
    train_config: str | None = None
    outlier_k: int = Field(default=10, ge=1, le=1000)
    outlier_threshold: float = Field(default=2.0, gt=0)
    html_issues: int = Field(default=200, ge=0, le=10000)
    html_outliers: int = Field(default=50, ge=0, le=10000)
    manifest: str | None = Field(default=None, json_schema_extra={"default_text": "found from DIR's stage reports"})
