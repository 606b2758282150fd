"""`audit_folder`: out-of-fold label issues, outliers and noise per class / source for one folder.

The stage is map -> reduce -> apply (docs/architecture.md):

1. List the folder (`imgclf.inputs.list_images`): a class tree `DIR/<class>/<file>` or a
   pre-split tree `DIR/{train,val,test}/<class>/<file>`. Every split is audited (test images are
   flagged like the others); files outside a class folder and unreadable files are counted and
   listed in `audit.json` with the reason, never silently dropped.
2. Map (`imgclf.audit.load`, through an `imgclf.engine` executor): every file decoded by the
   one loader; then either embedded in batches (the default: `--model`, raw pixels unless told
   otherwise, `imgclf.explore.embed.resolve_encoder`) or kept as pixels (`cv_train`).
3. Provenance (`imgclf.audit.sources`): scrape sources, and the groups kept in one fold.
4. Reduce (`imgclf.audit.reduce`, pure over arrays): grouped, stratified folds; out-of-fold
   probabilities (a linear probe on the embeddings, `imgclf.audit.oof`, or the real model
   trained once per fold, `imgclf.audit.cvtrain`) and outlier scores; confident learning by
   cleanlab (`imgclf.audit.confident`); issues, outliers and noise per class, source and split.
5. Apply (`imgclf.audit.report`): the typed files of `imgclf.records.audit` and the page,
   every file written atomically.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.audit.cvtrain import CvSetup, fit_recipe_to_data, resolve_cv_setup
from imgclf.audit.load import LoadedSet, embed_all, load_all
from imgclf.audit.reduce import (
    AuditPlan,
    AuditSet,
    FoldPredictions,
    cv_predictions,
    make_folds,
    plan_audit,
    probe_predictions,
)
from imgclf.audit.report import AuditContext, write_outputs
from imgclf.audit.sources import Provenance, read_provenance
from imgclf.config import AuditConfig
from imgclf.engine import Executor, make_executor
from imgclf.errors import ConfigError, DataError
from imgclf.explore.embed import resolve_encoder
from imgclf.inputs import ImageListing, list_images
from imgclf.records.audit import AuditReport, NotAudited
from imgclf.runtime import import_tensorflow_quietly
from imgclf.ui import summary, warn

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
        record: AuditReport or None. `report` as its typed record.
    """

    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    issues: int = 0
    outliers: int = 0
    images: int = 0
    record: AuditReport | None = None


def _check_out(data_dir: Path, out: Path) -> None:
    """Refuses an output folder that the audited folder would list as a class."""
    inside = data_dir.resolve() == out.resolve() or data_dir.resolve() in out.resolve().parents
    if inside and not any(p.startswith(("_", ".")) for p in out.resolve().relative_to(data_dir.resolve()).parts):
        raise ConfigError(
            f"--out {out} is inside {data_dir} as a class folder",
            "write the audit elsewhere (e.g. data/audit) or under a folder starting with '_'",
        )


