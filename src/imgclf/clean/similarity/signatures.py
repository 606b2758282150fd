"""Per image: a decoded picture -> its near-duplicate `Signature` (the detector's map step).

`signature(img)` reduces the picture to at most `WORK_SIDE` px (`cv2.INTER_AREA`), finds its
uniform margins (`trim_box`: padding, letterbox, solid borders; for pictures of at least
`SMALL_SIDE` px also bands: caption bars, title bars, shadows), and keeps, for the whole and
the trimmed picture, an anti-aliased 32 x 32 grayscale thumbnail (area-reduce to 64, Gaussian
sigma 1, area-reduce to 32) and a 16 x 16 RGB thumbnail, with 64-bit phashes (`phash_codes`)
of the whole, trimmed and centre picture, of their mirror images, and -- for pictures of at
least `SMALL_SIDE` px -- of nine crop windows. `stack` turns a list of them into the arrays
the search works on (`Signatures`, `imgclf.records.signatures`). Pure: no files, no state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from imgclf.clean.similarity.params import (
    BAND_CLEAN,
    BAND_ROUNDS,
    BAND_SHARE,
    CENTRE_CUT,
    COLOUR,
    MAX_BAND,
    NCODES,
    NWINDOWS,
    SMALL_SIDE,
    THUMB,
    TRIM_MIN_KEEP,
    TRIM_ROUNDS,
    TRIM_TOLERANCE,
    WINDOW_KEEP,
    WINDOW_OFFSETS,
    WORK_SIDE,
)
from imgclf.records.signatures import Signatures


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


def trim_box(
    rgb: np.ndarray,
    tolerance: int = TRIM_TOLERANCE,
    min_keep: float = TRIM_MIN_KEEP,
    rounds: int = TRIM_ROUNDS,
    band_share: float = 1.0,
    max_band: float = 1.0,
) -> tuple[int, int, int, int]:
    """Finds the region left after removing uniform margins (padding, letterbox, borders).

    On the luma (`cv2.COLOR_RGB2GRAY`; JPEG's 4:2:0 chroma bleeds further into a margin
    than its luma), from each side in turn, rows (or columns) are removed while every pixel of
    the line is within `tolerance` of the (upper) median of the outermost line; this is
    repeated `rounds` times, so nested frames of different colours are removed too.

    With `band_share < 1` a margin may also be a *band* -- a caption bar with its text, a
    window's title or status bar with its buttons and title, a drop shadow: lines from the edge
    of which at least `band_share` of the pixels are within `tolerance` of the outermost
    line's median, the band ending at the last line where at least `BAND_CLEAN` of them are
    (the bar's own background under its text) and the next line has at most `1 - BAND_CLEAN`
    of them (a hard edge: the picture starts; a shape fading into the background is no band).
    Bands of one side add up to at most `max_band` of the side (deeper, it is a flat sky or a
    flat design, which keeps its uniform margin).

    Args:
        rgb: np.ndarray of uint8, shape `(height, width, 3)` (or `(height, width)` luma).
        tolerance: int, default 4. Largest luma difference in [0, 255] of a margin pixel.
        min_keep: float in (0, 1], default 0.25. If less than this share of the height or the
            width would remain (a flat image), nothing is trimmed.
        rounds: int, default 3. Passes over the four sides.
        band_share: float in (0, 1], default 1.0 (uniform margins only). Share of a band line's
            pixels that must be within `tolerance` of the band's colour.
        max_band: float in (0, 1], default 1.0. Deepest band, as a share of the side.

    Returns:
        tuple `(top, bottom, left, right)` in pixels: the region is `rgb[top:bottom, left:right]`.
    """
    import cv2

    h, w = rgb.shape[:2]
    box = [0, h, 0, w]  # y0, y1, x0, x1
    a = (cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb).astype(np.int16)
    for _ in range(rounds):
        changed = False
        for side in range(4):
            sub = a[box[0] : box[1], box[2] : box[3]]
            if sub.shape[0] < 2 or sub.shape[1] < 2:
                break
            lines = (sub, sub[::-1], sub.T, sub.T[::-1])[side]
            k = _margin(lines, tolerance)
            if band_share < 1.0:
                done = (box[0], h - box[1], box[2], w - box[3])[side]
                room = int(max_band * (h if side < 2 else w)) - done
                k = max(k, _band(lines[: max(room, 0)], tolerance, band_share))
            if k == 0:
                continue
            changed = True
            box[side] += k if side in (0, 2) else -k
        if not changed:
            break
    y0, y1, x0, x1 = box
    if (y1 - y0) < min_keep * h or (x1 - x0) < min_keep * w:
        return 0, h, 0, w
    return y0, y1, x0, x1


def _margin(lines: np.ndarray, tolerance: int) -> int:
    """How many lines from the edge (`lines[0]`) are within `tolerance` of the edge line's
    (upper) median; tested one by one from the edge (margins are a few lines, pictures many)."""
    edge = lines[0]
    ref = np.partition(edge, len(edge) // 2)[len(edge) // 2]
    k = 0
    while k < len(lines) - 1 and int(np.abs(lines[k] - ref).max()) <= tolerance:
        k += 1
    return k


def _band(lines: np.ndarray, tolerance: int, share: float) -> int:
    """Depth of a band at the edge of `lines` (at most `len(lines)` lines): the lines from the
    edge with at least `share` of their pixels within `tolerance` of the edge line's (upper)
    median, up to the last one with at least `BAND_CLEAN` of them; 0 if none."""
    if len(lines) < 2:
        return 0
    ref = np.partition(lines[0], len(lines[0]) // 2)[len(lines[0]) // 2]
    frac = (np.abs(lines - ref) <= tolerance).mean(1)
    run = int(np.argmin(frac >= share)) if (frac < share).any() else len(frac)
    # the band ends at a clean line right before a hard edge (the picture, not a fading shape)
    ends = np.flatnonzero(
        (frac[: min(run, len(frac) - 1)] >= BAND_CLEAN) & (frac[1 : min(run, len(frac) - 1) + 1] < 1 - BAND_CLEAN)
    )
    return int(ends[-1]) + 1 if len(ends) else 0


def _reduce(rgb: np.ndarray, side: int) -> np.ndarray:
    """`rgb` area-reduced to at most `side` px on its longer side (unchanged when smaller)."""
    import cv2

    h, w = rgb.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Area reduction when shrinking, bilinear when enlarging (both axes at once)."""
    import cv2

    shrink = img.shape[1] >= w and img.shape[0] >= h
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _smooth(gray: np.ndarray) -> np.ndarray:
    """The 64 x 64 anti-aliased grayscale of a region: area-reduce (or enlarge) to 64, Gaussian
    sigma 1 px (without it fine textures alias, and a shift of one pixel decorrelates them)."""
    import cv2

    return cv2.GaussianBlur(_resize(gray, 2 * THUMB, 2 * THUMB).astype(np.float32), (0, 0), 1.0)


def _thumb(smooth: np.ndarray) -> np.ndarray:
    """The `THUMB` x `THUMB` thumbnail of a `_smooth` image (float32)."""
    return _resize(smooth, THUMB, THUMB)


def _windows(smooth: np.ndarray) -> list[np.ndarray]:
    """Thumbnails of the nine crop windows (`WINDOW_KEEP`, `WINDOW_OFFSETS`) of a `_smooth` image."""
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
    order with `imgclf.clean.similarity.hamming.pack_bits`' bit order.

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


def _digest(rgb: np.ndarray, full: tuple[int, ...]) -> bytes:
    """BLAKE2b-128 of the decoded pixels, their size and the picture's full size."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{full[0]}x{full[1]}:{rgb.shape[1]}x{rgb.shape[0]}:".encode())
    h.update(rgb.tobytes())
    return h.digest()


def _hashed_thumbs(
    luma: np.ndarray, box: tuple[int, int, int, int], large: bool
) -> tuple[list[np.ndarray], np.ndarray]:
    """The two grayscale thumbnails (whole, trimmed) of `luma` and the phashes of every
    thumbnail hashed: whole, trimmed, centre, their mirror images, then the crop windows
    (large pictures only)."""
    y0, y1, x0, x1 = box
    smooth_whole = _smooth(luma)
    trimmed = box != (0, luma.shape[0], 0, luma.shape[1])
    smooth_trim = _smooth(np.ascontiguousarray(luma[y0:y1, x0:x1])) if trimmed else smooth_whole
    whole = _thumb(smooth_whole)
    grays = [whole, _thumb(smooth_trim) if trimmed else whole]
    c = round(2 * THUMB * CENTRE_CUT)
    thumbs = grays + [_thumb(np.ascontiguousarray(smooth_trim[c:-c, c:-c])) if large else grays[1]]
    thumbs += [np.ascontiguousarray(t[:, ::-1]) for t in thumbs]
    if large:
        thumbs += _windows(smooth_trim)
    return grays, phash_codes(np.stack(thumbs))


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
    import cv2

    if img.mode != "RGB":
        img = img.convert("RGB")
    full = tuple(size) if size is not None else (img.width, img.height)
    rgb = np.asarray(img)
    work = np.ascontiguousarray(_reduce(rgb, WORK_SIDE))
    luma = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY)
    large = min(full) >= SMALL_SIDE
    y0, y1, x0, x1 = box = (
        trim_box(luma, rounds=BAND_ROUNDS, band_share=BAND_SHARE, max_band=MAX_BAND) if large else trim_box(luma)
    )
    grays, codes = _hashed_thumbs(luma, box, large)
    colour = np.stack(
        [_resize(work, COLOUR, COLOUR), _resize(np.ascontiguousarray(work[y0:y1, x0:x1]), COLOUR, COLOUR)]
    )
    hh, ww = work.shape[:2]
    return Signature(
        digest=_digest(rgb, full),
        size=(int(full[0]), int(full[1])),
        codes=codes[:NCODES].copy(),
        flip_codes=codes[NCODES : 2 * NCODES].copy(),
        window_codes=codes[2 * NCODES :].copy() if large else np.zeros(NWINDOWS, np.uint64),
        gray=np.clip(np.rint(np.stack(grays)), 0, 255).astype(np.uint8),
        colour=colour.astype(np.uint8),
        box=(y0 / hh, y1 / hh, x0 / ww, x1 / ww),
    )


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
            np.zeros((0, NCODES), np.uint64),
            np.zeros((0, NCODES), np.uint64),
            np.zeros((0, NWINDOWS), np.uint64),
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
