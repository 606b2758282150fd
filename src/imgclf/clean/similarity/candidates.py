"""Stage 1: candidate pairs (every search exact, scalable), the union of three searches.

- codes: pairs whose 64-bit phashes (whole, trimmed and -- between large pictures -- centre)
  are within `radius` bits (`hamming_pairs` / `hamming_cross_pairs`, multi-index hashing);
- crop windows: the whole and trimmed codes of each picture against the nine crop-window codes
  of the other large pictures (a crop of up to 10 % per side is within 4 % of one window);
- layouts, for low-structure pictures (layout RMS below `LOW_STRUCTURE`): pairs whose 8 x 8
  mean-removed layouts are within `max_residual` grey levels RMS (`layout_pairs`).

`candidate_pairs` returns the union, de-duplicated; `imgclf.clean.similarity.verify` decides.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from imgclf.clean.similarity.fit import pooled
from imgclf.clean.similarity.hamming import hamming_cross_pairs, hamming_pairs
from imgclf.clean.similarity.params import DEFAULT_MAX_RESIDUAL, LOW_STRUCTURE, NCODES, NWINDOWS
from imgclf.records.signatures import Signatures

_Pairs = tuple[list[np.ndarray], list[np.ndarray]]


@lru_cache(maxsize=1)
def _layout_basis() -> np.ndarray:
    """The 15 orthonormal 2-D DCT-II basis vectors of the 4 x 4 lowest frequencies but the
    constant one, on an 8 x 8 grid: shape `(15, 64)`."""
    n = np.arange(8)
    c = np.sqrt(2 / 8) * np.cos(np.pi * np.arange(8)[:, None] * (2 * n + 1) / 16)
    c[0] /= np.sqrt(2)
    return np.stack([np.outer(c[u], c[v]).reshape(-1) for u in range(4) for v in range(4) if (u, v) != (0, 0)])


def layout_pairs(x: np.ndarray, y: np.ndarray | None, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of layouts within `radius` grey levels RMS (exact fixed-radius search).

    A layout is the 8 x 8 block means of a thumbnail with its mean removed (`pooled`). The
    layouts are projected onto an orthonormal basis (`_layout_basis`), which never increases a
    distance, searched by a k-d tree (`scipy.spatial.cKDTree.query_pairs` /
    `sparse_distance_matrix`; Bentley, "Multidimensional binary search trees used for
    associative searching", CACM 1975) and every pair found is checked on all 64 values, so the
    result is exactly the pairs within `radius`.

    Args:
        x: np.ndarray of float32, shape `(n, 64)`. Layouts.
        y: np.ndarray of float32, shape `(m, 64)`, or None. Other layouts (cross pairs x x y),
            or None for the pairs within `x` (`i < j`).
        radius: float >= 0. RMS distance over the 64 values, in grey levels [0, 255].

    Returns:
        tuple `(i, j)` of int64 arrays.
    """
    from scipy.spatial import cKDTree

    z = np.zeros(0, np.int64)
    if len(x) == 0 or (y is not None and len(y) == 0):
        return z, z.copy()
    basis = _layout_basis().T
    r = radius * 8.0  # RMS over 64 values -> Euclidean norm
    tx = cKDTree(x.astype(np.float64) @ basis)
    if y is None:
        pr = tx.query_pairs(r, output_type="ndarray").astype(np.int64)
        i, j = pr[:, 0], pr[:, 1]
        other = x
    else:
        coo = tx.sparse_distance_matrix(cKDTree(y.astype(np.float64) @ basis), r, output_type="ndarray")
        i, j = coo["i"].astype(np.int64), coo["j"].astype(np.int64)
        other = y
    keep = ((x[i] - other[j]) ** 2).sum(1) <= r * r
    return i[keep], j[keep]


