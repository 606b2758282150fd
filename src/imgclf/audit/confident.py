"""Confident learning: find wrong labels from out-of-sample predicted probabilities.

Implemented from the paper, in NumPy only: C. G. Northcutt, L. Jiang and I. L. Chuang,
"Confident Learning: Estimating Uncertainty in Dataset Labels", Journal of Artificial
Intelligence Research 70 (2021) 1373-1411 (arXiv:1911.00068). Section numbers and equation
numbers below are the paper's.

Notation (paper section 2): `n` examples, `m` classes (here `num_classes`), given (noisy)
labels `ỹ` (`labels`), unknown true labels `y*`, and out-of-sample predicted probabilities
`p̂(ỹ = j; x, θ)` (`pred_probs`, shape `(n, num_classes)`, rows summing to 1). Every
probability must come from a model that did not train on that example (see
`imgclf.audit.oof`); in-sample probabilities make every label look right.

The steps (section 3.1, "Count"):

1. Per-class thresholds, eq. (2): `t_j` = the mean self-confidence of the examples labelled
   `j`, `t_j = mean over {x : ỹ = j} of p̂(ỹ = j; x)`.
2. The confident joint, eq. (1): `C[i][j]` counts the examples labelled `i` whose predicted
   probability of class `j` reaches `t_j`; when several classes reach their threshold, the
   example is counted once, under the class with the largest probability among those that
   reach it. Examples with no class at or above its threshold are not counted.
3. Calibration, eq. (3): each row of `C` is rescaled to the number of examples with that
   given label, `C̃[i][j] = C[i][j] / sum_j' C[i][j'] * |X_ỹ=i|`; the estimated joint
   `Q̂[i][j] = C̃[i][j] / sum C̃` is an estimate of `p(ỹ = i, y* = j)`.
4. Noise rates (section 2 and 3.1): the noise matrix `p(ỹ = i | y* = j) = Q̂[i][j] /
   sum_i' Q̂[i'][j]` (columns sum to 1) and the inverse noise matrix `p(y* = j | ỹ = i) =
   Q̂[i][j] / sum_j' Q̂[i][j']` (rows sum to 1). The noise rate of a class folder `i` is the
   estimated share of its examples whose true class is another one, `1 - p(y* = i | ỹ = i)`.

Finding the label issues (section 3.2, "Rank and Prune"), `method`:

- `"low_self_confidence"` (imgclf's default, `DEFAULT_METHOD`; cleanlab's
  `filter_by="low_self_confidence"`): count, then rank. The number of issues `k` is the number
  of examples counted off the diagonal of the (uncalibrated) confident joint, eq. (1), whose
  predicted class is not their label -- cleanlab's `count.num_label_issues` estimate
  (`estimation_method="off_diagonal"`); the `k` examples with the lowest self-confidence
  `p̂(ỹ; x)` over the whole dataset are flagged. Rank and count are the paper's (section 3.2
  ranks by self-confidence; section 3.1 counts); ranking across classes instead of within each
  (PBC) lets a class whose examples the model is unsure about in general (e.g. Fashion-MNIST's
  shirts) give up fewer of them.
- `"prune_by_noise_rate"` (PBNR, the paper's and cleanlab's default): for every off-diagonal
  entry `(i, j)`, flag the `n * Q̂[i][j]` examples labelled `i` with the largest margin
  `p̂(j; x) - p̂(i; x)`.
- `"prune_by_class"` (PBC): in every class `i`, flag the `n * sum_{j != i} Q̂[i][j]` examples
  labelled `i` with the lowest self-confidence `p̂(i; x)`.
- `"both"` (C+NR): examples flagged by both PBC and PBNR.
- `"confident_joint"` (C_ỹ,y*): the examples counted off the diagonal of the confident joint.
- `"predicted_neq_given"` (C_confusion, the paper's baseline): `argmax_j p̂(j; x) != ỹ`.

Counts `n * Q̂[i][j]` (which equal `C̃[i][j]`) are made integers row by row with the largest
remainder method, so each row still sums to the number of examples with that label; equal
remainders go to the cell with the stronger next candidate (`prune_counts`).

Two choices this module makes that the paper leaves open, both documented on the functions:
an example whose predicted class (argmax) is its given label is never flagged
(`exclude_agreeing=True`, the default; a model that agrees with a label offers no evidence
against it), and a class is never emptied: at most `|X_ỹ=i| - 1` of its examples are flagged.

Scores (section 3.2 ranks by them): `label_quality` is the self-confidence `p̂(ỹ; x)` in
[0, 1], lower = more likely wrong; `suggested_label` is the predicted class `argmax_j p̂(j; x)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Values accepted by `find_label_issues(method=...)`: the paper's section 3.2 rules and the
#: count-then-rank rule `low_self_confidence` (the default).
METHODS: tuple[str, ...] = (
    "low_self_confidence",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_joint",
    "predicted_neq_given",
)

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

#: Tolerance when comparing a probability with a threshold (float32 sums are not exact).
THRESHOLD_TOLERANCE = 1e-6


def _check_inputs(labels, pred_probs, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"labels must be integer class indices in [0, {m - 1}], received dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= m:
        raise ValueError(f"labels must be in [0, {m - 1}], received values in [{y.min()}, {y.max()}]")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1 + THRESHOLD_TOLERANCE:
        raise ValueError("pred_probs must be finite probabilities in [0, 1]")
    missing = np.flatnonzero(np.bincount(y, minlength=m) == 0)
    if len(missing):
        raise ValueError(
            f"class(es) {missing.tolist()} have no example with that label: per-class thresholds (eq. 2) "
            "are undefined; drop those columns from pred_probs"
        )
    return y, probs


def self_confidence(labels, pred_probs) -> np.ndarray:
    """Returns the self-confidence `p̂(ỹ = given label; x)` of every example.

    The paper ranks examples by it (section 3.2, prune by class); here it is the
    `label_quality` score: lower = more likely a wrong label.

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].

    Returns:
        np.ndarray float64 `(n,)` in [0, 1].

    Raises:
        ValueError: shapes that do not match, labels out of range, a class with no example.
    """
    y, probs = _check_inputs(labels, pred_probs)
    return probs[np.arange(len(y)), y]


def per_class_thresholds(labels, pred_probs) -> np.ndarray:
    """Per-class thresholds `t_j`, eq. (2): the mean self-confidence of each class.

    `t_j = (1 / |X_ỹ=j|) * sum over x labelled j of p̂(ỹ = j; x)`.

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].

    Returns:
        np.ndarray float64 `(num_classes,)` in [0, 1].

    Raises:
        ValueError: bad shapes or ranges, or a class without any example.
    """
    y, probs = _check_inputs(labels, pred_probs)
    m = probs.shape[1]
    sums = np.bincount(y, weights=probs[np.arange(len(y)), y], minlength=m)
    return sums / np.bincount(y, minlength=m)


def confident_true_labels(pred_probs, thresholds) -> np.ndarray:
    """The class each example is confidently counted under in eq. (1), or -1.

    Among the classes `j` with `p̂(j; x) >= t_j`, the one with the largest `p̂(j; x)`
    (ties: the lowest class index); -1 when no class reaches its threshold. A probability of
    exactly 0 never counts (it would reach a threshold of 0, the mean self-confidence of a class
    no model in the cross-validation could predict).

    Args:
        pred_probs: float array `(n, num_classes)`.
        thresholds: float array `(num_classes,)`, e.g. from `per_class_thresholds`.

    Returns:
        np.ndarray int64 `(n,)` with values in `[-1, num_classes)`.
    """
    probs = np.asarray(pred_probs, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if t.shape != (probs.shape[1],):
        raise ValueError(f"thresholds must have shape ({probs.shape[1]},), received {t.shape}")
    above = (probs >= t[None, :] - THRESHOLD_TOLERANCE) & (probs > 0)
    masked = np.where(above, probs, -np.inf)
    guess = masked.argmax(axis=1)
    return np.where(above.any(axis=1), guess, -1).astype(np.int64)


def confident_joint(labels, pred_probs, thresholds=None) -> tuple[np.ndarray, np.ndarray]:
    """The (uncalibrated) confident joint `C_ỹ,y*`, eq. (1).

    `C[i][j]` = number of examples with given label `i` counted under class `j` by
    `confident_true_labels` (rows: given label, columns: estimated true label).

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].
        thresholds: float array `(num_classes,)` or None, default None (eq. 2,
            `per_class_thresholds`).

    Returns:
        tuple `(C, true_guess)`: int64 `(num_classes, num_classes)` counts summing to the
        number of counted examples (at most n), and int64 `(n,)` in `[-1, num_classes)` from
        `confident_true_labels`.

    Raises:
        ValueError: bad shapes or ranges, or a class without any example.
    """
    y, probs = _check_inputs(labels, pred_probs)
    m = probs.shape[1]
    t = per_class_thresholds(y, probs) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    guess = confident_true_labels(probs, t)
    counted = guess >= 0
    joint = np.bincount(y[counted] * m + guess[counted], minlength=m * m).reshape(m, m)
    return joint.astype(np.int64), guess


def calibrate_confident_joint(joint, label_counts) -> np.ndarray:
    """Rescales each row of the confident joint to its label count (eq. 3, numerator).

    `C̃[i][j] = C[i][j] / sum_j' C[i][j'] * |X_ỹ=i|`. A row with no counted example gives no
    evidence of noise for that class: it becomes `|X_ỹ=i|` on the diagonal.

    Args:
        joint: array `(num_classes, num_classes)` of non-negative counts (`confident_joint`).
        label_counts: array `(num_classes,)`: number of examples with each given label.

    Returns:
        np.ndarray float64 `(num_classes, num_classes)`; row `i` sums to `label_counts[i]`.
    """
    c = np.asarray(joint, dtype=np.float64)
    counts = np.asarray(label_counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or counts.shape != (c.shape[0],):
        raise ValueError(f"joint must be (m, m) and label_counts (m,), received {c.shape} and {counts.shape}")
    rows = c.sum(axis=1)
    out = np.zeros_like(c)
    nz = rows > 0
    out[nz] = c[nz] / rows[nz, None] * counts[nz, None]
    empty = np.flatnonzero(~nz)
    out[empty, empty] = counts[empty]
    return out


def estimate_joint(labels, pred_probs, thresholds=None) -> np.ndarray:
    """The estimated joint `Q̂_ỹ,y*` of given and true labels, eq. (3).

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].
        thresholds: float array `(num_classes,)` or None (eq. 2).

    Returns:
        np.ndarray float64 `(num_classes, num_classes)` in [0, 1], summing to 1; rows are the
        given label, columns the true label; row sums equal the label frequencies.
    """
    y, probs = _check_inputs(labels, pred_probs)
    joint, _ = confident_joint(y, probs, thresholds)
    cal = calibrate_confident_joint(joint, np.bincount(y, minlength=probs.shape[1]))
    return cal / cal.sum()


def noise_matrices(joint) -> tuple[np.ndarray, np.ndarray]:
    """The noise matrix and the inverse noise matrix from an estimated joint (section 2).

    Args:
        joint: array `(num_classes, num_classes)`, `Q̂[i][j] ≈ p(ỹ = i, y* = j)`.

    Returns:
        tuple `(noise, inverse)`, float64 `(num_classes, num_classes)`:
        `noise[i][j] = p(ỹ = i | y* = j)` (columns sum to 1; a class no example is
        estimated to truly belong to gets the identity column), and
        `inverse[i][j] = p(y* = j | ỹ = i)` (rows sum to 1).
    """
    q = np.asarray(joint, dtype=np.float64)
    m = q.shape[0]
    col = q.sum(axis=0)
    row = q.sum(axis=1)
    eye = np.eye(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        noise = np.where(col[None, :] > 0, q / col[None, :], eye)
        inverse = np.where(row[:, None] > 0, q / row[:, None], eye)
    return noise, inverse


def _round_rows(matrix: np.ndarray, tie_key: np.ndarray | None = None) -> np.ndarray:
    """Rounds each row to integers with the same (integer) total, largest remainder first.

    Remainders equal to within 1e-9 are ordered by `tie_key` (larger first), then by column.
    """
    floor = np.floor(matrix + 1e-9)
    out = floor.astype(np.int64)
    cols = np.arange(matrix.shape[1])
    key = np.zeros_like(matrix) if tie_key is None else tie_key
    for i in range(matrix.shape[0]):
        short = int(round(matrix[i].sum())) - int(out[i].sum())
        if short > 0:
            rem = np.round(matrix[i] - floor[i], 9)
            order = np.lexsort((cols, -key[i], -rem))
            out[i, order[:short]] += 1
    return out


def _next_margins(y: np.ndarray, probs: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """For each cell (i, j), the margin `p̂(j; x) - p̂(i; x)` of the example labelled i that
    prune by noise rate would take next after `floor[i][j]` (-inf when there is none)."""
    m = probs.shape[1]
    out = np.full((m, m), -np.inf)
    for i in range(m):
        members = np.flatnonzero(y == i)
        for j in range(m):
            k = int(floor[i, j])
            if j != i and k < len(members):
                margin = np.sort(probs[members, j] - probs[members, i])[::-1]
                out[i, j] = margin[k]
    return out


def prune_counts(labels, pred_probs, thresholds=None) -> np.ndarray:
    """How many examples of each (given, true) pair to prune: `n * Q̂`, as integers.

    Since `Q̂ = C̃ / n`, `n * Q̂[i][j] = C̃[i][j]`. The paper does not say how to make these
    integers; here each row is rounded with the largest remainder method, so that it sums to
    `|X_ỹ=i|` (prune by class then prunes exactly the off-diagonal row total). Calibration
    often gives several cells of a row the same remainder (cells counted once each, scaled by
    the same factor); such ties go to the cell whose next candidate example has the larger
    margin `p̂(j; x) - p̂(i; x)`: the extra count goes where the evidence is stronger.

    Returns:
        np.ndarray int64 `(num_classes, num_classes)`; off-diagonal entries are the numbers
        used by prune by noise rate, row sums minus the diagonal by prune by class.
    """
    y, probs = _check_inputs(labels, pred_probs)
    joint, _ = confident_joint(y, probs, thresholds)
    cal = calibrate_confident_joint(joint, np.bincount(y, minlength=probs.shape[1]))
    return _round_rows(cal, _next_margins(y, probs, np.floor(cal + 1e-9)))


def num_label_issues(labels, pred_probs, thresholds=None) -> int:
    """The number of label issues confident learning estimates: the count `low_self_confidence` flags.

    The examples counted off the diagonal of the uncalibrated confident joint, eq. (1), whose
    predicted class (argmax) is not their given label. The same estimate as cleanlab's
    `cleanlab.count.num_label_issues(estimation_method="off_diagonal")`, its default.

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].
        thresholds: float array `(num_classes,)` or None, default None (eq. 2).

    Returns:
        int in `[0, n]`.

    Raises:
        ValueError: bad shapes or ranges, or a class without any example.
    """
    y, probs = _check_inputs(labels, pred_probs)
    t = per_class_thresholds(y, probs) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    guess = confident_true_labels(probs, t)
    return int(((guess >= 0) & (guess != y) & (probs.argmax(axis=1) != y)).sum())


def _lowest_self_confidence(y, probs, t, predicted, exclude_agreeing: bool) -> np.ndarray:
    """The `num_label_issues` examples of lowest self-confidence (ties: lower index first),
    among those whose predicted class is another one when `exclude_agreeing`; at most
    `|X_ỹ=i| - 1` of a class (never emptied)."""
    n, m = probs.shape
    k = num_label_issues(y, probs, t)
    conf = probs[np.arange(n), y]
    candidates = np.flatnonzero(predicted != y) if exclude_agreeing else np.arange(n)
    picked = candidates[np.lexsort((candidates, conf[candidates]))][:k]
    # never empty a class: keep at most |X_i| - 1 of class i (the lowest self-confidence ones)
    cls = y[picked]
    rank_in_class = np.empty(len(picked), dtype=np.int64)
    for i in np.unique(cls):
        where = np.flatnonzero(cls == i)
        rank_in_class[where] = np.arange(len(where))
    keep = rank_in_class < np.bincount(y, minlength=m)[cls] - 1
    issues = np.zeros(n, dtype=bool)
    issues[picked[keep]] = True
    return issues


def find_label_issues(
    labels,
    pred_probs,
    method: str = DEFAULT_METHOD,
    *,
    thresholds=None,
    exclude_agreeing: bool = True,
    counts=None,
) -> np.ndarray:
    """Flags the examples whose given label is likely wrong (section 3.2).

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1].
        method: str, default `DEFAULT_METHOD` (`"low_self_confidence"`). One of `METHODS` (see
            the module docstring): `"low_self_confidence"` (the confident joint's count, the
            lowest self-confidence), `"prune_by_noise_rate"` (PBNR), `"prune_by_class"` (PBC),
            `"both"` (C+NR), `"confident_joint"` (C_ỹ,y*) or `"predicted_neq_given"`
            (C_confusion).
        thresholds: float array `(num_classes,)` or None, default None (eq. 2).
        exclude_agreeing: bool, default True. Never flag an example whose predicted class
            (argmax of its row) is its given label. Not in the paper's rules: an imgclf choice
            (a model that agrees with a label gives no evidence against it).
        counts: int array `(num_classes, num_classes)` or None, default None (`prune_counts`).
            The number of examples to prune per (given, true) cell, for the prune rules; given,
            e.g., to compare two implementations on the same integer counts.

    Returns:
        np.ndarray bool `(n,)`, True = likely wrong label.

    Raises:
        ValueError: unknown `method`, bad shapes or ranges, a class without any example.

    Example:
        >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.1, 0.9]])
        >>> find_label_issues([0, 0, 0, 1, 1], probs).tolist()
        [False, False, True, False, False]
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; received method={method!r}")
    y, probs = _check_inputs(labels, pred_probs)
    n, m = probs.shape
    predicted = probs.argmax(axis=1)
    if method == "predicted_neq_given":
        return predicted != y
    t = per_class_thresholds(y, probs) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if method == "confident_joint":
        guess = confident_true_labels(probs, t)
        issues = (guess >= 0) & (guess != y)
    elif method == "low_self_confidence":
        issues = _lowest_self_confidence(y, probs, t, predicted, exclude_agreeing)
    else:
        counts = prune_counts(y, probs, t) if counts is None else np.asarray(counts, dtype=np.int64)
        if counts.shape != (m, m):
            raise ValueError(f"counts must have shape ({m}, {m}), received {counts.shape}")
        label_counts = np.bincount(y, minlength=m)
        pbc = np.zeros(n, dtype=bool)
        pbnr = np.zeros(n, dtype=bool)
        for i in range(m):
            members = np.flatnonzero(y == i)
            cap = max(0, int(label_counts[i]) - 1)  # never empty a class
            if method in ("prune_by_class", "both"):
                k = min(cap, int(counts[i].sum() - counts[i, i]))
                if k > 0:
                    conf = probs[members, i]
                    order = np.lexsort((members, conf))  # lowest self-confidence first
                    pbc[members[order[:k]]] = True
            if method in ("prune_by_noise_rate", "both"):
                for j in range(m):
                    k = min(cap, int(counts[i, j])) if j != i else 0
                    if k > 0:
                        margin = probs[members, j] - probs[members, i]
                        order = np.lexsort((members, -margin))  # largest margin first
                        pbnr[members[order[:k]]] = True
        issues = {"prune_by_class": pbc, "prune_by_noise_rate": pbnr, "both": pbc & pbnr}[method]
    if exclude_agreeing:
        issues = issues & (predicted != y)
    return issues


