"""`imgclf evaluate`: how good a trained model really is, and where it fails.

Reads a run directory (`imgclf.records.run`) and the split it was trained on, predicts every image
of the chosen split (test by default) in batches, and writes into the run directory:

    metrics.json                     accuracy, loss, top-k accuracy, macro precision / recall /
                                     F1, ECE, per-class table, confusion matrix (see `evaluate_run`)
    confusion_matrix.png             raw counts
    confusion_matrix_normalized.png  rows normalized (recall per class on the diagonal)
    training_curves.png              loss and accuracy per epoch, from history.csv
    confident_errors.png             the most confidently wrong images, true and predicted label
    reliability_diagram.png          calibration: accuracy vs confidence per bin
    report.html                      all of the above in one self-contained page
    predictions.csv                  one row per scored image: path, sha256, label, predicted,
                                     probabilities (`imgclf.records.run.ImagePredictions`), for
                                     `imgclf compare`'s paired test

`metrics.json` also records which images it was computed on -- the split's `fingerprint`,
sha256 over the sorted (relative path, label, file sha256) list (`imgclf.records.run.split_fingerprint`)
-- and a 95 % percentile-bootstrap confidence interval of every metric over the test images
(`imgclf.stats.bootstrap_metrics`: 2,000 resamples, seed 0 by default; Efron & Tibshirani 1993),
the model's parameter count, its predict time per image, and a leak audit (`leaks`): how many
of the evaluated images have a verified near copy in `train` or `val` (`imgclf.leaks`; 0
expected), with the method and thresholds used.

For a split other than `test` every name gets a `_<split>` suffix (`metrics_val.json`), so
evaluating the validation split never overwrites the test report.

With `track` (`--track mlflow`) the evaluation also goes to the run's tracker run (`imgclf.track`:
the metrics as `<split>/<metric>` with their interval bounds, the leak count, the split's
fingerprint as a tag, the files above as artifacts), after they are written.

Metrics come from scikit-learn (`accuracy_score`, `log_loss`, `top_k_accuracy_score`,
`precision_recall_fscore_support`, `confusion_matrix`). The expected calibration error uses
the 15 equal-width confidence bins of Guo et al., 2017, "On Calibration of Modern Neural
Networks" (ICML), eq. 3.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf import report, stats
from imgclf.config import EvaluateConfig, TrackConfig, validate
from imgclf.data import tf_batches
from imgclf.errors import DataError
from imgclf.inputs import ImageListing, InputItem, class_folders, iter_batches, list_images, load_image
from imgclf.leaks import leak_summary, near_copies
from imgclf.records.run import (
    FINGERPRINT_METHOD,
    ImagePredictions,
    RunInfo,
    history_columns,
    load_run_info,
    metrics_file,
    predictions_file,
    read_history,
    save_metrics,
    save_predictions,
    split_fingerprint,
)
from imgclf.runtime import load_model
from imgclf.stats import ECE_BINS  # 15 equal-width confidence bins (Guo et al., 2017), shared with imgclf.stats
from imgclf.track import check_backend, log_evaluation
from imgclf.ui import progress, summary

#: How many confidently wrong images the gallery shows at most.
GALLERY_SIZE = 16


# ------------------------------------------------------------------------------------ data
def resolve_split_dir(
    run_dir: str | os.PathLike, split: str = "test", data_dir: str | os.PathLike | None = None
) -> Path:
    """Finds the folder of `split` for a run.

    Args:
        run_dir: path. The run directory (its `run.json` names the split folder trained on).
        split: str, default "test". One of "train", "val", "test".
        data_dir: path or None. Overrides `run.json`'s `data_dir`: either the split folder
            (holding `train/`, `val/`, `test/`) or directly a folder of class sub-folders.

    Returns:
        Path of `<data_dir>/<split>` (or `data_dir` itself when it holds class folders only).

    Raises:
        DataError: if no such folder exists.
    """
    info = load_run_info(run_dir)
    base = Path(data_dir) if data_dir is not None else (Path(info.data_dir) if info.data_dir else None)
    if base is None:
        raise DataError(f"{run_dir}/run.json does not say which data the model was trained on", "pass --data DIR")
    if (base / split).is_dir():
        return base / split
    if data_dir is not None and base.is_dir() and set(class_folders(base)) & set(info.class_names):
        return base
    raise DataError(
        f"split folder not found: {base / split}",
        "pass --data DIR pointing at the folder `imgclf split` wrote (it holds train/ val/ test/)",
    )


def list_split(split_dir: str | os.PathLike, class_names: list[str]) -> ImageListing:
    """Lists the labelled images of a split folder for a model with `class_names`.

    Args:
        split_dir: path. `<split_dir>/<class>/<file>`; its classes must be among `class_names`.
        class_names: list of str. The model's classes (label i = `class_names[i]`).

    Returns:
        ImageListing (`imgclf.inputs.list_images`), labels indexing `class_names`.

    Raises:
        DataError: a class folder that is not one of the model's classes, files outside class
            folders, or no file at all.
    """
    listing = list_images(split_dir, class_names=class_names, layout="classes")
    if listing.strays:
        raise DataError(
            f"{split_dir}: {len(listing.strays)} file(s) outside class folders, e.g. {listing.strays[0]}",
            "evaluate a folder of class sub-folders (`imgclf split` writes them)",
        )
    if not len(listing):
        raise DataError(f"no images found under {split_dir}/<class>/", "run `imgclf split` first")
    return listing


@dataclass
class SplitPredictions:
    """A model's probabilities on the readable images of a split listing.

    Attributes:
        probs: np.ndarray `(n, num_classes)` float32.
        labels: np.ndarray `(n,)` int64, true labels.
        paths: list of Path, one per row.
        rejected: list of (path, reason, detail) for files that could not be read.
        model_seconds: list of float. Wall time of each batch's model call (decoding excluded).
        batch_images: list of int. Images in each of those batches.
    """

    probs: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    rejected: list[tuple[str, str, str]] = field(default_factory=list)
    model_seconds: list[float] = field(default_factory=list)
    batch_images: list[int] = field(default_factory=list)

    def ms_per_image(self) -> float | None:
        """Model milliseconds per image; the first batch (warm-up) left out when there are more.

        Returns:
            float, or None when no image was predicted.
        """
        pairs = [(t, n) for t, n in zip(self.model_seconds, self.batch_images) if n]
        if len(pairs) > 1:
            pairs = pairs[1:]
        images = sum(n for _, n in pairs)
        return 1000.0 * sum(t for t, _ in pairs) / images if images else None


def predict_listing(
    predictor: Any, listing: ImageListing, *, batch_size: int = 64, tta: str = "none", description: str = "evaluate"
) -> SplitPredictions:
    """Runs `predictor` on every image of `listing` through the one loader (`iter_batches`).

    Args:
        predictor: `imgclf.runtime.Predictor`. Its `spec` decides how files become input.
        listing: ImageListing with labels (e.g. from `list_split`).
        batch_size: int, default 64. Images per model call.
        tta: str, default "none". "none" or "flip" (see `Predictor.predict_batch`).
        description: str. Progress-bar label.

    Returns:
        SplitPredictions; unreadable files are in `rejected` with their reason.
    """
    parts: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    paths: list[Path] = []
    rejected: list[tuple[str, str, str]] = []
    seconds: list[float] = []
    sizes: list[int] = []
    source = tf_batches if predictor.uses_tensorflow else None
    with progress(description, total=len(listing)) as advance:
        for batch in iter_batches(listing.items(), predictor.spec, batch_size=batch_size, source=source):
            t = time.perf_counter()
            parts.append(predictor.predict_batch(batch.images, tta))
            seconds.append(time.perf_counter() - t)
            sizes.append(len(batch.ok))
            labels.append(batch.labels)
            paths.extend(_local_path(batch.items[i]) for i in batch.ok)
            rejected.extend((str(batch.items[i].path), e.reason, e.detail) for i, e in batch.errors.items())
            advance(len(batch.items), status=f"set aside {len(rejected)}" if rejected else "")
    probs = np.concatenate(parts) if parts else np.zeros((0, len(listing.class_names)), np.float32)
    return SplitPredictions(
        probs, np.concatenate(labels) if labels else np.zeros(0, np.int64), paths, rejected, seconds, sizes
    )


def _local_path(item: InputItem) -> Path:
    """The file of a listed item (`list_images` lists files only, so there always is one)."""
    if item.path is None:
        raise DataError(f"{item.name}: not a local file", "evaluate a folder of images")
    return item.path


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (`hashlib.file_digest`)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def listing_hashes(listing: ImageListing) -> dict[Path, str]:
    """sha256 of every file of `listing` (unreadable images included), read by a thread pool.

    Returns:
        dict path -> hex sha256.

    Raises:
        DataError: if a listed file cannot be read at all (e.g. removed meanwhile).
    """

    def one(p: Path) -> str:
        try:
            return file_sha256(p)
        except OSError as exc:
            raise DataError(f"cannot read {p} to fingerprint the split: {exc.strerror or exc}") from None

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(listing.paths, pool.map(one, listing.paths)))


# --------------------------------------------------------------------------------- metrics
def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS
) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error of the top-1 confidence.

    ECE = sum over bins b of |B_b| / n * |acc(B_b) - conf(B_b)|, with `n_bins` equal-width bins
    over [0, 1] (bin m holds confidences in ((m-1)/M, m/M]) — Guo et al., 2017, "On Calibration
    of Modern Neural Networks", ICML, eq. 3, M = 15.

    Args:
        probs: np.ndarray `(n, num_classes)`, probabilities.
        labels: np.ndarray `(n,)`, int true labels.
        n_bins: int, default 15.

    Returns:
        (ece, bins): ece float in [0, 1]; bins a list of `n_bins` dicts with `lower`, `upper`,
        `count`, `accuracy`, `confidence` (the last two 0.0 for empty bins).
    """
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins; a confidence of exactly 0 goes to the first bin
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    bins = []
    n = max(len(conf), 1)
    for b in range(n_bins):
        mask = idx == b
        cnt = int(mask.sum())
        acc = float(correct[mask].mean()) if cnt else 0.0
        cf = float(conf[mask].mean()) if cnt else 0.0
        ece += cnt / n * abs(acc - cf)
        bins.append(
            {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": cnt, "accuracy": acc, "confidence": cf}
        )
    return float(ece), bins


def compute_metrics(probs: np.ndarray, labels: np.ndarray, class_names: list[str], top_k: int = 3) -> dict[str, Any]:
    """All evaluation numbers from predicted probabilities and true labels.

    Args:
        probs: np.ndarray `(n, num_classes)`, rows summing to 1.
        labels: np.ndarray `(n,)`, int in [0, num_classes).
        class_names: list of str, length num_classes.
        top_k: int, default 3. k of the top-k accuracy (capped at num_classes).

    Returns:
        dict with `accuracy`, `loss` (mean cross-entropy, natural log), `top_k`,
        `top_k_accuracy`, `precision_macro`, `recall_macro`, `f1_macro` (unweighted means over
        the classes present in `labels` or predicted — scikit-learn's default label set; a
        present class never predicted counts as precision 0), `ece`, `ece_bins`,
        `per_class` ({class: {precision, recall, f1, support}}), `confusion_matrix`
        (rows = true class, columns = predicted), `confusion_matrix_normalized` (rows sum to 1),
        `calibration` (per-bin table), `n_images`, `class_names`.
    """
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        log_loss,
        precision_recall_fscore_support,
        top_k_accuracy_score,
    )

    n_classes = len(class_names)
    ids = list(range(n_classes))
    pred = probs.argmax(axis=1)
    k = min(top_k, n_classes)
    with warnings.catch_warnings():  # k >= num_classes is a perfect score, and is reported as such
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        if n_classes == 2:  # scikit-learn's binary form: the score of the positive class
            topk = top_k_accuracy_score(labels, probs[:, 1], k=k, labels=ids)
        else:
            topk = top_k_accuracy_score(labels, probs, k=k, labels=ids)
    p, r, f1, support = precision_recall_fscore_support(labels, pred, labels=ids, zero_division=0)
    # macro averages over the classes present in the truth or the predictions (scikit-learn's
    # default label set), so a class absent from this split does not count as a zero
    present = np.union1d(labels, pred)
    cm = confusion_matrix(labels, pred, labels=ids)
    with np.errstate(invalid="ignore", divide="ignore"):
        cm_norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    ece, bins = expected_calibration_error(probs, labels)
    p64 = probs.astype(np.float64)  # float32 softmax rows sum to 1 only within ~1e-7
    return {
        "accuracy": float(accuracy_score(labels, pred)),
        "loss": float(log_loss(labels, p64 / p64.sum(axis=1, keepdims=True), labels=ids)),
        "precision_macro": float(np.mean(p[present])),
        "recall_macro": float(np.mean(r[present])),
        "f1_macro": float(np.mean(f1[present])),
        "top_k": k,
        "top_k_accuracy": float(topk),
        "ece": ece,
        "ece_bins": ECE_BINS,
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, c in enumerate(class_names)
        },
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalized": [[round(float(v), 6) for v in row] for row in cm_norm],
        "calibration": bins,
        "n_images": int(len(labels)),
        "class_names": list(class_names),
    }


