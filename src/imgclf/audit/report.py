"""The files `imgclf audit` writes, and their columns (the contract the review page reads).

OUT/label_issues.csv  one row per flagged image, worst first (lowest label_quality):
                      path             relative to the audited folder, "/"-separated
                      given_label      its class folder
                      suggested_label  the out-of-fold predicted class (argmax)
                      label_quality    self-confidence p(given label) in [0, 1], lower = more likely wrong
                      suggested_probability  p(suggested label) in [0, 1]
                      split            train | val | test in a pre-split folder, else empty
                      sources          scrape sources of the image, "; "-separated (may be empty)
OUT/outliers.csv      one row per image with score >= outlier_threshold, highest first:
                      path, score (>= 0; 1 = the median image, higher = farther from every
                      class), given_label, split
OUT/scores.csv        every audited image (same columns as label_issues.csv, then is_issue
                      0/1, outlier_score, is_outlier 0/1, fold), in path order
OUT/audit.json        counts, method, folds, seed, out-of-fold accuracy, estimated noise rate
                      per class and per source, the confident joint, the estimated joint and
                      the noise matrix, unreadable / skipped files with their reason
OUT/oof.npz           paths (n,), labels (n,) int, class_names (m,), pred_probs (n, m) float32,
                      fold (n,) int: the out-of-fold probabilities, to re-run or cross-check
OUT/audit.html        one self-contained page (Jinja2 template, images embedded as data: URIs):
                      summary, noise per class and per source, thumbnails of the worst label
                      issues and of the top outliers; every tile carries `data-path`
"""

from __future__ import annotations

import base64
import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text

LABEL_ISSUES = "label_issues.csv"
OUTLIERS = "outliers.csv"
SCORES = "scores.csv"
AUDIT_JSON = "audit.json"
AUDIT_HTML = "audit.html"
OOF_NPZ = "oof.npz"

#: Columns of `label_issues.csv`, in order (the first four are the documented contract).
ISSUE_COLUMNS: tuple[str, ...] = (
    "path",
    "given_label",
    "suggested_label",
    "label_quality",
    "suggested_probability",
    "split",
    "sources",
    "decided",
)
#: Columns of `outliers.csv`, in order.
OUTLIER_COLUMNS: tuple[str, ...] = ("path", "score", "given_label", "split")
#: Columns of `scores.csv`, in order.
SCORE_COLUMNS: tuple[str, ...] = ISSUE_COLUMNS + ("is_issue", "outlier_score", "is_outlier", "fold")

THUMB = 96  # pixels, longest side of an HTML thumbnail


@dataclass
class AuditTable:
    """Per-image results, all of length n (the audited images, in listing order)."""

    rels: list[str]
    given: list[str]
    suggested: list[str]
    label_quality: np.ndarray
    suggested_probability: np.ndarray
    issue: np.ndarray
    outlier: np.ndarray
    is_outlier: np.ndarray
    subsets: list[str]
    folds: np.ndarray
    sources: list[list[str]]

    def issue_order(self) -> np.ndarray:
        """Flagged rows, worst first: lowest label_quality, then highest suggested probability, then path."""
        idx = np.flatnonzero(self.issue)
        key = lambda i: (float(self.label_quality[i]), -float(self.suggested_probability[i]), self.rels[i])  # noqa: E731
        return np.asarray(sorted(idx.tolist(), key=key), dtype=np.int64)

    def outlier_order(self) -> np.ndarray:
        """Rows above the threshold, highest score first."""
        idx = np.flatnonzero(self.is_outlier)
        return idx[np.argsort(-self.outlier[idx], kind="stable")]

    decided: dict[int, str] = field(default_factory=dict)  # image index -> a decision made in `imgclf review`

    def issue_row(self, i: int) -> list[Any]:
        return [
            self.rels[i],
            self.given[i],
            self.suggested[i],
            f"{self.label_quality[i]:.6f}",
            f"{self.suggested_probability[i]:.6f}",
            self.subsets[i],
            "; ".join(self.sources[i]),
            self.decided.get(i, ""),
        ]


