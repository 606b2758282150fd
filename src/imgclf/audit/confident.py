"""Confident learning by cleanlab: label issues, the confident joint and the noise rates.

imgclf makes the out-of-fold probabilities (`imgclf.audit.oof`, `imgclf.audit.cvtrain`);
cleanlab (https://github.com/cleanlab/cleanlab, Apache-2.0 since 2.8.0, so imgclf requires
`cleanlab>=2.8`; 2.7.1 and earlier are AGPL-3.0) does confident learning on them: C. G.
Northcutt, L. Jiang and I. L. Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", Journal of Artificial Intelligence Research 70 (2021) 1373-1411 (arXiv:1911.00068).
This module is the glue: it checks the arrays, maps imgclf's rule names onto cleanlab's and
gathers cleanlab's answers into one `ConfidentLearning` record. cleanlab (and scikit-learn,
which it imports) is imported inside the functions, so importing this module stays cheap.

Notation: `n` examples, `m` classes, given labels `ỹ` (`labels`, int `(n,)`) and out-of-sample
probabilities `p̂(j; x)` (`pred_probs`, `(n, m)`, rows summing to 1). Every row must come from
a model that did not train on that example; in-sample probabilities make every label look right.

What comes from which cleanlab function:

- per-class thresholds `t_j`, the mean self-confidence of the examples labelled `j` (eq. 2):
  `cleanlab.count.get_confident_thresholds`;
- the confident joint `C[i][j]` (eq. 1: examples labelled `i` counted under class `j`; rows are
  the given label), and the examples it counts off its diagonal:
  `cleanlab.count.compute_confident_joint(calibrate=False, return_indices_of_off_diagonals=True)`.
  An example with no class at or above its threshold is not counted; one with several is
  counted under its predicted class; every diagonal entry is at least 1;
- the calibrated joint (eq. 3: each row rescaled to its label count, rounded to integers that
  keep the row total): `cleanlab.count.calibrate_confident_joint`; the estimated joint
  `Q̂ = calibrated / n` (`cleanlab.count.estimate_joint`);
- the noise matrix `p(ỹ = i | y* = j)` (columns sum to 1) and the inverse noise matrix
  `p(y* = j | ỹ = i)` (here rows = given label, rows sum to 1; cleanlab's is the transpose):
  `cleanlab.count.estimate_latent` on the calibrated joint. The noise rate of class folder `i`
  is `1 - p(y* = i | ỹ = i)`;
- the label issues: `cleanlab.filter.find_label_issues(filter_by=...)`; their number for the
  default rule: `cleanlab.count.num_label_issues`; `label_quality`, the self-confidence
  `p̂(ỹ; x)`: `cleanlab.rank.get_label_quality_scores(method="self_confidence")`.

Rules (`method`, `METHODS`; cleanlab's `filter_by` in `CLEANLAB_FILTER`):

- `"low_self_confidence"` (the default, `DEFAULT_METHOD`; cleanlab's `"low_self_confidence"`):
  as many examples as `cleanlab.count.num_label_issues` estimates (those counted off the
  diagonal of the uncalibrated confident joint whose predicted class is not their label),
  the lowest self-confidence over the whole dataset.
- `"prune_by_noise_rate"` (PBNR, the paper's and cleanlab's default), `"prune_by_class"`
  (PBC), `"both"` (C+NR), `"confident_joint"` (cleanlab's `"confident_learning"`, the
  examples off the confident joint's diagonal) and `"predicted_neq_given"` (the paper's
  C_confusion baseline).

Two guarantees hold for every rule: an example whose predicted class (the argmax of its row)
is its given label is never flagged (a model that agrees with a label gives no evidence against
it), and a class is never emptied. cleanlab keeps both itself for every rule but
`low_self_confidence` (its `_reduce_issues` step and `min_examples_per_class=1`); for that rule
imgclf takes cleanlab's count and cleanlab's scores and picks the lowest self-confidence among
the examples the model disagrees with, at most `|X_ỹ=i| - 1` of class `i`. With
`exclude_agreeing=False` it is cleanlab's `find_label_issues(filter_by="low_self_confidence")`
as it is. On the twelve benchmark sets of docs/benchmarks.md the two gave the same images.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Values accepted by `find_label_issues(method=...)`.
METHODS: tuple[str, ...] = (
    "low_self_confidence",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_joint",
    "predicted_neq_given",
)

#: cleanlab's `filter_by` for each imgclf rule.
CLEANLAB_FILTER: dict[str, str] = {
    "low_self_confidence": "low_self_confidence",
    "prune_by_noise_rate": "prune_by_noise_rate",
    "prune_by_class": "prune_by_class",
    "both": "both",
    "confident_joint": "confident_learning",
    "predicted_neq_given": "predicted_neq_given",
}

#: The rule `imgclf audit` uses unless told otherwise. On digits and Fashion-MNIST with 5 %
#: uniform flips, two flip seeds (scripts/bench/bench_audit.py, docs/benchmarks.md: linear probe,
#: autoencoder embeddings, `--cv-train`, a trained run's embedding; 12 sets) its precision was
#: the highest of the rules in 11 sets and 0.003 below it in the other, 0.96-1.00 on digits. F1
#: on Fashion-MNIST `--cv-train` 0.873 / 0.879 against 0.777 / 0.779 (C+NR) and 0.741 / 0.737
#: (PBNR); with the linear probe 0.667 / 0.675 against 0.571 / 0.570 and 0.528 / 0.523; on
#: digits -0.006 to +0.036 from C+NR, and up to 0.056 below prune by class, which flags 12-38
#: more images per 90 flips there. The per-class rules over-flag a class the model confuses
#: with another (shirts and T-shirts) because they take a share of every class; a person
#: reviews every flag, so precision is worth more than the last few percent of recall.
DEFAULT_METHOD = "low_self_confidence"

#: Tolerance when checking that probabilities are at most 1 (float32 sums are not exact).
PROBABILITY_TOLERANCE = 1e-6


def _check_inputs(labels: Any, pred_probs: Any, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validates and converts `labels` (int64 `(n,)`) and `pred_probs` (float64 `(n, m)`)."""
    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"pred_probs must have shape (n, num_classes), received shape {probs.shape}")
    n, m = probs.shape
    if num_classes is not None and m != num_classes:
        raise ValueError(f"pred_probs has {m} columns but num_classes={num_classes}")
    if m < 2:
        raise ValueError(f"confident learning needs at least 2 classes, received pred_probs of shape {probs.shape}")
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) to match pred_probs {probs.shape}, received shape {y.shape}")
    if n == 0:
        raise ValueError("labels and pred_probs are empty")
    if not np.issubdtype(y.dtype, np.integer) and not (
        np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)
    ):
        raise ValueError(f"labels must be integer class indices in [0, {m - 1}], received dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= m:
        raise ValueError(f"labels must be in [0, {m - 1}], received values in [{y.min()}, {y.max()}]")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1 + PROBABILITY_TOLERANCE:
        raise ValueError("pred_probs must be finite probabilities in [0, 1]")
    missing = np.flatnonzero(np.bincount(y, minlength=m) == 0)
    if len(missing):
        raise ValueError(
            f"class(es) {missing.tolist()} have no example with that label: per-class thresholds (eq. 2) "
            "are undefined; drop those columns from pred_probs"
        )
    return y, probs


@contextmanager
def _quiet() -> Iterator[None]:
    """Silences cleanlab's warnings (e.g. "may not flag all label issues in class k": a small
    class, which the audit reports itself)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def per_class_thresholds(labels: Any, pred_probs: Any) -> np.ndarray:
    """Per-class thresholds `t_j`, eq. (2): the mean self-confidence of each class (cleanlab).

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].

    Returns:
        np.ndarray float64 `(num_classes,)` in [0, 1] (`cleanlab.count.get_confident_thresholds`).

    Raises:
        ValueError: bad shapes or ranges, or a class without any example.
    """
    from cleanlab.count import get_confident_thresholds

    y, probs = _check_inputs(labels, pred_probs)
    return np.asarray(get_confident_thresholds(y, probs), dtype=np.float64)


def confident_joint(labels: Any, pred_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (uncalibrated) confident joint `C_ỹ,y*`, eq. (1), and the examples off its diagonal.

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].

    Returns:
        tuple `(C, off_diagonal)`: int64 `(num_classes, num_classes)` counts, rows = given
        label, columns = the class an example is confidently counted under (diagonal entries
        at least 1); and bool `(n,)`, True for the examples counted under another class than
        their label (`cleanlab.count.compute_confident_joint`).

    Raises:
        ValueError: bad shapes or ranges, or a class without any example.
    """
    from cleanlab.count import compute_confident_joint

    y, probs = _check_inputs(labels, pred_probs)
    joint, indices = compute_confident_joint(y, probs, calibrate=False, return_indices_of_off_diagonals=True)
    off = np.zeros(len(y), dtype=bool)
    off[np.asarray(indices, dtype=np.int64)] = True
    return np.asarray(joint, dtype=np.int64), off


