"""Perceptual hashes behind one interface (imagededup `methods/hashing.py` style).

Every algorithm is a `Hasher` subclass wrapping the `imagehash` function of the same name;
`get_hasher("phash", hash_size=8)` picks one. A hash is `hash_size ** 2` bits, packed into
64-bit words (`imgclf.clean.similarity.hamming.pack_bits`) so that `hamming_pairs` can search it.

- `phash`: DCT of a `4 * hash_size` square grayscale thumbnail, low-frequency block vs its
  median (Zauner, "Implementation and Benchmarking of Perceptual Image Hash Functions", 2010).
- `dhash`: sign of horizontal gradients of a `(hash_size + 1) x hash_size` thumbnail
  (Krawetz, "Kind of Like That", hackerfactor.com, 2013).
- `ahash`: thumbnail pixels vs their mean (Krawetz, "Looks Like It", 2011).
- `whash`: Haar wavelet low band vs its median (imagehash). Here `image_scale` is fixed at
  `8 * hash_size` pixels so that copies of different resolutions hash alike (imagehash's
  default scale follows the image size).

`DEFAULT_THRESHOLDS` holds the default near-duplicate radius per algorithm for 256-bit hashes
(`hash_size=16`, the default), chosen from the measurements in `docs/dedupe.md`
(`scripts/bench/bench_hashing.py`); other sizes scale it with the number of bits.

These hashes were `clean`'s only duplicate test before the verified detector (docs/dedupe.md,
appendix); they stay for the benchmarks' hash-only rows. `pixel_digest` is `clean`'s
exact-pixel key of a file.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import numpy as np
from PIL import Image

from imgclf.clean.similarity.hamming import pack_bits
from imgclf.errors import ConfigError, suggest

#: Default near-duplicate threshold in bits for `hash_size=16` (256-bit hashes), per algorithm.
#: Measured in docs/dedupe.md: resized, recompressed and EXIF-rotated copies of photos are
#: within these radii (phash: at most 4 bits; Fashion-MNIST JPEG q90 copies p99 12 bits),
#: while distinct Fashion-MNIST / digits images almost never are (phash at 16 bits: 0.02% of
#: 10,000 Fashion-MNIST images, 0% of digits). Other hash sizes scale it with the bit count.
DEFAULT_THRESHOLDS: dict[str, int] = {"phash": 16, "dhash": 8, "ahash": 4, "whash": 4}


class Hasher:
    """Base class: one perceptual hash algorithm with a fixed `hash_size`.

    Args:
        hash_size: int, default 8. Side of the hash grid; the hash has `hash_size ** 2` bits.
            4 to 32; `whash` needs a power of 2.

    Raises:
        ConfigError: if `hash_size` is out of range.
    """

    name: ClassVar[str] = ""

    def __init__(self, hash_size: int = 8):
        if not 4 <= hash_size <= 32:
            raise ConfigError(f"hash_size must be between 4 and 32, got {hash_size}")
        self.hash_size = hash_size

    @property
    def bits(self) -> int:
        """int: hash length in bits (`hash_size ** 2`)."""
        return self.hash_size * self.hash_size

    @property
    def draft_size(self) -> int:
        """int: longest side in pixels worth decoding for this hash (JPEG draft mode); the
        thumbnail the algorithm uses is much smaller, so decoding more is wasted work."""
        return max(64, 8 * self.hash_size)

    def default_threshold(self) -> int:
        """int: the measured default radius in bits, scaled from 256 bits to `self.bits`."""
        return round(DEFAULT_THRESHOLDS[self.name] * self.bits / 256)

    def _hash(self, img: Image.Image):  # pragma: no cover - abstract
        raise NotImplementedError

    def hash_bits(self, img: Image.Image) -> np.ndarray:
        """Hashes one image.

        Args:
            img: PIL.Image.Image, any size, RGB (from `imgclf.images.open_image`).

        Returns:
            np.ndarray of bool, shape `(hash_size ** 2,)`.
        """
        return np.asarray(self._hash(img).hash, dtype=bool).reshape(-1)

    def hash_image(self, img: Image.Image) -> np.ndarray:
        """Hashes one image into packed words.

        Args:
            img: PIL.Image.Image, RGB.

        Returns:
            np.ndarray of uint64, shape `(ceil(bits / 64),)`.
        """
        return pack_bits(self.hash_bits(img))[0]

    def hex(self, img: Image.Image) -> str:
        """Returns the hash as the hex string `imagehash` prints (for reports)."""
        return str(self._hash(img))


class PHash(Hasher):
    """Perceptual hash (DCT), `imagehash.phash`. The default."""

    name = "phash"

    def _hash(self, img):
        import imagehash

        return imagehash.phash(img, hash_size=self.hash_size)


class DHash(Hasher):
    """Difference hash (horizontal gradient), `imagehash.dhash`."""

    name = "dhash"

    def _hash(self, img):
        import imagehash

        return imagehash.dhash(img, hash_size=self.hash_size)


class AHash(Hasher):
    """Average hash, `imagehash.average_hash`."""

    name = "ahash"

    def _hash(self, img):
        import imagehash

        return imagehash.average_hash(img, hash_size=self.hash_size)


class WHash(Hasher):
    """Wavelet hash (Haar), `imagehash.whash` with a fixed `image_scale` of `8 * hash_size`."""

    name = "whash"

    def __init__(self, hash_size: int = 8):
        super().__init__(hash_size)
        if hash_size & (hash_size - 1):
            raise ConfigError(f"whash needs a power-of-2 hash_size (4, 8, 16, 32), got {hash_size}")

    def _hash(self, img):
        import imagehash

        return imagehash.whash(img, hash_size=self.hash_size, image_scale=8 * self.hash_size)


HASHERS: dict[str, type[Hasher]] = {c.name: c for c in (PHash, DHash, AHash, WHash)}


def get_hasher(name: str, hash_size: int = 8) -> Hasher:
    """Returns the hasher called `name`.

    Args:
        name: str. One of `"phash"`, `"dhash"`, `"ahash"`, `"whash"`.
        hash_size: int, default 8. See `Hasher`.

    Returns:
        Hasher.

    Raises:
        ConfigError: unknown name (with the close matches) or invalid `hash_size`.
    """
    if name not in HASHERS:
        raise ConfigError(f"unknown hash {name!r}; choose one of {sorted(HASHERS)}.{suggest(name, HASHERS)}")
    return HASHERS[name](hash_size)


def pixel_digest(img: Image.Image) -> str:
    """Exact-duplicate key: BLAKE2b (128-bit) of the decoded pixels, mode and size.

    Two files with the same pixels (e.g. the same PNG saved with another compression level,
    or with different metadata) get the same digest; any changed pixel gives another one.

    Args:
        img: PIL.Image.Image, as returned by `open_image`.

    Returns:
        str: 32 hex characters.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{img.mode}:{img.width}x{img.height}:".encode())
    h.update(img.tobytes())
    return h.hexdigest()
