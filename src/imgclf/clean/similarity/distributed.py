"""The exact Hamming search spread over a Ray cluster: the pairs `hamming_pairs` returns, by parts.

`hamming.hamming_pairs` cuts 64-bit codes into chunks and, per chunk, joins the buckets of
codes whose chunk values differ by a flip mask of weight at most the chunk's radius
(multi-index hashing with the generalized pigeonhole principle: a pair within `radius` bits
has at least one chunk within its radius). This module runs the same plan (`plan_chunks`,
same chunks and radii) as independent parts:

- a chunk's values are split by their top `k` bits, the **prefix**, into `P = 2^k` parts;
- the part `(chunk, p)` joins every bucket `u` of prefix `p` (the bucketed side) with the
  buckets `u ^ m` of every mask `m` (the probing side): their prefixes are `p ^ (m >> (w - k))`,
  within the chunk radius `t` of `p`, so a part needs the codes of `1 + k + ... + C(k, t)` of the
  `P` prefixes, not all of them;
- within one collection a bucket pair `(u, u ^ m)` is kept from the side of the smaller value
  (`u < u ^ m`; inside one bucket, the smaller id first): the rule of the local self-join.

Every bucket pair the local search forms is formed by exactly one part, each candidate is
checked with its full 64-bit distance, and the pairs found in several chunks are merged at the
end: the answer is the local search's, pair for pair (tested on random and planted codes, and
on 2 M codes by `scripts/bench/bench_ray.py`). The work of a chunk is split `P` ways; a part
holds `1/P` of the bucketed codes and `(1 + k + C(k, 2)) / P` of the probing ones.

The parts are pure functions of arrays (`shard_block`, `join_part`), so they run anywhere:
`sharded_hamming_pairs` runs them in this process (the reference), `ray_hamming_pairs` as Ray
tasks over code blocks kept in the cluster's object store (`CodeBlock`), the driver receiving
only the pairs.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgclf.clean.similarity.hamming import plan_chunks

#: Bits of a code (the detector's phashes are 64-bit).
BITS = 64
#: Chunk values of at most this many low bits are looked up in a dense table.
_DENSE_LOW_BITS = 22
#: Join parts in flight per cluster CPU.
_PARTS_PER_CPU = 2

_Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class CodeBlock:
    """A block of 64-bit codes with their global ids (the unit a cluster keeps and shards).

    Attributes:
        ids: np.ndarray of int64, shape `(k,)`. Unique ids, in [0, n) of the whole collection.
        codes: np.ndarray of uint64, shape `(k,)`.
    """

    ids: np.ndarray
    codes: np.ndarray


@dataclass(frozen=True)
class JoinPlan:
    """How a Hamming join is cut into parts.

    Attributes:
        radius: int. Largest distance in bits.
        chunks: tuple of `(start, stop, t)`. Bit range `[start, stop)` of each searched chunk
            (bit 0 = most significant) and its radius `t` (`hamming.plan_chunks`).
        prefix_bits: int. `k`: each chunk's parts are its `2^k` prefixes.
    """

    radius: int
    chunks: tuple[tuple[int, int, int], ...]
    prefix_bits: int

    @property
    def parts(self) -> list[tuple[int, int]]:
        """Every part `(chunk index, prefix)`."""
        return [(c, p) for c in range(len(self.chunks)) for p in range(1 << self.prefix_bits)]


def plan_join(n: int, radius: int, cpus: int = 1, prefix_bits: int | None = None) -> JoinPlan:
    """The parts of a join of `n` codes within `radius` bits on `cpus` CPUs.

    Args:
        n: int. Codes (the larger side of a cross join).
        radius: int in [0, 32]. Largest distance in bits.
        cpus: int, default 1. CPUs of the cluster.
        prefix_bits: int or None, default None. `k`; None = enough parts for 8 per CPU over all
            chunks and at most 64 K codes per part, at least 3, at most the narrowest chunk.

    Returns:
        JoinPlan, with the chunks and radii of `hamming.plan_chunks(n, 64, radius)`.

    Raises:
        ValueError: `radius` < 0.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0 bits, received radius={radius}")
    chunk_plan = plan_chunks(max(n, 2), BITS, radius)
    chunks = tuple((b0, b1, t) for (b0, b1), t in zip(chunk_plan.bounds, chunk_plan.radii) if t >= 0)
    narrowest = min(b1 - b0 for b0, b1, _ in chunks)
    if prefix_bits is None:
        by_cpus = math.ceil(math.log2(max(1, 8 * cpus / len(chunks))))
        by_size = math.ceil(math.log2(max(1, n / 65_536)))
        prefix_bits = max(3, by_cpus, by_size)
    return JoinPlan(radius, chunks, max(0, min(prefix_bits, narrowest)))


