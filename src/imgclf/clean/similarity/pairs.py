"""The detector's answer: verified duplicate pairs (`DuplicatePairs`), and what is done with it.

`DuplicatePairs` holds the pairs `find_duplicate_pairs` / `find_cross_pairs` return, sorted
by `(i, j)`, each with its kind (`KIND_EXACT`, `KIND_NEAR`, `KIND_FLIP`), residual and whether
an alignment was needed. `join_pairs` builds one from parts, `union_pairs` joins two answers
(the files as they are, and their sources before `prepare`'s crop), `connected_components`
turns pairs into groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Kind of a pair with the same decoded pixels and size (residual 0).
KIND_EXACT = "exact"
#: Kind of a verified near duplicate.
KIND_NEAR = "near"
#: Kind of a near duplicate of the mirror image (only with `flips=True`, and only when the pair
#: is not also a near duplicate).
KIND_FLIP = "flip"

#: One part of an answer: `(i, j, kind, residual, aligned)`, arrays of one length (kind a str
#: for the whole part, or an array).
Part = tuple[np.ndarray, np.ndarray, str | np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DuplicatePairs:
    """Verified duplicate pairs, sorted by `(i, j)`.

    Attributes:
        i, j: np.ndarray of int64, shape `(p,)`. Indices into the signatures (`i < j` from
            `find_duplicate_pairs`; `i` into `a` and `j` into `b` from `find_cross_pairs`).
        kind: np.ndarray of str, shape `(p,)`. `"exact"` (same decoded pixels), `"near"`
            (verified near duplicate) or `"flip"` (near duplicate of the mirrored image; only
            with `flips=True`, and only when the pair is not also `"near"`).
        residual: np.ndarray of float64, shape `(p,)`. Robust RMS residual, in grey levels
            [0, 255], of the accepted comparison (0 for exact duplicates); lower is closer.
        aligned: np.ndarray of bool, shape `(p,)`. The pair was accepted after the crop alignment.
    """

    i: np.ndarray
    j: np.ndarray
    kind: np.ndarray
    residual: np.ndarray
    aligned: np.ndarray

    def __len__(self) -> int:
        return len(self.i)

    @classmethod
    def empty(cls) -> DuplicatePairs:
        """No pairs (arrays of length 0 with the documented dtypes)."""
        z = np.zeros(0, np.int64)
        return cls(z, z.copy(), np.zeros(0, "<U5"), np.zeros(0), np.zeros(0, bool))


def join_pairs(parts: Sequence[Part]) -> DuplicatePairs:
    """The pairs of `parts` (at least one) as `DuplicatePairs`, sorted by `(i, j)` (a stable sort:
    equal pairs keep the order of `parts`)."""
    i = np.concatenate([p[0] for p in parts]).astype(np.int64)
    j = np.concatenate([p[1] for p in parts]).astype(np.int64)
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts]).astype("<U5")
    res = np.concatenate([p[3] for p in parts]).astype(np.float64)
    al = np.concatenate([p[4] for p in parts]).astype(bool)
    o = np.lexsort((j, i))
    return DuplicatePairs(i[o], j[o], kind[o], res[o], al[o])


def union_pairs(a: DuplicatePairs, b: DuplicatePairs | None) -> DuplicatePairs:
    """The pairs of `a` and `b` (`a`'s decision first where both have a pair), sorted by `(i, j)`."""
    if b is None or not len(b):
        return a
    n = int(max(a.i.max(initial=0), a.j.max(initial=0), b.i.max(initial=0), b.j.max(initial=0))) + 1
    ka, kb = a.i * n + a.j, b.i * n + b.j
    extra = ~np.isin(kb, ka)
    parts = [
        (a.i, a.j, a.kind, a.residual, a.aligned),
        (b.i[extra], b.j[extra], b.kind[extra], b.residual[extra], b.aligned[extra]),
    ]
    i, j, kind, res, al = (np.concatenate([p[x] for p in parts]) for x in range(5))
    order = np.lexsort((j, i))
    return DuplicatePairs(i[order], j[order], kind[order].astype("<U5"), res[order], al[order])


def connected_components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Labels the connected components of the graph with `n` nodes and edges `(i, j)`.

    Args:
        n: int. Number of nodes.
        i, j: int arrays of equal length. Edges.

    Returns:
        np.ndarray of int64, shape `(n,)`: component id per node, numbered 0, 1, ... in order
        of each component's smallest node (so the labelling is deterministic).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as cc

    if n == 0:
        return np.zeros(0, dtype=np.int64)
    g = coo_matrix((np.ones(len(i), dtype=np.int8), (np.asarray(i), np.asarray(j))), shape=(n, n))
    _, labels = cc(g, directed=False)
    # renumber by smallest member
    first = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n))
    rank = np.empty_like(first)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[labels].astype(np.int64)
