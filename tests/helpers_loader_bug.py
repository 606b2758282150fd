"""Test helper (not a conftest): a real loader bug, planted through a Pillow plugin.

`planted_loader_bug()` registers, for the duration of a `with` block, a Pillow image plugin with
a bug: files that start with `MAGIC` open as a palette ("P") image whose `transparency` is a str.
Pillow's own `Image.convert("RGBA")` refuses that with a `ValueError`, which reaches
`imgclf.images.to_rgb` through the real opener: not an unreadable image (an `ImageError`) but a
bug in a library imgclf uses -- the case the loaders must stop on (docs/architecture.md).

The plugin answers for the "BMP" format (an allow-listed one, `imgclf.images.ALLOWED_FORMATS`)
and hands every other file to Pillow's real BMP plugin, so real BMPs still open.

`write_planted_bug(path)` writes such a file (8 x 8 pixels).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageFile, ImagePalette

MAGIC = b"IMGCLF-BUG\n"  # Pillow hands `accept` the first 16 bytes
_SIZE = 8

#: The start of the message the planted bug raises (Pillow's own words).
BUG_MESSAGE = "Transparency for P mode should be bytes or int"


class _PlantedBugImageFile(ImageFile.ImageFile):
    """A palette image whose `transparency` is a str: Pillow cannot convert it to RGBA."""

    format = "BMP"
    format_description = "imgclf test plugin with a planted bug"

    def _open(self) -> None:
        if self.fp is None or self.fp.read(len(MAGIC)) != MAGIC:
            raise SyntaxError("not a planted-bug file")
        self._mode = "P"
        self._size = (_SIZE, _SIZE)
        self.palette = ImagePalette.raw("RGB", bytes(range(256)) * 3)
        self.info["transparency"] = "none"  # the bug: Pillow wants bytes or an int
        self.tile = [ImageFile._Tile("raw", (0, 0, _SIZE, _SIZE), len(MAGIC), ("P", 0, 1))]


def write_planted_bug(path: Path) -> Path:
    """Writes a file the planted plugin opens (and real Pillow does not): `MAGIC` + 8 x 8 pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MAGIC + bytes(range(_SIZE * _SIZE)))
    return path


@contextmanager
def planted_loader_bug() -> Iterator[None]:
    """Registers the buggy plugin in front of Pillow's BMP plugin for the block; restores it after."""
    Image.init()
    real_factory, real_accept = Image.OPEN["BMP"]

    def accept(prefix: bytes) -> bool:
        return prefix.startswith(MAGIC) or bool(real_accept is None or real_accept(prefix))

    def factory(fp, filename):
        head = fp.read(len(MAGIC))
        fp.seek(0)
        if head == MAGIC:
            return _PlantedBugImageFile(fp, filename)
        return real_factory(fp, filename)

    Image.OPEN["BMP"] = (factory, accept)
    try:
        yield
    finally:
        Image.OPEN["BMP"] = (real_factory, real_accept)
