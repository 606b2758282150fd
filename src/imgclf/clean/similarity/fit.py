"""The verification maths: photometric fits and residuals of thumbnail pairs (vectorized).

Every function takes `p` pairs at once and returns one value per pair; none decides anything
(the thresholds are applied in `imgclf.clean.similarity.verify`).

- `censored_fit_residual`: one gain and offset per pair, fitted by least squares on the samples
  that are not clipped, with clipped samples only bounding the prediction (a censored fit).
- `pixel_residual`: that fit on grayscale thumbnails, both directions, as an RMS over blocks
  without the worst ones; `inf` where the fit explains too little of the picture's variance.
- `colour_fit`: the same fit shared by R, G and B on colour grids, and the luminance ratio.
- `pooled`, `pooled_residual`, `luminance_ratio`, `colour_blocks`: the 8 x 8 layouts and block
  means the cheap screens and the colour check after an alignment compare.
"""

from __future__ import annotations

import numpy as np

from imgclf.clean.similarity.params import (
    BLOCKS,
    CLIP_HIGH,
    CLIP_LOW,
    COLOUR,
    COLOUR_CHECK,
    DROP_BLOCKS,
    FRAME,
    GAIN_RANGE,
    MAX_UNEXPLAINED,
    THUMB,
)


def censored_fit_residual(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Residual of `y ~ clip(g * x + o, 0, 255)` per sample, gain and offset fitted per pair.

    A least-squares fit of one gain `g` (clipped to `GAIN_RANGE`) and one offset `o` per pair,
    on the samples that are not clipped in either image (within `(CLIP_LOW, CLIP_HIGH)`; all
    samples when fewer than a quarter are); then the residual of every sample, where a sample
    clipped in `x` only bounds its prediction (a highlight at 255 in `x` predicts "at least
    the fitted value" in `y`) and a prediction clipped together with `y` counts as met. This is
    the censored-regression view of clipping (a Tobit model; Tobin, Econometrica 1958).

    Args:
        x, y: np.ndarray of float32, shape `(p, s)`: `p` pairs of `s` samples in [0, 255].
        mask: np.ndarray of bool, shape `(p, s)`, or None. Samples to use (e.g. the overlap of
            an alignment); the others get residual 0 and are left out of the fit.

    Returns:
        np.ndarray of float32, shape `(p, s)`: `y` minus its prediction.
    """
    valid = np.ones(x.shape, bool) if mask is None else mask
    w = valid & (x > CLIP_LOW) & (x < CLIP_HIGH) & (y > CLIP_LOW) & (y < CLIP_HIGH)
    few = w.sum(1) < 0.25 * valid.sum(1)
    w[few] = valid[few]
    w = w.astype(np.float32)
    sw = np.maximum(w.sum(1, keepdims=True), 1.0)
    mx = (w * x).sum(1, keepdims=True) / sw
    my = (w * y).sum(1, keepdims=True) / sw
    dx = x - mx
    g = (w * dx * (y - my)).sum(1) / np.maximum((w * dx * dx).sum(1), 1e-6)
    g = np.clip(g, *GAIN_RANGE).astype(np.float32)[:, None]
    pred = np.clip(my + g * dx, 0.0, 255.0)
    r = y - pred
    r[(x >= CLIP_HIGH) & (r > 0)] = 0.0
    r[(x <= CLIP_LOW) & (r < 0)] = 0.0
    r[(pred >= CLIP_HIGH) & (y >= CLIP_HIGH)] = 0.0
    r[(pred <= CLIP_LOW) & (y <= CLIP_LOW)] = 0.0
    r[~valid] = 0.0
    return r


def block_rms(sq: np.ndarray, cnt: np.ndarray, drop: int | np.ndarray) -> np.ndarray:
    """RMS over a `BLOCKS x BLOCKS` grid of blocks without the `drop` worst ones.

    Args:
        sq: np.ndarray, shape `(p, t, t)`: squared residual per sample (0 where not compared).
        cnt: np.ndarray, shape `(p, t, t)`: samples compared per position (0 or more).
        drop: int or np.ndarray of int, shape `(p,)`. Blocks left out, the worst first (the
            largest mean squared residual; empty blocks never count).

    Returns:
        np.ndarray of float64, shape `(p,)`.
    """
    p, t = sq.shape[0], sq.shape[1]
    bs = t // BLOCKS
    s = sq.reshape(p, BLOCKS, bs, BLOCKS, bs).sum((2, 4)).reshape(p, -1)
    c = cnt.reshape(p, BLOCKS, bs, BLOCKS, bs).sum((2, 4)).reshape(p, -1)
    mean_sq = np.where(c > 0, s / np.maximum(c, 1), -1.0)
    order = np.argsort(-mean_sq, axis=1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(s.shape[1]), s.shape), axis=1)
    keep = rank >= np.broadcast_to(np.asarray(drop), (p,))[:, None]
    return np.sqrt((s * keep).sum(1) / np.maximum((c * keep).sum(1), 1.0))


def pixel_residual(
    a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, drop: int | np.ndarray = DROP_BLOCKS
) -> np.ndarray:
    """The pixel test's robust residual of thumbnail pairs, in grey levels.

    The censored gain/offset fit (`censored_fit_residual`) in both directions, on the pixels
    more than `FRAME` in from the edges; per direction the RMS residual over the blocks of a
    `BLOCKS x BLOCKS` grid without the `drop` worst ones; the larger of the two directions.

    A residual only means "the same picture" when the picture has more variation than that:
    two different pictures of pure noise with a standard deviation of 5 grey levels are within
    5 grey levels of each other. So per direction the residual is also compared with the target
    thumbnail's own RMS deviation from its mean (over the compared pixels), and when it is more
    than `MAX_UNEXPLAINED` of it (the fit explains less than 1 - 0.7^2 = 51 % of the variance)
    the pair gets residual `inf` (measurements: `imgclf.clean.similarity.params.MAX_UNEXPLAINED`).

    Args:
        a, b: np.ndarray, shape `(p, t, t)` with `t` divisible by `BLOCKS`, values in [0, 255].
        mask: np.ndarray of bool, shape `(p, t, t)`, or None. Pixels to compare.
        drop: int or np.ndarray of int, shape `(p,)`, default `DROP_BLOCKS`. Worst blocks left
            out, per pair.

    Returns:
        np.ndarray of float64, shape `(p,)`, >= 0 (`inf` where the fit explains too little).
    """
    p, t = a.shape[0], a.shape[1]
    if p == 0:
        return np.zeros(0)
    m = _inner(p, t, mask).reshape(p, -1)
    x = a.reshape(p, -1).astype(np.float32)
    y = b.reshape(p, -1).astype(np.float32)
    cnt = m.astype(np.float32).reshape(p, t, t)
    out = np.zeros(p)
    mf = m.astype(np.float32)
    n = np.maximum(mf.sum(1), 1.0)
    for u, v in ((x, y), (y, x)):
        r = censored_fit_residual(u, v, m)
        res = block_rms((r * r).reshape(p, t, t), cnt, drop)
        mean = (mf * v).sum(1) / n
        spread = np.sqrt((mf * (v - mean[:, None]) ** 2).sum(1) / n)
        res = np.where(res <= MAX_UNEXPLAINED * spread, res, np.inf)
        out = np.maximum(out, res)
    return out


def _inner(p: int, t: int, mask: np.ndarray | None) -> np.ndarray:
    """`mask` (or all pixels) without the outermost `FRAME` pixels of a `t x t` thumbnail."""
    if not FRAME:
        return np.ones((p, t, t), bool) if mask is None else mask
    inner = np.zeros((t, t), bool)
    inner[FRAME : t - FRAME, FRAME : t - FRAME] = True
    return np.broadcast_to(inner, (p, t, t)) if mask is None else (mask & inner)


def colour_fit(
    a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, drop: int | np.ndarray = 0
) -> tuple[np.ndarray, np.ndarray]:
    """How well one brightness/contrast change maps colour thumbnails `a` onto `b`.

    The censored gain/offset fit of `censored_fit_residual` over all pixels and channels of each
    pair at once (the same gain and offset for R, G and B), in both directions; the RMS
    residual over a `BLOCKS x BLOCKS` grid of blocks without the `drop` worst (default none:
    leaving out one block as the pixel test does let colour-graded variants of one photo through
    on the benchmark, docs/dedupe.md).

    Args:
        a, b: np.ndarray, shape `(p, h, w, 3)` with `h = w` divisible by `BLOCKS`, values in
            [0, 255].
        mask: np.ndarray of bool, shape `(p, h, w)`, or None. Pixels to compare.
        drop: int or np.ndarray of int, shape `(p,)`, default 0. Worst blocks left out.

    Returns:
        tuple `(residual, ratio)` of float64 arrays, shape `(p,)`: the larger RMS residual of
        the two directions in [0, 255] units, and `max(mean_a, mean_b) / min(mean_a, mean_b)`
        of the mean values + 1 (>= 1).
    """
    p = len(a)
    if p == 0:
        return np.zeros(0), np.ones(0)
    h = a.shape[1]
    x = a.reshape(p, -1).astype(np.float32)
    y = b.reshape(p, -1).astype(np.float32)
    m2 = np.ones((p, h, h), bool) if mask is None else mask.reshape(p, h, h)
    m = np.repeat(m2.reshape(p, -1), 3, axis=1)
    cnt = 3.0 * m2.astype(np.float32)
    n = np.maximum(m.sum(1), 1)
    res = np.zeros(p)
    for u, v in ((x, y), (y, x)):
        r = censored_fit_residual(u, v, m)
        res = np.maximum(res, block_rms((r * r).reshape(p, h, h, 3).sum(3), cnt, drop))
    la, lb = (x * m).sum(1) / n + 1, (y * m).sum(1) / n + 1
    return res, np.maximum(la, lb) / np.minimum(la, lb)


def pooled(gray: np.ndarray) -> np.ndarray:
    """8 x 8 block means of thumbnails: `(..., 32, 32)` -> float32 `(..., 64)`, zero-mean rows."""
    f = THUMB // 8
    lead = gray.shape[:-2]
    x = gray.reshape(-1, 8, f, THUMB).sum(2, dtype=np.uint32).reshape(-1, 8, 8, f).sum(3, dtype=np.uint32)
    x = x.reshape(-1, 64).astype(np.float32) / (f * f)
    return (x - x.mean(1, keepdims=True)).reshape(*lead, 64)


def colour_grid(colour: np.ndarray) -> np.ndarray:
    """`COLOUR_CHECK` x `COLOUR_CHECK` block means of colour thumbnails.

    Args:
        colour: np.ndarray of uint8, shape `(n, 2, 16, 16, 3)` (`Signatures.colour`).

    Returns:
        np.ndarray of float32, shape `(n, 2, 8, 8, 3)`.
    """
    n = len(colour)
    f = COLOUR // COLOUR_CHECK
    c8 = colour.reshape(n * 2 * COLOUR_CHECK, f, COLOUR, 3).sum(1, dtype=np.uint32)
    c8 = c8.reshape(n * 2 * COLOUR_CHECK, COLOUR_CHECK, f, 3).sum(2, dtype=np.uint32)
    return (c8.astype(np.float32) / (f * f)).reshape(n, 2, COLOUR_CHECK, COLOUR_CHECK, 3)


def pooled_residual(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Plain least-squares residual (RMS, the smaller direction) of zero-mean pooled thumbnails
    `(p, 64)` (`pooled`): the screen before the pixel test."""
    sxy = (x * y).sum(1)
    sxx = (x * x).sum(1)
    syy = (y * y).sum(1)
    r = np.minimum(syy - sxy * sxy / np.maximum(sxx, 1e-6), sxx - sxy * sxy / np.maximum(syy, 1e-6))
    return np.sqrt(np.maximum(r, 0.0) / 64)


def layout_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of zero-mean pooled thumbnails `(p, 64)` (`pooled`), shape `(p,)`."""
    return (x * y).sum(1) / np.sqrt(np.maximum((x * x).sum(1) * (y * y).sum(1), 1e-6))


def luminance_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`max / min` of the mean values + 1 of each pair of arrays `(p, ...)`, shape `(p,)`."""
    la = a.reshape(len(a), -1).astype(np.float32).mean(1) + 1
    lb = b.reshape(len(b), -1).astype(np.float32).mean(1) + 1
    return np.maximum(la, lb) / np.minimum(la, lb)


def colour_blocks(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8 x 8 block means of a colour thumbnail `a` and a warped one `b` (`(16, 16, 3)`), over the
    pixels of `mask` (the warped thumbnail's valid pixels, for both alike): the colour check
    after an alignment. Warping the 16 x 16 thumbnail and comparing its block means keeps the
    resampling error below what a brightness change does (warping an 8 x 8 grid did not,
    docs/dedupe.md). Returns `(a8, b8, valid)` with a leading axis of 1."""
    m = mask.astype(np.float32)[:, :, None]
    h = COLOUR_CHECK
    f = COLOUR // h

    def pool(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) * m).reshape(h, f, h, f, 3).sum((1, 3))

    cnt = m[:, :, 0].reshape(h, f, h, f).sum((1, 3))
    ok = cnt > 0
    div = np.maximum(cnt, 1)[:, :, None]
    return (pool(a) / div)[None], (pool(b) / div)[None], ok[None]


#: Rows: Y, Cb, Cr of full-range BT.601 (`cv2.COLOR_RGB2GRAY`'s luma weights), from R, G, B.
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)


def _ycc(colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Luma `(p, s)` and chroma `Cb + i Cr` `(p, s)` of colour thumbnails `(p, h, w, 3)`."""
    x = colour.reshape(len(colour), -1, 3).astype(np.float32) @ _YCC.T
    return x[..., 0].astype(np.float64), x[..., 1].astype(np.float64) + 1j * x[..., 2].astype(np.float64)


def chroma_rms(colour: np.ndarray) -> np.ndarray:
    """Colourfulness: RMS chroma `|Cb + i Cr|` (full-range BT.601, [0, 255] units) of colour
    thumbnails `(p, h, w, 3)`, shape `(p,)`; 0 for a grayscale picture."""
    _, z = _ycc(colour)
    return np.sqrt((np.abs(z) ** 2).mean(1))


def _least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per pair, the coefficients `c` `(p, k)` minimising `|y - x @ c|` for regressors
    `x` `(p, s, k)` and targets `y` `(p, s)` (real or complex; a tiny ridge keeps constant or
    collinear regressors solvable)."""
    xh = np.conj(np.swapaxes(x, 1, 2))
    gram = xh @ x
    ridge = 1e-6 * (np.trace(gram.real, axis1=1, axis2=2) / x.shape[2] + 1.0)
    gram = gram + ridge[:, None, None] * np.eye(x.shape[2])
    return np.linalg.solve(gram, (xh @ y[:, :, None]))[:, :, 0]


def _upsample(c16: np.ndarray) -> np.ndarray:
    """Bilinear enlargement `(p, 16, 16)` -> `(p, 32, 32)` (pixel centres aligned, edges
    replicated), as `cv2.resize(..., INTER_LINEAR)` does it."""
    n = c16.shape[1]
    pos = np.clip((np.arange(2 * n) + 0.5) / 2 - 0.5, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    m = np.zeros((2 * n, n))
    m[np.arange(2 * n), lo] += 1 - (pos - lo)
    m[np.arange(2 * n), hi] += pos - lo
    return np.einsum("ij,pjk,lk->pil", m, c16, m)


def colour_change_fit(
    a: np.ndarray, b: np.ndarray, ga: np.ndarray, gb: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How a colour filter maps the pictures of each pair, in luma / chroma terms.

    The colour thumbnails are split into luma `Y` and chroma `z = Cb + i Cr` (full-range
    BT.601). The more colourful picture of each pair is the source `s` (larger RMS chroma
    deviation), the other the target `t`. Two least-squares fits per pair:

    - chroma, on the colour thumbnails: `z_t ~ alpha z_s + gamma Y_s + delta Y_s^2 / 255 + beta`
      (complex `alpha`, `gamma`, `delta`, `beta`): `alpha` scales (saturation) and turns (hue
      rotation) the source's chroma, the rest is a tint following the light (sepia, clipped in
      the highlights; a white-balance shift); a grayscale copy has `alpha = 0`;
    - luma, on the grayscale thumbnails (the source's chroma enlarged to 32 x 32):
      `G_t ~ g G_s + o + k_b Cb_s + k_r Cr_s`: a filter moves the luma of coloured pixels
      too (an HSV hue rotation); `(k_b Cb_s + k_r Cr_s) / g` is the correction of the source's
      grayscale thumbnail that makes it comparable with the target's.

    Args:
        a, b: np.ndarray, shape `(p, 16, 16, 3)`, values in [0, 255]. Colour thumbnails.
        ga, gb: np.ndarray, shape `(p, 32, 32)`, values in [0, 255]. Grayscale thumbnails.

    Returns:
        tuple `(residual, alpha, spread, colour, source_is_b, correction)`: the RMS chroma
        residual in [0, 255] units `(p,)`; `alpha` complex `(p,)`; the source's RMS chroma
        deviation from its mean `(p,)` and its RMS chroma `|z|` (its colourfulness) `(p,)`;
        bool `(p,)`, True where `b` is the source; the luma correction of the source's grayscale
        thumbnail, float32 `(p, 32, 32)`, in grey levels.
    """
    p = len(a)
    ya, za = _ycc(a)
    yb, zb = _ycc(b)
    sa = np.sqrt((np.abs(za - za.mean(1, keepdims=True)) ** 2).mean(1))
    sb = np.sqrt((np.abs(zb - zb.mean(1, keepdims=True)) ** 2).mean(1))
    swap = sb > sa  # the source: the picture whose colours vary more
    zs, zt = np.where(swap[:, None], zb, za), np.where(swap[:, None], za, zb)
    ys = np.where(swap[:, None], yb, ya)
    ones = np.ones_like(ys)
    curve = ys * ys / 255.0  # a tint that saturates in the highlights (a clipped sepia)
    coef = _least_squares(np.stack([zs, ys + 0j, curve + 0j, ones + 0j], -1), zt)
    res = zt - (coef[:, 0:1] * zs + coef[:, 1:2] * ys + coef[:, 2:3] * curve + coef[:, 3:4])
    rms = np.sqrt((np.abs(res) ** 2).mean(1))
    side = a.shape[1]
    cb = _upsample(zs.real.reshape(p, side, side)).reshape(p, -1)
    cr = _upsample(zs.imag.reshape(p, side, side)).reshape(p, -1)
    gs = np.where(swap[:, None, None], gb, ga).reshape(p, -1).astype(np.float64)
    gt = np.where(swap[:, None, None], ga, gb).reshape(p, -1).astype(np.float64)
    inner = _inner(1, 2 * side, None).reshape(-1)
    x = np.stack([gs, np.ones_like(gs), cb, cr], -1)
    lum = _least_squares(x[:, inner], gt[:, inner])
    g = np.maximum(lum[:, 0], GAIN_RANGE[0])
    corr = (lum[:, 2:3] * cb + lum[:, 3:4] * cr) / g[:, None]
    colour = np.sqrt((np.abs(zs) ** 2).mean(1))
    return rms, coef[:, 0], np.maximum(sa, sb), colour, swap, corr.reshape(p, 2 * side, 2 * side).astype(np.float32)
