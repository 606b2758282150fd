"""Verification of one file: everything `clean` needs from a single read and decode.

`inspect_file` reads the bytes once, decodes them with `imgclf.images.open_image` (allow-listed
formats, bomb check, full decode, EXIF orientation, RGB), then computes, from that one decoded
image, the near-duplicate signature (`imgclf.clean.similarity.signature`), the exact-pixel
digest and the quality scores. JPEGs are decoded in draft mode at the smallest DCT scale whose
longest side is still `max(similarity.WORK_SIDE, QUALITY_SIDE)` = 256 pixels, which is about 3x
faster on large photos (see docs/benchmarks.md) and still reads every byte, so truncated files
are caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgclf.clean.hashing import pixel_digest
from imgclf.clean.quality import QUALITY_SIDE, quality_scores
from imgclf.clean.similarity import WORK_SIDE, Signature, signature
from imgclf.config import CleanConfig
from imgclf.errors import ImageError
from imgclf.images import FORMAT_KEY, ORIGINAL_SIZE_KEY, REASON_UNREADABLE, open_image


@dataclass
class ImageRecord:
    """What `clean` learned about one readable image.

    Attributes:
        rel: str. Path relative to the input folder (POSIX separators).
        label: str. Class folder name.
        subset: str or None. "train" / "val" / "test" in a pre-split layout.
        width, height: int. Full size in pixels after EXIF rotation.
        nbytes: int. File size in bytes.
        format: str. Detected format ("JPEG", "PNG", ...).
        digest: str. Exact-duplicate key (decoded pixels + full size).
        signature: Signature. What the near-duplicate detector keeps (`imgclf.clean.similarity`).
        hash_hex: str. The whole-picture 64-bit phash of the signature as hex (for reports).
        blur, std, entropy: float. See `imgclf.clean.quality.Quality`.
        group: int or None. Duplicate group id, set by `clean_folder`.
        status: str. "kept" or the reason it was set aside.
        detail: str. Why, in words.
    """

    rel: str
    label: str
    subset: str | None
    width: int
    height: int
    nbytes: int
    format: str
    digest: str
    signature: Signature
    hash_hex: str
    blur: float
    std: float
    entropy: float
    group: int | None = None
    status: str = "kept"
    detail: str = ""


def inspect_file(
    path: str | Path,
    cfg: CleanConfig | None = None,
    *,
    rel: str | None = None,
    label: str = "",
    subset: str | None = None,
) -> ImageRecord | tuple[str, str]:
    """Reads, verifies, fingerprints and scores one file (one read, one decode).

    Args:
        path: path of the file.
        cfg: CleanConfig or None (defaults). Uses `min_size` (pixels) and `max_pixels`.
        rel: str or None. Name used in the record and in errors (default: `path`).
        label: str, default "". Class label recorded.
        subset: str or None. "train" / "val" / "test" in a pre-split layout.

    Returns:
        ImageRecord for a readable image, else a `(reason, detail)` tuple with a reason from
        `imgclf.images.OPEN_REASONS`.
    """
    path = Path(path)
    cfg = cfg or CleanConfig()
    rel = rel or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return (REASON_UNREADABLE, exc.strerror or str(exc))
    try:
        img = open_image(
            data, min_size=cfg.min_size, max_pixels=cfg.max_pixels, draft=max(WORK_SIDE, QUALITY_SIDE), name=rel
        )
    except ImageError as exc:
        return (exc.reason, exc.detail)
    q = quality_scores(img)
    w, h = img.info[ORIGINAL_SIZE_KEY]
    sig = signature(img, size=(w, h))
    return ImageRecord(
        rel=rel,
        label=label,
        subset=subset,
        width=w,
        height=h,
        nbytes=len(data),
        format=img.info[FORMAT_KEY],
        digest=pixel_digest(img) + f"-{w}x{h}",
        signature=sig,
        hash_hex=f"{int(sig.codes[0]):016x}",
        blur=q.blur,
        std=q.std,
        entropy=q.entropy,
    )
