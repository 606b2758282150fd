"""`imgclf audit DIR --out OUT`: out-of-fold label issues, outliers and noise per class / source."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import opt, plain_opt
from imgclf.config import AuditConfig

MODEL_HELP = (
    "Embeddings of the default method: raw (pixels), autoencoder[:RUN_DIR], a training run folder, a .keras file "
    "or a registry name. With --cv-train: the model trained per fold (a run folder or a registry name; raw = the "
    "audit's quick cnn recipe)."
)


def register(app: typer.Typer) -> None:
    """Adds `audit` to `app`."""
    A = AuditConfig

    @app.command("audit")
    def audit(
        data_dir: Path = typer.Argument(
            ..., help="Labelled folder: DIR/<class>/<image> or DIR/{train,val,test}/<class>/<image>."
        ),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Output folder: label_issues.csv, outliers.csv, audit.json, audit.html."
        ),
        model: str | None = opt(A, "model", "--model", "-m", help=MODEL_HELP),
        folds: int | None = opt(A, "folds", "--folds", "-k", help="Cross-validation folds (K >= 2)."),
        cv_train: bool | None = opt(
            A,
            "cv_train",
            "--cv-train/--no-cv-train",
            help="Train the real model once per fold (slow, better) instead of a linear probe on embeddings.",
        ),
        cv_epochs: int | None = opt(A, "cv_epochs", "--cv-epochs", help="Epochs per fold with --cv-train."),
        train_config: Path | None = opt(
            A,
            "train_config",
            "--train-config",
            help="With --cv-train: a run YAML whose train: section is the model to retrain.",
        ),
        seed: int | None = opt(A, "seed", "--seed", help="Random seed (folds, PCA, training)."),
        method: str | None = opt(
            A,
            "method",
            "--method",
            help="Confident-learning rule: low_self_confidence (as many images as the confident joint counts under another class, lowest self-confidence first), prune_by_noise_rate, prune_by_class, both (C+NR), confident_joint, predicted_neq_given.",
        ),
        weights: str | None = opt(
            A, "weights", "--weights", help="Registry names only: imagenet, none, or a weights file."
        ),
        size: int | None = opt(A, "size", "--size", help="Input side in pixels."),
        batch_size: int | None = opt(A, "batch_size", "--batch-size", help="Images per batch when embedding."),
        groups: bool | None = opt(
            A,
            "groups",
            "--groups/--no-groups",
            help="Keep duplicate and same-post groups (from clean / split reports and the scrape manifest) in one fold.",
        ),
        manifest: Path | None = opt(
            A, "manifest", "--manifest", help="Scrape folder whose manifest gives the noise per source."
        ),
        outlier_threshold: float | None = opt(
            A,
            "outlier_threshold",
            "--outlier-threshold",
            help="Outlier score at or above which an image is listed in outliers.csv (1 = the median image).",
        ),
        config: Path | None = plain_opt(None, "--config", help="Run config YAML; its audit: section is used."),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Where --model autoencoder looks."),
    ) -> None:
        """Find likely wrong labels (confident learning on out-of-fold probabilities) and outliers."""
        from imgclf.config import stage_config

        cfg = stage_config(
            AuditConfig,
            "audit",
            config,
            model=model,
            folds=folds,
            cv_train=cv_train,
            cv_epochs=cv_epochs,
            train_config=str(train_config) if train_config else None,
            seed=seed,
            method=method,
            weights=weights,
            size=size,
            batch_size=batch_size,
            groups=groups,
            manifest=str(manifest) if manifest else None,
            outlier_threshold=outlier_threshold,
        )
        if cfg.cv_train or cfg.model != "raw":
            from imgclf.runtime import import_tensorflow_quietly

            import_tensorflow_quietly()
        from imgclf.audit.run import audit_folder

        audit_folder(data_dir, out, cfg, models_dir=models_dir)
