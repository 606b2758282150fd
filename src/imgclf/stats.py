"""Statistics for judging classifiers on one test set: bootstrap confidence intervals, McNemar.

Pure functions: NumPy arrays in, numbers out, no I/O. `imgclf evaluate` stores the intervals
of one run in `metrics.json`; `imgclf compare` computes them for groups of runs (several seeds
of one model) and tests each model against the best on the same test images.

- **Confidence intervals** (`bootstrap_metrics`): the percentile bootstrap over test images
  (Efron & Tibshirani, 1993, *An Introduction to the Bootstrap*, Chapman & Hall, ch. 13): draw
  `n` test images with replacement `n_resamples` times, compute the metric on every resample,
  and take the `(1 - level) / 2` and `(1 + level) / 2` quantiles of the resampled values. The
  resampling is `scipy.stats.bootstrap(method="percentile")`, seeded. Default 2,000 resamples
  (`BOOTSTRAP_RESAMPLES`): Efron & Tibshirani advise on the order of 1,000 or more for
  percentile endpoints, fewer (50-200) only for standard errors. The interval covers what a new
  test set of the same size from the same distribution could show; it does not cover the
  run-to-run spread of training (seeds), which `compare` reports as a standard deviation.
  Several runs evaluated on the same images are resampled *together* (the same image indices
  for every run), and the statistic is the mean over the runs.
- **Paired test** (`mcnemar_exact`): McNemar's test (McNemar, 1947, "Note on the sampling error
  of the difference between correlated proportions or percentages", Psychometrika 12:153-157)
  for two classifiers on the same images, in its exact form: under the null hypothesis of equal
  error rates, the number `b` of images only the first gets right among the `b + c` images on
  which they disagree is Binomial(b + c, 1/2); the two-sided p-value is the binomial test
  (`scipy.stats.binomtest`), which for p = 1/2 equals `min(1, 2 * P(X <= min(b, c)))`. The
  exact form needs no continuity correction (Edwards, 1948, Psychometrika 13:185-187, corrects
  the chi-squared approximation) and is the one to use when `b + c` is small, as it is between
  good classifiers (Dietterich, 1998, "Approximate statistical tests for comparing supervised
  classification learning algorithms", Neural Computation 10:1895-1923).

The metrics computed on resamples are the ones of `imgclf.evaluate.compute_metrics` (which uses
scikit-learn): accuracy, cross-entropy loss, macro precision / recall / F1 over the classes
present in the truth or the predictions (scikit-learn's default label set, `zero_division=0`),
top-k accuracy, and the expected calibration error with equal-width bins (Guo et al., 2017). They
are recomputed here from confusion counts, vectorized over resamples; `tests/test_stats.py`
checks that on the full sample they equal scikit-learn's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Resamples of the percentile bootstrap (Efron & Tibshirani 1993, ch. 13).
BOOTSTRAP_RESAMPLES = 2000

#: Seed of the bootstrap's random generator (`numpy.random.default_rng`).
BOOTSTRAP_SEED = 0

#: Confidence level of the intervals.
CI_LEVEL = 0.95

#: Metrics `bootstrap_metrics` computes on every resample, in this order.
METRICS: tuple[str, ...] = ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro", "top_k_accuracy", "ece")

#: Equal-width confidence bins of the ECE (Guo et al., 2017, eq. 3, M = 15).
ECE_BINS = 15

#: Images per batch of resamples is chosen so a batch holds about this many indices (memory bound).
_BATCH_CELLS = 4_000_000


# ------------------------------------------------------------------------- per-image arrays
@dataclass(frozen=True)
class ScoredImages:
    """Per-image facts of R runs on the same n test images, from which every metric follows.

    Build it with `score_images`. Arrays have shape `(R, n)` (one row per run) except `labels`.

    Attributes:
        labels: np.ndarray `(n,)` int, true class in [0, num_classes).
        predicted: np.ndarray `(R, n)` int, argmax class of each run.
        log_loss: np.ndarray `(R, n)` float64, `-ln p(true class)` with p clipped to
            [eps, 1 - eps] (eps = float64 machine epsilon, as scikit-learn's `log_loss`).
        top_k_correct: np.ndarray `(R, n)` bool, true class among the k most probable.
        confidence: np.ndarray `(R, n)` float64, top-1 probability in [0, 1] (as given, not
            renormalized, so the ECE bins match `imgclf.evaluate.expected_calibration_error`).
        num_classes: int.
        top_k: int. The k of `top_k_correct`.
    """

    labels: np.ndarray
    predicted: np.ndarray
    log_loss: np.ndarray
    top_k_correct: np.ndarray
    confidence: np.ndarray
    num_classes: int
    top_k: int

    @property
    def correct(self) -> np.ndarray:
        """`(R, n)` bool: top-1 prediction equals the true class."""
        return self.predicted == self.labels[None, :]

    @property
    def n_runs(self) -> int:
        return int(self.predicted.shape[0])

    @property
    def n_images(self) -> int:
        return int(self.labels.shape[0])


def score_images(probs: np.ndarray | Sequence[np.ndarray], labels: np.ndarray, top_k: int = 3) -> ScoredImages:
    """Reduces probabilities of one or more runs on the same images to per-image facts.

    Args:
        probs: np.ndarray `(n, num_classes)` (one run) or `(R, n, num_classes)` / a sequence of
            R such arrays (runs on the same images, in the same order). Rows are probabilities
            (they are renormalized to sum to 1 in float64, as `compute_metrics` does).
        labels: np.ndarray `(n,)` int in [0, num_classes).
        top_k: int >= 1, default 3. k of the top-k accuracy, capped at num_classes. Ties at the
            k-th probability count as in scikit-learn's `top_k_accuracy_score` (a stable sort:
            the lower class index first).

    Returns:
        ScoredImages.

    Raises:
        ValueError: if shapes disagree, a label is out of range, or `top_k` < 1.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2:
        p = p[None]
    labels = np.asarray(labels).astype(np.int64)
    if p.ndim != 3 or p.shape[1] != labels.shape[0]:
        raise ValueError(
            "probs must be (n, classes) or (runs, n, classes) with n = len(labels), "
            f"received shape {p.shape} for {labels.shape[0]} labels"
        )
    k_classes = p.shape[2]
    if labels.size and (labels.min() < 0 or labels.max() >= k_classes):
        raise ValueError(f"labels must be in [0, {k_classes}), received values in [{labels.min()}, {labels.max()}]")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, received top_k={top_k}")
    confidence = p.max(axis=2)  # as given, as `expected_calibration_error` bins it
    p = p / p.sum(axis=2, keepdims=True)
    eps = np.finfo(np.float64).eps
    p_true = np.take_along_axis(p, labels[None, :, None], axis=2)[..., 0]
    k = min(top_k, k_classes)
    # scikit-learn's top_k_accuracy_score: argsort (stable) of the scores, last k columns
    order = np.argsort(p, axis=2, kind="stable")[..., ::-1][..., :k]
    return ScoredImages(
        labels=labels,
        predicted=p.argmax(axis=2),
        log_loss=-np.log(np.clip(p_true, eps, 1 - eps)),
        top_k_correct=(order == labels[None, :, None]).any(axis=2),
        confidence=confidence,
        num_classes=k_classes,
        top_k=k,
    )