# ------------------------------------------------------------------------------------ main
def leak_audit_section(listing: ImageListing, split: str, class_names: list[str]) -> dict[str, Any]:
    """The `leaks` section of `metrics.json`: evaluated images with a near copy the model saw.

    The evaluated listing is compared with the sibling subsets the model learned from or was
    tuned on: `train` and `val` beside `listing.root` (for `split="val"`, `train` only; for
    `split="train"`, none), by `imgclf.leaks.near_copies` -- the verified detector of `clean` and
    `split` (docs/dedupe.md).

    Args:
        listing: ImageListing. The evaluated images (`<split folder>/<split>/<class>/...`).
        split: str. "train", "val" or "test" (which siblings count, see above).
        class_names: list of str. The run's classes (passed to `list_images`).

    Returns:
        dict: `checked` (bool), and when checked the keys of `imgclf.leaks.leak_summary`
        (`test_images`, `test_images_with_copy` -- 0 expected, `pairs`, `by_kind`, `copies`,
        `not_checked`, `method`, `radius`, `max_residual`, `flips`) plus `compared_with`; when not,
        `reason`.
    """
    base = listing.root.parent
    used = [s for s in ("train", "val")[: ("train", "val", "test").index(split)] if (base / s).is_dir()]
    if not used:
        why = "the training split itself" if split == "train" else f"no train/ or val/ beside {listing.root}"
        return {"checked": False, "reason": why}
    others = [list_images(base / s, class_names=class_names, layout="classes") for s in used]
    bad: list[tuple[str, str]] = []
    copies = near_copies(listing, others, unreadable=bad)
    return {"checked": True, **leak_summary(listing, copies, unreadable=bad), "compared_with": used}