def estimate_joint(labels: Any, pred_probs: Any) -> np.ndarray:
    """The estimated joint `Q̂_ỹ,y*` of given and true labels, eq. (3) (`cleanlab.count.estimate_joint`).

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].

    Returns:
        np.ndarray float64 `(num_classes, num_classes)` in [0, 1], summing to 1; rows are the
        given label, columns the true label; row sums equal the label frequencies.
    """
    from cleanlab.count import estimate_joint as cl_estimate_joint

    y, probs = _check_inputs(labels, pred_probs)
    with _quiet():
        return np.asarray(cl_estimate_joint(y, probs), dtype=np.float64)


def num_label_issues(labels: Any, pred_probs: Any) -> int:
    """The number of label issues confident learning estimates (`cleanlab.count.num_label_issues`).

    The examples counted off the diagonal of the uncalibrated confident joint, eq. (1), whose
    predicted class is not their given label (cleanlab's `estimation_method="off_diagonal"`):
    the number `low_self_confidence` flags.

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].

    Returns:
        int in `[0, n]`.

    Raises:
        ValueError: bad shapes or ranges, or a class without any example.
    """
    from cleanlab.count import num_label_issues as cl_num_label_issues

    y, probs = _check_inputs(labels, pred_probs)
    return int(cl_num_label_issues(y, probs))


