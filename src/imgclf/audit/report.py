"""The audit's apply step: the plan becomes the typed output files and the page.

Every file is a record of `imgclf.records.audit` (its columns and fields are documented
there), written atomically: `label_issues.csv`, `outliers.csv`, `scores.csv`, `audit.json`,
`oof.npz`; and `audit.html`, the template `imgclf/templates/audit.html` rendered with
`imgclf.html.render` (one self-contained page: summary, noise per class and per source,
thumbnails of the worst label issues and of the top outliers as `data:` URIs; every tile
carries `data-path`).

The one thing read here is what `imgclf review` already decided for the flagged images
(`decided_in_review`), so the files and the page can say so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgclf.audit.reduce import AuditPlan
from imgclf.audit.sources import Provenance
from imgclf.config import AuditConfig
from imgclf.errors import ImageError
from imgclf.fsutil import atomic_write_text
from imgclf.html import png_data_uri, render
from imgclf.images import open_image
from imgclf.records.audit import (
    AUDIT_HTML,
    LABEL_ISSUES,
    OOF_NPZ,
    OUTLIERS,
    SCORES,
    AuditCounts,
    AuditMethod,
    AuditReport,
    GroupInfo,
    ImageScore,
    LabelIssue,
    NotAudited,
    Outlier,
    OutOfFoldRecord,
    SourcesInfo,
    save_label_issues,
    save_outliers,
    save_scores,
)
from imgclf.records.decisions import DecisionIndex, database_path, file_sha256, read_decisions
from imgclf.records.run import library_versions

THUMB = 96  # pixels, longest side of an HTML thumbnail


@dataclass
class AuditContext:
    """What the report states besides the plan: where, how, and what was not audited.

    Attributes:
        data_dir, out: Path. The audited folder and the output folder.
        cfg: AuditConfig.
        layout: str. `"classes"` or `"presplit"`.
        empty_classes: list of str. Class folders without a readable image.
        embedding: str. What made the features (`"raw"`, a model, or `"cv-train (...)"`).
        image_size: int. Side in pixels the images were loaded at.
        provenance: Provenance. Sources and groups (`imgclf.audit.sources`).
        skipped: list of NotAudited. Files outside a class folder.
        unreadable: list of NotAudited. Files that are not readable images.
        seconds: dict. Timings so far.
    """

    data_dir: Path
    out: Path
    cfg: AuditConfig
    layout: str
    empty_classes: list[str]
    embedding: str
    image_size: int
    provenance: Provenance
    skipped: list[NotAudited] = field(default_factory=list)
    unreadable: list[NotAudited] = field(default_factory=list)
    seconds: dict[str, float | list[float]] = field(default_factory=dict)


def decided_in_review(data_dir: Path, rels: list[str], indices: Any) -> dict[int, str]:
    """What `imgclf review` already decided for some images of the audited folder.

    Reads `data_dir/_reports/decisions.sqlite` (`imgclf.records.decisions`, the writer's own
    reader) and matches each image by sha256 first, then by path, as `clean` replays them.

    Args:
        data_dir: Path. The audited folder.
        rels: list of str. Paths relative to it, by image index.
        indices: iterable of int. The images to look up (e.g. the flagged ones).

    Returns:
        dict image index -> `"reject"`, `"keep"` or `"relabel:<class>"`; images without an
        effective decision are absent (also when there is no database).
    """
    db = database_path(data_dir)
    if not db.is_file():
        return {}
    index = DecisionIndex(read_decisions(db))
    if not index.stacks:
        return {}
    out: dict[int, str] = {}
    for i in indices:
        i = int(i)
        try:
            sha = file_sha256(data_dir / rels[i])
        except OSError:
            sha = ""
        d = index.lookup(sha, rels[i])
        if d is not None:
            out[i] = f"relabel:{d.new_label}" if d.action == "relabel" else d.action
    return out


# ----------------------------------------------------------------------------- audit.json
def _counts(plan: AuditPlan, ctx: AuditContext, decided: int) -> AuditCounts:
    reasons: dict[str, int] = {}
    for r in ctx.unreadable + ctx.skipped:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    n = len(plan.data.rels)
    return AuditCounts(
        images_listed=n + len(ctx.unreadable) + len(ctx.skipped),
        images_audited=n,
        label_issues=plan.issues,
        outliers=plan.outliers,
        unreadable=len(ctx.unreadable),
        not_in_class_folder=len(ctx.skipped),
        not_audited_reasons=reasons,
        images_per_split=plan.images_per_split,
        label_issues_per_split=plan.label_issues_per_split,
        already_decided=decided,
    )


def _method(plan: AuditPlan, ctx: AuditContext) -> AuditMethod:
    cfg = ctx.cfg
    return AuditMethod(
        probabilities="cv_train" if cfg.cv_train else "linear_probe",
        embedding=ctx.embedding,
        image_size=ctx.image_size,
        classifier=plan.predictions.classifier,
        confident_learning=cfg.method,
        exclude_agreeing=True,
        outliers=f"mean distance to the {cfg.outlier_k} nearest images of the other folds / median; "
        f"flagged at >= {cfg.outlier_threshold:g}",
    )


def _groups(plan: AuditPlan, prov: Provenance) -> GroupInfo:
    groups = prov.groups
    if groups is None:
        return GroupInfo(used=False, groups=len(plan.data.rels), images_in_shared_groups=0, origins=prov.group_origins)
    return GroupInfo(
        used=True,
        groups=int(len(np.unique(groups))),
        images_in_shared_groups=int(np.sum(np.bincount(groups)[groups] > 1)),
        origins=prov.group_origins,
    )


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = library_versions()
    try:
        out["cleanlab"] = version("cleanlab")
    except PackageNotFoundError:
        pass
    return out


def build_report(plan: AuditPlan, ctx: AuditContext, *, decided: int = 0) -> AuditReport:
    """The content of `audit.json` (`imgclf.records.audit.AuditReport`).

    Args:
        plan: AuditPlan. What the reduce found.
        ctx: AuditContext. Where, how, what was not audited, timings.
        decided: int, default 0. Flagged images `imgclf review` already decided.

    Returns:
        AuditReport.
    """
    cl, prov, cfg = plan.cl, ctx.provenance, ctx.cfg
    return AuditReport(
        data_dir=str(ctx.data_dir),
        out=str(ctx.out),
        layout=ctx.layout,
        classes=plan.data.class_names,
        empty_classes=ctx.empty_classes,
        counts=_counts(plan, ctx, decided),
        method=_method(plan, ctx),
        folds=cfg.folds,
        seed=cfg.seed,
        groups=_groups(plan, prov),
        out_of_fold_accuracy=round(plan.accuracy, 6),
        estimated_noise_rate=round(cl.estimated_noise_fraction, 6),
        per_class=plan.per_class,
        sources=SourcesInfo(
            manifest=str(prov.manifest_dir) if prov.manifest_dir else None,
            images_matched=prov.matched,
            notes=prov.notes,
        ),
        per_source=plan.per_source,
        confident_joint=cl.confident_joint.tolist(),
        estimated_joint=np.round(cl.joint, 6).tolist(),
        noise_matrix=np.round(cl.noise_matrix, 6).tolist(),
        unreadable=ctx.unreadable,
        not_in_class_folder=[r.path for r in ctx.skipped],
        config=cfg.model_dump(mode="json"),
        seconds={k: (round(v, 1) if isinstance(v, float) else v) for k, v in ctx.seconds.items()},
        versions=_versions(),
        files={
            "label_issues": LABEL_ISSUES,
            "outliers": OUTLIERS,
            "scores": SCORES,
            "html": AUDIT_HTML,
            "probabilities": OOF_NPZ,
        },
    )


# ------------------------------------------------------------------------------ the tables
def issue_row(plan: AuditPlan, i: int, decided: dict[int, str]) -> LabelIssue:
    """Image `i` as a row of `label_issues.csv` / `scores.csv`."""
    data, cl = plan.data, plan.cl
    return LabelIssue(
        path=data.rels[i],
        given_label=data.class_names[int(data.labels[i])],
        suggested_label=data.class_names[int(cl.suggested_label[i])],
        label_quality=float(cl.label_quality[i]),
        suggested_probability=float(cl.suggested_probability[i]),
        split=data.subsets[i],
        sources=tuple(data.sources[i]),
        decided=decided.get(i, ""),
    )


def outlier_row(plan: AuditPlan, i: int) -> Outlier:
    """Image `i` as a row of `outliers.csv`."""
    data = plan.data
    return Outlier(
        data.rels[i], float(plan.predictions.outlier[i]), data.class_names[int(data.labels[i])], data.subsets[i]
    )


def score_row(plan: AuditPlan, i: int, decided: dict[int, str]) -> ImageScore:
    """Image `i` as a row of `scores.csv`."""
    return ImageScore(
        issue_row(plan, i, decided),
        bool(plan.cl.issues[i]),
        float(plan.predictions.outlier[i]),
        bool(plan.is_outlier[i]),
        int(plan.predictions.fold[i]),
    )


# -------------------------------------------------------------------------------- the page
@dataclass(frozen=True)
class Tile:
    """One thumbnail of the page: `path`, the given class, and either the suggested class with
    its probability and the label quality (issues) or the outlier `score`."""

    path: str
    given: str
    src: str | None
    suggested: str = ""
    prob: float = 0.0
    quality: float = 0.0
    decided: str = ""
    score: float = 0.0


def thumb_uri(path: Path) -> str | None:
    """A `THUMB`-pixel PNG thumbnail of an image as a `data:` URI, or None when unreadable."""
    try:
        img = open_image(path)
    except ImageError:
        return None
    w, h = img.size
    scale = THUMB / max(w, h)
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return png_data_uri(buf.getvalue())


def render_page(report: AuditReport, issues: list[Tile], outliers: list[Tile]) -> str:
    """Renders `audit.html` (`imgclf/templates/audit.html`, autoescaped).

    Args:
        report: AuditReport. The content of `audit.json`.
        issues: list of Tile. The label issues shown, worst first.
        outliers: list of Tile. The outliers shown, highest score first.

    Returns:
        str: the page.
    """
    return render("audit.html", r=report, issues=issues, outliers=outliers, thumb=THUMB)


def _tiles(plan: AuditPlan, data_dir: Path, cfg: AuditConfig, decided: dict[int, str]) -> tuple[list[Tile], list[Tile]]:
    issues = []
    for i in plan.issue_order()[: cfg.html_issues]:
        row = issue_row(plan, int(i), decided)
        issues.append(
            Tile(
                row.path,
                row.given_label,
                thumb_uri(data_dir / row.path),
                suggested=row.suggested_label,
                prob=row.suggested_probability,
                quality=row.label_quality,
                decided=row.decided,
            )
        )
    outliers = []
    for i in plan.outlier_order()[: cfg.html_outliers]:
        o = outlier_row(plan, int(i))
        outliers.append(Tile(o.path, o.given_label, thumb_uri(data_dir / o.path), score=o.score))
    return issues, outliers


# ------------------------------------------------------------------------------ write it all
def write_outputs(plan: AuditPlan, ctx: AuditContext) -> tuple[AuditReport, dict[str, Path]]:
    """Writes every audit file (see `imgclf.records.audit`), each atomically.

    Args:
        plan: AuditPlan.
        ctx: AuditContext.

    Returns:
        tuple `(report, files)`: the AuditReport written as `audit.json`, and role -> Path
        (`label_issues`, `outliers`, `scores`, `probabilities`, `json`, `html`).
    """
    out, data = ctx.out, plan.data
    decided = decided_in_review(ctx.data_dir, data.rels, np.flatnonzero(plan.cl.issues | plan.is_outlier))
    report = build_report(plan, ctx, decided=len(decided))
    files = {
        "label_issues": save_label_issues(out, (issue_row(plan, int(i), decided) for i in plan.issue_order())),
        "outliers": save_outliers(out, (outlier_row(plan, int(i)) for i in plan.outlier_order())),
        "scores": save_scores(out, (score_row(plan, int(i), decided) for i in plan.path_order())),
    }
    files["probabilities"] = OutOfFoldRecord(
        paths=data.rels,
        labels=data.labels,
        class_names=data.class_names,
        pred_probs=plan.predictions.pred_probs,
        fold=plan.predictions.fold,
    ).save(out)
    files["json"] = report.save(out)
    issues, outliers = _tiles(plan, ctx.data_dir, ctx.cfg, decided)
    files["html"] = atomic_write_text(out / AUDIT_HTML, render_page(report, issues, outliers))
    return report, files