_LEAK_CACHE: dict[tuple, dict[str, Any]] = {}


def _cached_leak_audit(listing: ImageListing, split: str, class_names: list[str], fingerprint: str) -> dict[str, Any]:
    """`leak_audit_section`, once per unchanged split folder in a process (`imgclf run` evaluates
    several models on one split): keyed by the evaluated split's fingerprint and the path, size
    and modification time of every file beside it."""
    base = listing.root.parent
    stamp = []
    for s in ("train", "val"):
        if (base / s).is_dir():
            for p in sorted((base / s).rglob("*")):
                st = p.stat()
                stamp.append((p.as_posix(), st.st_size, st.st_mtime_ns))
    key = (str(listing.root.resolve()), split, tuple(class_names), fingerprint, tuple(stamp))
    if key not in _LEAK_CACHE:
        _LEAK_CACHE.clear()
        _LEAK_CACHE[key] = leak_audit_section(listing, split, class_names)
    return _LEAK_CACHE[key]


def output_files(run_dir: str | os.PathLike, split: str) -> dict[str, Path]:
    """The files `evaluate_run` writes into `run_dir` for `split`, by kind.

    Args:
        run_dir: path. The run directory.
        split: str. "train", "val" or "test"; every name but the test split's gets a
            `_<split>` suffix (`metrics_val.json`), so no split overwrites another's report.

    Returns:
        dict kind -> Path: `metrics`, `predictions`, `confusion_matrix`,
        `confusion_matrix_normalized`, `reliability_diagram`, `confident_errors`,
        `training_curves` (one per run, no suffix) and `report`.
    """
    run_dir = Path(run_dir)

    def name(stem: str, ext: str) -> Path:
        return run_dir / f"{stem}{'' if split == 'test' else '_' + split}{ext}"

    return {
        "metrics": run_dir / metrics_file(split),
        "predictions": run_dir / predictions_file(split),
        "confusion_matrix": name("confusion_matrix", ".png"),
        "confusion_matrix_normalized": name("confusion_matrix_normalized", ".png"),
        "reliability_diagram": name("reliability_diagram", ".png"),
        "confident_errors": name("confident_errors", ".png"),
        "training_curves": run_dir / "training_curves.png",
        "report": name("report", ".html"),
    }


