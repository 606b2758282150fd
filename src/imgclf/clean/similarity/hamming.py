"""Exact Hamming search: every pair of binary hashes within a radius (the detector's stage 1).

The method is multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space
with Multi-Index Hashing", CVPR 2012) run as a self-join with numpy:

- Each `B`-bit code is cut into `m` disjoint chunks of about `B / m` bits.
- Generalized pigeonhole principle (Qin et al., "GPH: Similarity Search in Hamming Space",
  ICDE 2018): if `d(x, y) <= r` and the chunk radii `t_i` sum to `r - m + 1`, then at least
  one chunk has `d_i(x, y) <= t_i`. (Otherwise every `d_i >= t_i + 1` and `d >= r + 1`.)
- For each chunk, the codes are bucketed by chunk value; for every flip mask of weight
  `<= t_i`, buckets `u` and `u ^ mask` are joined, and each candidate pair is verified with the
  full Hamming distance (`numpy.bitwise_count`). Candidates found in several chunks are
  de-duplicated at the end.

Nothing is approximate: the result is exactly the pair set brute force returns
(`brute_force_pairs`; tested on random codes). `m` and the `t_i` are chosen by a cost model
(probes x (codes + expected candidates)), see `plan_chunks`. `scripts/bench/bench_near_duplicates.py`
compares it with faiss `IndexBinaryFlat` all-pairs; see `docs/benchmarks.md`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Chunks of at most this many bits use a dense value -> bucket table (2^bits int64 entries).
_DENSE_BITS = 22

#: Pairs found in one step of a search: `(i, j, d)` int64 arrays.
_Found = tuple[np.ndarray, np.ndarray, np.ndarray]


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Packs boolean hash bits into 64-bit words.

    Args:
        bits: np.ndarray of bool, shape `(n, B)` (or `(B,)` for one code). Bit 0 is the most
            significant bit of word 0, as `numpy.packbits` orders them.

    Returns:
        np.ndarray of uint64, shape `(n, ceil(B / 64))`; the last word is zero-padded.
    """
    bits = np.atleast_2d(np.asarray(bits, dtype=bool))
    n, b = bits.shape
    words = max(1, math.ceil(b / 64))
    padded = np.zeros((n, words * 64), dtype=bool)
    padded[:, :b] = bits
    return np.packbits(padded, axis=1).view(">u8").astype(np.uint64).reshape(n, words)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance between packed codes.

    Args:
        a, b: np.ndarray of uint64, shapes `(n, W)` and `(n, W)` (or broadcastable).

    Returns:
        np.ndarray of int, shape `(n,)`: number of differing bits.
    """
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int64)


def _as_codes(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes.reshape(-1, 1)
    if codes.dtype != np.uint64:
        codes = codes.astype(np.uint64)
    return np.ascontiguousarray(codes)


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = np.zeros(0, dtype=np.int64)
    return z, z.copy(), z.copy()


def brute_force_pairs(codes: np.ndarray, radius: int, block: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs `i < j` with Hamming distance `<= radius`, by comparing every pair.

    O(n^2): the reference for tests and for small inputs.

    Args:
        codes: np.ndarray of uint64, shape `(n, W)` or `(n,)` (packed codes, see `pack_bits`).
        radius: int >= 0. Largest distance in bits.
        block: int, default 512. Rows compared at once.

    Returns:
        tuple `(i, j, d)` of int64 arrays, sorted by `(i, j)`.
    """
    codes = _as_codes(codes)
    n = len(codes)
    out_i, out_j, out_d = [], [], []
    for s in range(0, n, block):
        a = codes[s : s + block]
        d = np.bitwise_count(a[:, None, :] ^ codes[None, s + 1 :, :]).sum(axis=-1, dtype=np.int64)
        ii, jj = np.nonzero(d <= radius)
        jj = jj + s + 1
        ii = ii + s
        keep = jj > ii
        out_i.append(ii[keep])
        out_j.append(jj[keep])
        out_d.append(d[ii[keep] - s, jj[keep] - s - 1])
    if not out_i:
        return _empty()
    i, j, d = (np.concatenate(x).astype(np.int64) for x in (out_i, out_j, out_d))
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


#: Measured cost of verifying one candidate pair relative to one bucket lookup (about 140 ns
#: vs 20 ns on a 2-core CPU, numpy 2.4); used by `plan_chunks`.
_CANDIDATE_WEIGHT = 7.0


def _buckets(n: int, bits: int) -> float:
    """Expected number of non-empty buckets when `n` uniform codes fall into `2^bits`."""
    size = 2.0**bits
    return size * -math.expm1(-n / size)


