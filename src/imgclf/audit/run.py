"""`audit_folder`: out-of-fold label issues, outliers and noise per class / source for one folder.

The stage, in order:

1. List the folder (`imgclf.inputs.list_images`): a class tree `DIR/<class>/<file>` or a
   pre-split tree `DIR/{train,val,test}/<class>/<file>`. Every split is audited (test images are
   flagged like the others); files outside a class folder and unreadable files are counted and
   listed in `audit.json` with the reason, never silently dropped.
2. Provenance (`imgclf.audit.sources`): scrape sources, and the groups kept in one fold.
3. Out-of-fold probabilities, by one of:
   - the default: embeddings (`imgclf.explore.embed.embed_folder`, `--model`) and a linear
     probe cross-validated over K folds (`imgclf.audit.oof`);
   - `cv_train`: the real model trained once per fold (`imgclf.audit.cvtrain`).
4. Confident learning (`imgclf.audit.confident`): thresholds, confident joint, estimated joint,
   noise rates, label issues, `label_quality`, `suggested_label`.
5. Outlier scores (k-nearest-neighbour distance to the other folds, in embedding space).
6. Outputs, every file written atomically (`imgclf.fsutil`), see `imgclf.audit.report`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.config import AuditConfig
from imgclf.errors import ConfigError, DataError

#: Fewest images a class needs to be cross-validated.
MIN_CLASS_IMAGES = 2


@dataclass
class AuditResult:
    """What `audit_folder` found and wrote.

    Attributes:
        out: Path. The output folder.
        files: dict name -> Path of every file written.
        report: dict. The content of `audit.json`.
        issues: int. Label issues flagged.
        outliers: int. Images above the outlier threshold.
        images: int. Images audited.
    """

    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    issues: int = 0
    outliers: int = 0
    images: int = 0


@dataclass
class _Data:
    rels: list[str]
    labels: np.ndarray
    class_names: list[str]
    subsets: list[str]
    skipped: list[dict[str, str]]
    layout: str


def _list(data_dir: Path) -> tuple[Any, list[dict[str, str]]]:
    from imgclf.inputs import list_images

    if not data_dir.is_dir():
        raise DataError(
            f"folder not found: {data_dir}", "give a class folder tree DIR/<class>/<image> (e.g. the clean output)"
        )
    listing = list_images(data_dir, layout="classes")
    skipped = [
        {
            "path": p.relative_to(data_dir).as_posix(),
            "reason": "not_in_class_folder",
            "detail": "file is not inside a class folder",
        }
        for p in listing.strays
    ]
    if not listing.entries:
        raise DataError(
            f"no images in class folders under {data_dir}",
            "audit needs labelled images: DIR/<class>/<image> or DIR/{train,val,test}/<class>/<image>",
        )
    return listing, skipped


def _check_classes(class_names: list[str], labels: np.ndarray, data_dir: Path) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    present = [c for c, k in zip(class_names, counts) if k > 0]
    if len(present) < 2:
        raise DataError(
            f"{data_dir} has {len(present)} class folder(s) with readable images ({', '.join(present) or 'none'}); "
            "an audit compares classes and needs at least 2",
            "add a folder per class",
        )
    small = [f"{c} ({k})" for c, k in zip(class_names, counts) if 0 < k < MIN_CLASS_IMAGES]
    if small:
        raise DataError(
            f"class(es) with fewer than {MIN_CLASS_IMAGES} readable images in {data_dir}: {', '.join(small)}",
            "add images to those classes or remove their folders",
        )


def _probe_side(paths: list[Path], lo: int = 8, hi: int = 64) -> int:
    from imgclf.errors import ImageError
    from imgclf.images import open_image

    for p in paths[:50]:
        try:
            img = open_image(p)
        except ImageError:
            continue
        return int(min(hi, max(lo, min(img.size))))
    raise DataError(
        f"none of the first {min(50, len(paths))} files can be opened as an image", "check the folder contents"
    )


def _load_images(listing: Any, spec: Any, batch_size: int = 256) -> tuple[np.ndarray, list[int], list[dict[str, str]]]:
    """Decodes every entry with the one loader; returns images, kept positions, rejects."""
    from imgclf.inputs import iter_batches
    from imgclf.ui import progress

    items = listing.items()
    chunks, kept, rejects = [], [], []
    with progress("audit: loading images", total=len(items)) as advance:
        for batch in iter_batches(items, spec, batch_size=batch_size):
            if len(batch.ok):
                chunks.append(batch.images)
                kept.extend(batch.start + i for i in batch.ok)
            for i, err in sorted(batch.errors.items()):
                rejects.append(
                    {"path": listing.entries[batch.start + i].rel, "reason": err.reason, "detail": err.detail}
                )
            advance(len(batch.items))
    images = np.concatenate(chunks) if chunks else np.zeros((0, *spec.shape), np.uint8)
    return images, kept, rejects


def _cv_config(cfg: AuditConfig, models_dir: Path) -> tuple[Any, Any | None, str, bool]:
    """The TrainConfig to retrain, the run's InputSpec (or None), a description, and whether it
    is the audit's recipe (which `fit_recipe_to_data` may adapt)."""
    from imgclf.audit.cvtrain import DEFAULT_RECIPE, default_recipe
    from imgclf.config import TrainConfig, stage_config

    model = cfg.model
    if cfg.train_config is not None:
        train = stage_config(TrainConfig, "train", cfg.train_config)
        if cfg.cv_epochs:
            train = train.model_copy(update={"epochs": cfg.cv_epochs})
        return train, None, f"train config {cfg.train_config}", False
    path = Path(model)
    if path.is_dir():
        from imgclf.records.run import is_run_dir, load_run_info

        if not is_run_dir(path):
            raise ConfigError(
                f"--model {model} is a folder but not a training run (no run.json)",
                "with --cv-train give a run folder from `imgclf train`, a registry name, or nothing",
            )
        info = load_run_info(path)
        values = dict(info.config or {})
        values.setdefault("model", info.model)
        train = TrainConfig.model_validate({k: v for k, v in values.items() if k in TrainConfig.model_fields})
        if cfg.cv_epochs:
            train = train.model_copy(update={"epochs": cfg.cv_epochs})
        return train, info.input_spec, f"run {path}", False
    if model in ("raw", ""):
        return default_recipe(epochs=cfg.cv_epochs, seed=cfg.seed), None, "audit recipe", cfg.cv_epochs is None
    if model.startswith("autoencoder") or path.suffix == ".keras":
        raise ConfigError(
            f"--cv-train cannot retrain --model {model}",
            "give a training run folder, a registry name (cnn, xception, ...), or no --model",
        )
    from imgclf.models import get_spec

    get_spec(model)  # unknown names fail here, with close matches
    train = default_recipe(
        model=model,
        model_options=None if model == DEFAULT_RECIPE["model"] else {},
        weights=cfg.weights,
        epochs=cfg.cv_epochs,
        seed=cfg.seed,
    )
    return train, None, f"registry model {model}", cfg.cv_epochs is None