@dataclass
class ConfidentLearning:
    """Everything confident learning estimates from one `(labels, pred_probs)` pair.

    Attributes:
        method: str. The rule used for `issues` (one of `METHODS`).
        thresholds: float64 `(num_classes,)`, eq. (2).
        confident_joint: int64 `(num_classes, num_classes)`, eq. (1) (rows: given label).
        calibrated_joint: float64 `(num_classes, num_classes)`, rows summing to the label
            counts (eq. 3, numerator).
        joint: float64 `(num_classes, num_classes)`, `Q̂_ỹ,y*`, summing to 1 (eq. 3).
        noise_matrix: float64 `(num_classes, num_classes)`, `p(ỹ = i | y* = j)`.
        inverse_noise_matrix: float64 `(num_classes, num_classes)`, `p(y* = j | ỹ = i)`.
        noise_rate: float64 `(num_classes,)` in [0, 1]: estimated share of the examples
            labelled `i` whose true class is another one (`1 - inverse_noise_matrix[i][i]`).
        label_counts: int64 `(num_classes,)`.
        labels: int64 `(n,)`, the given labels.
        true_guess: int64 `(n,)` in `[-1, num_classes)`: the class each example was counted
            under in the confident joint, -1 if none.
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
    true_guess: np.ndarray
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

    def group_noise_rate(self, mask) -> float:
        """Estimated share of wrong labels among a subset of the examples (e.g. one source).

        Each example counted off the diagonal of the confident joint stands for
        `|X_ỹ=i| / sum_j C[i][j]` examples of its given class `i` (the calibration of eq. 3),
        so the estimate is `sum of those weights over the subset's off-diagonal examples /
        subset size`. It equals `noise_rate[i]` when the subset is the whole class `i`.

        Args:
            mask: bool array `(n,)` selecting the subset.

        Returns:
            float in [0, 1] (clipped), or NaN for an empty subset.
        """
        mask = np.asarray(mask, dtype=bool)
        size = int(mask.sum())
        if size == 0:
            return float("nan")
        rows = self.confident_joint.sum(axis=1).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = np.where(rows > 0, self.label_counts / rows, 0.0)
        given = np.flatnonzero(mask)
        guess = self.true_guess[given]
        labels = self.labels[given]
        off = (guess >= 0) & (guess != labels)
        return float(min(1.0, weight[labels[off]].sum() / size))


def confident_learning(
    labels,
    pred_probs,
    method: str = DEFAULT_METHOD,
    *,
    exclude_agreeing: bool = True,
) -> ConfidentLearning:
    """Runs confident learning end to end: thresholds, joints, noise rates, issues, scores.

    Args:
        labels: int array `(n,)`, given labels in `[0, num_classes)`; every class must occur.
        pred_probs: float array `(n, num_classes)`, out-of-sample probabilities in [0, 1]
            (rows summing to 1), e.g. from `imgclf.audit.oof.out_of_fold_probabilities`.
        method: str, default `DEFAULT_METHOD` (`"low_self_confidence"`). One of `METHODS`.
        exclude_agreeing: bool, default True. See `find_label_issues`.

    Returns:
        ConfidentLearning.

    Raises:
        ValueError: unknown `method`, bad shapes or ranges, a class without any example.
    """
    y, probs = _check_inputs(labels, pred_probs)
    m = probs.shape[1]
    t = per_class_thresholds(y, probs)
    joint_counts, guess = confident_joint(y, probs, t)
    counts = np.bincount(y, minlength=m).astype(np.int64)
    cal = calibrate_confident_joint(joint_counts, counts)
    q = cal / cal.sum()
    noise, inverse = noise_matrices(q)
    issues = find_label_issues(y, probs, method, thresholds=t, exclude_agreeing=exclude_agreeing)
    rows = np.arange(len(y))
    suggested = probs.argmax(axis=1).astype(np.int64)
    return ConfidentLearning(
        method=method,
        thresholds=t,
        confident_joint=joint_counts,
        calibrated_joint=cal,
        joint=q,
        noise_matrix=noise,
        inverse_noise_matrix=inverse,
        noise_rate=1.0 - np.diag(inverse),
        label_counts=counts,
        labels=y,
        true_guess=guess,
        issues=issues,
        label_quality=probs[rows, y],
        suggested_label=suggested,
        suggested_probability=probs[rows, suggested],
    )
