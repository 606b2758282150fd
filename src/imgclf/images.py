"""The one safe way to open an image. Every stage (clean, prepare, predict, scrape) uses it.

(Listing folders and turning images into model input live in `imgclf.inputs`, on top of this.)

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
from collections.abc import Iterator
from contextlib import contextmanager
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
REASON_CORRUPT = "corrupt"

#: Every reason `open_image` can give, in the order they are checked.
OPEN_REASONS: tuple[str, ...] = (
    REASON_UNREADABLE,
    REASON_NOT_IMAGE,
    REASON_UNSUPPORTED,
    REASON_BOMB,
    REASON_TRUNCATED,
    REASON_CORRUPT,
    REASON_TOO_SMALL,
)

#: Key of `Image.info` where `open_image` records the size of the full image (width, height)
#: in pixels after EXIF rotation -- differs from `img.size` when `draft` reduced the decode.
ORIGINAL_SIZE_KEY = "imgclf_original_size"

#: Key of `Image.info` where `open_image` records the detected format (e.g. "JPEG").
FORMAT_KEY = "imgclf_format"

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
    out: np.ndarray
    if img.mode.startswith("I;16") or (arr.dtype == np.uint16):
        out = (arr.astype(np.uint32) * 255 + 32767) // 65535
    elif img.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=0.0))
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


def _draft_request(size: tuple[int, int], draft: tuple[int, int] | int) -> tuple[int, int]:
    """Turns `draft` into the `(width, height)` request `Image.draft` expects."""
    if isinstance(draft, int):  # longest side at least `draft` pixels
        w, h = size
        scale = draft / max(w, h, 1)
        return (max(1, int(w * scale)), max(1, int(h * scale)))
    return draft


def _identify_other(fp: BinaryIO) -> str | None:
    """Names a non-allowed format Pillow knows (header parse only, no pixel decode), or None."""
    try:
        fp.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(fp) as other:
                return other.format
    except Exception:  # noqa: BLE001 - anything unparseable is simply "not an image"
        return None


def _open_formats() -> list[str]:
    """Pillow plugin names to try: `ALLOWED_FORMATS` that Pillow registers as openers.

    MPO has no opener of its own (the JPEG plugin returns an MPO image), so it is not listed.
    """
    Image.init()
    return [f for f in sorted(ALLOWED_FORMATS) if f in Image.OPEN]


def open_image(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    min_size: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
    draft: tuple[int, int] | int | None = None,
    name: str | None = None,
) -> Image.Image:
    """Opens, fully decodes and normalizes one image, or raises `ImageError` with a reason.

    Steps, in order: read the header with only the allow-listed Pillow plugins
    (`ALLOWED_FORMATS`); refuse more than `max_pixels` pixels before decoding; take frame 0
    of animated images (GIF, WebP, APNG, multi-page TIFF); decode every pixel (`Image.load`,
    so a truncated file fails here); apply the EXIF orientation (`ImageOps.exif_transpose`);
    convert to 8-bit RGB (`to_rgb`: transparency onto `background`, 16-bit scaled, CMYK
    converted); check `min_size` against the full image size.

    Args:
        source: path, bytes or binary file object. The encoded image.
        min_size: int, default 0. Smallest allowed width and height, in pixels, of the full
            image after EXIF rotation (not of the draft decode); smaller images raise reason
            `"too_small"`.
        max_pixels: int, default `DEFAULT_MAX_PIXELS` (Pillow's limit, ~89.5 MP). Larger images
            raise reason `"decompression_bomb"` before their pixels are decoded. Pillow itself
            still refuses images above twice its own `Image.MAX_IMAGE_PIXELS`.
        background: tuple of 3 int in [0, 255], default white. Where transparency goes.
        draft: tuple `(width, height)` in pixels, int, or None (default). If set, JPEGs are
            decoded at the smallest DCT scale (1/2, 1/4, 1/8) that is still at least this big
            (`Image.draft`; an int asks for the longest side to be at least that many pixels),
            which is several times faster for large photos. Every byte of the file is still
            decoded, so truncation is still detected. The returned size is then smaller than
            the file's own; the full size is in `img.info[ORIGINAL_SIZE_KEY]`.
        name: str or None. Name to use in errors when `source` is bytes or a file object.

    Returns:
        PIL.Image.Image: mode `"RGB"`, EXIF orientation applied, first frame if animated.
        `img.info[ORIGINAL_SIZE_KEY]` is the full `(width, height)` after EXIF rotation and
        `img.info[FORMAT_KEY]` the detected format name.

    Raises:
        ImageError: with `reason` one of `OPEN_REASONS`: `"unreadable"` (cannot read the
            file), `"not_an_image"`, `"unsupported_format"` (an image format outside
            `ALLOWED_FORMATS`), `"decompression_bomb"`, `"truncated"`, `"corrupt"` (decoder
            error other than truncation), `"too_small"`.

    Example:
        >>> img = open_image("photo.jpg", min_size=32, draft=512)
        >>> img.mode, img.info[ORIGINAL_SIZE_KEY]
        ('RGB', (4000, 3000))
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "<bytes>")
    with _binary(source, label) as fp:
        with warnings.catch_warnings():
            # Our own `max_pixels` check decides; Pillow's warning is not an error here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = _read_header(fp, label, max_pixels)
            fmt, (w, h) = img.format or "?", img.size
            _decode(img, label, fmt, draft)
        # still inside the file: a TIFF's EXIF block is read from it
        return _normalize(img, label, fmt, (w, h), background, min_size)


