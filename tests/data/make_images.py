"""Writes the tiny real test images of `tests/data/` (committed; rerun to regenerate).

    .venv/bin/python tests/data/make_images.py

Every file is at most 64 px on a side. The photo-like ones are crops of scikit-learn's bundled
sample photo `china.jpg`; the others are drawn with numpy.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def photo(size: int = 48, x: int = 100, y: int = 60) -> Image.Image:
    """A crop of scikit-learn's sample photo china.jpg, resized to `size` pixels."""
    from sklearn.datasets import load_sample_image

    arr = load_sample_image("china.jpg")[y : y + 192, x : x + 192]
    return Image.fromarray(arr).resize((size, size), Image.Resampling.LANCZOS)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A valid PNG header declaring `width x height` pixels (1.6 GP) with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def make_all(out: Path = HERE) -> list[Path]:
    """Writes every test image into `out` and returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name: str, img: Image.Image, **kw) -> None:
        p = out / name
        img.save(p, **kw)
        written.append(p)

    base = photo(48)
    save("rgb.jpg", base, quality=92)
    save("rgb.png", base)
    save("gray.png", base.convert("L"))
    # RGBA: left half transparent -> composited onto white
    rgba = base.convert("RGBA")
    a = np.asarray(rgba).copy()
    a[:, :24, 3] = 0
    save("rgba.png", Image.fromarray(a, "RGBA"))
    # LA and palette with transparency
    save("la.png", Image.fromarray(a, "RGBA").convert("LA"))
    save("palette.gif", base.convert("P", palette=Image.Palette.ADAPTIVE, colors=32))
    # 16-bit grayscale: a horizontal ramp over the full 0..65535 range
    ramp = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (16, 1))
    save("gray16.png", Image.fromarray(ramp))
    save("gray16.tif", Image.fromarray(ramp))
    # CMYK JPEG (pure cyan-ish) and CMYK TIFF
    cmyk = Image.new("CMYK", (32, 32), (255, 0, 0, 0))
    save("cmyk.jpg", cmyk, quality=95)
    save("cmyk.tif", cmyk)
    # EXIF-rotated: pixels stored rotated, Orientation=6 says "rotate 90 CW to view"
    stored = base.resize((48, 32)).transpose(Image.Transpose.ROTATE_90)  # stored 32x48
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif_rotated.jpg", stored, quality=95, exif=exif)
    save("upright.png", base.resize((48, 32)))
    # animated GIF: red frame then blue frame
    frames = [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))]
    p = out / "animated.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    written.append(p)
    save("animated.webp", frames[0], save_all=True, append_images=frames[1:], duration=100)
    save("rgb.bmp", base)
    save("rgb.webp", base, quality=90)
    # broken files
    buf = io.BytesIO()
    photo(64).save(buf, format="JPEG", quality=95)
    jpeg = buf.getvalue()
    (out / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    buf = io.BytesIO()
    photo(64).save(buf, format="PNG")
    (out / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (out / "not_an_image.jpg").write_text("<html><body>404 Not Found</body></html>\n")
    (out / "empty.png").write_bytes(b"")
    (out / "bomb.png").write_bytes(bomb_png())
    buf = io.BytesIO()
    base.save(buf, format="PCX")  # a real image format that is not allow-listed
    (out / "unsupported.pcx").write_bytes(buf.getvalue())
    written += [
        out / n
        for n in ("truncated.jpg", "truncated.png", "not_an_image.jpg", "empty.png", "bomb.png", "unsupported.pcx")
    ]
    save("tiny.png", base.resize((6, 6)))
    save("blank.png", Image.new("RGB", (32, 32), (128, 128, 128)))
    return written


if __name__ == "__main__":
    files = make_all()
    print(f"wrote {len(files)} files to {HERE}")
    sys.exit(0)