def _self_confidence(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """`p̂(ỹ; x)` of every example (`cleanlab.rank.get_label_quality_scores`), float64 `(n,)`."""
    from cleanlab.rank import get_label_quality_scores

    return np.asarray(get_label_quality_scores(y, probs, method="self_confidence"), dtype=np.float64)


def _keep_one_per_class(picked: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Mask of `picked` (worst first) with at most `|X_ỹ=i| - 1` of each class `i` kept."""
    cls = y[picked]
    rank_in_class = np.empty(len(picked), dtype=np.int64)
    for i in np.unique(cls):
        where = np.flatnonzero(cls == i)
        rank_in_class[where] = np.arange(len(where))
    keep = rank_in_class < np.bincount(y, minlength=int(y.max()) + 1)[cls] - 1
    issues = np.zeros(n, dtype=bool)
    issues[picked[keep]] = True
    return issues


def _low_self_confidence(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's count, its self-confidence ranking, among the examples the model disagrees
    with (ties: lower index first); a class is never emptied."""
    k = num_label_issues(y, probs)
    quality = _self_confidence(y, probs)
    candidates = np.flatnonzero(probs.argmax(axis=1) != y)
    picked = candidates[np.lexsort((candidates, quality[candidates]))][:k]
    return _keep_one_per_class(picked, y, len(y))


def find_label_issues(
    labels: Any,
    pred_probs: Any,
    method: str = DEFAULT_METHOD,
    *,
    exclude_agreeing: bool = True,
) -> np.ndarray:
    """Flags the examples whose given label is likely wrong (`cleanlab.filter.find_label_issues`).

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].
        method: str, default `DEFAULT_METHOD` (`"low_self_confidence"`). One of `METHODS` (see
            the module docstring): `"low_self_confidence"`, `"prune_by_noise_rate"` (PBNR),
            `"prune_by_class"` (PBC), `"both"` (C+NR), `"confident_joint"` or
            `"predicted_neq_given"`.
        exclude_agreeing: bool, default True. Never flag an example whose predicted class is
            its given label, nor empty a class. False is accepted for `"low_self_confidence"`
            only, and gives cleanlab's rule as it is (cleanlab keeps both guarantees itself
            for the other rules).

    Returns:
        np.ndarray bool `(n,)`, True = likely wrong label.

    Raises:
        ValueError: unknown `method`, `exclude_agreeing=False` with another rule, bad shapes or
            ranges, a class without any example.

    Example:
        >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.1, 0.9]])
        >>> find_label_issues([0, 0, 0, 1, 1], probs).tolist()
        [False, False, True, False, False]
    """
    from cleanlab.filter import find_label_issues as cl_find_label_issues

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; received method={method!r}")
    if not exclude_agreeing and method != "low_self_confidence":
        raise ValueError(f"exclude_agreeing=False applies to method='low_self_confidence' only, not {method!r}")
    y, probs = _check_inputs(labels, pred_probs)
    if method == "low_self_confidence" and exclude_agreeing:
        return _low_self_confidence(y, probs)
    with _quiet():
        mask = cl_find_label_issues(y, probs, filter_by=CLEANLAB_FILTER[method], min_examples_per_class=1, n_jobs=1)
    mask = np.asarray(mask, dtype=bool)
    return mask & (probs.argmax(axis=1) != y) if exclude_agreeing else mask


@dataclass
class ConfidentLearning:
    """Everything confident learning estimates from one `(labels, pred_probs)` pair.

    Attributes:
        method: str. The rule used for `issues` (one of `METHODS`).
        thresholds: float64 `(num_classes,)`, eq. (2).
        confident_joint: int64 `(num_classes, num_classes)`, eq. (1) (rows: given label).
        calibrated_joint: int64 `(num_classes, num_classes)`, rows summing to the label
            counts (eq. 3, numerator, rounded by cleanlab).
        joint: float64 `(num_classes, num_classes)`, `Q̂_ỹ,y*`, summing to 1 (eq. 3).
        noise_matrix: float64 `(num_classes, num_classes)`, `p(ỹ = i | y* = j)`.
        inverse_noise_matrix: float64 `(num_classes, num_classes)`, `p(y* = j | ỹ = i)`.
        noise_rate: float64 `(num_classes,)` in [0, 1]: estimated share of the examples
            labelled `i` whose true class is another one (`1 - inverse_noise_matrix[i][i]`).
        label_counts: int64 `(num_classes,)`.
        labels: int64 `(n,)`, the given labels.
        off_diagonal: bool `(n,)`: counted in the confident joint under another class than
            their label.
        issues: bool `(n,)`, True = likely wrong label.
        label_quality: float64 `(n,)` in [0, 1], the self-confidence; lower = more likely wrong.
        suggested_label: int64 `(n,)`, `argmax` of each row of `pred_probs`.
        suggested_probability: float64 `(n,)` in [0, 1], the probability of `suggested_label`.
    """

    method: str
    thresholds: np.ndarray
    confident_joint: np.ndarray
    calibrated_joint: np.ndarray
    joint: np.ndarray
    noise_matrix: np.ndarray
    inverse_noise_matrix: np.ndarray
    noise_rate: np.ndarray
    label_counts: np.ndarray
    labels: np.ndarray
    off_diagonal: np.ndarray
    issues: np.ndarray
    label_quality: np.ndarray
    suggested_label: np.ndarray
    suggested_probability: np.ndarray

    @property
    def estimated_noise_fraction(self) -> float:
        """Estimated share of wrong labels in the whole dataset, `1 - trace(Q̂)`, in [0, 1]."""
        return float(1.0 - np.trace(self.joint))

    def issue_order(self) -> np.ndarray:
        """Indices of the flagged examples, worst first: lowest `label_quality`, then the
        highest `suggested_probability`, then index. int64 `(number of issues,)`."""
        idx = np.flatnonzero(self.issues)
        return idx[np.lexsort((idx, -self.suggested_probability[idx], self.label_quality[idx]))]

    def group_noise_rate(self, mask: Any) -> float:
        """Estimated share of wrong labels among a subset of the examples (e.g. one source).

        Each example of class `i` counted off the diagonal of the confident joint stands for
        `(calibrated off-diagonal count of row i) / (its uncalibrated off-diagonal count)`
        examples (the calibration of eq. 3), so the estimate is the sum of those weights over
        the subset's off-diagonal examples divided by the subset's size. It equals
        `noise_rate[i]` when the subset is the whole class `i`.

        Args:
            mask: bool array `(n,)` selecting the subset.

        Returns:
            float in [0, 1] (clipped), or NaN for an empty subset.
        """
        mask = np.asarray(mask, dtype=bool)
        size = int(mask.sum())
        if size == 0:
            return float("nan")
        m = len(self.label_counts)
        counted_off = np.bincount(self.labels[self.off_diagonal], minlength=m).astype(np.float64)
        calibrated_off = self.label_counts - np.diag(self.calibrated_joint)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(counted_off > 0, calibrated_off / counted_off, 0.0)
        chosen = self.labels[mask & self.off_diagonal]
        return float(min(1.0, weight[chosen].sum() / size))


def confident_learning(
    labels: Any,
    pred_probs: Any,
    method: str = DEFAULT_METHOD,
    *,
    exclude_agreeing: bool = True,
) -> ConfidentLearning:
    """Runs confident learning end to end through cleanlab: thresholds, joints, noise, issues, scores.

    Pure: arrays in, a record out.

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1]
            (rows summing to 1), e.g. from `imgclf.audit.oof.cross_validated_probabilities`.
        method: str, default `DEFAULT_METHOD` (`"low_self_confidence"`). One of `METHODS`.
        exclude_agreeing: bool, default True. See `find_label_issues`.

    Returns:
        ConfidentLearning.

    Raises:
        ValueError: unknown `method`, bad shapes or ranges, a class without any example.
    """
    from cleanlab.count import calibrate_confident_joint, estimate_latent
    from cleanlab.count import estimate_joint as cl_estimate_joint

    y, probs = _check_inputs(labels, pred_probs)
    m = probs.shape[1]
    joint_counts, off = confident_joint(y, probs)
    counts = np.bincount(y, minlength=m).astype(np.int64)
    with _quiet():
        cal = np.asarray(calibrate_confident_joint(joint_counts, y), dtype=np.int64)
        _, noise, inverse_t = estimate_latent(cal, y)
        q = np.asarray(cl_estimate_joint(y, probs, confident_joint=joint_counts), dtype=np.float64)
    inverse = np.asarray(inverse_t, dtype=np.float64).T
    issues = find_label_issues(y, probs, method, exclude_agreeing=exclude_agreeing)
    rows = np.arange(len(y))
    suggested = probs.argmax(axis=1).astype(np.int64)
    return ConfidentLearning(
        method=method,
        thresholds=per_class_thresholds(y, probs),
        confident_joint=joint_counts,
        calibrated_joint=cal,
        joint=q,
        noise_matrix=np.asarray(noise, dtype=np.float64),
        inverse_noise_matrix=inverse,
        noise_rate=1.0 - np.diag(inverse),
        label_counts=counts,
        labels=y,
        off_diagonal=off,
        issues=issues,
        label_quality=_self_confidence(y, probs),
        suggested_label=suggested,
        suggested_probability=probs[rows, suggested],
    )
