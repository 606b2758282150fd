"""Thumbnails of the review page: made once per file version, kept in a bounded memory cache."""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image

from imgclf.errors import ImageError
from imgclf.images import ORIGINAL_SIZE_KEY, open_image
from imgclf.review.data import MEDIA_TYPES, NotFoundError

#: Longest side of a thumbnail, in pixels; smaller images are served as they are.
THUMB_SIDE = 224

#: Files up to this size whose sides are at most `THUMB_SIDE` are served unchanged as thumbnails.
THUMB_PASSTHROUGH_BYTES = 256 * 1024

#: Thumbnails kept in memory (least recently used dropped first).
CACHE_SIZE = 2048

#: Formats a browser shows, so a small file of one of them is its own thumbnail.
_PASSTHROUGH_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


def make_thumbnail(real: Path, fmt: str, nbytes: int, rel: str) -> tuple[bytes, str]:
    """A thumbnail of at most `THUMB_SIDE` pixels (the file itself when it is already small).

    Args:
        real: Path. The image file (already checked by `imgclf.review.data.safe_image`).
        fmt: str. Its format as `safe_image` found it (`"PNG"`, `"JPEG"`, ...).
        nbytes: int. Its size in bytes.
        rel: str. Its path relative to the reviewed folder (for messages).

    Returns:
        (bytes, media type): the file's own bytes, or a JPEG (quality 85).

    Raises:
        NotFoundError: the file cannot be decoded as an image (the page shows a 404).
    """
    try:
        img = open_image(real, draft=THUMB_SIDE, name=rel)
    except ImageError as exc:
        raise NotFoundError(f"cannot show {rel}: {exc.reason}") from None
    w, h = img.info.get(ORIGINAL_SIZE_KEY, img.size)
    if max(w, h) <= THUMB_SIDE and nbytes <= THUMB_PASSTHROUGH_BYTES and fmt in _PASSTHROUGH_FORMATS:
        return real.read_bytes(), MEDIA_TYPES[fmt]
    img = img.copy()
    img.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue(), "image/jpeg"


class ThumbnailCache:
    """The last `size` thumbnails made, keyed by file, size and modification time; thread-safe.

    Args:
        size: int, default `CACHE_SIZE`. Thumbnails kept.
    """

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[tuple[str, int, int], tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, real: Path, fmt: str, st: os.stat_result, rel: str) -> tuple[bytes, str]:
        """The thumbnail of `real` (made by `make_thumbnail` on a miss).

        Args:
            real: Path. The image file.
            fmt: str. Its format.
            st: os.stat_result of `real` (a changed file is a new key).
            rel: str. Its path relative to the reviewed folder.

        Returns:
            (bytes, media type).
        """
        key = (str(real), st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._items.get(key)
            if hit:
                self._items.move_to_end(key)
        if hit is None:
            hit = make_thumbnail(real, fmt, st.st_size, rel)
            with self._lock:
                self._items[key] = hit
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return hit
