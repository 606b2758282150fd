"""Two-stage near-duplicate detection: exact Hamming candidates, then a verified pixel test.

Pure library code: arrays in, pairs out, no files. `clean` and `split` compute one `Signature`
per image when they decode it (`signature(img)`; about 3.7 KB, `Signature.nbytes`), keep the
signatures, and call `find_duplicate_pairs(signatures)` once (`find_cross_pairs(a, b)` for a
test set against a training set). Measurements behind every default: `docs/dedupe.md`
(`scripts/bench/bench_dedupe.py`).

Per image (`signature`): the picture is reduced to at most 256 px (`cv2.INTER_AREA`); its
uniform margins are found (`trim_box`: padding, letterbox, solid borders); for the whole and the
trimmed picture an anti-aliased 32 x 32 grayscale thumbnail (area-reduce to 64, Gaussian sigma
1, area-reduce to 32) and a 16 x 16 RGB thumbnail are kept, with the 64-bit hashes below.

Stage 0 -- exact duplicates: same BLAKE2b-128 digest of the decoded RGB pixels and size; kind
`"exact"`, residual 0, whatever stage 2 says.

Stage 1 -- candidates (exact searches, scalable), the union of:

- pairs whose 64-bit perceptual hashes are within `radius` bits, found by multi-index hashing
  (`imgclf.clean.search.hamming_pairs` / `hamming_cross_pairs`; Norouzi, Punjani & Fleet,
  CVPR 2012). The hash is Zauner's phash ("Implementation and Benchmarking of Perceptual Image
  Hash Functions", 2010): the 8 x 8 DCT-II low band of a 32 x 32 thumbnail vs its median --
  bit for bit what `imagehash.phash(img, hash_size=8)` gives on that thumbnail (tested),
  computed here for many thumbnails at once. Hashed: the whole picture, the trimmed picture
  (a padded or bordered copy hashes like its original; a product shot's hash is also steadier
  on its box) and, for pictures of at least `SMALL_SIDE` px, the central 80 % of the trimmed
  picture (a watermark in a corner);
- crop windows, for pictures of at least `SMALL_SIDE` px: the hashes of the nine windows of
  92 % of each side at offsets 0, 4 and 8 % of the trimmed picture, searched against the other
  pictures' whole and trimmed hashes (a crop of up to 10 % per side is within 4 % of one
  window per axis);
- layouts, for low-structure pictures: the 8 x 8 block means of a thumbnail, mean removed,
  within `max_residual` grey levels RMS of another picture's (`layout_pairs`: a k-d tree on an
  orthonormal projection, then the full check -- exact). Where the layout's RMS is below
  `LOW_STRUCTURE` grey levels (gradients, flat designs, dark photos) most DCT coefficients sit
  near the median and a watermark or a crop flips many hash bits.

Stage 2 -- verification of every candidate pair, in either variant (whole / whole or
trimmed / trimmed), cheapest test first; a pair is a near duplicate when, in one variant:

- colour: one brightness / contrast change explains the colours. The least-squares fit
  `b = g * a + o` over the three channels of the two 8 x 8 colour grids (block means of the
  16 x 16 thumbnails) at once -- the same gain and offset for R, G and B, which is what a
  brightness or contrast change is; PIL's `ImageEnhance.Contrast` blends every channel with the
  same grey mean -- leaves a root-mean-square residual of at most `max_colour_residual` (in
  [0, 255]) in both directions, with the gain clipped to `GAIN_RANGE` (a flat picture cannot
  "explain" a structured one with a gain near 0), and the mean luminances differ by a factor
  of at most `max_luminance_ratio`. This rejects colour variants (folder-red vs folder-green)
  and the light / dark variants of one design;
- pixels: the same fit on the 32 x 32 grayscale thumbnails (without their outermost pixel,
  `FRAME`), in both directions, leaves a root-mean-square residual of at most `max_residual`
  grey levels -- for two pictures of at least `SMALL_SIDE` px after leaving out the worst of the
  16 blocks of 8 x 8 pixels (a watermark or logo covers about one block; a different layout
  differs in many). Clipping is modelled: samples at or beyond `CLIP_LOW` / `CLIP_HIGH` in the
  source only bound the prediction (a brightness +20 % copy loses its highlights), and the fit
  uses the unclipped samples (a censored fit). This test, not a structural index, is what
  tells a re-uploaded product photo from another product shot the same way (Fashion-MNIST,
  `docs/dedupe.md`);
- crops: when both pictures have at least `SMALL_SIDE` px on their shorter side and the
  unaligned tests fail with a Pearson correlation of the layouts of at least `align_floor`,
  the thumbnails are aligned -- a coarse search over the scales `1, 1/0.95, 1/0.9` per axis by
  normalized cross-correlation (`cv2.matchTemplate`, `TM_CCOEFF_NORMED`; Lewis, "Fast
  Normalized Cross-Correlation", 1995) and its refinement by enhanced-correlation-coefficient
  maximization over affine warps (`cv2.findTransformECC`; Evangelidis & Psarakis, "Parametric
  Image Alignment Using Enhanced Correlation Coefficient Maximization", IEEE TPAMI 2008), each
  kept only if it is a crop of at most `max_crop` per side (`align`); both tests are repeated
  on the overlap (at least 70 % of the thumbnail), the colour thumbnails warped the same way
  and compared on their 8 x 8 block means, and the better warp counts.

Small pictures (shorter side below `SMALL_SIDE` = 64 px, e.g. Fashion-MNIST's 28 x 28): the
thumbnail holds the whole picture, so there is no scale at which a crop or a local edit could be
told from a different picture shot the same way; they get no crop windows, no centre hash, no
alignment, no dropped block and no trimmed comparison (trimming a product photo's background
rescales it to the product's box) -- only the strict unaligned tests on the whole picture.

Horizontal flips (`flips=True`): each picture's mirrored codes are searched against the others'
codes and verified against the mirrored thumbnails; such pairs have kind `"flip"`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.clean.search import hamming_cross_pairs, hamming_pairs

#: Side, in pixels, of the grayscale thumbnails (hashed and compared).
THUMB = 32
#: Side, in pixels, of the RGB thumbnails the colour check compares.
COLOUR = 16
#: Side of the colour grid the colour check compares (block means of the thumbnail).
COLOUR_CHECK = 8
#: Longest side, in pixels, a picture is reduced to (`cv2.INTER_AREA`) before trimming and
#: thumbnailing; `clean` decodes JPEGs in draft mode at 256 px already.
WORK_SIDE = 256
#: Pictures whose shorter side is below this many pixels get no crop windows and no alignment.
SMALL_SIDE = 64
#: Share of each side cut for the centre code.
CENTRE_CUT = 0.10
#: Crop windows: kept share of each side, and the offsets (share of the side) along each axis.
WINDOW_KEEP = 0.92
WINDOW_OFFSETS = (0.0, 0.04, 0.08)
#: Codes per picture in `Signature.codes`: whole, trimmed, centre.
CODE_NAMES = ("whole", "trimmed", "centre")

#: Default candidate radius, in bits of each 64-bit code. See docs/dedupe.md.
DEFAULT_RADIUS = 8
#: Default largest robust RMS residual, in grey levels [0, 255], of a near duplicate.
DEFAULT_MAX_RESIDUAL = 5.0
#: Default smallest Pearson correlation of two layouts for the crop alignment to be tried.
DEFAULT_ALIGN_FLOOR = 0.5
#: Default largest crop, as a share of each side, the alignment accepts.
DEFAULT_MAX_CROP = 0.10
#: Default largest RMS residual (in [0, 255]) of the shared gain/offset colour fit.
DEFAULT_MAX_COLOUR_RESIDUAL = 8.0
#: Default largest ratio of the two mean luminances (brightness +-20 % gives 1.2 / 0.8 = 1.5).
DEFAULT_MAX_LUMINANCE_RATIO = 1.6
#: Range the gain of every photometric fit is clipped to (contrast +-20 % is 0.8-1.25).
GAIN_RANGE = (0.5, 2.0)
#: Samples at or beyond these grey levels are treated as clipped (censored) in the fits.
CLIP_LOW, CLIP_HIGH = 4.0, 240.0
#: The pixel test leaves out this many pixels along the edges of the thumbnails (what a trim or
#: a crop resamples worst).
FRAME = 1
#: The pixel test splits a thumbnail into BLOCKS x BLOCKS blocks and leaves out the worst DROP.
BLOCKS, DROP_BLOCKS = 4, 1

#: The pixel test's residual may be at most this share of the target thumbnail's own RMS
#: deviation from its mean (the fit explains at least 1 - 0.7^2 = 51 % of its variance); two
#: pictures of noise, or two different dark pictures, are otherwise "within 5 grey levels" when
#: their own variation is that small (docs/dedupe.md, the verified detector, test 3).
MAX_UNEXPLAINED = 0.7

#: Trim: a margin line is uniform when every pixel's luma is within this many levels (in
#: [0, 255]) of the line's median, measured on the `WORK_SIDE` image.
TRIM_TOLERANCE = 4
#: Trim: the kept region must cover at least this share of each side, else nothing is trimmed.
TRIM_MIN_KEEP = 0.25

KIND_EXACT = "exact"
KIND_NEAR = "near"
KIND_FLIP = "flip"

_NCODES = len(CODE_NAMES)
_NWIN = len(WINDOW_OFFSETS) ** 2


@dataclass(frozen=True)
class Signature:
    """What the detector keeps about one image (computed once, when the image is decoded).

    Attributes:
        digest: bytes, 16. BLAKE2b-128 of the decoded RGB pixels and their size (exact key).
        size: tuple `(width, height)` of the decoded picture, in pixels.
        codes: np.ndarray of uint64, shape `(3,)`. 64-bit phash of the whole picture, of the
            trimmed picture and of the central 80 % of the trimmed picture (`CODE_NAMES`; the
            last only searched for a picture of at least `SMALL_SIDE` px).
        flip_codes: np.ndarray of uint64, shape `(3,)`. The same for the mirrored picture.
        window_codes: np.ndarray of uint64, shape `(9,)`. Phash of the crop windows (zeros,
            and unused, for a picture smaller than `SMALL_SIDE`).
        gray: np.ndarray of uint8, shape `(2, 32, 32)`. Anti-aliased grayscale thumbnails of
            the whole and of the trimmed picture, in [0, 255].
        colour: np.ndarray of uint8, shape `(2, 16, 16, 3)`. RGB thumbnails, same two variants.
        box: tuple of 4 float. Trimmed region `(top, bottom, left, right)` as fractions of the
            height / width, in [0, 1].
    """

    digest: bytes
    size: tuple[int, int]
    codes: np.ndarray
    flip_codes: np.ndarray
    window_codes: np.ndarray
    gray: np.ndarray
    colour: np.ndarray
    box: tuple[float, float, float, float]

    @property
    def large(self) -> bool:
        """bool: the shorter side is at least `SMALL_SIDE` px (crop windows and alignment)."""
        return min(self.size) >= SMALL_SIDE

    @property
    def nbytes(self) -> int:
        """int: bytes of array payload held (digest, size, codes, thumbnails, box)."""
        return (
            len(self.digest)
            + 8
            + self.codes.nbytes
            + self.flip_codes.nbytes
            + self.window_codes.nbytes
            + self.gray.nbytes
            + self.colour.nbytes
            + 4 * 4
        )


@dataclass(frozen=True)
class Signatures:
    """Signatures of `n` images as stacked arrays (what `find_duplicate_pairs` works on).

    Attributes:
        digests: np.ndarray of `S16` bytes, shape `(n,)`.
        large: np.ndarray of bool, shape `(n,)`. See `Signature.large`.
        codes, flip_codes: np.ndarray of uint64, shape `(n, 3)`.
        window_codes: np.ndarray of uint64, shape `(n, 9)`.
        gray: np.ndarray of uint8, shape `(n, 2, 32, 32)`.
        colour: np.ndarray of uint8, shape `(n, 2, 16, 16, 3)`.
    """

    digests: np.ndarray
    large: np.ndarray
    codes: np.ndarray
    flip_codes: np.ndarray
    window_codes: np.ndarray
    gray: np.ndarray
    colour: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def nbytes(self) -> int:
        """int: bytes of the stacked arrays."""
        return sum(getattr(self, f.name).nbytes for f in fields(self))

    def take(self, index: np.ndarray | Sequence[int]) -> Signatures:
        """The signatures at `index` (int array), in that order."""
        k = np.asarray(index, dtype=np.int64)
        return Signatures(*(getattr(self, f.name)[k] for f in fields(self)))


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


def _cv2():
    import cv2

    return cv2


# ------------------------------------------------------------------------------ per image


def trim_box(
    rgb: np.ndarray, tolerance: int = TRIM_TOLERANCE, min_keep: float = TRIM_MIN_KEEP, rounds: int = 3
) -> tuple[int, int, int, int]:
    """Finds the region left after removing uniform margins (padding, letterbox, borders).

    On the luma (`cv2.COLOR_RGB2GRAY`; JPEG's 4:2:0 chroma bleeds further into a margin
    than its luma), from each side in turn, rows (or columns) are removed while every pixel of
    the line is within `tolerance` of the (upper) median of the outermost line; this is repeated `rounds`
    times, so nested frames of different colours are removed too.

    Args:
        rgb: np.ndarray of uint8, shape `(height, width, 3)` (or `(height, width)` luma).
        tolerance: int, default 4. Largest luma difference in [0, 255] of a margin pixel.
        min_keep: float in (0, 1], default 0.25. If less than this share of the height or the
            width would remain (a flat image), nothing is trimmed.
        rounds: int, default 3. Passes over the four sides.

    Returns:
        tuple `(top, bottom, left, right)` in pixels: the region is `rgb[top:bottom, left:right]`.
    """
    h, w = rgb.shape[:2]
    y0, y1, x0, x1 = 0, h, 0, w
    a = (_cv2().cvtColor(np.ascontiguousarray(rgb), _cv2().COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb).astype(np.int16)
    for _ in range(rounds):
        changed = False
        for side in range(4):
            sub = a[y0:y1, x0:x1]
            if sub.shape[0] < 2 or sub.shape[1] < 2:
                break
            lines = (sub, sub[::-1], sub.T, sub.T[::-1])[side]
            edge = lines[0]
            ref = np.partition(edge, len(edge) // 2)[len(edge) // 2]  # the (upper) median
            # lines are tested one by one from the edge: margins are a few lines, pictures many
            k = 0
            while k < len(lines) - 1 and int(np.abs(lines[k] - ref).max()) <= tolerance:
                k += 1
            if k == 0:
                continue
            changed = True
            if side == 0:
                y0 += k
            elif side == 1:
                y1 -= k
            elif side == 2:
                x0 += k
            else:
                x1 -= k
        if not changed:
            break
    if (y1 - y0) < min_keep * h or (x1 - x0) < min_keep * w:
        return 0, h, 0, w
    return y0, y1, x0, x1


def _reduce(rgb: np.ndarray, side: int) -> np.ndarray:
    cv2 = _cv2()
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Area reduction when shrinking, bilinear when enlarging (both axes at once)."""
    cv2 = _cv2()
    shrink = img.shape[1] >= w and img.shape[0] >= h
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _smooth(gray: np.ndarray) -> np.ndarray:
    """The 64 x 64 anti-aliased grayscale of a region: area-reduce (or enlarge) to 64, Gaussian
    sigma 1 px (without it fine textures alias, and a shift of one pixel decorrelates them)."""
    return _cv2().GaussianBlur(_resize(gray, 2 * THUMB, 2 * THUMB).astype(np.float32), (0, 0), 1.0)


