"""`clean`'s map: everything it needs from one file, from a single read and decode.

`inspect_file` reads the bytes once, decodes them with `imgclf.images.open_image` (allow-listed
formats, bomb check, full decode, EXIF orientation, RGB), then computes, from that one decoded
image, the near-duplicate signature (`imgclf.clean.similarity.signature`), the exact-pixel
digest and the quality scores -- and, when the output holds review decisions to replay, the
sha256 of the bytes. JPEGs are decoded in draft mode at the smallest DCT scale whose longest
side is still `max(similarity.WORK_SIDE, QUALITY_SIDE)` = 256 pixels, which is about 3x faster
on large photos (see docs/benchmarks.md) and still reads every byte, so truncated files are
caught.

It is a pure function of its file and the config (module-level, picklable with
`functools.partial(inspect_file, cfg=cfg, sha256=...)`), so `clean_folder` runs it on any
`imgclf.engine` executor; it returns a small record and never raises for a bad file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from imgclf.clean.quality import QUALITY_SIDE, quality_scores
from imgclf.clean.similarity import WORK_SIDE, Signature, signature
from imgclf.clean.similarity.hashers import pixel_digest
from imgclf.config import CleanConfig
from imgclf.errors import ImageError
from imgclf.images import FORMAT_KEY, ORIGINAL_SIZE_KEY, REASON_UNREADABLE, open_image
from imgclf.inputs import ImageEntry


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """What `clean` learned about one readable image (the map's record; the reduce returns
    copies with their decided label, group, status and detail, `dataclasses.replace`).

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
        sha256: str. Hex sha256 of the file's bytes ("" unless asked for: review decisions).
        group: int or None. Duplicate group id, set by the reduce (`imgclf.clean.plan`).
        status: str. "kept" or the reason it was set aside, set by the reduce.
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
    sha256: str = ""
    group: int | None = None
    status: str = "kept"
    detail: str = ""


@dataclass(frozen=True)
class Unreadable:
    """A file `clean` cannot use as an image (the map's record of it).

    Attributes:
        rel: str. Path relative to the input folder (POSIX separators).
        label: str. Class folder name.
        subset: str or None. "train" / "val" / "test" in a pre-split layout.
        reason: str. One of `imgclf.images.OPEN_REASONS` (`"truncated"`, `"not_an_image"`...).
        detail: str. Why, in words.
    """

    rel: str
    label: str
    subset: str | None
    reason: str
    detail: str


def inspect_file(
    entry: ImageEntry, cfg: CleanConfig | None = None, *, sha256: bool = False
) -> ImageRecord | Unreadable:
    """Reads, verifies, fingerprints and scores one file (one read, one decode): `clean`'s map.

    Args:
        entry: `imgclf.inputs.ImageEntry`. The file (`path`), its path relative to the input
            (`rel`, used in the record and in messages), its class (`label`) and subset.
        cfg: CleanConfig or None (defaults). Uses `min_size` (pixels) and `max_pixels`.
        sha256: bool, default False. Also hash the bytes (the review-decision replay matches
            images by sha256).

    Returns:
        ImageRecord for a readable image (status `"kept"`), else Unreadable with a reason from
        `imgclf.images.OPEN_REASONS`. Never raises for a bad file.
    """
    cfg = cfg or CleanConfig()
    label = entry.label or ""
    try:
        data = entry.path.read_bytes()
    except OSError as exc:
        return Unreadable(entry.rel, label, entry.subset, REASON_UNREADABLE, exc.strerror or str(exc))
    try:
        img = open_image(
            data, min_size=cfg.min_size, max_pixels=cfg.max_pixels, draft=max(WORK_SIDE, QUALITY_SIDE), name=entry.rel
        )
    except ImageError as exc:
        return Unreadable(entry.rel, label, entry.subset, exc.reason, exc.detail)
    q = quality_scores(img)
    w, h = img.info[ORIGINAL_SIZE_KEY]
    sig = signature(img, size=(w, h))
    return ImageRecord(
        rel=entry.rel,
        label=label,
        subset=entry.subset,
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
        sha256=hashlib.sha256(data).hexdigest() if sha256 else "",
    )


def inspect_item(
    item: tuple[str, str | None, str | None], *, root: str, cfg: CleanConfig | None = None, sha256: bool = False
) -> ImageRecord | Unreadable:
    """`inspect_file` of the file `root/<item[0]>`: the map's item as three strings, so the
    driver makes no `Path` per file (the worker does).

    Args:
        item: tuple `(rel, label, subset)`: path relative to `root` ("/"-separated), class (or
            None), subset (or None).
        root: str. The input folder.
        cfg: CleanConfig or None (defaults). See `inspect_file`.
        sha256: bool, default False. See `inspect_file`.

    Returns:
        ImageRecord or Unreadable, as `inspect_file`.
    """
    rel, label, subset = item
    return inspect_file(ImageEntry(Path(root) / rel, rel, label, subset), cfg, sha256=sha256)