def _probes(bits: int, t: int) -> int:
    return sum(math.comb(bits, k) for k in range(0, max(t, -1) + 1))


@dataclass(frozen=True)
class ChunkPlan:
    """How `hamming_pairs` cuts the codes: bit ranges and per-chunk search radii."""

    bounds: tuple[tuple[int, int], ...]  # [start, stop) bit positions of each chunk
    radii: tuple[int, ...]  # t_i; -1 means the chunk is never probed
    cost: float  # modelled cost, see `plan_chunks`


def plan_chunks(n: int, bits: int, radius: int, max_probes: int = 20_000) -> ChunkPlan:
    """Chooses the number of chunks and their radii for multi-index hashing.

    Tries every `m` from 1 to `min(radius + 1, bits)` (chunk sizes as equal as possible,
    radii `t_i` summing to `radius - m + 1`, the larger radii on the larger chunks) and keeps
    the one with the lowest modelled cost `sum_i probes_i * (buckets_i + 7 * n^2 / 2^(b_i+1))`,
    where `probes_i = sum_{k <= t_i} C(b_i, k)` flip masks are joined per chunk, each costing
    one pass over the `buckets_i` non-empty buckets plus `n^2 / 2^(b_i+1)` expected candidate
    pairs for uniform codes, a candidate costing about 7 bucket lookups (measured).

    Args:
        n: int. Number of codes.
        bits: int. Code length in bits.
        radius: int >= 0. Hamming radius.
        max_probes: int, default 20,000. Plans needing more flip masks in total are skipped.

    Returns:
        ChunkPlan.
    """
    best: ChunkPlan | None = None
    for m in range(1, min(radius + 1, bits) + 1):
        sizes = [bits // m + (1 if k < bits % m else 0) for k in range(m)]
        if max(sizes) > 64:
            continue
        total = radius - m + 1
        radii = [total // m + (1 if k < total % m else 0) for k in range(m)]
        probes = [_probes(b, t) for b, t in zip(sizes, radii)]
        if sum(probes) > max_probes:
            continue
        cost = float(
            sum(p * (_buckets(n, b) + _CANDIDATE_WEIGHT * n * n / 2.0 ** (b + 1)) for p, b in zip(probes, sizes))
        )
        bounds, s = [], 0
        for b in sizes:
            bounds.append((s, s + b))
            s += b
        plan = ChunkPlan(tuple(bounds), tuple(radii), cost)
        if best is None or plan.cost < best.cost:
            best = plan
    if best is None:  # radius too large for any chunking within max_probes: one chunk, all masks
        raise ValueError(f"radius={radius} is too large for {bits}-bit codes; use brute_force_pairs")
    return best


def _chunk_values(bits_matrix: np.ndarray, start: int, stop: int) -> np.ndarray:
    weights = (np.uint64(1) << np.arange(stop - start - 1, -1, -1, dtype=np.uint64)).astype(np.uint64)
    return (bits_matrix[:, start:stop].astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def _flip_masks(bits: int, t: int) -> list[int]:
    masks = [0]
    for k in range(1, t + 1):
        for combo in itertools.combinations(range(bits), k):
            masks.append(sum(1 << p for p in combo))
    return masks


def hamming_pairs(
    codes: np.ndarray,
    radius: int,
    *,
    bits: int | None = None,
    method: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of codes within Hamming distance `radius` (exact, multi-index hashing).

    Args:
        codes: np.ndarray of uint64, shape `(n, W)` or `(n,)`: packed codes (`pack_bits`;
            e.g. a 64-bit phash is one word).
        radius: int >= 0. Largest distance in bits (inclusive).
        bits: int or None, default None (= 64 * W). Number of meaningful bits; padding bits
            must be equal (zero) in every code.
        method: str, default "auto". `"mih"` (multi-index hashing), `"brute"`
            (`brute_force_pairs`), or `"auto"` (brute force when the modelled MIH cost is
            higher than comparing all `n (n - 1) / 2` pairs).
        on_progress: callable `(done, total)` or None. Called after each flip mask that
            found candidate buckets.

    Returns:
        tuple `(i, j, d)` of int64 arrays sorted by `(i, j)`, with `i < j` indexing `codes`
        and `d` their distance in bits -- exactly the pairs `brute_force_pairs` returns.

    Raises:
        ValueError: if `radius` < 0 or `method` is unknown.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0 bits, received radius={radius}")
    if method not in ("auto", "mih", "brute"):
        raise ValueError(f"method must be one of 'auto', 'mih', 'brute', received method={method!r}")
    codes = _as_codes(codes)
    n, words = codes.shape
    nbits = bits or words * 64
    if n < 2:
        return _empty()
    try:
        plan: ChunkPlan | None = plan_chunks(n, nbits, radius)
    except ValueError:
        plan = None
    if method == "brute" or plan is None or (method == "auto" and plan.cost > n * (n - 1) / 2 * words / 4):
        return brute_force_pairs(codes, radius)
    bit_matrix = np.unpackbits(codes.astype(">u8").view(np.uint8), axis=1)[:, :nbits].astype(bool)
    found: list[_Found] = []
    masks_all = [(c, _flip_masks(b1 - b0, t)) for c, ((b0, b1), t) in enumerate(zip(plan.bounds, plan.radii)) if t >= 0]
    progress = _Progress(sum(len(m) for _, m in masks_all), on_progress)
    for c, masks in masks_all:
        b0, b1 = plan.bounds[c]
        _ChunkIndex(_chunk_values(bit_matrix, b0, b1), b1 - b0).self_join(codes, masks, radius, found, progress)
    if not found:
        return _empty()
    i = np.concatenate([f[0] for f in found])
    j = np.concatenate([f[1] for f in found])
    d = np.concatenate([f[2] for f in found])
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = lo * n + hi
    key, first = np.unique(key, return_index=True)
    return lo[first], hi[first], d[first]


@dataclass
class _Progress:
    """Counts the flip masks done and reports them to `on_progress`."""

    total: int
    on_progress: Callable[[int, int], None] | None
    done: int = 0

    def step(self, report: bool) -> None:
        """One mask done; reported when `report` (a mask that found no bucket pair is not)."""
        self.done += 1
        if report and self.on_progress is not None:
            self.on_progress(self.done, self.total)


class _ChunkIndex:
    """The codes bucketed by the value of one chunk of their bits (a `hamming_pairs` step)."""

    def __init__(self, keys: np.ndarray, width: int):
        self.order = np.argsort(keys, kind="stable")
        self.uniq, self.starts, self.counts = np.unique(keys[self.order], return_index=True, return_counts=True)
        self.dense = width <= _DENSE_BITS
        if self.dense:  # value -> bucket index table, -1 when empty; int32 halves memory traffic
            self.uniq = self.uniq.astype(np.int32)
            self.table = np.full(1 << width, -1, dtype=np.int32)
            self.table[self.uniq] = np.arange(len(self.uniq), dtype=np.int32)

    def bucket_pairs(self, mask: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Positions (in `order`) of the code pairs whose chunk values differ by `mask`
        (`mask == 0`: pairs inside one bucket); None when no bucket has a partner."""
        uniq, starts, counts = self.uniq, self.starts, self.counts
        if mask == 0:
            # pairs inside one bucket: every (p, q) with p < q in the same bucket
            multi = counts > 1
            a_start, a_cnt = starts[multi], counts[multi]
            a, b = _expand(a_start, a_cnt, a_start, a_cnt)
            keep = a < b
            return a[keep], b[keep]
        partner = uniq ^ uniq.dtype.type(mask)
        if self.dense:
            idx = self.table[partner]
            ok = (idx >= 0) & (uniq < partner)
        else:
            idx = np.minimum(np.searchsorted(uniq, partner), len(uniq) - 1)
            ok = (uniq[idx] == partner) & (uniq < partner)
        sel = np.flatnonzero(ok)
        if len(sel) == 0:
            return None
        pidx = idx[sel]
        return _expand(starts[sel], counts[sel], starts[pidx], counts[pidx])

    def self_join(
        self, codes: np.ndarray, masks: list[int], radius: int, found: list[_Found], progress: _Progress
    ) -> None:
        """Appends to `found` every pair within `radius` whose chunk values differ by one of
        `masks`, as `(i, j, d)` in the codes' own indices."""
        cs = codes[self.order]
        cs0 = np.ascontiguousarray(cs[:, 0])
        for mask in masks:
            pos = self.bucket_pairs(mask)
            if pos is None:
                progress.step(report=False)
                continue
            a, b = pos
            if len(a):
                if codes.shape[1] == 1:
                    d = np.bitwise_count(cs0[a] ^ cs0[b]).astype(np.int64)
                else:
                    d = np.bitwise_count(cs[a] ^ cs[b]).sum(axis=1, dtype=np.int64)
                keep = d <= radius
                if keep.any():
                    found.append((self.order[a[keep]], self.order[b[keep]], d[keep]))
            progress.step(report=True)


def _expand(
    a_start: np.ndarray, a_cnt: np.ndarray, b_start: np.ndarray, b_cnt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (a, b) position pairs of the cross products of bucket ranges A_k x B_k."""
    single = (a_cnt == 1) & (b_cnt == 1)  # the common case: no expansion needed
    a1, b1 = a_start[single], b_start[single]
    if single.all():
        return a1, b1
    multi = ~single
    a_start, a_cnt, b_start, b_cnt = a_start[multi], a_cnt[multi], b_start[multi], b_cnt[multi]
    prod = a_cnt.astype(np.int64) * b_cnt
    total = int(prod.sum())
    rep = np.repeat(np.arange(len(prod)), prod)
    local = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(prod) - prod, prod)
    bc = b_cnt[rep]
    return np.concatenate([a1, a_start[rep] + local // bc]), np.concatenate([b1, b_start[rep] + local % bc])


def hamming_cross_pairs(
    a: np.ndarray, b: np.ndarray, radius: int, *, bits: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair `(a[i], b[j])` within Hamming distance `radius` (exact, multi-index hashing).

    The bipartite form of `hamming_pairs`: the codes of `b` are bucketed chunk by chunk (same
    chunking and generalized pigeonhole radii as `plan_chunks`), and every code of `a` probes the
    buckets within its chunk radius; each candidate is verified with the full distance. Nothing is
    approximate: the result is exactly the set of pairs brute force over `a x b` returns.

    Args:
        a: np.ndarray of uint64, shape `(n_a, W)` or `(n_a,)`. Packed codes (`pack_bits`).
        b: np.ndarray of uint64, shape `(n_b, W)` or `(n_b,)`, same `W`.
        radius: int >= 0. Largest distance in bits (inclusive).
        bits: int or None, default None (= 64 * W). Number of meaningful bits.

    Returns:
        tuple `(i, j, d)` of int64 arrays sorted by `(i, j)`: `i` indexes `a`, `j` indexes `b`,
        `d` is their distance in bits.

    Raises:
        ValueError: if `radius` < 0 or the code widths differ.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0 bits, received radius={radius}")
    a, b = _as_codes(a), _as_codes(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"codes of a and b must have the same width, received {a.shape[1]} and {b.shape[1]} words")
    na, nb = len(a), len(b)
    words = a.shape[1]
    nbits = bits or words * 64
    if na == 0 or nb == 0:
        return _empty()
    try:
        plan = plan_chunks(max(na, nb), nbits, radius)
    except ValueError:
        plan = None
    if plan is None or na * nb <= 4096:
        d = np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=-1, dtype=np.int64)
        i, j = np.nonzero(d <= radius)
        return i.astype(np.int64), j.astype(np.int64), d[i, j]
    bits_a = np.unpackbits(a.astype(">u8").view(np.uint8), axis=1)[:, :nbits].astype(bool)
    bits_b = np.unpackbits(b.astype(">u8").view(np.uint8), axis=1)[:, :nbits].astype(bool)
    found: list[_Found] = []
    for (b0, b1), t in zip(plan.bounds, plan.radii):
        if t >= 0:
            _cross_chunk(a, b, _chunk_values(bits_a, b0, b1), _chunk_values(bits_b, b0, b1), b1 - b0, t, radius, found)
    if not found:
        return _empty()
    i = np.concatenate([f[0] for f in found])
    j = np.concatenate([f[1] for f in found])
    d = np.concatenate([f[2] for f in found])
    _, first = np.unique(i * nb + j, return_index=True)
    return i[first], j[first], d[first]


def _cross_chunk(
    a: np.ndarray, b: np.ndarray, ka: np.ndarray, kb: np.ndarray, width: int, t: int, radius: int, found: list[_Found]
) -> None:
    """One chunk of `hamming_cross_pairs`: the codes of `b` bucketed by their chunk value `kb`,
    every code of `a` probing the buckets within `t` bits of its value `ka`; appends the pairs
    within `radius` to `found` as `(i, j, d)`."""
    order = np.argsort(kb, kind="stable")
    uniq, starts, counts = np.unique(kb[order], return_index=True, return_counts=True)
    for mask in _flip_masks(width, t):
        partner = ka ^ np.uint64(mask)
        idx = np.minimum(np.searchsorted(uniq, partner), len(uniq) - 1)
        ok = np.flatnonzero(uniq[idx] == partner)
        if len(ok) == 0:
            continue
        cnt = counts[idx[ok]]
        qi = np.repeat(ok, cnt)
        local = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        bj = order[np.repeat(starts[idx[ok]], cnt) + local]
        d = np.bitwise_count(a[qi] ^ b[bj]).sum(axis=1, dtype=np.int64)
        keep = d <= radius
        if keep.any():
            found.append((qi[keep].astype(np.int64), bj[keep].astype(np.int64), d[keep]))