def _csv(rows: list[list[Any]], header: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _rate(x: float) -> float | None:
    return None if x != x else round(float(x), 6)  # NaN -> null


def build_report(
    *,
    data_dir: Path,
    out: Path,
    cfg: Any,
    layout: str,
    class_names: list[str],
    empty_classes: list[str],
    cl: Any,
    table: AuditTable,
    accuracy: float,
    embedding: str,
    image_size: int,
    classifier: str,
    provenance: Any,
    skipped: list[dict[str, str]],
    unreadable: list[dict[str, str]],
    timings: dict[str, Any],
) -> dict[str, Any]:
    """The content of `audit.json` (see the module docstring)."""
    from imgclf.records.run import library_versions

    n = len(table.rels)
    labels = cl.labels
    per_class = {}
    for i, c in enumerate(class_names):
        mask = labels == i
        per_class[c] = {
            "images": int(mask.sum()),
            "label_issues": int((cl.issues & mask).sum()),
            "estimated_noise_rate": round(float(cl.noise_rate[i]), 6),
            "threshold": round(float(cl.thresholds[i]), 6),
            "out_of_fold_accuracy": round(float(np.mean(cl.suggested_label[mask] == i)), 6),
            "outliers": int((table.is_outlier & mask).sum()),
        }
    per_source: dict[str, Any] = {}
    by_source: dict[str, list[int]] = {}
    for i, srcs in enumerate(table.sources):
        for s in srcs:
            by_source.setdefault(s, []).append(i)
    for s, idx in sorted(by_source.items()):
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        classes = {
            class_names[k]: int(v) for k, v in enumerate(np.bincount(labels[mask], minlength=len(class_names))) if v
        }
        per_source[s] = {
            "images": int(mask.sum()),
            "label_issues": int((cl.issues & mask).sum()),
            "flagged_rate": round(float((cl.issues & mask).sum() / mask.sum()), 6),
            "estimated_noise_rate": _rate(cl.group_noise_rate(mask)),
            "classes": classes,
        }
    per_split: dict[str, int] = {}
    images_per_split: dict[str, int] = {}
    if layout == "presplit":
        for s in sorted(set(table.subsets)):
            mask = np.array([x == s for x in table.subsets])
            per_split[s] = int((cl.issues & mask).sum())
            images_per_split[s] = int(mask.sum())
    reasons: dict[str, int] = {}
    for r in unreadable + skipped:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    groups = provenance.groups
    return {
        "data_dir": str(data_dir),
        "out": str(out),
        "layout": layout,
        "classes": class_names,
        "empty_classes": empty_classes,
        "counts": {
            "images_listed": n + len(unreadable) + len(skipped),
            "images_audited": n,
            "label_issues": int(cl.issues.sum()),
            "outliers": int(table.is_outlier.sum()),
            "unreadable": len(unreadable),
            "not_in_class_folder": len(skipped),
            "not_audited_reasons": reasons,
            "images_per_split": images_per_split,
            "label_issues_per_split": per_split,
        },
        "method": {
            "probabilities": "cv_train" if cfg.cv_train else "linear_probe",
            "embedding": embedding,
            "image_size": image_size,
            "classifier": classifier,
            "confident_learning": cfg.method,
            "exclude_agreeing": True,
            "paper": "Northcutt, Jiang & Chuang, Confident Learning: Estimating Uncertainty in Dataset Labels, JAIR 70 (2021)",
            "outliers": f"mean distance to the {cfg.outlier_k} nearest images of the other folds / median; flagged at >= {cfg.outlier_threshold:g}",
        },
        "folds": cfg.folds,
        "seed": cfg.seed,
        "groups": {
            "used": groups is not None,
            "groups": int(len(np.unique(groups))) if groups is not None else n,
            "images_in_shared_groups": int(np.sum(np.bincount(groups)[groups] > 1)) if groups is not None else 0,
            "from": provenance.group_origins,
        },
        "out_of_fold_accuracy": round(accuracy, 6),
        "estimated_noise_rate": round(cl.estimated_noise_fraction, 6),
        "per_class": per_class,
        "sources": {
            "manifest": str(provenance.manifest_dir) if provenance.manifest_dir else None,
            "images_matched": provenance.matched,
            "notes": provenance.notes,
        },
        "per_source": per_source,
        "confident_joint": cl.confident_joint.tolist(),
        "estimated_joint": np.round(cl.joint, 6).tolist(),
        "noise_matrix": np.round(cl.noise_matrix, 6).tolist(),
        "matrix_axes": "rows: given label, columns: true label (estimated), in the order of `classes`",
        "unreadable": unreadable,
        "not_in_class_folder": [r["path"] for r in skipped],
        "config": cfg.model_dump(mode="json"),
        "seconds": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in timings.items()},
        "versions": library_versions(),
        "files": {
            "label_issues": LABEL_ISSUES,
            "outliers": OUTLIERS,
            "scores": SCORES,
            "html": AUDIT_HTML,
            "probabilities": OOF_NPZ,
        },
    }


