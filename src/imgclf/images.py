"""The one safe way to open an image. Every stage (clean, prepare, predict, scrape) uses it.

What "safe" means here:

- Formats are allow-listed (`ALLOWED_FORMATS`), detected from the content, never the name.
- Decompression bombs are refused before any pixel is decoded (`max_pixels`); Pillow's own
  `DecompressionBombError` is not an `OSError`, so it is caught explicitly as well.
- The whole image is decoded (`Image.load()`), so truncated files fail here rather than in
  training. `ImageFile.LOAD_TRUNCATED_IMAGES` is never turned on.
- EXIF orientation is applied before anything else (`ImageOps.exif_transpose`).
- Every mode ends as 8-bit RGB: palette / LA / RGBA are composited onto a fixed `background`,
  16-bit and 32-bit integer images are *scaled* to 8 bits (Pillow's `convert("L")` clips them
  to white), CMYK and YCbCr are converted.
- Animated images (GIF, WebP, APNG, multi-page TIFF) give their first frame.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from imgclf.errors import ImageError

#: Formats imgclf accepts, as Pillow names them (MPO is the multi-picture JPEG some cameras write).
ALLOWED_FORMATS: frozenset[str] = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"})

#: File extensions that may hold an image (used to list candidate files, not to trust them).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".mpo"}
)

#: Canonical extension written for each format (scraper / clean file names).
FORMAT_EXTENSIONS: dict[str, str] = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
}

#: Pillow's default bomb limit (`Image.MAX_IMAGE_PIXELS`, about 89.5 megapixels).
DEFAULT_MAX_PIXELS: int = 89_478_485

#: Background that transparent pixels are composited onto, RGB in [0, 255].
DEFAULT_BACKGROUND: tuple[int, int, int] = (255, 255, 255)

# Reasons used in rejects (folder names under `_rejected/` and CSV values).
REASON_NOT_IMAGE = "not_an_image"
REASON_UNSUPPORTED = "unsupported_format"
REASON_TRUNCATED = "truncated"
REASON_BOMB = "decompression_bomb"
REASON_TOO_SMALL = "too_small"
REASON_UNREADABLE = "unreadable"

_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
]


def sniff_format(header: bytes) -> str | None:
    """Detects an image format from its first bytes (magic numbers).

    Args:
        header: bytes. The first bytes of the file; 12 are enough.

    Returns:
        str or None: a Pillow format name from `ALLOWED_FORMATS` (`"JPEG"`, `"PNG"`, `"GIF"`,
        `"BMP"`, `"TIFF"`, `"WEBP"`), or None when the bytes are not a known image signature
        (HTML, JSON, an unknown format...). Signatures from each format's specification.
    """
    if len(header) >= 12 and header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "WEBP"
    for magic, offset, fmt in _MAGIC:
        if header[offset : offset + len(magic)] == magic:
            return fmt
    return None


def _scale_to_uint8(img: Image.Image) -> Image.Image:
    """Scales a 16/32-bit integer or float single-channel image to 8-bit "L" (no clipping)."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or (arr.dtype == np.uint16):
        out = (arr.astype(np.uint32) * 255 + 32767) // 65535
    elif img.mode == "F":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        out = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
    else:  # "I": 32-bit signed; real files use the 16-bit range (PNG 16-bit gray opens as "I")
        arr = arr.astype(np.int64)
        hi = 65535 if arr.max(initial=0) > 255 else 255
        out = np.clip(arr, 0, hi) * 255 // hi
    return Image.fromarray(np.asarray(out).round().astype(np.uint8), mode="L")