def _thumb(smooth: np.ndarray) -> np.ndarray:
    return _resize(smooth, THUMB, THUMB)


def _windows(smooth: np.ndarray) -> list[np.ndarray]:
    s = smooth.shape[0]
    k = round(s * WINDOW_KEEP)
    return [
        _thumb(np.ascontiguousarray(smooth[round(oy * s) : round(oy * s) + k, round(ox * s) : round(ox * s) + k]))
        for oy in WINDOW_OFFSETS
        for ox in WINDOW_OFFSETS
    ]


@lru_cache(maxsize=1)
def _dct_rows() -> np.ndarray:
    """The first 8 rows of the unnormalized DCT-II matrix of size 32 (`scipy.fftpack.dct`)."""
    n = np.arange(THUMB)
    k = np.arange(8)[:, None]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * THUMB))


def phash_codes(thumbs: np.ndarray) -> np.ndarray:
    """64-bit phash of 32 x 32 grayscale thumbnails (Zauner 2010; as `imagehash.phash`).

    The 8 x 8 low band of the 2-D DCT-II, each coefficient compared with the band's median --
    the bits `imagehash.phash(Image.fromarray(t), hash_size=8)` returns for a 32 x 32 uint8
    thumbnail `t` (it computes `scipy.fftpack.dct` along both axes), packed in its row-major
    order with `imgclf.clean.search.pack_bits`' bit order.

    Args:
        thumbs: np.ndarray, shape `(k, 32, 32)`, values in [0, 255].

    Returns:
        np.ndarray of uint64, shape `(k,)`.
    """
    c = _dct_rows()
    d = (c @ np.asarray(thumbs, dtype=np.float64) @ c.T).reshape(len(thumbs), 64)
    mid = np.partition(d, (31, 32), axis=1)
    bits = d > (0.5 * (mid[:, 31] + mid[:, 32]))[:, None]  # the median, as numpy.median computes it
    return np.packbits(bits, axis=1).view(">u8").astype(np.uint64)[:, 0]


