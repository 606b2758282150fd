"""Verification of one file: everything `clean` needs from a single read and decode.

`inspect_file` reads the bytes once, decodes them with `imgclf.images.open_image` (allow-listed
formats, bomb check, full decode, EXIF orientation, RGB), then computes the perceptual hash,
the exact-pixel digest and the quality scores. JPEGs are decoded in draft mode at the smallest
DCT scale whose longest side is still `max(hasher.draft_size, QUALITY_SIDE)` pixels, which is
several times faster on large photos (see docs/benchmarks.md) and still reads every byte, so
truncated files are caught.
"""

from __future__ import annotations

from pathlib import Path

from imgclf.clean.hashing import Hasher
from imgclf.clean.pipeline import ImageRecord, _inspect
from imgclf.config import CleanConfig


def inspect_file(
    path: str | Path, hasher: Hasher, cfg: CleanConfig | None = None, *, rel: str | None = None, label: str = "",
    subset: str | None = None,
) -> ImageRecord | tuple[str, str]:
    """Reads, verifies, hashes and scores one file.

    Args:
        path: path of the file.
        hasher: Hasher (`imgclf.clean.hashing.get_hasher`).
        cfg: CleanConfig or None. Uses `min_size` and `max_pixels`.
        rel: str or None. Name used in records and errors (default: `path`).
        label: str, default "". Class label recorded.
        subset: str or None. "train" / "val" / "test" in a pre-split layout.

    Returns:
        ImageRecord for a readable image, else a `(reason, detail)` tuple with a reason from
        `imgclf.images.OPEN_REASONS`.
    """
    path = Path(path)
    return _inspect(path, rel or str(path), label, subset, hasher, cfg or CleanConfig())
