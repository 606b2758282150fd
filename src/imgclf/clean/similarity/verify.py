"""Stage 2: verify candidate pairs, cheapest test first (thresholds from `DetectorParams`).

A pair is a near duplicate when, in one variant (whole / whole; between two pictures of at
least `SMALL_SIDE` px also trimmed / trimmed, whole / trimmed and trimmed / whole -- a frame
or caption added to one picture is trimmed from it alone):

1. screen: the plain least-squares residual of the 8 x 8 layouts is within
   `PRESCREEN_FACTOR * max_residual` (`fit.pooled_residual`);
2. colour (`colour_check`): one gain and offset shared by R, G and B maps one 8 x 8 colour grid
   onto the other within `max_colour_residual`, both directions, and the mean luminances are
   within a factor `max_luminance_ratio`;
3. pixels (`pixel_check`): the censored gain/offset fit of the 32 x 32 thumbnails leaves a
   robust RMS residual of at most `max_residual` grey levels (`fit.pixel_residual`);
2b. colour changes (`colour_change_check`, whole pictures of at least `SMALL_SIDE` px, with
   `colour_changes`; screened or not): a grayscale, sepia, saturation, hue-rotation or
   white-balance filter explains the chroma (`fit.colour_change_fit`) and test 3 passes on the
   luma -- the pairs tests 2-3 turned down get this second chance;
4. crops (`_check_aligned`), for two large pictures whose unaligned tests failed and whose
   layouts correlate (`align_floor`): tests 3 and 2 again after each warp `align` proposes,
   on the overlap, with the colour thumbnail warped and compared on its block means.

Each test is a function of the pairs' arrays and the parameters returning one bool per pair,
and runs on the pairs the previous tests left (`verify_pairs` gives the order). Another check
is one more such function, called from `verify_pairs` like `_check_colour_changes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgclf.clean.similarity.alignment import align, warp_image
from imgclf.clean.similarity.fit import (
    chroma_rms,
    colour_blocks,
    colour_change_fit,
    colour_fit,
    colour_grid,
    layout_correlation,
    luminance_ratio,
    pixel_residual,
    pooled,
    pooled_residual,
)
from imgclf.clean.similarity.params import (
    COLOUR,
    DROP_BLOCKS,
    HUE_KEEP,
    MAX_CHROMA_RESIDUAL,
    MAX_HUE_TURN,
    MIN_CHROMA,
    MIN_OVERLAP,
    MONOTONE_CHROMA,
    MONOTONE_RESIDUAL,
    PRESCREEN_FACTOR,
    SMALL_HUE_TURN,
    THUMB,
    VERIFY_CHUNK,
    DetectorParams,
)
from imgclf.records.signatures import Signatures


@dataclass(frozen=True)
class Side:
    """One side of the candidate pairs, with the arrays every test needs (mirrored if asked).

    Attributes:
        sig: Signatures of the side's `n` images (as stored, never mirrored).
        pool: np.ndarray of float32, shape `(n, 2, 64)`. Zero-mean 8 x 8 layouts of the
            grayscale thumbnails (`fit.pooled`), mirrored with `mirror`.
        colour8: np.ndarray of float32, shape `(n, 2, 8, 8, 3)`. 8 x 8 block means of the colour
            thumbnails (`fit.colour_grid`), mirrored with `mirror`.
        mirror: bool. The side stands for the mirror images of its pictures.
    """

    sig: Signatures
    pool: np.ndarray
    colour8: np.ndarray
    mirror: bool

    @classmethod
    def of(cls, sig: Signatures, mirror: bool = False) -> Side:
        """The side of `sig` (mirrored when `mirror`)."""
        gray = sig.gray[:, :, :, ::-1] if mirror else sig.gray
        colour = sig.colour[:, :, :, ::-1] if mirror else sig.colour
        return cls(sig, pooled(gray), colour_grid(colour), mirror)

    def gray(self, k: np.ndarray, v: int) -> np.ndarray:
        """Grayscale thumbnails of variant `v` of images `k`, `(len(k), 32, 32)`."""
        g = self.sig.gray[k, v]
        return g[:, :, ::-1] if self.mirror else g

    def colour16(self, k: np.ndarray, v: int) -> np.ndarray:
        """Colour thumbnails of variant `v` of images `k`, `(len(k), 16, 16, 3)`."""
        c = self.sig.colour[k, v]
        return c[:, :, ::-1] if self.mirror else c

    def colour(self, k: int, v: int) -> np.ndarray:
        """Colour thumbnail of variant `v` of image `k`, `(16, 16, 3)`."""
        c = self.sig.colour[k, v]
        return c[:, ::-1] if self.mirror else c


@dataclass(frozen=True)
class Outcome:
    """Per candidate pair: accepted, its residual (`inf` if not), accepted after an alignment.
    The tests fill it in place, each on the pairs not yet accepted."""

    ok: np.ndarray
    best: np.ndarray
    aligned: np.ndarray

    @classmethod
    def start(cls, p: int) -> Outcome:
        """Nothing accepted yet, for `p` pairs."""
        return cls(np.zeros(p, bool), np.full(p, np.inf), np.zeros(p, bool))


def colour_check(a8: np.ndarray, b8: np.ndarray, params: DetectorParams, mask: np.ndarray | None = None) -> np.ndarray:
    """Test 2: one brightness / contrast change explains the colours of each pair.

    Args:
        a8, b8: np.ndarray, shape `(p, 8, 8, 3)`, values in [0, 255]. Colour grids.
        params: DetectorParams. Uses `max_colour_residual` and `max_luminance_ratio`.
        mask: np.ndarray of bool, shape `(p, 8, 8)`, or None. Cells to compare.

    Returns:
        np.ndarray of bool, shape `(p,)`.
    """
    res, ratio = colour_fit(a8, b8, mask)
    return (res <= params.max_colour_residual) & (ratio <= params.max_luminance_ratio)


def pixel_check(
    a: np.ndarray,
    b: np.ndarray,
    params: DetectorParams,
    mask: np.ndarray | None = None,
    drop: int | np.ndarray = DROP_BLOCKS,
) -> tuple[np.ndarray, np.ndarray]:
    """Test 3: the censored fit of the thumbnails leaves at most `params.max_residual`.

    Args:
        a, b: np.ndarray, shape `(p, 32, 32)`, values in [0, 255]. Grayscale thumbnails.
        params: DetectorParams. Uses `max_residual`.
        mask: np.ndarray of bool, shape `(p, 32, 32)`, or None. Pixels to compare.
        drop: int or np.ndarray of int, shape `(p,)`, default `DROP_BLOCKS`. Worst blocks left out.

    Returns:
        tuple `(passed, residual)`: bool and float64 arrays of shape `(p,)`.
    """
    r = pixel_residual(a, b, mask, drop=drop)
    return r <= params.max_residual, r


def colour_change_check(
    a16: np.ndarray,
    b16: np.ndarray,
    ga: np.ndarray,
    gb: np.ndarray,
    params: DetectorParams,
    drop: int | np.ndarray = DROP_BLOCKS,
) -> tuple[np.ndarray, np.ndarray]:
    """Test 2b: a colour filter -- grayscale, sepia, saturation, hue rotation, white balance --
    and nothing else tells the pictures of each pair apart (`fit.colour_change_fit`).

    A pair passes when (1) one of its pictures has colour (`MIN_CHROMA`, `fit.chroma_rms`) and
    their mean luminances are within `max_luminance_ratio`; (2) the chroma model leaves at most
    `MAX_CHROMA_RESIDUAL`; (3) the filter is one of: a grayscale or toned copy (it keeps at
    most `MONOTONE_CHROMA` of the source's chroma), a saturation or white-balance change (hues
    turned by at most `SMALL_HUE_TURN` degrees), or a hue rotation (turned by at most
    `MAX_HUE_TURN` degrees, keeping at least `HUE_KEEP` of the saturation); (4) the pixel test
    (test 3, `max_residual`; `MONOTONE_RESIDUAL` of it for a grayscale or toned copy, which keeps
    the luma) on the grayscale thumbnails -- for a hue rotation with the source's luma
    corrected for what the rotation moved (`fit.colour_change_fit`).

    Args:
        a16, b16: np.ndarray, shape `(p, 16, 16, 3)`, values in [0, 255]. Colour thumbnails.
        ga, gb: np.ndarray, shape `(p, 32, 32)`, values in [0, 255]. Grayscale thumbnails.
        params: DetectorParams. Uses `max_residual` and `max_luminance_ratio`.
        drop: int or np.ndarray of int, shape `(p,)`, default `DROP_BLOCKS`. Worst blocks left out.

    Returns:
        tuple `(passed, residual)`: bool and float64 arrays of shape `(p,)` (the luma residual;
        `inf` where the colours alone rule the pair out).
    """
    p = len(a16)
    passed, r = np.zeros(p, bool), np.full(p, np.inf)
    if p == 0:
        return passed, r
    # cheap gates first: mean luminances, and colour in at least one picture
    todo = np.flatnonzero(
        (luminance_ratio(a16, b16) <= params.max_luminance_ratio)
        & (np.maximum(chroma_rms(a16), chroma_rms(b16)) >= MIN_CHROMA)
    )
    if len(todo) == 0:
        return passed, r
    rms, alpha, spread, _, swap, corr = colour_change_fit(a16[todo], b16[todo], ga[todo], gb[todo])
    turn = np.abs(np.degrees(np.angle(alpha)))
    mono = np.abs(alpha) * spread <= MONOTONE_CHROMA
    hue = ~mono & (turn > SMALL_HUE_TURN) & (turn <= MAX_HUE_TURN) & (np.abs(alpha) >= HUE_KEEP)
    chroma = (rms <= MAX_CHROMA_RESIDUAL) & (mono | (turn <= SMALL_HUE_TURN) | hue)
    todo, swap, corr, hue, mono = todo[chroma], swap[chroma], corr[chroma], hue[chroma], mono[chroma]
    sw = swap[:, None, None]
    src = np.clip(np.where(sw, gb[todo], ga[todo]).astype(np.float32) + corr * hue[:, None, None], 0, 255)
    drops = np.broadcast_to(np.asarray(drop), (p,))[todo]
    r[todo] = pixel_residual(src, np.where(sw, ga[todo], gb[todo]), drop=drops)
    passed[todo] = r[todo] <= np.where(mono, MONOTONE_RESIDUAL, 1.0) * params.max_residual
    return passed, r


def _check_unaligned(
    a: Side,
    b: Side,
    i: np.ndarray,
    j: np.ndarray,
    v: tuple[int, int],
    both_large: np.ndarray,
    out: Outcome,
    params: DetectorParams,
) -> None:
    """Tests 1-3 on variants `v = (variant of a, variant of b)` of the pairs not yet accepted
    (trimmed variants only between large pictures: trimming a small picture's background
    rescales it to its object's box, an alignment in disguise -- Fashion-MNIST, docs/dedupe.md)."""
    va, vb = v
    idx = np.flatnonzero(~out.ok & (both_large | (va + vb == 0)))
    screened = pooled_residual(a.pool[i[idx], va], b.pool[j[idx], vb]) <= PRESCREEN_FACTOR * params.max_residual
    idx = idx[screened]
    drops = np.where(both_large[idx], DROP_BLOCKS, 0)
    keep = colour_check(a.colour8[i[idx], va], b.colour8[j[idx], vb], params)
    idx, drops = idx[keep], drops[keep]
    passed, r = pixel_check(a.gray(i[idx], va), b.gray(j[idx], vb), params, drop=drops)
    good = idx[passed]
    out.best[good] = np.minimum(out.best[good], r[passed])
    out.ok[good] = True


def _check_colour_changes(
    a: Side, b: Side, i: np.ndarray, j: np.ndarray, both_large: np.ndarray, out: Outcome, params: DetectorParams
) -> None:
    """Test 2b (`colour_change_check`) on the whole pictures of the large pairs not yet
    accepted, screened or not (a filter moves the luma the screen compares). Small pictures get
    none: their thumbnail is the whole picture, and a designed colour variant of an icon cannot
    be told from a filtered copy there."""
    idx = np.flatnonzero(~out.ok & both_large)
    passed, r = colour_change_check(
        a.colour16(i[idx], 0), b.colour16(j[idx], 0), a.gray(i[idx], 0), b.gray(j[idx], 0), params, DROP_BLOCKS
    )
    good = idx[passed]
    out.best[good] = np.minimum(out.best[good], r[passed])
    out.ok[good] = True


def _to_align(
    a: Side, b: Side, i: np.ndarray, j: np.ndarray, v: int, both_large: np.ndarray, out: Outcome, params: DetectorParams
) -> np.ndarray:
    """Pairs (indices) worth an alignment in variant `v`: large, not accepted, layouts
    correlated at least `align_floor`, mean luminances within `max_luminance_ratio`."""
    todo = np.flatnonzero(~out.ok & both_large)
    if len(todo):
        corr = layout_correlation(a.pool[i[todo], v], b.pool[j[todo], v])
        lum = luminance_ratio(a.colour8[i[todo], v], b.colour8[j[todo], v])
        todo = todo[(corr >= params.align_floor) & (lum <= params.max_luminance_ratio)]
    return todo


def _check_aligned(a: Side, b: Side, ia: int, jb: int, v: int, k: int, out: Outcome, params: DetectorParams) -> None:
    """Test 4 on pair `k` = (a[ia], b[jb]), variant `v`: the pixel and colour tests after each
    warp `align` proposes (the best residual counts)."""
    ga = a.sig.gray[ia, v]
    gb = b.gray(np.array([jb]), v)[0]
    for w in align(ga, gb, params.max_crop):
        gw, gm = warp_image(gb, w, THUMB, 1.0)
        if gm.mean() < MIN_OVERLAP:
            continue
        passed, r = pixel_check(ga[None], gw[None], params, gm[None], drop=DROP_BLOCKS)
        rr = float(r[0])
        if not (passed[0] and rr < out.best[k]):
            continue
        cw, cm = warp_image(b.colour(jb, v), w, COLOUR, COLOUR / THUMB)
        a8, b8, valid = colour_blocks(a.sig.colour[ia, v], cw, cm)
        if colour_check(a8, b8, params, valid)[0]:
            out.ok[k], out.best[k], out.aligned[k] = True, rr, True


def verify_pairs(a: Side, b: Side, i: np.ndarray, j: np.ndarray, params: DetectorParams) -> Outcome:
    """Runs the tests on candidate pairs `(a[i], b[j])`, cheapest first, each on the pairs the
    previous ones left; returns their `Outcome`."""
    out = Outcome.start(len(i))
    if len(i) == 0:
        return out
    both_large = a.sig.large[i] & b.sig.large[j]
    for v in range(2):
        _check_unaligned(a, b, i, j, (v, v), both_large, out, params)
        if v == 0 and params.colour_changes:
            _check_colour_changes(a, b, i, j, both_large, out, params)
        if v == 1:  # a frame trimmed from one picture only (the other's own margins kept)
            _check_unaligned(a, b, i, j, (0, 1), both_large, out, params)
            _check_unaligned(a, b, i, j, (1, 0), both_large, out, params)
        for k in _to_align(a, b, i, j, v, both_large, out, params):
            _check_aligned(a, b, int(i[k]), int(j[k]), v, int(k), out, params)
    return out


def verify_candidates(
    sig_a: Signatures,
    sig_b: Signatures,
    i: np.ndarray,
    j: np.ndarray,
    mirror: bool,
    params: DetectorParams,
    chunk: int = VERIFY_CHUNK,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Verifies candidate pairs in blocks of `chunk` pairs, so memory stays bounded.

    Args:
        sig_a, sig_b: Signatures (the same object for pairs within one collection).
        i, j: np.ndarray of int64, shape `(p,)`. Candidate pairs `(sig_a[i], sig_b[j])`.
        mirror: bool. Compare with the mirror images of `sig_b` (flipped copies).
        params: DetectorParams.
        chunk: int, default 65,536. Pairs per block (about 100 MB).

    Returns:
        tuple `(accepted, residual, aligned)` of arrays of shape `(p,)`: bool, float64 (grey
        levels, `inf` where not accepted), bool.
    """
    ok = np.zeros(len(i), bool)
    res = np.full(len(i), np.inf)
    al = np.zeros(len(i), bool)
    if len(i) == 0:
        return ok, res, al
    a = Side.of(sig_a)
    b = a if (sig_b is sig_a and not mirror) else Side.of(sig_b, mirror)
    for s in range(0, len(i), chunk):
        sl = slice(s, s + chunk)
        o = verify_pairs(a, b, i[sl], j[sl], params)
        ok[sl], res[sl], al[sl] = o.ok, o.best, o.aligned
    return ok, res, al