def confident_errors(
    result: SplitPredictions, class_names: list[str], limit: int = GALLERY_SIZE
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The most confidently wrong images: misclassified, highest predicted probability first.

    Args:
        result: SplitPredictions.
        class_names: list of str. Label i is `class_names[i]`.
        limit: int, default `GALLERY_SIZE` (16). At most this many.

    Returns:
        (rows, errors): `rows` the indices into `result` (int array, ties in file order);
        `errors` one dict per row with `file`, `true`, `predicted`, `probability` (float in
        [0, 1]), as `metrics.json` stores them under `confident_errors`.
    """
    probs, labels = result.probs, result.labels
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != labels)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:limit]
    errors = [
        {
            "file": str(result.paths[i]),
            "true": class_names[labels[i]],
            "predicted": class_names[pred[i]],
            "probability": float(probs[i, pred[i]]),
        }
        for i in wrong
    ]
    return wrong, errors


def set_aside_summary(rejected: list[tuple[str, str, str]]) -> dict[str, Any]:
    """The `set_aside` section of `metrics.json`: unreadable files, counted by reason.

    Args:
        rejected: list of (path, reason, detail), as `SplitPredictions.rejected`.

    Returns:
        dict with `count`, `reasons` (reason -> count, in order of first appearance) and `files`.
    """
    reasons: dict[str, int] = {}
    for _, reason, _ in rejected:
        reasons[reason] = reasons.get(reason, 0) + 1
    return {"count": len(rejected), "reasons": reasons, "files": [list(r) for r in rejected]}


def score_split(
    result: SplitPredictions, class_names: list[str], cfg: EvaluateConfig
) -> tuple[dict[str, Any], stats.BootstrapResult]:
    """The metrics of a split's predictions and their percentile-bootstrap intervals.

    Args:
        result: SplitPredictions (at least one image).
        class_names: list of str.
        cfg: EvaluateConfig. `top_k`, `bootstrap_resamples`, `ci_level`, `bootstrap_seed`.

    Returns:
        (metrics, intervals): `compute_metrics`'s dict, and the `imgclf.stats.BootstrapResult`.
    """
    metrics = compute_metrics(result.probs, result.labels, class_names, cfg.top_k)
    intervals = stats.bootstrap_metrics(
        stats.score_images(result.probs, result.labels, metrics["top_k"]),
        n_resamples=cfg.bootstrap_resamples,
        level=cfg.ci_level,
        seed=cfg.bootstrap_seed,
    )
    return metrics, intervals


@dataclass
class _Evaluation:
    """What one evaluation computed, before anything is written."""

    run_dir: Path
    split_dir: Path
    info: RunInfo
    cfg: EvaluateConfig
    listing: ImageListing
    result: SplitPredictions
    hashes: dict[Path, str]
    parameters: int | None
    metrics: dict[str, Any] = field(default_factory=dict)


def _predict_split(run_dir: Path, cfg: EvaluateConfig, data_dir: str | os.PathLike | None) -> _Evaluation:
    """Loads the run and its model, lists the split and predicts every image of it."""
    info = load_run_info(run_dir)
    split_dir = resolve_split_dir(run_dir, cfg.split, data_dir)
    predictor = load_model(run_dir)
    predictor.check_tta(cfg.tta)
    listing = list_split(split_dir, info.class_names)
    result = predict_listing(
        predictor, listing, batch_size=cfg.batch_size, tta=cfg.tta, description=f"evaluate {cfg.split}"
    )
    if not result.paths:
        raise DataError(f"none of the {len(listing)} files under {split_dir} could be read as an image")
    keras_model = getattr(predictor, "keras_model", None)
    parameters = int(keras_model.count_params()) if keras_model is not None else None
    return _Evaluation(run_dir, split_dir, info, cfg, listing, result, listing_hashes(listing), parameters)


def _measure(ev: _Evaluation) -> dict[str, Any]:
    """`metrics.json`'s content: the metrics, their intervals, what was evaluated, the leak audit."""
    cfg, info, listing = ev.cfg, ev.info, ev.listing
    metrics, intervals = score_split(ev.result, info.class_names, cfg)
    fingerprint = split_fingerprint((e.rel, e.label, ev.hashes[e.path]) for e in listing.entries)
    metrics.update(
        {
            "split": cfg.split,
            "tta": cfg.tta,
            "data_dir": str(ev.split_dir),
            "run": str(ev.run_dir),
            "model": info.model,
            "input_spec": info.input_spec.model_dump(mode="json"),
            "set_aside": set_aside_summary(ev.result.rejected),
            "fingerprint": {"sha256": fingerprint, "n_files": len(listing), "method": FINGERPRINT_METHOD},
            "confidence_intervals": intervals.as_dict(),
            "parameters": ev.parameters,
            "predict_ms_per_image": ev.result.ms_per_image(),
            "predict_batch_size": cfg.batch_size,
            "leaks": _cached_leak_audit(listing, cfg.split, info.class_names, fingerprint)
            if cfg.leak_audit
            else {"checked": False, "reason": "--no-leak-audit"},
        }
    )
    return metrics


def _write(ev: _Evaluation) -> dict[str, Path]:
    """Writes the plots, `predictions.csv`, `metrics.json` and the report; returns kind -> path."""
    run_dir, split, info, result, metrics = ev.run_dir, ev.cfg.split, ev.info, ev.result, ev.metrics
    files = output_files(run_dir, split)
    cm = np.asarray(metrics["confusion_matrix"])
    report.plot_confusion_matrix(cm, info.class_names, files["confusion_matrix"], normalize=False)
    report.plot_confusion_matrix(cm, info.class_names, files["confusion_matrix_normalized"], normalize=True)
    report.plot_reliability_diagram(metrics["calibration"], metrics["ece"], files["reliability_diagram"])
    wrong, metrics["confident_errors"] = confident_errors(result, info.class_names)
    shown = np.stack([load_image(result.paths[i], info.input_spec) for i in wrong]) if len(wrong) else np.zeros((0,))
    report.plot_gallery(shown, metrics["confident_errors"], files["confident_errors"])
    history = read_history(run_dir)
    if history:
        report.plot_training_curves(history_columns(history), files["training_curves"])
    else:
        del files["training_curves"]
    metrics["files"] = {k: v.name for k, v in files.items()}
    scored = ImagePredictions(
        info.class_names,
        [p.relative_to(ev.split_dir).as_posix() for p in result.paths],
        [ev.hashes[p] for p in result.paths],
        result.labels.astype(np.int64),
        result.probs.astype(np.float32),
    )
    save_predictions(run_dir, split, scored)
    save_metrics(run_dir, split, metrics)
    report.write_html_report(files["report"], metrics, {k: v for k, v in files.items() if v.suffix == ".png"}, info)
    return files


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    split: str = "test",
    data_dir: str | os.PathLike | None = None,
    top_k: int = 3,
    batch_size: int = 64,
    tta: str = "none",
    bootstrap_resamples: int = 2000,
    ci_level: float = 0.95,
    bootstrap_seed: int = 0,
    leak_audit: bool = True,
    track: TrackConfig | None = None,
) -> dict[str, Any]:
    """Evaluates a trained run on one split and writes metrics, plots and an HTML report.

    The steps: predict the split (`predict_listing`), score it (`score_split`: metrics and
    bootstrap intervals; the split's fingerprint; the leak audit, `leak_audit_section`), pick
    the confident errors (`confident_errors`), write the files (`output_files`).

    Args:
        run_dir: path. A run directory written by `imgclf train` (`best.keras`, `run.json`).
        split: str, default "test". One of "train", "val", "test".
        data_dir: path or None. The split folder (holding `train/ val/ test/`), if not the one
            named in `run.json`.
        top_k: int >= 1, default 3. k of the top-k accuracy.
        batch_size: int >= 1, default 64. Images per model call.
        tta: str, default "none". Test-time augmentation: "none", or "flip" = the mean of the
            probabilities of each image and its mirror image (see
            `imgclf.runtime.Predictor.predict_batch`). Recorded in `metrics.json` as `tta`.
        bootstrap_resamples: int >= 1, default 2000. Resamples of the percentile bootstrap
            (`imgclf.stats.bootstrap_metrics`; Efron & Tibshirani 1993, ch. 13).
        ci_level: float in (0, 1), default 0.95. Confidence level of the intervals.
        bootstrap_seed: int, default 0. Seed of the resampling.
        leak_audit: bool, default True. Count the evaluated images that have a verified near
            copy among the subsets the model learned from or was tuned on (`train` and `val`
            beside the evaluated one; `imgclf.leaks.near_copies`, the detector of `clean` and
            `split`), recorded as `leaks` in `metrics.json` and shown in the report.
        track: TrackConfig or None, default None (off). Experiment tracking (`imgclf.track`):
            the metrics with their intervals, the leak count, the split's fingerprint and the
            written files go to the run's tracker run (the one `run.json` names, else a new
            one). A tracker that fails prints one warning; the files are written regardless.

    Returns:
        dict: the content of `metrics.json` — top-level `accuracy`, `loss`, `precision_macro`,
        `recall_macro`, `f1_macro`, `top_k`, `top_k_accuracy`, `ece`, `per_class`,
        `confusion_matrix`, plus `split`, `tta`, `run`, `model`, `set_aside`, `confident_errors`,
        `fingerprint` (`imgclf.records.run.SplitFingerprint`: sha256, n_files, method),
        `confidence_intervals` (`imgclf.stats.BootstrapResult.as_dict`: level, method,
        n_resamples, seed, and `metrics` -> {value, low, high} per metric), `parameters`,
        `predict_ms_per_image`, `predict_batch_size`, `leaks` (`leak_audit_section`) and
        `files` (kind -> file name inside `run_dir`, `predictions` included).
        `imgclf.records.run.MetricsRecord` is the part later commands read back.

    Raises:
        ConfigError: if `split`, `top_k`, `batch_size`, `tta` or a bootstrap setting is invalid,
            or `track` names a backend whose package is not installed.
        ModelError: if the run directory or its model cannot be loaded.
        DataError: if the split folder is missing, empty or has classes the model lacks.
    """
    options = {
        "split": split,
        "top_k": top_k,
        "batch_size": batch_size,
        "tta": tta,
        "bootstrap_resamples": bootstrap_resamples,
        "ci_level": ci_level,
        "bootstrap_seed": bootstrap_seed,
        "leak_audit": leak_audit,
    }
    cfg: EvaluateConfig = validate(EvaluateConfig, options, origin="evaluate")
    check_backend(track)
    ev = _predict_split(Path(run_dir), cfg, data_dir)
    ev.metrics = _measure(ev)
    files = _write(ev)
    summary(_summary_line(ev, files))
    log_evaluation(track, ev.run_dir, ev.metrics, files)
    return ev.metrics