def _thumb_uri(path: Path) -> str | None:
    from PIL import Image

    from imgclf.errors import ImageError
    from imgclf.images import open_image

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
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>imgclf audit: {{ r.data_dir }}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{margin-bottom:0}.sub{color:#666;margin-top:.3em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:8em}
.card b{display:block;font-size:1.5em}
.grid{display:flex;flex-wrap:wrap;gap:.6em}.tile{border:1px solid #ddd;border-radius:4px;padding:.3em;width:{{ thumb + 24 }}px;font-size:.75em}
.tile img{display:block;margin:0 auto;image-rendering:pixelated;max-width:{{ thumb }}px;max-height:{{ thumb }}px}
.tile .p{word-break:break-all;color:#555}.given{color:#a00}.sugg{color:#070}.warn{color:#a60}
</style></head><body>
<h1>Label audit</h1>
<p class="sub">{{ r.counts.images_audited }} images in {{ r.classes|length }} classes from {{ r.data_dir }}
&middot; {% if r.method.probabilities == "cv_train" %}{{ r.method.embedding|replace("cv-train", "a model trained once per fold") }}{% elif r.method.embedding == "raw" %}a linear probe on the raw pixels{% else %}a linear probe on {{ r.method.embedding }} embeddings{% endif %}, {{ r.method.image_size }} px
&middot; {{ r.folds }} folds, seed {{ r.seed }} &middot; confident-learning rule: {{ r.method.confident_learning|replace("_", " ") }}{% if r.method.confident_learning == "both" %} (flagged by prune by noise rate and by prune by class){% elif r.method.confident_learning == "low_self_confidence" %} (the images of lowest self-confidence, as many as the confident joint counts under another class){% endif %}</p>
{% if r.counts.unreadable or r.counts.not_in_class_folder %}<p class="warn">Not audited: {{ r.counts.unreadable }} unreadable file(s),
{{ r.counts.not_in_class_folder }} outside class folders ({% for k, v in r.counts.not_audited_reasons.items() %}{{ k }}: {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}); listed in audit.json.</p>{% endif %}
{% for note in r.sources.notes %}<p class="warn">{{ note }}</p>{% endfor %}
<div class="cards">
<div class="card">label issues<b>{{ r.counts.label_issues }}</b></div>
<div class="card">estimated noise rate<b>{{ "%.1f"|format(100 * r.estimated_noise_rate) }} %</b></div>
<div class="card">out-of-fold accuracy<b>{{ "%.4f"|format(r.out_of_fold_accuracy) }}</b></div>
<div class="card">outliers<b>{{ r.counts.outliers }}</b></div>
{% for s, k in r.counts.label_issues_per_split.items() %}<div class="card">issues in {{ s }}<b>{{ k }}</b></div>{% endfor %}
</div>
<h2>Noise per class</h2>
<p>Estimated share of each folder's images whose true class is another one (1 - p(true = class | label = class), from the calibrated confident joint).{% if r.method.confident_learning == "both" %} An image is a label issue only when both pruning rules flag it, so a class can show some estimated noise and fewer (or no) label issues; every image's <code>label_quality</code> is in scores.csv.{% elif r.method.confident_learning == "low_self_confidence" %} The label issues are the images of lowest <code>label_quality</code> over all classes, as many as the confident joint counts under another class (uncalibrated), so a class the model is unsure about overall can show estimated noise and fewer label issues; every image's <code>label_quality</code> is in scores.csv.{% endif %}</p>
<table><tr><th>class</th><th>images</th><th>label issues</th><th>estimated noise rate</th><th>out-of-fold accuracy</th><th>threshold t<sub>j</sub></th><th>outliers</th></tr>
{% for c, row in r.per_class.items() %}<tr><td>{{ c }}</td><td>{{ row.images }}</td><td>{{ row.label_issues }}</td><td>{{ "%.3f"|format(row.estimated_noise_rate) }}</td>
<td>{{ "%.3f"|format(row.out_of_fold_accuracy) }}</td><td>{{ "%.3f"|format(row.threshold) }}</td><td>{{ row.outliers }}</td></tr>{% endfor %}
</table>
{% if r.per_source %}<h2>Noise per source</h2><table><tr><th>source</th><th>images</th><th>label issues</th><th>flagged rate</th><th>estimated noise rate</th><th>classes</th></tr>
{% for s, row in r.per_source.items() %}<tr><td>{{ s }}</td><td>{{ row.images }}</td><td>{{ row.label_issues }}</td><td>{{ "%.3f"|format(row.flagged_rate) }}</td>
<td>{{ "%.3f"|format(row.estimated_noise_rate) if row.estimated_noise_rate is not none else "" }}</td><td>{% for c, k in row.classes.items() %}{{ c }} {{ k }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>{% endfor %}
</table>{% elif r.sources.manifest is none %}<p class="sub">No scrape manifest found: no noise per source.</p>{% endif %}
<h2>Label issues, worst first{% if issues|length < r.counts.label_issues %} (the first {{ issues|length }} of {{ r.counts.label_issues }}; all in label_issues.csv){% endif %}</h2>
<div class="grid">{% for t in issues %}<div class="tile" data-path="{{ t.path }}">{% if t.src %}<img src="{{ t.src }}" alt="{{ t.path }}">{% else %}<i>unreadable</i>{% endif %}
<div class="given">given: {{ t.given }}</div><div class="sugg">suggested: {{ t.suggested }} ({{ "%.2f"|format(t.prob) }})</div><div>quality {{ "%.3f"|format(t.quality) }}</div>{% if t.decided %}<div class="sugg">already decided: {{ t.decided }}</div>{% endif %}<div class="p">{{ t.path }}</div></div>{% endfor %}</div>
<h2>Outliers{% if outliers|length < r.counts.outliers %} (the first {{ outliers|length }} of {{ r.counts.outliers }}){% endif %}</h2>
<p>Images far from every class: mean distance to their nearest neighbours in embedding space, relative to the median image (1.0).</p>
<div class="grid">{% for t in outliers %}<div class="tile" data-path="{{ t.path }}">{% if t.src %}<img src="{{ t.src }}" alt="{{ t.path }}">{% else %}<i>unreadable</i>{% endif %}
<div>score {{ "%.2f"|format(t.score) }}</div><div>{{ t.given }}</div><div class="p">{{ t.path }}</div></div>{% endfor %}</div>
</body></html>
"""


def render_html(report: dict[str, Any], issues: list[dict[str, Any]], outliers: list[dict[str, Any]]) -> str:
    """Renders `audit.html` (Jinja2, autoescaped) from the report and the tiles to show.

    Args:
        report: dict. The content of `audit.json`.
        issues: list of dict with `path`, `given`, `suggested`, `prob`, `quality`, `src`
            (a data: URI or None).
        outliers: list of dict with `path`, `given`, `score`, `src`.

    Returns:
        str: the page.
    """
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_TEMPLATE).render(r=report, issues=issues, outliers=outliers, thumb=THUMB)


def decided_in_review(data_dir: Path, rels: list[str], indices: Any) -> dict[int, str]:
    """What `imgclf review` already decided for some images of the audited folder.

    Reads `data_dir/_reports/decisions.sqlite` (`imgclf.review.decisions`, the writer's own
    reader) and matches each image by sha256 first, then by path, as `clean` replays them.

    Args:
        data_dir: Path. The audited folder.
        rels: list of str. Paths relative to it, by image index.
        indices: iterable of int. The images to look up (e.g. the flagged ones).

    Returns:
        dict image index -> `"reject"`, `"keep"` or `"relabel:<class>"`; images without an
        effective decision are absent (also when there is no database).
    """
    from imgclf.review.decisions import DecisionIndex, database_path, file_sha256, read_decisions

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


def write_outputs(
    out: Path,
    data_dir: Path,
    table: AuditTable,
    report: dict[str, Any],
    probs: np.ndarray,
    class_names: list[str],
    cfg: Any,
) -> dict[str, Path]:
    """Writes every audit file (see the module docstring), each atomically.

    Returns:
        dict name -> Path.
    """
    out = Path(out)
    files: dict[str, Path] = {}
    order = table.issue_order()
    table.decided = decided_in_review(Path(data_dir), table.rels, np.flatnonzero(table.issue | table.is_outlier))
    report.setdefault("counts", {})["already_decided"] = len(table.decided)
    files["label_issues"] = atomic_write_text(
        out / LABEL_ISSUES, _csv([table.issue_row(i) for i in order], ISSUE_COLUMNS)
    )
    o_order = table.outlier_order()
    files["outliers"] = atomic_write_text(
        out / OUTLIERS,
        _csv(
            [[table.rels[i], f"{table.outlier[i]:.6f}", table.given[i], table.subsets[i]] for i in o_order],
            OUTLIER_COLUMNS,
        ),
    )
    rows = [
        table.issue_row(i)
        + [int(table.issue[i]), f"{table.outlier[i]:.6f}", int(table.is_outlier[i]), int(table.folds[i])]
        for i in np.argsort(np.array(table.rels, dtype=object), kind="stable")
    ]
    files["scores"] = atomic_write_text(out / SCORES, _csv(rows, SCORE_COLUMNS))
    buf = io.BytesIO()
    index = {c: k for k, c in enumerate(class_names)}
    np.savez_compressed(
        buf,
        paths=np.asarray(table.rels, dtype=np.str_),
        labels=np.asarray([index[g] for g in table.given], dtype=np.int64),
        class_names=np.asarray(class_names, dtype=np.str_),
        pred_probs=np.asarray(probs, dtype=np.float32),
        fold=np.asarray(table.folds, dtype=np.int64),
    )
    files["probabilities"] = atomic_write_bytes(out / OOF_NPZ, buf.getvalue())
    files["json"] = atomic_write_json(out / AUDIT_JSON, report)
    issues = [
        {
            "path": table.rels[i],
            "given": table.given[i],
            "suggested": table.suggested[i],
            "prob": float(table.suggested_probability[i]),
            "quality": float(table.label_quality[i]),
            "src": _thumb_uri(data_dir / table.rels[i]),
            "decided": table.decided.get(int(i), ""),
        }
        for i in order[: cfg.html_issues]
    ]
    outliers = [
        {
            "path": table.rels[i],
            "given": table.given[i],
            "score": float(table.outlier[i]),
            "src": _thumb_uri(data_dir / table.rels[i]),
        }
        for i in o_order[: cfg.html_outliers]
    ]
    files["html"] = atomic_write_text(out / AUDIT_HTML, render_html(report, issues, outliers))
    return files


def read_label_issues(path: str | os.PathLike) -> list[dict[str, str]]:
    """Reads `label_issues.csv` back (for the review page and tests).

    Args:
        path: path of the file, or the audit output folder.

    Returns:
        list of dict (column -> str), worst first.

    Raises:
        DataError: if the file is missing or lacks the documented columns.
    """
    from imgclf.errors import DataError

    p = Path(path)
    if p.is_dir():
        p = p / LABEL_ISSUES
    if not p.is_file():
        raise DataError(f"audit file not found: {p}", "run `imgclf audit DIR --out OUT` first")
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ISSUE_COLUMNS[:4] if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{p} lacks column(s) {missing}", "rerun `imgclf audit`")
        return list(reader)