def signature(img: Image.Image, size: tuple[int, int] | None = None) -> Signature:
    """Computes the near-duplicate signature of one decoded image.

    Args:
        img: PIL.Image.Image. Any size; converted to RGB if needed (use
            `imgclf.images.open_image`, which also composites transparency and applies EXIF).
            A JPEG draft decode of at least 256 px on the longest side gives the same result
            as a full decode up to rounding.
        size: tuple `(width, height)` or None (default: `img.size`). The full size of the
            picture when `img` is a draft decode (`open_image` records it in
            `img.info[imgclf.images.ORIGINAL_SIZE_KEY]`); it decides `Signature.large` and
            is part of the exact digest.

    Returns:
        Signature (about 3.7 KB, `Signature.nbytes`).
    """
    cv2 = _cv2()
    if img.mode != "RGB":
        img = img.convert("RGB")
    full = tuple(size) if size is not None else (img.width, img.height)
    rgb = np.asarray(img)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{full[0]}x{full[1]}:{img.width}x{img.height}:".encode())
    h.update(rgb.tobytes())
    work = np.ascontiguousarray(_reduce(rgb, WORK_SIDE))
    luma = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
    large = min(full) >= SMALL_SIDE
    y0, y1, x0, x1 = trim_box(luma)
    smooth_whole = _smooth(luma)
    trimmed = (y0, y1, x0, x1) != (0, luma.shape[0], 0, luma.shape[1])
    smooth_trim = _smooth(np.ascontiguousarray(luma[y0:y1, x0:x1])) if trimmed else smooth_whole
    whole = _thumb(smooth_whole)
    grays = [whole, _thumb(smooth_trim) if trimmed else whole]
    c = round(2 * THUMB * CENTRE_CUT)
    thumbs = grays + [_thumb(np.ascontiguousarray(smooth_trim[c:-c, c:-c])) if large else grays[1]]
    thumbs += [np.ascontiguousarray(t[:, ::-1]) for t in thumbs]
    if large:
        thumbs += _windows(smooth_trim)
    codes = phash_codes(np.stack(thumbs))
    colour = np.stack(
        [_resize(work, COLOUR, COLOUR), _resize(np.ascontiguousarray(work[y0:y1, x0:x1]), COLOUR, COLOUR)]
    )
    hh, ww = work.shape[:2]
    return Signature(
        digest=h.digest(),
        size=(int(full[0]), int(full[1])),
        codes=codes[:_NCODES].copy(),
        flip_codes=codes[_NCODES : 2 * _NCODES].copy(),
        window_codes=codes[2 * _NCODES :].copy() if large else np.zeros(_NWIN, np.uint64),
        gray=np.clip(np.rint(np.stack(grays)), 0, 255).astype(np.uint8),
        colour=colour.astype(np.uint8),
        box=(y0 / hh, y1 / hh, x0 / ww, x1 / ww),
    )


