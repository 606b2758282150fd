"""Crop alignment of two thumbnails: a coarse scale/shift search, its ECC refinement, warps.

`align` finds affine warps that may map one thumbnail onto the other as a crop of at most
`max_crop` per side: a coarse search over a few scales per axis by normalized
cross-correlation (`cv2.matchTemplate`, `TM_CCOEFF_NORMED`; Lewis, "Fast Normalized
Cross-Correlation", 1995) and its refinement by enhanced-correlation-coefficient maximization
(`cv2.findTransformECC`; Evangelidis & Psarakis, "Parametric Image Alignment Using Enhanced
Correlation Coefficient Maximization", IEEE TPAMI 2008). `warp_image` resamples a thumbnail (or the
smaller colour thumbnail) by such a warp. OpenCV is imported inside the functions.
"""

from __future__ import annotations

import numpy as np

from imgclf.clean.similarity.params import (
    ALIGN_MARGIN,
    CROP_SCALE_SLACK,
    DEFAULT_MAX_CROP,
    ECC_EPS,
    ECC_ITERATIONS,
    MAX_SHEAR,
)


def plausible(warp: np.ndarray, max_crop: float) -> bool:
    """A warp is a crop of at most `max_crop` per side: scale per axis within
    `[1 - 1.5 max_crop, 1 / (1 - 1.5 max_crop)]`, shear and rotation terms at most 0.05."""
    lo, hi = 1 - CROP_SCALE_SLACK * max_crop, 1 / (1 - CROP_SCALE_SLACK * max_crop)
    sx, sy = float(warp[0, 0]), float(warp[1, 1])
    return (
        lo <= sx <= hi
        and lo <= sy <= hi
        and abs(float(warp[0, 1])) <= MAX_SHEAR
        and abs(float(warp[1, 0])) <= MAX_SHEAR
    )


def _coarse(a: np.ndarray, b: np.ndarray, max_crop: float, margin: int) -> np.ndarray | None:
    """The best scale/shift warp `a -> b` by normalized cross-correlation: each thumbnail's
    inner part (`margin` px in) slid over the other one rescaled by `1, 1 / (1 - max_crop / 2),
    1 / (1 - max_crop)` per axis. float32 `(2, 3)`, or None when nothing matched."""
    import cv2

    t = a.shape[0]
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
    return best


def align(
    a: np.ndarray, b: np.ndarray, max_crop: float = DEFAULT_MAX_CROP, margin: int = ALIGN_MARGIN
) -> list[np.ndarray]:
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
    import cv2

    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    best = _coarse(a, b, max_crop, margin)
    if best is None:
        return []
    out = [best] if plausible(best, max_crop) else []
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, ECC_EPS)
    try:
        # no mask, Gaussian filter size 1 (OpenCV's default is 5); the stubs lack this overload
        _, warp = cv2.findTransformECC(a, b, best.copy(), cv2.MOTION_AFFINE, criteria, None, 1)  # type: ignore[call-overload]
        if plausible(warp, max_crop):
            out.append(warp)
    except cv2.error:  # did not converge: the coarse alignment only
        pass
    return out


def warp_image(img: np.ndarray, warp: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Resamples a thumbnail by a warp found on thumbnails `1 / scale` times larger.

    Pixel centres: `x_small = (x_big + 0.5) * scale - 0.5`. Bilinear, borders replicated.

    Args:
        img: np.ndarray, shape `(size, size)` or `(size, size, 3)`, values in [0, 255].
        warp: np.ndarray, shape `(2, 3)`. From `align`.
        size: int. Side of `img` and of the output, in pixels.
        scale: float. `size` over the side of the thumbnails `warp` was found on.

    Returns:
        tuple `(warped, mask)`: float32 image like `img`, and bool `(size, size)` of the pixels
        that come from inside `img`.
    """
    import cv2

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
