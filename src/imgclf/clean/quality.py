"""Image quality scores: blur (variance of the Laplacian) and low information (near-uniform).

- Blur: variance of the Laplacian of the grayscale image (Pech-Pacheco et al., "Diatom
  autofocusing in brightfield microscopy: a comparative study", ICPR 2000; OpenCV
  `cv2.Laplacian`, `ddepth=CV_64F`). Low values mean few edges: blurry, or simply smooth.
  The score depends on resolution, so it is computed on the image reduced to at most
  `QUALITY_SIDE` pixels on its longest side (`cv2.INTER_AREA`), making photos of different
  sizes comparable. Tiny images (digits, Fashion-MNIST) are scored as they are.
- Near-uniform: standard deviation of the grayscale pixels in [0, 255] (a blank, single-colour
  or almost single-colour image has std close to 0) and the Shannon entropy of the 256-bin
  grayscale histogram in bits (0 for one colour, 8 at most).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

#: Longest side, in pixels, of the image quality is measured on.
QUALITY_SIDE: int = 256


@dataclass(frozen=True)
class Quality:
    """Quality scores of one image.

    Attributes:
        blur: float >= 0. Variance of the Laplacian (higher = sharper).
        std: float in [0, 127.5]. Standard deviation of the grayscale pixels.
        entropy: float in [0, 8]. Entropy of the grayscale histogram, in bits.
    """

    blur: float
    std: float
    entropy: float


def quality_scores(img: Image.Image) -> Quality:
    """Computes blur and low-information scores of one image.

    Args:
        img: PIL.Image.Image, RGB (from `imgclf.images.open_image`), any size.

    Returns:
        Quality.
    """
    import cv2

    gray: np.ndarray = np.asarray(img.convert("L"), dtype=np.uint8)
    h, w = gray.shape
    if max(h, w) > QUALITY_SIDE:
        scale = QUALITY_SIDE / max(h, w)
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    blur = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    std = float(gray.std())
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / gray.size
    entropy = float(-(p * np.log2(p)).sum())
    return Quality(blur=blur, std=std, entropy=entropy)
