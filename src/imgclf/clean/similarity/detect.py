"""The detector end to end: exact pairs, candidates, verification (the reduce over signatures).

`find_duplicate_pairs(signatures)` finds every exact or verified near duplicate among one
collection, `find_cross_pairs(a, b)` between two (a test set and a training set). Both are
pure: signatures in, `DuplicatePairs` out, deterministic (sorted by `(i, j)`).

Stage 0 -- exact duplicates: the same BLAKE2b-128 digest of the decoded pixels and size; kind
`"exact"`, residual 0, whatever the verification would say. Stage 1 -- candidates
(`candidates.candidate_pairs`). Stage 2 -- verification (`verify.verify_candidates`). With
`flips=True`, the mirrored codes are searched and verified against the mirrored thumbnails;
such pairs have kind `"flip"` unless they are already a pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imgclf.clean.similarity.candidates import candidate_pairs
from imgclf.clean.similarity.pairs import KIND_EXACT, KIND_FLIP, KIND_NEAR, DuplicatePairs, Part, join_pairs
from imgclf.clean.similarity.params import (
    DEFAULT_ALIGN_FLOOR,
    DEFAULT_MAX_COLOUR_RESIDUAL,
    DEFAULT_MAX_CROP,
    DEFAULT_MAX_LUMINANCE_RATIO,
    DEFAULT_MAX_RESIDUAL,
    DEFAULT_RADIUS,
    DetectorParams,
)
from imgclf.clean.similarity.signatures import Signature, stack
from imgclf.clean.similarity.verify import verify_candidates
from imgclf.records.signatures import Signatures


def _as_signatures(s: Signatures | Sequence[Signature]) -> Signatures:
    """`s` stacked, unless it already is."""
    return s if isinstance(s, Signatures) else stack(list(s))


def _exact_within(digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs `(i, j)`, `i < j`, of equal digests: every member of a run of equal digests joins
    the run's first image."""
    order = np.argsort(digests, kind="stable")
    d = digests[order]
    new_run = np.r_[True, d[1:] != d[:-1]]
    first = order[np.flatnonzero(new_run)][np.cumsum(new_run) - 1]
    dup = ~new_run
    ex_i = np.minimum(first[dup], order[dup]).astype(np.int64)
    ex_j = np.maximum(first[dup], order[dup]).astype(np.int64)
    return ex_i, ex_j


