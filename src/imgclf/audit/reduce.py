"""The audit's reduce: out-of-fold probabilities -> cleanlab -> issues, outliers, noise per class and source.

Everything here is a pure function of arrays (no file is read or written): what the map
(`imgclf.audit.load`) and the listing produced goes in as an `AuditSet`, and an `AuditPlan`
comes out, which the apply step (`imgclf.audit.report`) writes. Order does not matter: the
images arrive sorted by path, and every ranking breaks ties by path or index.

1. `make_folds`: grouped, stratified K folds (`imgclf.audit.oof.assign_folds`).
2. `probe_predictions` or `cv_predictions`: the out-of-fold probabilities (a linear probe on the
   embeddings, or the real model trained once per fold) and the outlier scores.
3. `plan_audit`: confident learning through cleanlab (`imgclf.audit.confident`), the flagged
   images, the outliers and the noise per class, per scrape source and per split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from imgclf.audit.confident import DEFAULT_METHOD, ConfidentLearning, confident_learning
from imgclf.audit.cvtrain import cv_train_probabilities
from imgclf.audit.oof import assign_folds, cross_validated_probabilities, linear_probe, outlier_scores
from imgclf.config import AuditConfig, TrainConfig
from imgclf.errors import DataError
from imgclf.records.audit import ClassNoise, SourceNoise


@dataclass
class AuditSet:
    """The input of the reduce: the audited images, in path order, and what is known of them.

    Attributes:
        rels: list of str (n). Paths relative to the audited folder.
        labels: int64 `(n,)`. Given label, index into `class_names`; every class occurs.
        class_names: list of str (m >= 2). The audited classes.
        subsets: list of str (n). `train` / `val` / `test` in a pre-split folder, else "".
        sources: list (n) of list of str. Scrape sources of each image (may be empty).
        groups: int64 `(n,)` or None. Images of one group share a fold.
        presplit: bool. The folder is a pre-split tree (issues are counted per split).
    """

    rels: list[str]
    labels: np.ndarray
    class_names: list[str]
    subsets: list[str]
    sources: list[list[str]]
    groups: np.ndarray | None = None
    presplit: bool = False

    def __post_init__(self) -> None:
        n = len(self.rels)
        if not (len(self.labels) == len(self.subsets) == len(self.sources) == n):
            raise ValueError(f"rels, labels, subsets and sources must have one entry per image ({n})")


@dataclass
class FoldPredictions:
    """Out-of-fold probabilities and outlier scores.

    Attributes:
        pred_probs: float64 `(n, m)`, rows summing to 1; row i from a model that did not see
            image i (nor its group).
        fold: int64 `(n,)` in `[0, folds)`.
        outlier: float64 `(n,)` >= 0; 1 = the median image.
        classifier: str. What made the probabilities, in words (for the report).
        seconds: dict. Timings (`probabilities`, `outliers`, `seconds_per_fold`).
    """

    pred_probs: np.ndarray
    fold: np.ndarray
    outlier: np.ndarray
    classifier: str
    seconds: dict[str, float | list[float]] = field(default_factory=dict)


def make_folds(data: AuditSet, folds: int, seed: int) -> np.ndarray:
    """The fold of every image: stratified by label, grouped when `data.groups` is set.

    Args:
        data: AuditSet.
        folds: int >= 2.
        seed: int.

    Returns:
        int64 `(n,)` in `[0, folds)`.

    Raises:
        DataError: fewer images (groups) than folds.
    """
    n = len(data.labels)
    n_groups = len(np.unique(data.groups)) if data.groups is not None else n
    if n_groups < folds:
        raise DataError(
            f"{n} images in {n_groups} groups cannot make {folds} folds",
            f"pass --folds {max(2, min(n_groups, 5))} or add images",
        )
    return assign_folds(data.labels, folds, groups=data.groups, seed=seed)


def probe_predictions(features: np.ndarray, data: AuditSet, fold: np.ndarray, cfg: AuditConfig) -> FoldPredictions:
    """Out-of-fold probabilities of the linear probe on embeddings, and kNN outlier scores.

    Args:
        features: float32 `(n, d)`, one embedding per image of `data`.
        data: AuditSet.
        fold: int64 `(n,)` from `make_folds`.
        cfg: AuditConfig. `classifier_c`, `pca`, `seed`, `outlier_k`.

    Returns:
        FoldPredictions.
    """
    m = len(data.class_names)
    t = time.monotonic()
    probe = linear_probe(features, data.labels, m, C=cfg.classifier_c, pca=cfg.pca, seed=cfg.seed)
    probs = cross_validated_probabilities(fold, data.labels, m, probe, description="audit: linear probe")
    seconds: dict[str, float | list[float]] = {"probabilities": time.monotonic() - t}
    classifier = f"LogisticRegression(C={cfg.classifier_c:g}, lbfgs) on " + (
        f"{cfg.pca} whitened PCA components" if cfg.pca and features.shape[1] > cfg.pca else "standardized embeddings"
    )
    t = time.monotonic()
    outlier = outlier_scores(features, fold, k=cfg.outlier_k, seed=cfg.seed)
    seconds["outliers"] = time.monotonic() - t
    return FoldPredictions(probs, fold, outlier, classifier, seconds)


def cv_predictions(
    images: np.ndarray, data: AuditSet, fold: np.ndarray, train: TrainConfig, description: str, cfg: AuditConfig
) -> FoldPredictions:
    """Out-of-fold probabilities of the real model trained once per fold (`--cv-train`).

    Args:
        images: uint8 `(n, size, size, 3)` in [0, 255], one per image of `data`.
        data: AuditSet.
        fold: int64 `(n,)` from `make_folds`.
        train: TrainConfig. The model and recipe trained per fold (already fitted to the data).
        description: str. Where the config came from (for the report).
        cfg: AuditConfig. `outlier_k`.

    Returns:
        FoldPredictions; its outlier scores come from each fold model's own embedding.
    """
    t = time.monotonic()
    fm = cv_train_probabilities(images, data.labels, fold, len(data.class_names), train, outlier_k=cfg.outlier_k)
    seconds: dict[str, float | list[float]] = {"seconds_per_fold": [round(s, 1) for s in fm.seconds_per_fold]}
    seconds["probabilities"] = time.monotonic() - t
    seconds["outliers"] = 0.0  # each fold model scored its own fold
    classifier = (
        f"{train.model} {train.model_options or ''} trained {train.epochs} epochs per fold "
        f"({description}; {train.optimizer}, lr {train.learning_rate:g}, batch {train.batch_size})"
    ).replace("  ", " ")
    return FoldPredictions(fm.pred_probs, fold, fm.outlier_distance, classifier, seconds)


@dataclass
class AuditPlan:
    """What the audit found: the reduce's result, ready to be written.

    Attributes:
        data: AuditSet. The audited images.
        predictions: FoldPredictions.
        cl: ConfidentLearning. cleanlab's answers (issues, joints, noise rates, scores).
        is_outlier: bool `(n,)`. Outlier score at or above the threshold.
        accuracy: float in [0, 1]. Out-of-fold accuracy against the given labels.
        per_class: dict class -> ClassNoise.
        per_source: dict source -> SourceNoise (sorted by source).
        images_per_split, label_issues_per_split: dict split -> int (pre-split folders only).
    """

    data: AuditSet
    predictions: FoldPredictions
    cl: ConfidentLearning
    is_outlier: np.ndarray
    accuracy: float
    per_class: dict[str, ClassNoise]
    per_source: dict[str, SourceNoise]
    images_per_split: dict[str, int]
    label_issues_per_split: dict[str, int]

    @property
    def issues(self) -> int:
        """Number of label issues."""
        return int(self.cl.issues.sum())

    @property
    def outliers(self) -> int:
        """Number of outliers."""
        return int(self.is_outlier.sum())

    def issue_order(self) -> np.ndarray:
        """Flagged images, worst first: lowest label_quality, then highest suggested probability, then path."""
        cl, rels = self.cl, self.data.rels

        def key(i: int) -> tuple[float, float, str]:
            return (float(cl.label_quality[i]), -float(cl.suggested_probability[i]), rels[i])

        return np.asarray(sorted(np.flatnonzero(cl.issues).tolist(), key=key), dtype=np.int64)

    def outlier_order(self) -> np.ndarray:
        """Images above the outlier threshold, highest score first (ties: path order)."""
        idx = np.flatnonzero(self.is_outlier)
        return idx[np.argsort(-self.predictions.outlier[idx], kind="stable")]

    def path_order(self) -> np.ndarray:
        """Every image, in path order."""
        return np.argsort(np.array(self.data.rels, dtype=object), kind="stable")


def _rate(x: float) -> float | None:
    return None if x != x else round(float(x), 6)  # NaN -> None


def _per_class(data: AuditSet, cl: ConfidentLearning, is_outlier: np.ndarray) -> dict[str, ClassNoise]:
    out = {}
    for i, c in enumerate(data.class_names):
        mask = data.labels == i
        out[c] = ClassNoise(
            images=int(mask.sum()),
            label_issues=int((cl.issues & mask).sum()),
            estimated_noise_rate=round(float(cl.noise_rate[i]), 6),
            threshold=round(float(cl.thresholds[i]), 6),
            out_of_fold_accuracy=round(float(np.mean(cl.suggested_label[mask] == i)), 6),
            outliers=int((is_outlier & mask).sum()),
        )
    return out


def _per_source(data: AuditSet, cl: ConfidentLearning) -> dict[str, SourceNoise]:
    by_source: dict[str, list[int]] = {}
    for i, srcs in enumerate(data.sources):
        for s in srcs:
            by_source.setdefault(s, []).append(i)
    out = {}
    for s, idx in sorted(by_source.items()):
        mask = np.zeros(len(data.rels), dtype=bool)
        mask[idx] = True
        counts = np.bincount(data.labels[mask], minlength=len(data.class_names))
        out[s] = SourceNoise(
            images=int(mask.sum()),
            label_issues=int((cl.issues & mask).sum()),
            flagged_rate=round(float((cl.issues & mask).sum() / mask.sum()), 6),
            estimated_noise_rate=_rate(cl.group_noise_rate(mask)),
            classes={data.class_names[k]: int(v) for k, v in enumerate(counts) if v},
        )
    return out


def _per_split(data: AuditSet, issues: np.ndarray) -> tuple[dict[str, int], dict[str, int]]:
    images: dict[str, int] = {}
    flagged: dict[str, int] = {}
    if data.presplit:
        subsets = np.asarray(data.subsets, dtype=object)
        for s in sorted(set(data.subsets)):
            mask = subsets == s
            flagged[s] = int((issues & mask).sum())
            images[s] = int(mask.sum())
    return images, flagged


def plan_audit(
    data: AuditSet,
    predictions: FoldPredictions,
    *,
    method: str = DEFAULT_METHOD,
    outlier_threshold: float = 2.0,
) -> AuditPlan:
    """Confident learning on the out-of-fold probabilities, and everything counted from it.

    Pure: arrays in, a plan out (cleanlab does the confident learning).

    Args:
        data: AuditSet. The images and their given labels.
        predictions: FoldPredictions. Out-of-fold probabilities and outlier scores of `data`.
        method: str, default `"low_self_confidence"`. A rule of `imgclf.audit.confident.METHODS`.
        outlier_threshold: float > 0, default 2.0. Outlier scores at or above it are outliers.

    Returns:
        AuditPlan.

    Raises:
        ValueError: arrays that do not fit together, an unknown `method`.
    """
    probs = np.asarray(predictions.pred_probs, dtype=np.float64)
    if probs.shape != (len(data.rels), len(data.class_names)):
        raise ValueError(f"pred_probs has shape {probs.shape}, expected {(len(data.rels), len(data.class_names))}")
    cl = confident_learning(data.labels, probs, method)
    is_outlier = np.asarray(predictions.outlier) >= outlier_threshold
    images_per_split, issues_per_split = _per_split(data, cl.issues)
    return AuditPlan(
        data=data,
        predictions=predictions,
        cl=cl,
        is_outlier=is_outlier,
        accuracy=float(np.mean(probs.argmax(axis=1) == data.labels)),
        per_class=_per_class(data, cl, is_outlier),
        per_source=_per_source(data, cl),
        images_per_split=images_per_split,
        label_issues_per_split=issues_per_split,
    )