def to_rgb(img: Image.Image, background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> Image.Image:
    """Converts a decoded Pillow image of any mode to 8-bit RGB.

    Args:
        img: PIL.Image.Image. A loaded image in any mode (`1`, `L`, `P`, `LA`, `RGBA`, `I;16`,
            `I`, `F`, `CMYK`, `YCbCr`, `RGB`...).
        background: tuple of 3 int in [0, 255], default white. What transparent pixels are
            composited onto.

    Returns:
        PIL.Image.Image in mode `"RGB"`.
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _scale_to_uint8(img)
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        canvas = Image.new("RGB", img.size, background)
        canvas.paste(img, mask=img.getchannel("A"))
        return canvas
    return img.convert("RGB")


def open_image(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    min_size: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    draft: tuple[int, int] | None = None,
    name: str | None = None,
) -> Image.Image:
    """Opens, fully decodes and normalizes one image, or raises `ImageError` with a reason.

    Args:
        source: path, bytes or binary file object. The encoded image.
        min_size: int, default 0. Smallest allowed width and height, in pixels (after EXIF
            rotation); smaller images raise reason `"too_small"`.
        max_pixels: int, default `DEFAULT_MAX_PIXELS` (Pillow's limit, ~89.5 MP). Larger images
            raise reason `"decompression_bomb"` before their pixels are decoded.
        background: tuple of 3 int in [0, 255], default white. Where transparency goes.
        draft: tuple `(width, height)` in pixels or None, default None. If set, JPEGs are
            decoded at the smallest DCT scale (1/2, 1/4, 1/8) that is still at least this big
            (`Image.draft`), which is several times faster for hashing large photos. The
            returned size is then smaller than the file's own size.
        name: str or None. Name to use in errors when `source` is bytes or a file object.

    Returns:
        PIL.Image.Image: mode `"RGB"`, EXIF orientation applied, first frame if animated.

    Raises:
        ImageError: with `reason` one of `"not_an_image"`, `"unsupported_format"`,
            `"truncated"`, `"decompression_bomb"`, `"too_small"`, `"unreadable"`.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<bytes>")
    if isinstance(source, (bytes, bytearray)):
        fp: BinaryIO = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            fp = open(source, "rb")
        except OSError as exc:
            raise ImageError(label, REASON_UNREADABLE, exc.strerror or str(exc)) from None
    else:
        fp = source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = Image.open(fp, formats=None)
            except UnidentifiedImageError:
                raise ImageError(label, REASON_NOT_IMAGE, "not a recognized image format") from None
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageError(label, REASON_BOMB, str(exc)) from None
            fmt = img.format or "?"
            if fmt not in ALLOWED_FORMATS:
                raise ImageError(
                    label, REASON_UNSUPPORTED, f"format {fmt} is not one of {sorted(ALLOWED_FORMATS)}"
                )
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(label, REASON_BOMB, f"{w}x{h} pixels exceeds the {max_pixels:,} pixel limit")
            if getattr(img, "is_animated", False):
                img.seek(0)
            if draft is not None and fmt in ("JPEG", "MPO"):
                img.draft("RGB", draft)
            try:
                img.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageError(label, REASON_BOMB, str(exc)) from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise ImageError(label, REASON_TRUNCATED, str(exc) or type(exc).__name__) from None
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block must not lose a good image; orientation kept as is
            pass
        img = to_rgb(img, background)
        if min_size and (img.width < min_size or img.height < min_size):
            raise ImageError(label, REASON_TOO_SMALL, f"{img.width}x{img.height} < {min_size} pixels")
        return img
    finally:
        if isinstance(source, (str, os.PathLike)):
            fp.close()


def list_images(root: str | os.PathLike) -> list[Path]:
    """Lists candidate files under `root` recursively, sorted, skipping `_`/`.`-prefixed parts.

    Args:
        root: path. A folder.

    Returns:
        list of Path: every regular file below `root` whose path has no component starting
        with `_` or `.` (stage reports, rejected files, hidden files). The extension is not
        checked: content decides whether a file is an image.
    """
    root = Path(root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
        for fn in sorted(filenames):
            if not fn.startswith(("_", ".")):
                out.append(Path(dirpath) / fn)
    return out


def class_folders(root: str | os.PathLike) -> list[str]:
    """Returns the class names of an ImageFolder-style folder (`<root>/<class>/<file>`).

    Args:
        root: path. A stage folder.

    Returns:
        list of str: sorted names of the sub-folders of `root` that do not start with `_` or `.`.

    Raises:
        DataError: if `root` does not exist or is not a folder.
    """
    from imgclf.errors import DataError

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder not found: {root}", "check the path, or run the previous stage first")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


ImageFile.LOAD_TRUNCATED_IMAGES = False  # never: truncated files must fail loudly