def _list(data_dir: Path) -> tuple[ImageListing, list[NotAudited]]:
    if not data_dir.is_dir():
        raise DataError(
            f"folder not found: {data_dir}", "give a class folder tree DIR/<class>/<image> (e.g. the clean output)"
        )
    listing = list_images(data_dir, layout="classes")
    skipped = [
        NotAudited(
            path=p.relative_to(data_dir).as_posix(),
            reason="not_in_class_folder",
            detail="file is not inside a class folder",
        )
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


@dataclass
class _Mapped:
    """The map's output: the readable images (pixels or embeddings) and how they were made."""

    loaded: LoadedSet
    embedding: str
    image_size: int
    cv: CvSetup | None = None


def _map(listing: ImageListing, cfg: AuditConfig, models_dir: Path, executor: Executor) -> _Mapped:
    """Loads (`cv_train`) or embeds every listed file through `executor`."""
    if cfg.cv_train:
        import_tensorflow_quietly()
        cv = resolve_cv_setup(cfg, listing.paths)
        return _Mapped(load_all(listing.entries, cv.spec, executor), f"cv-train ({cv.description})", cv.spec.size, cv)
    encoder = resolve_encoder(cfg.model, weights=cfg.weights, size=cfg.size, files=listing.paths, models_dir=models_dir)
    return _Mapped(embed_all(listing.entries, encoder, cfg.batch_size, executor), encoder.name, encoder.size)


def _audit_set(
    listing: ImageListing, loaded: LoadedSet, cfg: AuditConfig, data_dir: Path
) -> tuple[AuditSet, list[str], Provenance]:
    """The readable images as the reduce's input; classes without any take no part."""
    by_rel = {e.rel: e for e in listing.entries}
    entries = [by_rel[r] for r in loaded.rels]
    class_names = list(listing.class_names)
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.asarray([index[str(e.label)] for e in entries], dtype=np.int64)
    _check_classes(class_names, labels, data_dir)
    present = np.flatnonzero(np.bincount(labels, minlength=len(class_names)) > 0)
    empty_classes = [c for i, c in enumerate(class_names) if i not in set(present.tolist())]
    remap = np.full(len(class_names), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    prov = read_provenance(data_dir, loaded.rels, manifest=cfg.manifest, use_groups=cfg.groups)
    for note in prov.notes:
        warn(note)
    data = AuditSet(
        rels=list(loaded.rels),
        labels=remap[labels],
        class_names=[class_names[i] for i in present],
        subsets=[e.subset or "" for e in entries],
        sources=prov.sources,
        groups=prov.groups if cfg.groups else None,
        presplit=listing.layout == "presplit",
    )
    return data, empty_classes, prov


def _predict(data: AuditSet, mapped: _Mapped, cfg: AuditConfig) -> FoldPredictions:
    """The reduce's compute: folds, then out-of-fold probabilities and outlier scores."""
    fold = make_folds(data, cfg.folds, cfg.seed)
    if mapped.cv is None:
        assert mapped.loaded.features is not None
        return probe_predictions(mapped.loaded.features, data, fold, cfg)
    cv = mapped.cv
    train = cv.train
    if cv.is_recipe:
        train = fit_recipe_to_data(train, int(len(data.labels) * (cfg.folds - 1) / cfg.folds))
    assert mapped.loaded.images is not None
    return cv_predictions(mapped.loaded.images, data, fold, train, cv.description, cfg)


def _summarize(result: AuditResult, plan: AuditPlan, cfg: AuditConfig, ctx: AuditContext, t0: float) -> None:
    """The one summary line."""
    per_split = plan.label_issues_per_split
    split_txt = " (" + ", ".join(f"{s or 'no split'} {k}" for s, k in per_split.items()) + ")" if per_split else ""
    summary(
        f"audit: {result.images} images, {len(plan.data.class_names)} classes, {cfg.folds}-fold out-of-fold "
        f"accuracy {plan.accuracy:.4f}; {result.issues} label issues{split_txt}, estimated noise "
        f"{plan.cl.estimated_noise_fraction:.1%}; {result.outliers} outliers; {len(ctx.unreadable)} unreadable, "
        f"{len(ctx.skipped)} outside class folders ({time.monotonic() - t0:.0f}s) -> {result.out}"
    )


def audit_folder(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    cfg: AuditConfig | None = None,
    *,
    models_dir: str | os.PathLike = "models",
    executor: Executor | None = None,
) -> AuditResult:
    """Audits the labels of a class-folder tree and writes the audit files to `out`.

    Args:
        data_dir: path. `DIR/<class>/<image>` or `DIR/{train,val,test}/<class>/<image>`.
        out: path. Output folder (created): `label_issues.csv`, `outliers.csv`, `audit.json`,
            `audit.html`, `scores.csv`, `oof.npz` (see `imgclf.records.audit`).
        cfg: AuditConfig or None (defaults).
        models_dir: path, default "models". Where `--model autoencoder` looks.
        executor: Executor or None, default None (`imgclf.engine.make_executor("local")`). Runs
            the per-image map.

    Returns:
        AuditResult.

    Raises:
        DataError: missing folder, no labelled image, fewer than 2 classes, a class with fewer
            than `MIN_CLASS_IMAGES` readable images, fewer images (groups) than folds.
        ModelError, ConfigError: unusable `--model`, options that do not go together.
    """
    t0 = time.monotonic()
    cfg = cfg or AuditConfig()
    data_dir, out = Path(data_dir), Path(out)
    _check_out(data_dir, out)
    listing, skipped = _list(data_dir)
    _check_classes(list(listing.class_names), listing.labels.astype(np.int64), data_dir)  # before any decoding
    t = time.monotonic()
    mapped = _map(listing, cfg, Path(models_dir), executor or make_executor("local"))
    seconds: dict[str, float | list[float]] = {"load_or_embed": time.monotonic() - t}
    data, empty_classes, prov = _audit_set(listing, mapped.loaded, cfg, data_dir)
    predictions = _predict(data, mapped, cfg)
    plan = plan_audit(data, predictions, method=cfg.method, outlier_threshold=cfg.outlier_threshold)
    seconds.update(predictions.seconds)
    seconds["total"] = time.monotonic() - t0
    ctx = AuditContext(
        data_dir,
        out,
        cfg,
        listing.layout,
        empty_classes,
        mapped.embedding,
        mapped.image_size,
        prov,
        skipped=skipped,
        unreadable=mapped.loaded.unreadable,
        seconds=seconds,
    )
    report, files = write_outputs(plan, ctx)
    result = AuditResult(
        out, files, report.model_dump(mode="json", by_alias=True), plan.issues, plan.outliers, len(data.rels), report
    )
    _summarize(result, plan, cfg, ctx, t0)
    return result