def _unique_pairs(i: list[np.ndarray], j: list[np.ndarray], nb: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs of the concatenated `(i, j)`, sorted (as `(min, max)` when symmetric,
    without self pairs)."""
    if not i:
        z = np.zeros(0, np.int64)
        return z, z.copy()
    ii = np.concatenate(i).astype(np.int64)
    jj = np.concatenate(j).astype(np.int64)
    if symmetric:
        ii, jj = np.minimum(ii, jj), np.maximum(ii, jj)
        keep = ii != jj
        ii, jj = ii[keep], jj[keep]
    key = np.sort(ii * max(nb, 1) + jj)
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    return key // max(nb, 1), key % max(nb, 1)


def _layout_candidates(a: Signatures, b: Signatures | None, flip: bool, radius: float, out: _Pairs) -> None:
    """Layout pairs with one low-structure member, both variants (appended to `out`)."""
    other = a if b is None else b
    pa = pooled(a.gray)
    same = b is None and not flip
    po = pa if same else pooled(other.gray[:, :, :, ::-1] if flip else other.gray)
    for v in range(2):
        # a pair within the radius with one low-structure member has both below LOW_STRUCTURE +
        # radius (triangle inequality of the RMS norm): search those, keep the pairs with one below
        na, no = np.sqrt((pa[:, v] ** 2).mean(1)), np.sqrt((po[:, v] ** 2).mean(1))
        ka = np.flatnonzero(na < LOW_STRUCTURE + radius)
        kb = ka if same else np.flatnonzero(no < LOW_STRUCTURE + radius)
        x, y = layout_pairs(pa[ka, v], None if same else po[kb, v], radius)
        x, y = ka[x], kb[y]
        keep = np.minimum(na[x], no[y]) < LOW_STRUCTURE
        out[0].append(x[keep])
        out[1].append(y[keep])


def _code_candidates(a: Signatures, b: Signatures | None, flip: bool, radius: int, out: _Pairs) -> None:
    """Pairs of codes within `radius` bits, code by code (appended to `out`). The centre code
    (v = 2) only between large pictures: small ones get no local-edit tolerance. (The trimmed
    code stays for all: a product shot's hash is steadier on its box, even though small
    pictures are then compared whole.)"""
    other = a if b is None else b
    oc = other.flip_codes if flip else other.codes
    for v in range(NCODES):
        ka = np.flatnonzero(a.large) if v == 2 else np.arange(len(a))
        kb = (ka if b is None else np.flatnonzero(other.large)) if v == 2 else np.arange(len(other))
        if b is None and not flip:
            x, y, _ = hamming_pairs(a.codes[ka, v], radius, bits=64)
        else:
            x, y, _ = hamming_cross_pairs(a.codes[ka, v], oc[kb, v], radius, bits=64)
        out[0].append(ka[x])
        out[1].append(kb[y])


def _window_candidates(a: Signatures, b: Signatures | None, radius: int, out: _Pairs) -> None:
    """Crop windows of large pictures against the whole and trimmed codes of the others, both
    ways (appended to `out` as `(a index, other index)`)."""
    other = a if b is None else b
    for src, dst, swap in ((a, other, False), (other, a, True))[: 1 if b is None else 2]:
        big = np.flatnonzero(src.large)
        if len(big) == 0:
            continue
        win = src.window_codes[big].reshape(-1)
        owner = np.repeat(big, NWINDOWS)
        for v in range(2):
            x, y, _ = hamming_cross_pairs(dst.codes[:, v], win, radius, bits=64)
            if swap:  # dst is a: pairs (a index, other index)
                out[0].append(x)
                out[1].append(owner[y])
            else:
                out[0].append(owner[y])
                out[1].append(x)


def candidate_pairs(
    a: Signatures, b: Signatures | None, radius: int, flip: bool = False, layout_radius: float = DEFAULT_MAX_RESIDUAL
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs: within `a` when `b` is None, else between `a` and `b`.

    Args:
        a: Signatures, length n_a.
        b: Signatures (length n_b) or None.
        radius: int in [0, 32]. Hamming radius in bits of each 64-bit code.
        flip: bool, default False. `b`'s (or `a`'s own) mirrored codes and thumbnails stand in
            for its own (no crop windows): candidates for mirrored copies.
        layout_radius: float >= 0, default 5.0. Radius of the layout search, in grey levels RMS
            (the detector passes `max_residual`).

    Returns:
        tuple `(i, j)` of int64 arrays, sorted and distinct: `i < j` indexing `a` when `b` is
        None (pairs with `i == j` dropped), else `i` into `a` and `j` into `b`.
    """
    nb = len(a if b is None else b)
    out: _Pairs = ([], [])
    _layout_candidates(a, b, flip, layout_radius, out)
    _code_candidates(a, b, flip, radius, out)
    if not flip:
        _window_candidates(a, b, radius, out)
    return _unique_pairs(out[0], out[1], nb, symmetric=b is None)