def _summary_line(ev: _Evaluation, files: Mapping[str, Path]) -> str:
    """The one line `evaluate` prints: images, set-aside files, the headline metrics, the files."""
    m, cfg = ev.metrics, ev.cfg
    reasons = m["set_aside"]["reasons"]
    aside = f", {len(ev.result.rejected)} set aside ({', '.join(f'{c} {r}' for r, c in reasons.items())})"
    acc = m["confidence_intervals"]["metrics"]["accuracy"]
    return (
        f"evaluate: {len(ev.result.labels)} {cfg.split} images{aside if reasons else ''}"
        f"{' (flip TTA)' if cfg.tta == 'flip' else ''}: accuracy {m['accuracy']:.4f} "
        f"[{acc['low']:.4f}, {acc['high']:.4f}] ({cfg.ci_level:.0%} CI), "
        f"macro F1 {m['f1_macro']:.4f}, top-{m['top_k']} {m['top_k_accuracy']:.4f}, "
        f"ECE {m['ece']:.4f}{_leak_line(m['leaks'])} -> {files['metrics']}, {files['report']}"
    )


def _leak_line(leaks: Mapping[str, Any]) -> str:
    if not leaks.get("checked"):
        return ""
    return (
        f"; {leaks['test_images_with_copy']} of {leaks['test_images']} with a near copy in "
        f"{' or '.join(leaks['compared_with'])}"
    )
