"""Near-duplicate search: multi-index hashing returns exactly the brute-force pairs."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.clean.similarity.hamming import brute_force_pairs, hamming_pairs, pack_bits, plan_chunks
from imgclf.clean.similarity.pairs import connected_components


def _codes(n: int, bits: int, seed: int, copies: float = 0.3, flip: float = 0.06) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = rng.random((n, bits)) < 0.5
    k = int(n * copies)
    src = rng.integers(0, n - k, size=k)
    b[n - k :] = b[src] ^ (rng.random((k, bits)) < flip)  # planted near copies
    b[:5] = b[0]  # a few exact duplicates
    return pack_bits(b)


@pytest.mark.parametrize(
    "n, bits, radius",
    [
        (2000, 64, 10),
        (2000, 64, 0),
        (1500, 64, 3),
        (1500, 256, 16),
        (1200, 256, 40),
        (1500, 16, 4),
        (800, 144, 12),
        (3000, 64, 20),
    ],
)
def test_mih_equals_brute_force(n, bits, radius):
    codes = _codes(n, bits, seed=n + bits + radius)
    got = hamming_pairs(codes, radius, bits=bits, method="mih")
    want = brute_force_pairs(codes, radius)
    assert len(want[0]) > 0
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_uniform_random_64bit_radius_10():
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 2**63, size=(4000, 1), dtype=np.int64).astype(np.uint64) * np.uint64(2)
    codes[100:110] = codes[0] ^ np.uint64(0b1111111111)  # exactly 10 bits from code 0
    got = hamming_pairs(codes, 10, method="mih")
    want = brute_force_pairs(codes, 10)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert {(0, k) for k in range(100, 110)} <= set(zip(got[0].tolist(), got[1].tolist()))


def test_plan_chunks_satisfies_pigeonhole():
    for n, bits, r in [(10_000, 64, 10), (1_000_000, 64, 10), (70_000, 256, 16), (100, 64, 0)]:
        plan = plan_chunks(n, bits, r)
        m = len(plan.bounds)
        assert sum(plan.radii) == r - m + 1
        assert plan.bounds[0][0] == 0 and plan.bounds[-1][1] == bits


def test_connected_components_deterministic():
    labels = connected_components(6, np.array([4, 1]), np.array([5, 2]))
    assert labels.tolist() == [0, 1, 1, 2, 3, 3]


def test_negative_radius_rejected():
    with pytest.raises(ValueError, match="radius"):
        hamming_pairs(np.zeros((3, 1), dtype=np.uint64), -1)


def test_auto_method_and_tiny_inputs():
    codes = _codes(300, 64, seed=5)
    want = brute_force_pairs(codes, 6)
    for g, w in zip(hamming_pairs(codes, 6), want):
        np.testing.assert_array_equal(g, w)
    assert all(len(x) == 0 for x in hamming_pairs(codes[:1], 6))
    assert all(len(x) == 0 for x in hamming_pairs(np.zeros((0, 1), dtype=np.uint64), 6))