# --------------------------------------------------------------------- metrics on resamples
def _metrics_on(s: ScoredImages, idx: np.ndarray) -> np.ndarray:
    """Every metric of `METRICS` for each row of image indices, averaged over the runs.

    Args:
        s: ScoredImages of R runs.
        idx: np.ndarray `(B, n)` int, image indices of B resamples (or `(n,)` for one sample).

    Returns:
        np.ndarray `(len(METRICS), B)` (or `(len(METRICS),)` for a 1-D `idx`).
    """
    one = idx.ndim == 1
    idx = np.atleast_2d(idx)
    b, n = idx.shape
    k = s.num_classes
    y = s.labels[idx]  # (B, n)
    out = np.zeros((len(METRICS), b))
    offsets = (np.arange(b) * k * k)[:, None]
    bin_off = (np.arange(b) * ECE_BINS)[:, None]
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    for r in range(s.n_runs):
        pred = s.predicted[r][idx]
        correct = pred == y
        cm = np.bincount((offsets + y * k + pred).ravel(), minlength=b * k * k).reshape(b, k, k)
        tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
        true_n = cm.sum(axis=2).astype(np.float64)  # rows: true class
        pred_n = cm.sum(axis=1).astype(np.float64)  # columns: predicted class
        present = (true_n + pred_n) > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(pred_n > 0, tp / pred_n, 0.0)
            rec = np.where(true_n > 0, tp / true_n, 0.0)
            f1 = np.where(true_n + pred_n > 0, 2 * tp / (true_n + pred_n), 0.0)
        n_present = present.sum(axis=1)
        conf = s.confidence[r][idx]
        # right-closed bins ((m-1)/M, m/M], a confidence of 0 in the first (as `expected_calibration_error`)
        bins = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, ECE_BINS - 1)
        flat = (bin_off + bins).ravel()
        gap = np.bincount(flat, weights=(correct - conf).ravel(), minlength=b * ECE_BINS).reshape(b, ECE_BINS)
        out[0] += correct.mean(axis=1)
        out[1] += s.log_loss[r][idx].mean(axis=1)
        out[2] += (prec * present).sum(axis=1) / n_present
        out[3] += (rec * present).sum(axis=1) / n_present
        out[4] += (f1 * present).sum(axis=1) / n_present
        out[5] += s.top_k_correct[r][idx].mean(axis=1)
        out[6] += np.abs(gap).sum(axis=1) / n
    out /= s.n_runs
    return out[:, 0] if one else out