def file_signature(path) -> Signature:
    """Decodes one image file the way the detector expects and computes its signature.

    `imgclf.images.open_image` with a JPEG draft decode at `WORK_SIDE` (256) pixels, then
    `signature` with the picture's full size. Used by `split` and the evaluation's leak audit
    (`clean` computes signatures inside its own verification, `imgclf.clean.verify`).

    Args:
        path: str or Path. An image file.

    Returns:
        Signature.

    Raises:
        imgclf.errors.ImageError: the file cannot be decoded (its `reason` says why).
    """
    from imgclf.images import ORIGINAL_SIZE_KEY, open_image

    img = open_image(path, draft=WORK_SIDE)
    return signature(img, size=img.info.get(ORIGINAL_SIZE_KEY))


def stack(signatures: Sequence[Signature]) -> Signatures:
    """Stacks per-image signatures into arrays.

    Args:
        signatures: sequence of `Signature`, length n.

    Returns:
        Signatures with arrays of first dimension n.
    """
    if not len(signatures):
        return Signatures(
            np.zeros(0, "S16"),
            np.zeros(0, bool),
            np.zeros((0, _NCODES), np.uint64),
            np.zeros((0, _NCODES), np.uint64),
            np.zeros((0, _NWIN), np.uint64),
            np.zeros((0, 2, THUMB, THUMB), np.uint8),
            np.zeros((0, 2, COLOUR, COLOUR, 3), np.uint8),
        )
    return Signatures(
        digests=np.array([s.digest for s in signatures], dtype="S16"),
        large=np.array([s.large for s in signatures], dtype=bool),
        codes=np.stack([s.codes for s in signatures]),
        flip_codes=np.stack([s.flip_codes for s in signatures]),
        window_codes=np.stack([s.window_codes for s in signatures]),
        gray=np.stack([s.gray for s in signatures]),
        colour=np.stack([s.colour for s in signatures]),
    )


# --------------------------------------------------------------------------- verification


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


def _block_rms(sq: np.ndarray, cnt: np.ndarray, drop) -> np.ndarray:
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


def pixel_residual(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, drop=DROP_BLOCKS) -> np.ndarray:
    """The pixel test's robust residual of thumbnail pairs, in grey levels (see the module docs).

    The censored gain/offset fit (`censored_fit_residual`) in both directions, on the pixels
    more than `FRAME` in from the edges; per direction the RMS residual over the blocks of a
    `BLOCKS x BLOCKS` grid without the `drop` worst ones; the larger of the two directions.

    A residual only means "the same picture" when the picture has more variation than that:
    two different pictures of pure noise with a standard deviation of 5 grey levels are within
    5 grey levels of each other. So per direction the residual is also compared with the target
    thumbnail's own RMS deviation from its mean (over the compared pixels), and when it is more
    than `MAX_UNEXPLAINED` of it (the fit explains less than 1 - 0.7^2 = 51 % of the variance)
    the pair gets residual `inf`. Measured: the 36 noisy solid-colour pictures of
    `tests/helpers_runs.py` (24 px, prepared to 12 px) give no pair up to 0.9 and one at 1.0;
    on the benchmark of docs/dedupe.md, 0.8 let two different dark wallpapers (Ubuntu MATE's
    darkest grade, Plasma's `Kay` dark) pair at residuals 3.7 and 4.8, 0.7 does not (goal
    recall 0.863 -> 0.862, every copy kind unchanged; Fashion-MNIST's 95 pairs unchanged), and
    0.5 lost low-structure copies (goal recall 0.848).

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
    if FRAME:
        inner = np.zeros((t, t), bool)
        inner[FRAME : t - FRAME, FRAME : t - FRAME] = True
        mask = np.broadcast_to(inner, (p, t, t)) if mask is None else (mask & inner)
    x = a.reshape(p, -1).astype(np.float32)
    y = b.reshape(p, -1).astype(np.float32)
    m = mask.reshape(p, -1)
    cnt = m.astype(np.float32).reshape(p, t, t)
    out = np.zeros(p)
    mf = m.astype(np.float32)
    n = np.maximum(mf.sum(1), 1.0)
    for u, v in ((x, y), (y, x)):
        r = censored_fit_residual(u, v, m)
        res = _block_rms((r * r).reshape(p, t, t), cnt, drop)
        mean = (mf * v).sum(1) / n
        spread = np.sqrt((mf * (v - mean[:, None]) ** 2).sum(1) / n)
        res = np.where(res <= MAX_UNEXPLAINED * spread, res, np.inf)
        out = np.maximum(out, res)
    return out


def colour_fit(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, drop=0) -> tuple[np.ndarray, np.ndarray]:
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
        res = np.maximum(res, _block_rms((r * r).reshape(p, h, h, 3).sum(3), cnt, drop))
    la, lb = (x * m).sum(1) / n + 1, (y * m).sum(1) / n + 1
    return res, np.maximum(la, lb) / np.minimum(la, lb)


#: Pictures whose layout (mean-removed 8 x 8 block means) has an RMS below this many grey
#: levels are also searched by layout (`layout_pairs`): their DCT-hash bits are unstable.
LOW_STRUCTURE = 24.0
#: The cheap screen before the pixel test passes pairs within this factor of `max_residual`.
PRESCREEN_FACTOR = 2.0


def pooled(gray: np.ndarray) -> np.ndarray:
    """8 x 8 block means of thumbnails: `(..., 32, 32)` -> float32 `(..., 64)`, zero-mean rows."""
    f = THUMB // 8
    lead = gray.shape[:-2]
    x = gray.reshape(-1, 8, f, THUMB).sum(2, dtype=np.uint32).reshape(-1, 8, 8, f).sum(3, dtype=np.uint32)
    x = x.reshape(-1, 64).astype(np.float32) / (f * f)
    return (x - x.mean(1, keepdims=True)).reshape(*lead, 64)


def _pooled_residual(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Plain least-squares residual (RMS, the smaller direction) of zero-mean pooled thumbnails
    `(p, 64)` (`pooled`): the screen before the pixel test."""
    sxy = (x * y).sum(1)
    sxx = (x * x).sum(1)
    syy = (y * y).sum(1)
    r = np.minimum(syy - sxy * sxy / np.maximum(sxx, 1e-6), sxx - sxy * sxy / np.maximum(syy, 1e-6))
    return np.sqrt(np.maximum(r, 0.0) / 64)


