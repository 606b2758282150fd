"""`imgclf audit DIR --out OUT`: out-of-fold label issues, outliers and noise per class / source."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.engine_options import engine_config, engine_opt, ray_address_opt, stage_executor
from imgclf.cli.options import opt, plain_opt
from imgclf.config import AuditConfig, stage_config

MODEL_HELP = (
    "Embeddings of the default method: raw (pixels), autoencoder[:RUN_DIR], a training run folder, a .keras file "
    "or a registry name. With --cv-train: the model trained per fold (a run folder or a registry name; raw = the "
    "audit's quick cnn recipe)."
)

# The options of `imgclf audit`, in the order --help shows them; each stage option defaults to
# None (a YAML value stays) and its help shows the AuditConfig field's default.
_A = AuditConfig
_DATA_DIR = typer.Argument(..., help="Labelled folder: DIR/<class>/<image> or DIR/{train,val,test}/<class>/<image>.")
_OUT = typer.Option(..., "--out", "-o", help="Output folder: label_issues.csv, outliers.csv, audit.json, audit.html.")
_MODEL = opt(_A, "model", "--model", "-m", help=MODEL_HELP)
_FOLDS = opt(_A, "folds", "--folds", "-k", help="Cross-validation folds (K >= 2).")
_CV_TRAIN = opt(
    _A,
    "cv_train",
    "--cv-train/--no-cv-train",
    help="Train the real model once per fold (slow, better) instead of a linear probe on embeddings.",
)
_CV_EPOCHS = opt(_A, "cv_epochs", "--cv-epochs", help="Epochs per fold with --cv-train.")
_TRAIN_CONFIG = opt(
    _A,
    "train_config",
    "--train-config",
    help="With --cv-train: a run YAML whose train: section is the model to retrain.",
)
_SEED = opt(_A, "seed", "--seed", help="Random seed (folds, PCA, training).")
_METHOD = opt(
    _A,
    "method",
    "--method",
    help="Confident-learning rule: low_self_confidence (as many images as the confident joint counts under another "
    "class, lowest self-confidence first), prune_by_noise_rate, prune_by_class, both (C+NR), confident_joint, "
    "predicted_neq_given.",
)
_WEIGHTS = opt(_A, "weights", "--weights", help="Registry names only: imagenet, none, or a weights file.")
_SIZE = opt(_A, "size", "--size", help="Input side in pixels.")
_BATCH_SIZE = opt(_A, "batch_size", "--batch-size", help="Images per batch when embedding.")
_GROUPS = opt(
    _A,
    "groups",
    "--groups/--no-groups",
    help="Keep duplicate and same-post groups (from clean / split reports and the scrape manifest) in one fold.",
)
_MANIFEST = opt(_A, "manifest", "--manifest", help="Scrape folder whose manifest gives the noise per source.")
_OUTLIER_THRESHOLD = opt(
    _A,
    "outlier_threshold",
    "--outlier-threshold",
    help="Outlier score at or above which an image is listed in outliers.csv (1 = the median image).",
)
_CONFIG = plain_opt(None, "--config", help="Run config YAML; its audit: (and engine:) sections are used.")
_MODELS_DIR = plain_opt(Path("models"), "--models-dir", help="Where --model autoencoder looks.")


def register(app: typer.Typer) -> None:
    """Adds `audit` to `app`."""

    @app.command("audit")
    def audit(
        data_dir: Path = _DATA_DIR,
        out: Path = _OUT,
        model: str | None = _MODEL,
        folds: int | None = _FOLDS,
        cv_train: bool | None = _CV_TRAIN,
        cv_epochs: int | None = _CV_EPOCHS,
        train_config: Path | None = _TRAIN_CONFIG,
        seed: int | None = _SEED,
        method: str | None = _METHOD,
        weights: str | None = _WEIGHTS,
        size: int | None = _SIZE,
        batch_size: int | None = _BATCH_SIZE,
        groups: bool | None = _GROUPS,
        manifest: Path | None = _MANIFEST,
        outlier_threshold: float | None = _OUTLIER_THRESHOLD,
        config: Path | None = _CONFIG,
        models_dir: Path = _MODELS_DIR,
        engine: str | None = engine_opt(),
        ray_address: str | None = ray_address_opt(),
    ) -> None:
        """Find likely wrong labels (confident learning on out-of-fold probabilities) and outliers."""

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

        # with --engine ray: the decoding and the embedding model run on the cluster's workers
        read = [data_dir] + [Path(cfg.model)] * Path(cfg.model).exists()
        with stage_executor(engine_config(config, engine, ray_address), read, threads=1) as executor:
            audit_folder(data_dir, out, cfg, models_dir=models_dir, executor=executor)