@contextmanager
def _binary(source: str | os.PathLike | bytes | BinaryIO, label: str) -> Iterator[BinaryIO]:
    """The encoded image as a binary file object; a path is opened here and closed after the block."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            fp = open(source, "rb")  # noqa: SIM115 - closed by the `with` below, after the error mapping
        except OSError as exc:
            raise ImageError(label, REASON_UNREADABLE, exc.strerror or str(exc)) from None
        with fp:
            yield fp
    else:
        yield source


def _read_header(fp: BinaryIO, label: str, max_pixels: int) -> Image.Image:
    """Reads the header with the allow-listed plugins only, and refuses bombs before decoding."""
    try:
        img: Image.Image = Image.open(fp, formats=_open_formats())
    except UnidentifiedImageError:
        other = _identify_other(fp)
        if other is not None:
            raise ImageError(
                label, REASON_UNSUPPORTED, f"format {other} is not one of {sorted(ALLOWED_FORMATS)}"
            ) from None
        raise ImageError(label, REASON_NOT_IMAGE, "not a recognized image format") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(label, REASON_BOMB, str(exc)) from None
    except OSError as exc:
        raise ImageError(label, REASON_TRUNCATED, str(exc) or type(exc).__name__) from None
    except Exception as exc:  # noqa: BLE001 - malformed headers raise many types
        raise ImageError(label, REASON_CORRUPT, f"{type(exc).__name__}: {exc}") from None
    fmt = img.format or "?"
    if fmt not in ALLOWED_FORMATS:  # pragma: no cover - guarded by `formats=`
        raise ImageError(label, REASON_UNSUPPORTED, f"format {fmt} is not one of {sorted(ALLOWED_FORMATS)}")
    w, h = img.size
    if w * h > max_pixels:
        raise ImageError(label, REASON_BOMB, f"{w}x{h} pixels exceeds the {max_pixels:,} pixel limit")
    return img


def _decode(img: Image.Image, label: str, fmt: str, draft: tuple[int, int] | int | None) -> None:
    """Decodes every pixel of frame 0 (at the JPEG draft scale when asked): truncation fails here."""
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
        if draft is not None and fmt in ("JPEG", "MPO"):
            img.draft("RGB", _draft_request(img.size, draft))
        img.load()
    except Image.DecompressionBombError as exc:
        raise ImageError(label, REASON_BOMB, str(exc)) from None
    except (OSError, EOFError) as exc:
        msg = str(exc) or type(exc).__name__
        truncated = "truncat" in msg or "premature" in msg.lower() or isinstance(exc, EOFError)
        raise ImageError(label, REASON_TRUNCATED if truncated else REASON_CORRUPT, msg) from None
    except Exception as exc:  # noqa: BLE001 - broken streams raise many types
        raise ImageError(label, REASON_CORRUPT, f"{type(exc).__name__}: {exc}") from None


def _normalize(
    img: Image.Image,
    label: str,
    fmt: str,
    size: tuple[int, int],
    background: tuple[int, int, int],
    min_size: int,
) -> Image.Image:
    """EXIF orientation, then 8-bit RGB; records the full size (`size`, before any draft) and format."""
    w, h = size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001
        orientation = 1
    full = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose a good image
        pass
    img = to_rgb(img, background)
    img.info[ORIGINAL_SIZE_KEY] = full
    img.info[FORMAT_KEY] = fmt
    if min_size and (full[0] < min_size or full[1] < min_size):
        raise ImageError(label, REASON_TOO_SMALL, f"{full[0]}x{full[1]} < {min_size} pixels")
    return img


ImageFile.LOAD_TRUNCATED_IMAGES = False  # never: truncated files must fail loudly
