"""`imgclf.stats`: bootstrap intervals and the exact McNemar test against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imgclf.evaluate import compute_metrics
from imgclf.stats import (
    METRICS,
    bootstrap_metrics,
    mcnemar_exact,
    mean_std,
    point_metrics,
    score_images,
)


def _case(n_correct: int, n: int, num_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """n images, the first n_correct predicted right (p 0.7 on the true class), the rest wrong."""
    labels = np.arange(n) % num_classes
    probs = np.full((n, num_classes), 0.3 / (num_classes - 1))
    pred = labels.copy()
    pred[n_correct:] = (labels[n_correct:] + 1) % num_classes
    probs[np.arange(n), pred] = 0.7
    return probs, labels


def test_point_metrics_equal_scikit_learn_through_compute_metrics():
    rng = np.random.default_rng(3)
    n, k = 97, 5
    labels = rng.integers(0, 4, n)  # class 4 never true...
    logits = rng.normal(size=(n, k)) * 2
    logits[np.arange(n), labels] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs = probs.astype(np.float32)
    expected = compute_metrics(probs, labels, list("abcde"), top_k=2)
    got = point_metrics(score_images(probs, labels, top_k=2))
    for m in METRICS:
        assert got[m] == pytest.approx(expected[m], abs=1e-6 if m == "ece" else 1e-12), m


def test_bootstrap_interval_contains_the_known_value_and_shrinks_with_more_images():
    small = score_images(*_case(40, 50))  # accuracy exactly 0.8
    large = score_images(*_case(400, 500))  # the same accuracy on 10x the images
    a = bootstrap_metrics(small).intervals["accuracy"]
    b = bootstrap_metrics(large).intervals["accuracy"]
    assert a.value == pytest.approx(0.8) and b.value == pytest.approx(0.8)
    assert a.low < 0.8 < a.high and b.low < 0.8 < b.high
    assert (b.high - b.low) < (a.high - a.low) / 2  # ~1/sqrt(10) as wide
    # the percentile interval of a mean of n Bernoulli(0.8) is close to 0.8 +- 1.96 sqrt(0.16 / n)
    half = 1.96 * math.sqrt(0.8 * 0.2 / 500)
    assert (b.high - b.low) == pytest.approx(2 * half, rel=0.15)


def test_bootstrap_is_seeded_and_covers_every_metric():
    s = score_images(*_case(30, 40))
    r1, r2, r3 = bootstrap_metrics(s, seed=5), bootstrap_metrics(s, seed=5), bootstrap_metrics(s, seed=6)
    assert r1.intervals == r2.intervals and r1.intervals != r3.intervals
    assert set(r1.intervals) == set(METRICS)
    for m, iv in r1.intervals.items():
        assert iv.low <= iv.value <= iv.high, m
    d = r1.as_dict()
    assert d["n_resamples"] == 2000 and d["level"] == 0.95 and d["seed"] == 5 and "Efron" in d["method"]
    # a higher level gives a wider interval
    wide = bootstrap_metrics(s, level=0.99, seed=5).intervals["accuracy"]
    assert wide.high - wide.low > r1.intervals["accuracy"].high - r1.intervals["accuracy"].low


def test_a_perfect_model_has_a_zero_width_accuracy_interval():
    labels = np.array([0, 1, 2, 0, 1, 2])
    iv = bootstrap_metrics(score_images(np.eye(3)[labels], labels)).intervals["accuracy"]
    assert (iv.low, iv.value, iv.high) == (1.0, 1.0, 1.0)


def test_several_runs_are_resampled_together_and_averaged():
    probs, labels = _case(30, 40)
    one = bootstrap_metrics(score_images(probs, labels))
    twice = bootstrap_metrics(score_images(np.stack([probs, probs]), labels))
    assert twice.n_runs == 2
    for m in METRICS:  # the mean of two identical runs is that run
        assert twice.intervals[m].low == pytest.approx(one.intervals[m].low)
        assert twice.intervals[m].high == pytest.approx(one.intervals[m].high)
    worse, _ = _case(20, 40)
    pair = point_metrics(score_images(np.stack([probs, worse]), labels))
    assert pair["accuracy"] == pytest.approx((30 / 40 + 20 / 40) / 2)


def test_mcnemar_matches_the_exact_binomial_of_a_hand_counted_table():
    # 2x2 table by hand over 20 images: both right 10, only A right (b) 7, only B right (c) 1, both wrong 2
    a = np.array([1] * 10 + [1] * 7 + [0] * 1 + [0] * 2, bool)
    b = np.array([1] * 10 + [0] * 7 + [1] * 1 + [0] * 2, bool)
    r = mcnemar_exact(a, b)
    assert (r.b, r.c, r.discordant, r.n_images) == (7, 1, 8, 20)
    # two-sided exact p = 2 * P(X <= 1), X ~ Binomial(8, 1/2) = 2 * (1 + 8) / 256
    assert r.p_value == pytest.approx(18 / 256)
    # b = 10, c = 2: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2**12 = 2 * 79 / 4096
    r = mcnemar_exact([1] * 10 + [0] * 2 + [1] * 5, [0] * 10 + [1] * 2 + [1] * 5)
    assert (r.b, r.c) == (10, 2) and r.p_value == pytest.approx(158 / 4096)
    # symmetric in the sense of a swap: b and c exchange, p stays
    assert mcnemar_exact(b, a).p_value == pytest.approx(18 / 256) and mcnemar_exact(b, a).b == 1


def test_mcnemar_without_discordant_pairs_or_balanced_is_one():
    same = np.array([1, 0, 1, 1], bool)
    assert mcnemar_exact(same, same).p_value == 1.0
    assert mcnemar_exact([1, 0, 1, 0], [0, 1, 1, 0]).p_value == pytest.approx(1.0)  # b = c = 1
    with pytest.raises(ValueError, match="same shape"):
        mcnemar_exact([1, 0], [1, 0, 1])


def test_mean_std_uses_the_sample_standard_deviation():
    m, s = mean_std([0.98, 0.99, 1.0])
    assert m == pytest.approx(0.99) and s == pytest.approx(0.01)
    assert mean_std([0.5]) == (0.5, None)
    with pytest.raises(ValueError):
        mean_std([])


def test_score_images_rejects_bad_shapes_and_labels():
    with pytest.raises(ValueError, match="shape"):
        score_images(np.ones((3, 2)) / 2, np.array([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        score_images(np.ones((2, 2)) / 2, np.array([0, 2]))