def _exact_between(da: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs `(i, j)` with `da[i] == db[j]`."""
    index_b: dict[bytes, list[int]] = {}
    for k, d in enumerate(db.tolist()):
        index_b.setdefault(d, []).append(k)
    ex = [(ka, kb) for ka, d in enumerate(da.tolist()) for kb in index_b.get(d, ())]
    return np.array([x for x, _ in ex], np.int64), np.array([y for _, y in ex], np.int64)


def _exact_part(ex_i: np.ndarray, ex_j: np.ndarray) -> Part:
    return ex_i, ex_j, KIND_EXACT, np.zeros(len(ex_i)), np.zeros(len(ex_i), bool)


def _near_part(a: Signatures, b: Signatures | None, taken: np.ndarray, nb: int, params: DetectorParams) -> Part:
    """Verified near pairs among the candidates (within `a` when `b` is None), leaving out the
    pair keys `i * nb + j` in `taken`."""
    ci, cj = candidate_pairs(a, b, params.radius, layout_radius=params.max_residual)
    keep = ~np.isin(ci * nb + cj, taken)
    ci, cj = ci[keep], cj[keep]
    ok, res, al = verify_candidates(a, a if b is None else b, ci, cj, False, params)
    return ci[ok], cj[ok], KIND_NEAR, res[ok], al[ok]


def _flip_part(a: Signatures, b: Signatures | None, taken: np.ndarray, nb: int, params: DetectorParams) -> Part:
    """Verified pairs with the mirror image (within `a` when `b` is None, as `(min, max)`),
    leaving out the pair keys in `taken`."""
    fi, fj = candidate_pairs(a, b, params.radius, flip=True, layout_radius=params.max_residual)
    if b is None:
        lo, hi = np.minimum(fi, fj), np.maximum(fi, fj)
        keep = (lo != hi) & ~np.isin(lo * nb + hi, taken)
    else:
        keep = ~np.isin(fi * nb + fj, taken)
    fi, fj = fi[keep], fj[keep]
    fok, fres, fal = verify_candidates(a, a if b is None else b, fi, fj, True, params)
    if b is not None:
        return fi[fok], fj[fok], KIND_FLIP, fres[fok], fal[fok]
    lo, hi = np.minimum(fi[fok], fj[fok]), np.maximum(fi[fok], fj[fok])
    _, first = np.unique(lo * nb + hi, return_index=True)
    return lo[first], hi[first], KIND_FLIP, fres[fok][first], fal[fok][first]


def _keys(part: Part, nb: int) -> np.ndarray:
    return part[0] * nb + part[1]


def find_duplicate_pairs(
    signatures: Signatures | Sequence[Signature],
    *,
    radius: int = DEFAULT_RADIUS,
    max_residual: float = DEFAULT_MAX_RESIDUAL,
    flips: bool = False,
    align_floor: float = DEFAULT_ALIGN_FLOOR,
    max_crop: float = DEFAULT_MAX_CROP,
    max_colour_residual: float = DEFAULT_MAX_COLOUR_RESIDUAL,
    max_luminance_ratio: float = DEFAULT_MAX_LUMINANCE_RATIO,
    colour_changes: bool = True,
) -> DuplicatePairs:
    """Every pair of exact or verified near duplicates among `signatures` (see the package docs).

    Args:
        signatures: `Signatures` (from `stack`) or a sequence of `Signature`, length n.
        radius: int in [0, 32], default 8. Candidate radius in bits of each 64-bit code.
            Larger finds a few more crops and redrawn icons and costs more verifications.
        max_residual: float >= 0, default 5.0. Largest robust RMS residual, in grey levels
            [0, 255], of a near duplicate (the pixel test). Lower is stricter.
        flips: bool, default False. Also report mirrored copies (kind `"flip"`).
        align_floor: float in [-1, 1], default 0.5. Smallest Pearson correlation of the two
            pictures' layouts (8 x 8 block means) for the crop alignment to be tried (a bound on
            its cost).
        max_crop: float in [0, 0.5), default 0.10. Largest crop per side the alignment accepts.
        max_colour_residual: float >= 0, default 8.0. Largest RMS residual, in [0, 255]
            units, of the shared gain/offset colour fit.
        max_luminance_ratio: float >= 1, default 1.6. Largest ratio of mean luminances.
        colour_changes: bool, default True. Also verify colour-filtered copies of pictures of
            at least 64 px (grayscale, sepia, saturation, hue rotation up to about 30 degrees,
            white balance) on luma and a model of the filter (test 2b); False keeps colour
            variants of one picture apart (e.g. to classify colours).

    Returns:
        DuplicatePairs, sorted by `(i, j)` with `i < j`.

    Raises:
        ValueError: an argument out of its range (the message names it and the value).
    """
    params = DetectorParams(
        radius=radius,
        max_residual=max_residual,
        flips=flips,
        align_floor=align_floor,
        max_crop=max_crop,
        max_colour_residual=max_colour_residual,
        max_luminance_ratio=max_luminance_ratio,
        colour_changes=colour_changes,
    )
    sig = _as_signatures(signatures)
    n = len(sig)
    if n < 2:
        return DuplicatePairs.empty()
    parts = [_exact_part(*_exact_within(sig.digests))]
    parts.append(_near_part(sig, None, _keys(parts[0], n), n, params))
    if flips:
        parts.append(_flip_part(sig, None, np.concatenate([_keys(p, n) for p in parts]), n, params))
    return join_pairs(parts)


def find_cross_pairs(
    a: Signatures | Sequence[Signature],
    b: Signatures | Sequence[Signature],
    *,
    radius: int = DEFAULT_RADIUS,
    max_residual: float = DEFAULT_MAX_RESIDUAL,
    flips: bool = False,
    align_floor: float = DEFAULT_ALIGN_FLOOR,
    max_crop: float = DEFAULT_MAX_CROP,
    max_colour_residual: float = DEFAULT_MAX_COLOUR_RESIDUAL,
    max_luminance_ratio: float = DEFAULT_MAX_LUMINANCE_RATIO,
    colour_changes: bool = True,
) -> DuplicatePairs:
    """Every exact or verified near duplicate between two collections (e.g. test vs train).

    The same detector as `find_duplicate_pairs`, restricted to pairs with one image in each
    collection: pairs inside `a` or inside `b` are never searched (cheaper than searching the
    union when `b` is large).

    Args:
        a: `Signatures` or a sequence of `Signature`, length n_a.
        b: `Signatures` or a sequence of `Signature`, length n_b.
        radius, max_residual, flips, align_floor, max_crop, max_colour_residual,
            max_luminance_ratio, colour_changes: as in `find_duplicate_pairs`.

    Returns:
        DuplicatePairs with `i` indexing `a` and `j` indexing `b`, sorted by `(i, j)`.

    Raises:
        ValueError: an argument out of its range.
    """
    params = DetectorParams(
        radius=radius,
        max_residual=max_residual,
        flips=flips,
        align_floor=align_floor,
        max_crop=max_crop,
        max_colour_residual=max_colour_residual,
        max_luminance_ratio=max_luminance_ratio,
        colour_changes=colour_changes,
    )
    sa, sb = _as_signatures(a), _as_signatures(b)
    nb = len(sb)
    if len(sa) == 0 or nb == 0:
        return DuplicatePairs.empty()
    parts = [_exact_part(*_exact_between(sa.digests, sb.digests))]
    parts.append(_near_part(sa, sb, _keys(parts[0], nb), nb, params))
    if flips:
        parts.append(_flip_part(sa, sb, np.concatenate([_keys(p, nb) for p in parts]), nb, params))
    return join_pairs(parts)