@dataclass(frozen=True)
class Shard:
    """One block's codes for one chunk, ordered by the chunk value's prefix.

    Attributes:
        keys: np.ndarray of uint64. The chunk values.
        codes: np.ndarray of uint64. The whole codes.
        ids: np.ndarray of int64. Their ids.
        starts: np.ndarray of int64, shape `(2^k + 1,)`. Rows of prefix `p`: `starts[p]:starts[p + 1]`.
    """

    keys: np.ndarray
    codes: np.ndarray
    ids: np.ndarray
    starts: np.ndarray

    def prefix(self, p: int) -> slice:
        """The rows whose chunk value has prefix `p`."""
        return slice(int(self.starts[p]), int(self.starts[p + 1]))


def chunk_values(codes: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Bits `[start, stop)` of 64-bit codes (bit 0 the most significant) as integers.

    Args:
        codes: np.ndarray of uint64, shape `(n,)`.
        start, stop: int, 0 <= start < stop <= 64.

    Returns:
        np.ndarray of uint64, shape `(n,)`: the values `hamming.hamming_pairs` buckets by.
    """
    width = stop - start
    mask = np.uint64((1 << width) - 1)
    return (np.asarray(codes, np.uint64) >> np.uint64(BITS - stop)) & mask


def shard_block(block: CodeBlock, plan: JoinPlan) -> list[Shard]:
    """A block's codes as one `Shard` per chunk of `plan` (a map: pure, one block).

    Args:
        block: CodeBlock.
        plan: JoinPlan.

    Returns:
        list of Shard, one per `plan.chunks`.
    """
    out = []
    k = plan.prefix_bits
    for b0, b1, _ in plan.chunks:
        keys = chunk_values(block.codes, b0, b1)
        prefix = (keys >> np.uint64(b1 - b0 - k)).astype(np.int64)
        order = np.argsort(prefix, kind="stable")
        starts = np.searchsorted(prefix[order], np.arange((1 << k) + 1), side="left").astype(np.int64)
        out.append(Shard(keys[order], block.codes[order], block.ids[order], starts))
    return out


def _gather(shards: Sequence[Shard], p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keys, codes and ids of prefix `p` over `shards`."""
    sl = [s.prefix(p) for s in shards]
    return (
        np.concatenate([s.keys[x] for s, x in zip(shards, sl)]),
        np.concatenate([s.codes[x] for s, x in zip(shards, sl)]),
        np.concatenate([s.ids[x] for s, x in zip(shards, sl)]),
    )


def _masks_by_high(width: int, t: int, low: int) -> dict[int, list[int]]:
    """Every flip mask of weight <= `t` over `width` bits, grouped by its top `width - low` bits."""
    groups: dict[int, list[int]] = {}
    for w in range(t + 1):
        for combo in itertools.combinations(range(width), w):
            m = sum(1 << b for b in combo)
            groups.setdefault(m >> low, []).append(m)
    return groups


class _Buckets:
    """The bucketed side of a part: its codes by the low bits of their chunk value."""

    def __init__(self, keys: np.ndarray, low: int):
        lowkeys = keys & np.uint64((1 << low) - 1)
        self.order = np.argsort(lowkeys, kind="stable")
        self.uniq, self.starts, self.counts = np.unique(lowkeys[self.order], return_index=True, return_counts=True)
        self.table: np.ndarray | None = None
        if low <= _DENSE_LOW_BITS:
            self.table = np.full(1 << low, -1, np.int64)
            self.table[self.uniq.astype(np.int64)] = np.arange(len(self.uniq))

    def find(self, lowkeys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(rows, bucket)`: the probing rows whose value has a bucket, and its index."""
        if self.table is not None:
            idx = self.table[lowkeys.astype(np.int64)]
            rows = np.flatnonzero(idx >= 0)
            return rows, idx[rows]
        idx = np.minimum(np.searchsorted(self.uniq, lowkeys), len(self.uniq) - 1)
        rows = np.flatnonzero(self.uniq[idx] == lowkeys)
        return rows, idx[rows]

    def expand(self, rows: np.ndarray, bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (probing row, bucketed position) pair of the buckets found."""
        cnt = self.counts[bucket]
        qi = np.repeat(rows, cnt)
        local = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        return qi, self.order[np.repeat(self.starts[bucket], cnt) + local]


def join_part(plan: JoinPlan, c: int, p: int, n_a: int, *shards: Shard) -> _Pairs:
    """One part of a join: the pairs within `plan.radius` of chunk `c`'s buckets of prefix `p`.

    Args:
        plan: JoinPlan.
        c: int. Chunk index in `plan.chunks`.
        p: int. Prefix, in [0, 2^k).
        n_a: int. The first `n_a` shards are the probing collection's (chunk `c` of each of its
            blocks); the others the bucketed collection's, none for a join within one collection.
        *shards: Shard.

    Returns:
        tuple `(i, j, d)` of int64 arrays: ids of the probing and the bucketed code, distance.
        Within one collection each pair is found once per chunk, smaller chunk value first.
    """
    b0, b1, t = plan.chunks[c]
    width, k = b1 - b0, plan.prefix_bits
    low = width - k
    a_shards, b_shards = shards[:n_a], shards[n_a:]
    within = len(b_shards) == 0
    bk, bc, bi = _gather(b_shards or a_shards, p)
    found: list[_Pairs] = []
    if len(bk):
        buckets = _Buckets(bk, low)
        lowmask = np.uint64((1 << low) - 1)
        for high, masks in _masks_by_high(width, t, low).items():
            ak, ac, ai = _gather(a_shards, p ^ high)
            for m in masks:
                partner = ak ^ np.uint64(m)
                rows, bucket = buckets.find(partner & lowmask)
                qi, bj = buckets.expand(rows, bucket)
                d = np.bitwise_count(ac[qi] ^ bc[bj]).astype(np.int64)
                keep = d <= plan.radius
                if within:  # a bucket pair once: from its smaller value; one bucket: smaller id first
                    keep &= (ak[qi] < partner[qi]) if m else (ai[qi] < bi[bj])
                if keep.any():
                    found.append((ai[qi[keep]], bi[bj[keep]], d[keep]))
    if not found:
        z = np.zeros(0, np.int64)
        return z, z.copy(), z.copy()
    return tuple(np.concatenate([f[x] for f in found]) for x in range(3))  # type: ignore[return-value]


def merge_pairs(parts: Sequence[_Pairs], within: bool, n_b: int) -> _Pairs:
    """The distinct pairs of all parts, sorted by `(i, j)` (as `(min, max)` within one collection).

    Args:
        parts: sequence of `(i, j, d)`.
        within: bool. A join within one collection.
        n_b: int. Ids of the second member are below it (the key `i * n_b + j`).

    Returns:
        tuple `(i, j, d)` of int64 arrays -- what `hamming_pairs` / `hamming_cross_pairs` return.
    """
    parts = [x for x in parts if len(x[0])]
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z.copy(), z.copy()
    i, j, d = (np.concatenate([x[k] for x in parts]) for k in range(3))
    if within:
        i, j = np.minimum(i, j), np.maximum(i, j)
    _, first = np.unique(i * max(n_b, 1) + j, return_index=True)
    return i[first], j[first], d[first]


def sharded_hamming_pairs(
    a: Sequence[CodeBlock], b: Sequence[CodeBlock] | None, n: int, radius: int, prefix_bits: int | None = None
) -> _Pairs:
    """The partitioned join run part by part in this process (the reference of the cluster's).

    Args:
        a: sequence of CodeBlock. The (probing) collection.
        b: sequence of CodeBlock or None. The bucketed collection of a cross join; None = pairs
            within `a`.
        n: int. Ids are below `n` (the larger collection's size).
        radius: int >= 0.
        prefix_bits: int or None. See `plan_join`.

    Returns:
        tuple `(i, j, d)`: exactly `hamming_pairs(codes, radius, bits=64)` (ids for indices) for
        `b=None`, else `hamming_cross_pairs`.
    """
    plan = plan_join(n, radius, 1, prefix_bits)
    sa = [shard_block(x, plan) for x in a]
    sb = [shard_block(x, plan) for x in b] if b is not None else []
    parts = [join_part(plan, c, p, len(sa), *[s[c] for s in sa], *[s[c] for s in sb]) for c, p in plan.parts]
    return merge_pairs(parts, b is None, n)


def _remote(ray: Any) -> tuple[Any, Any]:
    """The Ray remote functions of the shard and the join steps."""
    shard = ray.remote(shard_block)
    join = ray.remote(join_part)
    return shard, join


def _in_window(ray: Any, refs: Iterator[Any], window: int) -> Iterator[Any]:
    """The results of `refs` (submitted lazily), at most `window` in flight, as they finish."""
    pending: deque[Any] = deque()
    for ref in refs:
        pending.append(ref)
        if len(pending) >= window:
            yield ray.get(pending.popleft())
    while pending:
        yield ray.get(pending.popleft())


def ray_hamming_pairs(
    a: Sequence[Any],
    b: Sequence[Any] | None,
    n: int,
    radius: int,
    *,
    cpus: int | None = None,
    prefix_bits: int | None = None,
    max_retries: int = 3,
) -> _Pairs:
    """The partitioned join as Ray tasks, over code blocks held in the cluster's object store.

    Each block is sharded once (a task per block, one object per chunk, staying where it was
    made); each part `(chunk, prefix)` is a task that reads the prefixes it needs from every
    shard of its chunk; the driver merges the pairs. Needs a connected Ray
    (`imgclf.engine.ray.connect`).

    Args:
        a: sequence of ObjectRef of CodeBlock. The (probing) collection.
        b: sequence of ObjectRef of CodeBlock, or None (pairs within `a`).
        n: int. Ids are below `n`.
        radius: int >= 0. Largest distance in bits.
        cpus: int or None, default None. The cluster's CPUs (None: asked).
        prefix_bits: int or None. See `plan_join`.
        max_retries: int, default 3. Extra runs of a task whose worker or node died.

    Returns:
        tuple `(i, j, d)`, as `sharded_hamming_pairs` (and so as the local search).
    """
    from imgclf.engine.ray import import_ray

    ray = import_ray()
    cpus = cpus or max(1, int(ray.cluster_resources().get("CPU", 1)))
    plan = plan_join(n, radius, cpus, prefix_bits)
    shard, join = _remote(ray)
    m = len(plan.chunks)
    shard = shard.options(num_returns=m, max_retries=max_retries)
    sa = [shard.remote(x, plan) for x in a]
    sb = [shard.remote(x, plan) for x in b] if b is not None else []
    sa = [s if m > 1 else [s] for s in sa]
    sb = [s if m > 1 else [s] for s in sb]
    join = join.options(max_retries=max_retries)
    refs = (join.remote(plan, c, p, len(sa), *[s[c] for s in sa], *[s[c] for s in sb]) for c, p in plan.parts)
    return merge_pairs(list(_in_window(ray, refs, _PARTS_PER_CPU * cpus)), b is None, n)