def audit_folder(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    cfg: AuditConfig | None = None,
    *,
    models_dir: str | os.PathLike = "models",
) -> AuditResult:
    """Audits the labels of a class-folder tree and writes the audit files to `out`.

    Args:
        data_dir: path. `DIR/<class>/<image>` or `DIR/{train,val,test}/<class>/<image>`.
        out: path. Output folder (created): `label_issues.csv`, `outliers.csv`, `audit.json`,
            `audit.html`, `scores.csv`, `oof.npz` (see `imgclf.audit.report`).
        cfg: AuditConfig or None (defaults).
        models_dir: path, default "models". Where `--model autoencoder` looks.

    Returns:
        AuditResult.

    Raises:
        DataError: missing folder, no labelled image, fewer than 2 classes, a class with fewer
            than `MIN_CLASS_IMAGES` readable images, fewer images (groups) than folds.
        ModelError, ConfigError: unusable `--model`, options that do not go together.
    """
    from imgclf.audit import report as rep
    from imgclf.audit.confident import confident_learning
    from imgclf.audit.oof import assign_folds, cross_validated_probabilities, linear_probe, outlier_scores
    from imgclf.audit.sources import read_provenance
    from imgclf.ui import summary, warn

    t0 = time.monotonic()
    cfg = cfg or AuditConfig()
    data_dir, out = Path(data_dir), Path(out)
    inside = data_dir.resolve() == out.resolve() or data_dir.resolve() in out.resolve().parents
    if inside and not any(p.startswith(("_", ".")) for p in out.resolve().relative_to(data_dir.resolve()).parts):
        raise ConfigError(
            f"--out {out} is inside {data_dir} as a class folder",
            "write the audit elsewhere (e.g. data/audit) or under a folder starting with '_'",
        )
    listing, skipped = _list(data_dir)
    class_names = list(listing.class_names)
    _check_classes(class_names, listing.labels.astype(np.int64), data_dir)  # before any decoding
    rel_index = {e.rel: i for i, e in enumerate(listing.entries)}
    unreadable: list[dict[str, str]] = []
    timings: dict[str, float] = {}

    features = None
    fold_outliers = None
    train_desc = None
    t = time.monotonic()
    if cfg.cv_train:
        from imgclf.inputs import InputSpec
        from imgclf.runtime import import_tensorflow_quietly

        import_tensorflow_quietly()
        train_cfg, run_spec, train_desc, is_recipe = _cv_config(cfg, Path(models_dir))
        if run_spec is not None:
            if cfg.size is not None and cfg.size != run_spec.size:
                raise ConfigError(f"--size {cfg.size} differs from the run's input size {run_spec.size}")
            spec = run_spec
        else:
            spec = InputSpec(size=cfg.size or _probe_side(listing.paths))
        images, kept, unreadable = _load_images(listing, spec)
        entries = [listing.entries[i] for i in kept]
        embedding_name = f"cv-train ({train_desc})"
        image_size = spec.size
    else:
        from imgclf.explore.embed import embed_folder
        from imgclf.explore.options import EmbedOptions

        emb = embed_folder(
            data_dir,
            EmbedOptions(model=cfg.model, weights=cfg.weights, size=cfg.size, batch_size=cfg.batch_size),
            models_dir=models_dir,
        )
        keep_rows = [k for k, p in enumerate(emb.paths) if p in rel_index]
        entries = [listing.entries[rel_index[emb.paths[k]]] for k in keep_rows]
        features = np.asarray(emb.embeddings, dtype=np.float32)[keep_rows]
        unreadable = [
            {"path": r.path.replace(os.sep, "/"), "reason": r.reason, "detail": r.detail}
            for r in emb.rejects
            if r.path.replace(os.sep, "/") in rel_index
        ]
        embedding_name = emb.model
        image_size = emb.size
    timings["load_or_embed"] = time.monotonic() - t

    rels = [e.rel for e in entries]
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.asarray([index[e.label] for e in entries], dtype=np.int64)
    subsets = [e.subset or "" for e in entries]
    _check_classes(class_names, labels, data_dir)
    # Classes whose folders hold no readable image take no part (reported in audit.json).
    present = np.flatnonzero(np.bincount(labels, minlength=len(class_names)) > 0)
    empty_classes = [class_names[i] for i in range(len(class_names)) if i not in set(present.tolist())]
    remap = {int(old): new for new, old in enumerate(present)}
    audited_classes = [class_names[i] for i in present]
    y = np.asarray([remap[int(v)] for v in labels], dtype=np.int64)
    m = len(audited_classes)

    prov = read_provenance(data_dir, rels, manifest=cfg.manifest, use_groups=cfg.groups)
    for note in prov.notes:
        warn(note)
    groups = prov.groups if cfg.groups else None
    n_groups = len(np.unique(groups)) if groups is not None else len(y)
    if n_groups < cfg.folds:
        raise DataError(
            f"{len(y)} images in {n_groups} groups cannot make {cfg.folds} folds",
            f"pass --folds {max(2, min(n_groups, 5))} or add images",
        )
    fold = assign_folds(y, cfg.folds, groups=groups, seed=cfg.seed)

    t = time.monotonic()
    if cfg.cv_train:
        from imgclf.audit.cvtrain import cv_train_probabilities, fit_recipe_to_data

        if is_recipe:
            train_cfg = fit_recipe_to_data(train_cfg, int(len(y) * (cfg.folds - 1) / cfg.folds))
        fm = cv_train_probabilities(images, y, fold, m, train_cfg, outlier_k=cfg.outlier_k)
        probs = fm.pred_probs
        fold_outliers = fm.outlier_distance
        classifier = (
            f"{train_cfg.model} {train_cfg.model_options or ''} trained {train_cfg.epochs} epochs per fold "
            f"({train_desc}; {train_cfg.optimizer}, lr {train_cfg.learning_rate:g}, batch {train_cfg.batch_size})"
        ).replace("  ", " ")
        timings["seconds_per_fold"] = [round(s, 1) for s in fm.seconds_per_fold]
    else:
        probe = linear_probe(features, y, m, C=cfg.classifier_c, pca=cfg.pca, seed=cfg.seed)
        probs = cross_validated_probabilities(fold, y, m, probe, description="audit: linear probe")
        classifier = f"LogisticRegression(C={cfg.classifier_c:g}, lbfgs) on " + (
            f"{cfg.pca} whitened PCA components"
            if cfg.pca and features.shape[1] > cfg.pca
            else "standardized embeddings"
        )
    timings["probabilities"] = time.monotonic() - t

    cl = confident_learning(y, probs, cfg.method)
    t = time.monotonic()
    outlier = (
        fold_outliers if fold_outliers is not None else outlier_scores(features, fold, k=cfg.outlier_k, seed=cfg.seed)
    )
    timings["outliers"] = time.monotonic() - t
    accuracy = float(np.mean(probs.argmax(axis=1) == y))

    table = rep.AuditTable(
        rels=rels,
        given=[audited_classes[i] for i in y],
        suggested=[audited_classes[i] for i in cl.suggested_label],
        label_quality=cl.label_quality,
        suggested_probability=cl.suggested_probability,
        issue=cl.issues,
        outlier=outlier,
        is_outlier=outlier >= cfg.outlier_threshold,
        subsets=subsets,
        folds=fold,
        sources=prov.sources,
    )
    timings["total"] = time.monotonic() - t0
    report = rep.build_report(
        data_dir=data_dir,
        out=out,
        cfg=cfg,
        layout=listing.layout,
        class_names=audited_classes,
        empty_classes=empty_classes,
        cl=cl,
        table=table,
        accuracy=accuracy,
        embedding=embedding_name,
        image_size=image_size,
        classifier=classifier,
        provenance=prov,
        skipped=skipped,
        unreadable=unreadable,
        timings=timings,
    )
    files = rep.write_outputs(out, data_dir, table, report, probs, audited_classes, cfg)
    result = AuditResult(out, files, report, int(cl.issues.sum()), int(table.is_outlier.sum()), len(rels))
    split_txt = ""
    per_split = report["counts"].get("label_issues_per_split") or {}
    if per_split:
        split_txt = " (" + ", ".join(f"{s or 'no split'} {k}" for s, k in per_split.items()) + ")"
    summary(
        f"audit: {len(rels)} images, {m} classes, {cfg.folds}-fold out-of-fold accuracy {accuracy:.4f}; "
        f"{result.issues} label issues{split_txt}, estimated noise {cl.estimated_noise_fraction:.1%}; "
        f"{result.outliers} outliers; {len(unreadable)} unreadable, {len(skipped)} outside class folders "
        f"({time.monotonic() - t0:.0f}s) -> {out}"
    )
    return result