def _luminance_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    la = a.reshape(len(a), -1).astype(np.float32).mean(1) + 1
    lb = b.reshape(len(b), -1).astype(np.float32).mean(1) + 1
    return np.maximum(la, lb) / np.minimum(la, lb)


def _pool2(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8 x 8 block means of a colour thumbnail `a` and a warped one `b` (`(16, 16, 3)`), over the
    pixels of `mask` (the warped thumbnail's valid pixels, for both alike): the colour check
    after an alignment. Warping the 16 x 16 thumbnail and comparing its block means keeps the
    resampling error below what a brightness change does (warping an 8 x 8 grid did not,
    docs/dedupe.md). Returns `(a8, b8, valid)` with a leading axis of 1."""
    m = mask.astype(np.float32)[:, :, None]
    h = COLOUR_CHECK
    f = COLOUR // h

    def pool(x):
        return (x.astype(np.float32) * m).reshape(h, f, h, f, 3).sum((1, 3))

    cnt = m[:, :, 0].reshape(h, f, h, f).sum((1, 3))
    ok = cnt > 0
    div = np.maximum(cnt, 1)[:, :, None]
    return (pool(a) / div)[None], (pool(b) / div)[None], ok[None]


def _plausible(warp: np.ndarray, max_crop: float) -> bool:
    """A warp is a crop of at most `max_crop` per side: scale per axis within
    `[1 - 1.5 max_crop, 1 / (1 - 1.5 max_crop)]`, shear and rotation terms below 0.05."""
    lo, hi = 1 - 1.5 * max_crop, 1 / (1 - 1.5 * max_crop)
    sx, sy = float(warp[0, 0]), float(warp[1, 1])
    return lo <= sx <= hi and lo <= sy <= hi and abs(float(warp[0, 1])) <= 0.05 and abs(float(warp[1, 0])) <= 0.05


def align(a: np.ndarray, b: np.ndarray, max_crop: float = DEFAULT_MAX_CROP, margin: int = 2) -> list[np.ndarray]:
    """Affine warps that may map thumbnail `a` onto thumbnail `b` as a crop (best first).

    A coarse search over the scales `1, 1 / (1 - max_crop / 2), 1 / (1 - max_crop)` per axis, in
    both directions, by normalized cross-correlation of the other thumbnail's inner part
    (`margin` pixels in from each side; `cv2.matchTemplate`, `TM_CCOEFF_NORMED`), then its
    refinement by ECC maximization over affine warps (`cv2.findTransformECC`, 30 iterations).
    ECC sometimes drifts into a shear on periodic or low-structure content, so both the coarse
    and the refined warp are returned when they are plausible crops; the caller keeps the one
    that explains the pair best.

    Args:
        a, b: np.ndarray, shape `(t, t)`, values in [0, 255].
        max_crop: float in [0, 0.5), default 0.10. Largest crop per side.
        margin: int, default 2. Pixels of slack for shifts at scale 1.

    Returns:
        list of np.ndarray of float32, shape `(2, 3)`: warps `W` with `b(W @ [x, y, 1]) ~ a(x, y)`
        that are crops of at most `max_crop` per side (scale per axis within
        `[1 - 1.5 max_crop, 1 / (1 - 1.5 max_crop)]`, shear and rotation terms below 0.05);
        possibly empty.
    """
    cv2 = _cv2()
    t = a.shape[0]
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    scales = sorted({1.0, 1 / (1 - max_crop / 2), 1 / (1 - max_crop)})
    best_c, best = -2.0, None
    for src, tmpl, swap in ((b, a, False), (a, b, True)):
        inner = tmpl[margin : t - margin, margin : t - margin]
        for sy in scales:
            for sx in scales:
                if swap and sx == 1.0 and sy == 1.0:
                    continue
                ww, hh = round(t * sx), round(t * sy)
                up = src if (ww == t and hh == t) else cv2.resize(src, (ww, hh), interpolation=cv2.INTER_LINEAR)
                r = cv2.matchTemplate(up, inner, cv2.TM_CCOEFF_NORMED)
                _, c, _, (x, y) = cv2.minMaxLoc(r)
                if c > best_c:
                    fx, fy = ww / t, hh / t
                    # tmpl(u, v) ~ src((x - margin + u + 0.5) / fx - 0.5, ...): a map tmpl -> src
                    m = np.array(
                        [
                            [1 / fx, 0, (x - margin + 0.5) / fx - 0.5],
                            [0, 1 / fy, (y - margin + 0.5) / fy - 0.5],
                            [0, 0, 1],
                        ]
                    )
                    best_c, best = c, (np.linalg.inv(m) if swap else m)[:2].astype(np.float32)
    if best is None:
        return []
    out = [best] if _plausible(best, max_crop) else []
    try:
        _, warp = cv2.findTransformECC(
            a, b, best.copy(), cv2.MOTION_AFFINE, (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-4), None, 1
        )
        if _plausible(warp, max_crop):
            out.append(warp)
    except cv2.error:  # did not converge: the coarse alignment only
        pass
    return out


def _warp(img: np.ndarray, warp: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """`img` (size x size [x 3]) resampled by `warp`, a warp found on thumbnails `1 / scale` times
    larger (pixel centres: `x_small = (x_big + 0.5) * scale - 0.5`); returns the warped image
    and the mask of its pixels that come from inside `img`."""
    cv2 = _cv2()
    w = warp.astype(np.float64).copy()
    rows = w[:, 0] + w[:, 1]
    w[:, 2] = 0.5 * (1.0 - scale) * rows + (w[:, 2] + 0.5) * scale - 0.5
    out = cv2.warpAffine(
        img.astype(np.float32),
        w,
        (size, size),
        flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    ones = np.ones((img.shape[0], img.shape[1]), np.float32)
    m = cv2.warpAffine(ones, w, (size, size), flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP, borderValue=0) > 0.999
    return out, m


@dataclass(frozen=True)
class _Opts:
    max_residual: float
    align_floor: float
    max_crop: float
    max_colour_residual: float
    max_luminance_ratio: float


@dataclass(frozen=True)
class _Side:
    """One side of the candidate pairs, with the arrays every test needs (mirrored if asked)."""

    sig: Signatures
    pool: np.ndarray  # float32 (n, 2, 64): zero-mean 8 x 8 layouts of the thumbnails
    colour8: np.ndarray  # float32 (n, 2, 8, 8, 3): 8 x 8 block means of the colour thumbnails
    mirror: bool

    @classmethod
    def of(cls, sig: Signatures, mirror: bool = False) -> _Side:
        gray = sig.gray[:, :, :, ::-1] if mirror else sig.gray
        colour = sig.colour[:, :, :, ::-1] if mirror else sig.colour
        n = len(sig)
        f = COLOUR // COLOUR_CHECK
        c8 = colour.reshape(n * 2 * COLOUR_CHECK, f, COLOUR, 3).sum(1, dtype=np.uint32)
        c8 = c8.reshape(n * 2 * COLOUR_CHECK, COLOUR_CHECK, f, 3).sum(2, dtype=np.uint32)
        c8 = (c8.astype(np.float32) / (f * f)).reshape(n, 2, COLOUR_CHECK, COLOUR_CHECK, 3)
        return cls(sig, pooled(gray), c8, mirror)

    def gray(self, k: np.ndarray, v: int) -> np.ndarray:
        g = self.sig.gray[k, v]
        return g[:, :, ::-1] if self.mirror else g

    def colour(self, k: int, v: int) -> np.ndarray:
        c = self.sig.colour[k, v]
        return c[:, ::-1] if self.mirror else c


def _verify(a: _Side, b: _Side, i: np.ndarray, j: np.ndarray, o: _Opts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(accepted, residual, aligned) of candidate pairs (a[i], b[j]); the tests run cheapest
    first, and each on the pairs the previous ones left."""
    p = len(i)
    ok = np.zeros(p, bool)
    best = np.full(p, np.inf)
    aligned = np.zeros(p, bool)
    if p == 0:
        return ok, best, aligned
    both_large = a.sig.large[i] & b.sig.large[j]
    for v in range(2):
        pa, pb = a.pool[i, v], b.pool[j, v]
        # screen: plain least-squares residual of the 8 x 8 layouts (block means contract the
        # full test; a factor PRESCREEN_FACTOR of slack for the censoring and the dropped block)
        # the trimmed variant only between large pictures: trimming a small picture's background
        # rescales it to its object's box, an alignment in disguise (Fashion-MNIST, docs/dedupe.md)
        idx = np.flatnonzero(
            ~ok & (both_large | (v == 0)) & (_pooled_residual(pa, pb) <= PRESCREEN_FACTOR * o.max_residual)
        )
        drops = np.where(both_large[idx], DROP_BLOCKS, 0)
        res, ratio = colour_fit(a.colour8[i[idx], v], b.colour8[j[idx], v])
        keep = (res <= o.max_colour_residual) & (ratio <= o.max_luminance_ratio)
        idx = idx[keep]
        r = pixel_residual(a.gray(i[idx], v), b.gray(j[idx], v), drop=drops[keep])
        good = idx[r <= o.max_residual]
        best[good] = np.minimum(best[good], r[r <= o.max_residual])
        ok[good] = True
        # crops: align what failed, for large pictures only, when the layouts correlate
        todo = np.flatnonzero(~ok & both_large)
        if len(todo):
            x, y = pa[todo], pb[todo]
            corr = (x * y).sum(1) / np.sqrt(np.maximum((x * x).sum(1) * (y * y).sum(1), 1e-6))
            lum = _luminance_ratio(a.colour8[i[todo], v], b.colour8[j[todo], v])
            todo = todo[(corr >= o.align_floor) & (lum <= o.max_luminance_ratio)]
        for k in todo:
            ga = a.sig.gray[i[k], v]
            gb = b.gray(j[k : k + 1], v)[0]
            for warp in align(ga, gb, o.max_crop):
                gw, gm = _warp(gb, warp, THUMB, 1.0)
                if gm.mean() < 0.7:
                    continue
                rr = float(pixel_residual(ga[None], gw[None], gm[None], drop=DROP_BLOCKS)[0])
                if not (rr <= o.max_residual and rr < best[k]):
                    continue
                cw, cm = _warp(b.colour(j[k], v), warp, COLOUR, COLOUR / THUMB)
                cres, cratio = colour_fit(*_pool2(a.sig.colour[i[k], v], cw, cm))
                if cres[0] <= o.max_colour_residual and cratio[0] <= o.max_luminance_ratio:
                    ok[k], best[k], aligned[k] = True, rr, True
    return ok, best, aligned


def _verify_chunked(sig_a: Signatures, sig_b: Signatures, i, j, mirror: bool, o: _Opts, chunk: int = 65536):
    """`_verify` over blocks of `chunk` pairs, so memory stays bounded (about 100 MB a block)."""
    ok = np.zeros(len(i), bool)
    res = np.full(len(i), np.inf)
    al = np.zeros(len(i), bool)
    if len(i) == 0:
        return ok, res, al
    a = _Side.of(sig_a)
    b = a if (sig_b is sig_a and not mirror) else _Side.of(sig_b, mirror)
    for s in range(0, len(i), chunk):
        sl = slice(s, s + chunk)
        ok[sl], res[sl], al[sl] = _verify(a, b, i[sl], j[sl], o)
    return ok, res, al


def _unique_pairs(i: list[np.ndarray], j: list[np.ndarray], nb: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
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


def _candidates(
    a: Signatures, b: Signatures | None, radius: int, flip: bool = False, layout_radius: float = DEFAULT_MAX_RESIDUAL
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (see the module docs): within `a` when `b` is None (`i < j`), else a x b.
    With `flip`, `b`'s (or `a`'s own) mirrored codes stand in for its codes (no crop windows)."""
    other = a if b is None else b
    nb = len(other)
    oc = other.flip_codes if flip else other.codes
    ci: list[np.ndarray] = []
    cj: list[np.ndarray] = []
    # layouts: low-structure pictures, whose DCT hash bits sit near the median and flip
    pa = pooled(a.gray)
    same = b is None and not flip
    po = pa if same else pooled(other.gray[:, :, :, ::-1] if flip else other.gray)
    for v in range(2):
        # a pair within the radius with one low-structure member has both below LOW_STRUCTURE +
        # radius (triangle inequality of the RMS norm): search those, keep the pairs with one below
        na, no = np.sqrt((pa[:, v] ** 2).mean(1)), np.sqrt((po[:, v] ** 2).mean(1))
        ka = np.flatnonzero(na < LOW_STRUCTURE + layout_radius)
        kb = ka if same else np.flatnonzero(no < LOW_STRUCTURE + layout_radius)
        x, y = layout_pairs(pa[ka, v], None if same else po[kb, v], layout_radius)
        x, y = ka[x], kb[y]
        keep = np.minimum(na[x], no[y]) < LOW_STRUCTURE
        ci.append(x[keep])
        cj.append(y[keep])
    for v in range(_NCODES):
        # the centre code (v = 2) only between large pictures: small ones get no local-edit
        # tolerance. (The trimmed code stays for all: a product shot's hash is steadier on its
        # box, even though small pictures are then compared whole.)
        ka = np.flatnonzero(a.large) if v == 2 else np.arange(len(a))
        kb = (ka if b is None else np.flatnonzero(other.large)) if v == 2 else np.arange(nb)
        if b is None and not flip:
            x, y, _ = hamming_pairs(a.codes[ka, v], radius, bits=64)
        else:
            x, y, _ = hamming_cross_pairs(a.codes[ka, v], oc[kb, v], radius, bits=64)
        ci.append(ka[x])
        cj.append(kb[y])
    if not flip:
        # crop windows of large pictures against the whole and trimmed codes of the others, both ways
        for src, dst, swap in ((a, other, False), (other, a, True))[: 1 if b is None else 2]:
            big = np.flatnonzero(src.large)
            if len(big) == 0:
                continue
            win = src.window_codes[big].reshape(-1)
            owner = np.repeat(big, _NWIN)
            for v in range(2):
                x, y, _ = hamming_cross_pairs(dst.codes[:, v], win, radius, bits=64)
                if swap:  # dst is a: pairs (a index, other index)
                    ci.append(x)
                    cj.append(owner[y])
                else:
                    ci.append(owner[y])
                    cj.append(x)
    return _unique_pairs(ci, cj, nb, symmetric=b is None)


def _check(radius, max_residual, max_crop, max_colour_residual, max_luminance_ratio, align_floor) -> _Opts:
    if not 0 <= radius <= 32:
        raise ValueError(f"radius must be between 0 and 32 bits, received radius={radius}")
    if not max_residual >= 0:
        raise ValueError(f"max_residual must be >= 0 grey levels, received max_residual={max_residual}")
    if not 0.0 <= max_crop < 0.5:
        raise ValueError(f"max_crop must be in [0, 0.5), received max_crop={max_crop}")
    if not -1.0 <= align_floor <= 1.0:
        raise ValueError(f"align_floor must be a correlation in [-1, 1], received align_floor={align_floor}")
    if max_colour_residual < 0 or max_luminance_ratio < 1:
        raise ValueError(
            f"max_colour_residual must be >= 0 and max_luminance_ratio >= 1, received "
            f"max_colour_residual={max_colour_residual}, max_luminance_ratio={max_luminance_ratio}"
        )
    return _Opts(max_residual, align_floor, max_crop, max_colour_residual, max_luminance_ratio)


def _as_signatures(s: Signatures | Sequence[Signature]) -> Signatures:
    return s if isinstance(s, Signatures) else stack(list(s))


def _result(parts: list[tuple[np.ndarray, np.ndarray, str, np.ndarray, np.ndarray]]) -> DuplicatePairs:
    i = np.concatenate([p[0] for p in parts]).astype(np.int64)
    j = np.concatenate([p[1] for p in parts]).astype(np.int64)
    kind = np.concatenate([np.full(len(p[0]), p[2]) for p in parts]).astype("<U5")
    res = np.concatenate([p[3] for p in parts]).astype(np.float64)
    al = np.concatenate([p[4] for p in parts]).astype(bool)
    o = np.lexsort((j, i))
    return DuplicatePairs(i[o], j[o], kind[o], res[o], al[o])


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
) -> DuplicatePairs:
    """Every pair of exact or verified near duplicates among `signatures` (see the module docs).

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

    Returns:
        DuplicatePairs, sorted by `(i, j)` with `i < j`.

    Raises:
        ValueError: an argument out of its range (the message names it and the value).
    """
    o = _check(radius, max_residual, max_crop, max_colour_residual, max_luminance_ratio, align_floor)
    sig = _as_signatures(signatures)
    n = len(sig)
    if n < 2:
        return DuplicatePairs.empty()
    # exact duplicates: every member of a run of equal digests joins the run's first image
    order = np.argsort(sig.digests, kind="stable")
    d = sig.digests[order]
    new_run = np.r_[True, d[1:] != d[:-1]]
    first = order[np.flatnonzero(new_run)][np.cumsum(new_run) - 1]
    dup = ~new_run
    ex_i = np.minimum(first[dup], order[dup]).astype(np.int64)
    ex_j = np.maximum(first[dup], order[dup]).astype(np.int64)
    taken = set((ex_i * n + ex_j).tolist())
    parts = [(ex_i, ex_j, KIND_EXACT, np.zeros(len(ex_i)), np.zeros(len(ex_i), bool))]

    ci, cj = _candidates(sig, None, radius, layout_radius=max_residual)
    keep = ~np.isin(ci * n + cj, ex_i * n + ex_j)
    ci, cj = ci[keep], cj[keep]
    ok, res, al = _verify_chunked(sig, sig, ci, cj, False, o)
    parts.append((ci[ok], cj[ok], KIND_NEAR, res[ok], al[ok]))
    if flips:
        taken |= set((ci[ok] * n + cj[ok]).tolist())
        fi, fj = _candidates(sig, None, radius, flip=True, layout_radius=max_residual)
        lo, hi = np.minimum(fi, fj), np.maximum(fi, fj)
        keep = (lo != hi) & ~np.isin(lo * n + hi, np.fromiter(taken, np.int64, len(taken)))
        fi, fj = fi[keep], fj[keep]
        fok, fres, fal = _verify_chunked(sig, sig, fi, fj, True, o)
        lo, hi = np.minimum(fi[fok], fj[fok]), np.maximum(fi[fok], fj[fok])
        key, first_k = np.unique(lo * n + hi, return_index=True)
        parts.append((lo[first_k], hi[first_k], KIND_FLIP, fres[fok][first_k], fal[fok][first_k]))
    return _result(parts)


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
) -> DuplicatePairs:
    """Every exact or verified near duplicate between two collections (e.g. test vs train).

    The same detector as `find_duplicate_pairs`, restricted to pairs with one image in each
    collection: pairs inside `a` or inside `b` are never searched (cheaper than searching the
    union when `b` is large).

    Args:
        a: `Signatures` or a sequence of `Signature`, length n_a.
        b: `Signatures` or a sequence of `Signature`, length n_b.
        radius, max_residual, flips, align_floor, max_crop, max_colour_residual,
            max_luminance_ratio: as in `find_duplicate_pairs`.

    Returns:
        DuplicatePairs with `i` indexing `a` and `j` indexing `b`, sorted by `(i, j)`.

    Raises:
        ValueError: an argument out of its range.
    """
    o = _check(radius, max_residual, max_crop, max_colour_residual, max_luminance_ratio, align_floor)
    sa, sb = _as_signatures(a), _as_signatures(b)
    na, nb = len(sa), len(sb)
    if na == 0 or nb == 0:
        return DuplicatePairs.empty()
    index_b: dict[bytes, list[int]] = {}
    for k, d in enumerate(sb.digests.tolist()):
        index_b.setdefault(d, []).append(k)
    ex = [(ka, kb) for ka, d in enumerate(sa.digests.tolist()) for kb in index_b.get(d, ())]
    ex_i = np.array([x for x, _ in ex], np.int64)
    ex_j = np.array([y for _, y in ex], np.int64)
    parts = [(ex_i, ex_j, KIND_EXACT, np.zeros(len(ex)), np.zeros(len(ex), bool))]
    ci, cj = _candidates(sa, sb, radius, layout_radius=max_residual)
    keep = ~np.isin(ci * nb + cj, ex_i * nb + ex_j)
    ci, cj = ci[keep], cj[keep]
    ok, res, al = _verify_chunked(sa, sb, ci, cj, False, o)
    parts.append((ci[ok], cj[ok], KIND_NEAR, res[ok], al[ok]))
    if flips:
        taken = np.concatenate([ex_i * nb + ex_j, ci[ok] * nb + cj[ok]])
        fi, fj = _candidates(sa, sb, radius, flip=True, layout_radius=max_residual)
        keep = ~np.isin(fi * nb + fj, taken)
        fi, fj = fi[keep], fj[keep]
        fok, fres, fal = _verify_chunked(sa, sb, fi, fj, True, o)
        parts.append((fi[fok], fj[fok], KIND_FLIP, fres[fok], fal[fok]))
    return _result(parts)


# ------------------------------------------------------------------ source signatures on disk
#: Where `prepare` (and then `split`) keep the signatures of the pictures *before* the center
#: crop, keyed by each output file's path relative to the folder.
SOURCE_RECORD = "_reports/source_signatures.npz"

#: A source whose longer side is more than this times its shorter side gets a source signature
#: in `prepare`: its center crop cuts more than about 2.4 % per side (a square-ish source's crop
#: is within what the verifier's alignment already bridges).
SOURCE_MIN_ASPECT = 1.05

#: ... or whose shorter side is at least this times the prepared size (the prepared file keeps
#: less than half the source's resolution; the detector itself works at up to `WORK_SIDE`).
SOURCE_MIN_SCALE = 2.0


def needs_source_signature(width: int, height: int, size: int, center_crop: bool = True) -> bool:
    """Whether a `size`-px prepared version of a `width x height` picture shows the detector
    less than the picture: the center crop cuts it (`SOURCE_MIN_ASPECT`) or it keeps less than
    half the resolution (`SOURCE_MIN_SCALE`).

    Args:
        width, height: int. The source's full size in pixels.
        size: int. The prepared side in pixels (`prepare --size`; `clean` asks for 32, the
            smallest size it expects, and `prepare` takes what its own size needs).
        center_crop: bool, default True. The resize policy is `center_crop` (`pad` and
            `squish` keep the whole picture).

    Returns:
        bool.
    """
    cut = center_crop and max(width, height) > SOURCE_MIN_ASPECT * min(width, height)
    return cut or min(width, height) >= SOURCE_MIN_SCALE * size


def _stamp(path) -> tuple[int, int]:
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


def write_source_record(folder, entries: Mapping[str, Signature | Signatures]) -> Path | None:
    """Writes `folder/_reports/source_signatures.npz`: each file's *source* picture's signature.

    `clean` writes it for the pictures it keeps (from the signatures it computed anyway;
    `needs_source_signature` with size 32), `prepare` carries it under its new names and
    adds what its own size needs, `split` carries it under the split's paths.
    `prepare` center-crops a 16:9 photo to its middle square, and a letterboxed or bordered
    copy of that photo to a different square; the two prepared files are then not the same
    picture any more, while their sources are. The record keeps the source's signature for
    each output file, stamped with the output file's size and modification time when written,
    so `split` and the evaluation's leak audit compare what the pictures were
    (`source_view`). Written atomically; with no entries, an old record is removed.

    Args:
        folder: path. The folder the keys are relative to (a `prepare` or `split` output).
        entries: mapping of relative POSIX path (e.g. `"cat/a.png"`, `"train/cat/a.png"`) ->
            Signature of that file's source picture, or a one-row Signatures (from
            `read_source_record`). Every key must be a file in `folder`.

    Returns:
        Path written, or None when `entries` is empty.

    Raises:
        OSError: a key is not a file in `folder`, or the record cannot be written.
    """
    import io

    from imgclf.fsutil import atomic_write_bytes

    folder = Path(folder)
    path = folder / SOURCE_RECORD
    if not entries:
        path.unlink(missing_ok=True)
        return None
    names = sorted(entries)
    rows = [entries[n] if isinstance(entries[n], Signatures) else stack([entries[n]]) for n in names]
    sigs = Signatures(*(np.concatenate([getattr(r, f.name) for r in rows]) for f in fields(Signatures)))
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        names=np.array(names),
        stamps=np.array([_stamp(folder / n) for n in names], np.int64),
        **{f.name: getattr(sigs, f.name) for f in fields(sigs)},
    )
    return atomic_write_bytes(path, buf.getvalue())


def read_source_record(folder) -> dict[str, Signatures]:
    """The source signatures of `folder` whose file is unchanged since the record was written.

    Args:
        folder: path. A folder with `_reports/source_signatures.npz` (`write_source_record`).

    Returns:
        dict of relative POSIX path -> Signatures of length 1 (use `source_view`). Empty when
        there is no record, it cannot be read, or every stamped file changed or is gone (a
        changed file is then compared as it is now, never by a stale source).
    """
    path = Path(folder) / SOURCE_RECORD
    try:
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["names"]]
            stamps = z["stamps"]
            sigs = Signatures(*(z[f.name] for f in fields(Signatures)))
    except (OSError, ValueError, KeyError):
        return {}
    out = {}
    for k, name in enumerate(names):
        try:
            ok = _stamp(Path(folder) / name) == (int(stamps[k, 0]), int(stamps[k, 1]))
        except OSError:
            ok = False
        if ok:
            out[name] = sigs.take([k])
    return out


def source_view(names: Sequence[str], sigs: Signatures, record: Mapping[str, Signatures]) -> Signatures | None:
    """`sigs` with each row whose name has a source signature in `record` replaced by it.

    Args:
        names: sequence of n str. The relative path of each row of `sigs`.
        sigs: Signatures of length n (of the files as they are).
        record: from `read_source_record`.

    Returns:
        Signatures of length n, or None when no name is in `record` (nothing to compare again).
    """
    rows = [k for k, n in enumerate(names) if n in record]
    if not rows:
        return None
    arrays = {f.name: getattr(sigs, f.name).copy() for f in fields(sigs)}
    for k in rows:
        rec = record[names[k]]
        for f in fields(sigs):
            arrays[f.name][k] = getattr(rec, f.name)[0]
    return Signatures(**arrays)


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