def point_metrics(s: ScoredImages) -> dict[str, float]:
    """The metrics of `METRICS` on the full sample, averaged over the runs of `s`."""
    values = _metrics_on(s, np.arange(s.n_images))
    return {m: float(v) for m, v in zip(METRICS, values)}


@dataclass(frozen=True)
class Interval:
    """A confidence interval of one metric.

    Attributes:
        value: float. The metric on the full test set (mean over the runs).
        low, high: float. Interval bounds, `low <= high`.
    """

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile-bootstrap intervals of every metric (see `bootstrap_metrics`).

    Attributes:
        intervals: dict metric name -> Interval, for every name in `METRICS`.
        level: float. Confidence level, e.g. 0.95.
        n_resamples: int.
        seed: int.
        n_images: int. Test images resampled.
        n_runs: int. Runs averaged in the statistic.
        method: str. One line naming the method and its source.
    """

    intervals: dict[str, Interval]
    level: float
    n_resamples: int
    seed: int
    n_images: int
    n_runs: int = 1
    method: str = "percentile bootstrap over test images (Efron & Tibshirani 1993, ch. 13), scipy.stats.bootstrap"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in `metrics.json` under `confidence_intervals`."""
        return {
            "level": self.level,
            "method": self.method,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "n_images": self.n_images,
            "n_runs": self.n_runs,
            "metrics": {k: v.as_dict() for k, v in self.intervals.items()},
        }


def bootstrap_metrics(
    s: ScoredImages, *, n_resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL, seed: int = BOOTSTRAP_SEED
) -> BootstrapResult:
    """Percentile-bootstrap confidence intervals of every metric, over the test images.

    The same resampled image indices serve every metric and every run of `s` (a paired
    bootstrap: runs on the same images are resampled together), and the statistic of a resample
    is the mean of the runs' metric. Source: Efron & Tibshirani (1993), ch. 13; resampling by
    `scipy.stats.bootstrap(method="percentile", paired=True)` with
    `rng=numpy.random.default_rng(seed)`.

    Args:
        s: ScoredImages (`score_images`) of one or more runs on the same n >= 1 images.
        n_resamples: int >= 1, default 2,000 (`BOOTSTRAP_RESAMPLES`).
        level: float in (0, 1), default 0.95.
        seed: int, default 0. Same seed, same intervals.

    Returns:
        BootstrapResult; for each metric the value on the full sample and the interval. A
        metric that is the same on every resample (e.g. accuracy 1.0) has `low == high`.

    Raises:
        ValueError: if `n_resamples` < 1, `level` is not in (0, 1), or there is no image.
    """
    from scipy.stats import bootstrap

    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, received n_resamples={n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), received level={level}")
    n = s.n_images
    if n < 1:
        raise ValueError("bootstrap_metrics needs at least one image")
    point = point_metrics(s)
    if n == 1:  # every resample is the one image
        intervals = {m: Interval(v, v, v) for m, v in point.items()}
        return BootstrapResult(intervals, level, n_resamples, seed, n, s.n_runs)

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        return _metrics_on(s, idx)

    batch = max(1, _BATCH_CELLS // max(n * s.n_runs, 1))
    res = bootstrap(
        (np.arange(n),),
        statistic,
        n_resamples=n_resamples,
        batch=batch,
        vectorized=True,
        paired=True,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = np.atleast_1d(res.confidence_interval.low), np.atleast_1d(res.confidence_interval.high)
    intervals = {m: Interval(point[m], float(lo), float(hi)) for m, lo, hi in zip(METRICS, low, high)}
    return BootstrapResult(intervals, level, n_resamples, seed, n, s.n_runs)


# ----------------------------------------------------------------------------------- McNemar
@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test of two classifiers on the same images (see `mcnemar_exact`).

    Attributes:
        b: int. Images the first classifier gets right and the second wrong.
        c: int. Images the first gets wrong and the second right.
        p_value: float in [0, 1]. Two-sided exact p-value; 1.0 when `b + c == 0`.
        n_images: int. Images compared.
    """

    b: int
    c: int
    p_value: float
    n_images: int

    @property
    def discordant(self) -> int:
        """`b + c`: images on which the two disagree about being right."""
        return self.b + self.c


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemarResult:
    """Exact (binomial) McNemar test of two classifiers' correctness on the same images.

    Under H0 (equal error rates) the count `b` of images only `a` gets right is
    Binomial(b + c, 1/2) given the `b + c` discordant images; the two-sided p-value is
    `scipy.stats.binomtest(b, b + c, 0.5).pvalue` = `min(1, 2 * P(X <= min(b, c)))`.
    McNemar (1947); exact form as recommended by Dietterich (1998) for comparing classifiers.

    Args:
        correct_a: array-like `(n,)` bool, image i classified right by the first classifier.
        correct_b: array-like `(n,)` bool, the same images in the same order, second classifier.

    Returns:
        McNemarResult(b, c, p_value, n_images).

    Raises:
        ValueError: if the two arrays differ in length.
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    c_ = np.asarray(correct_b, dtype=bool)
    if a.shape != c_.shape:
        raise ValueError(f"correct_a and correct_b must have the same shape, received {a.shape} and {c_.shape}")
    b = int(np.sum(a & ~c_))
    c = int(np.sum(~a & c_))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return McNemarResult(b, c, min(p, 1.0), int(a.size))


# ----------------------------------------------------------------------------- seed spread
def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof = 1) of per-seed values.

    Args:
        values: sequence of float, one per run (seed); at least one.

    Returns:
        (mean, std): std is None for a single value (no spread can be estimated).

    Raises:
        ValueError: if `values` is empty.
    """
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_std needs at least one value")
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else None)
