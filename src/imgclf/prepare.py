"""`imgclf prepare`: every image to a square of `size` pixels, the AlexNet way.

The shortest side is resized to `size` (Lanczos when shrinking, bicubic when enlarging), then
the center `size x size` square is cropped (Krizhevsky et al., 2012, "ImageNet Classification
with Deep Convolutional Neural Networks", §2: "rescaled the image such that the shorter side was
of length 256, and then cropped out the central 256x256 patch"). Images are opened with
`imgclf.images.open_image`, so EXIF orientation is applied and every mode becomes RGB.

`predict` calls `resize_center_crop` with the size stored in the run directory, so a photo is
prepared exactly as the training images were.
"""

from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.config import PrepareConfig
from imgclf.errors import DataError, ImageError
from imgclf.fsutil import atomic_write_bytes, atomic_write_text
from imgclf.images import list_images, open_image
from imgclf.parallel import default_workers
from imgclf.ui import progress, summary


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    """Resizes the shortest side to `size`, then crops the center `size x size` square.

    Args:
        img: PIL.Image.Image. Any size; RGB expected (see `imgclf.images.open_image`).
        size: int. Output side in pixels, >= 1.

    Returns:
        PIL.Image.Image of shape `(size, size)`, same mode as `img`. When the side to crop
        has an odd excess, the extra pixel is taken from the right / bottom.

    Raises:
        ValueError: if `size` < 1.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1 pixel, received size={size}")
    w, h = img.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    if (new_w, new_h) != (w, h):
        resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
        # reducing_gap: decode-time style box reduction first, much faster on big photos.
        img = img.resize((new_w, new_h), resample=resample, reducing_gap=3.0 if scale < 0.5 else None)
    left = (new_w - size) // 2
    top = (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


def load_for_model(source: str | os.PathLike | bytes, size: int, name: str | None = None) -> np.ndarray:
    """Opens an image safely and prepares it as in training: RGB, shortest side + center crop.

    Args:
        source: path or encoded bytes.
        size: int. Model input side in pixels (from the run directory).
        name: str or None. Name used in errors when `source` is bytes (e.g. the URL).

    Returns:
        np.ndarray of shape `(size, size, 3)`, dtype uint8, values in [0, 255].

    Raises:
        ImageError: if the image cannot be opened (see `open_image`).
    """
    img = open_image(source, draft=(size, size), name=name)
    return np.asarray(resize_center_crop(img, size), dtype=np.uint8)


@dataclass
class PrepareSummary:
    """What `prepare_folder` did."""

    out: Path
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    skipped_existing: int = 0

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())


def _encode(img: Image.Image, cfg: PrepareConfig) -> bytes:
    buf = io.BytesIO()
    if cfg.format == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=cfg.quality)
    return buf.getvalue()


def _output_names(src: Path, files: list[Path], ext: str) -> dict[Path, Path]:
    """Maps each input to its output path relative to `src`, with extension `ext`.

    `a.jpg` and `a.png` in one folder would both become `a.png`; such names keep their old
    extension in the stem (`a_jpg.png`, `a_png.png`) so no image overwrites another.
    """
    rels = {f: f.relative_to(src) for f in files}
    counts: dict[Path, int] = {}
    for rel in rels.values():
        counts[rel.with_suffix(ext)] = counts.get(rel.with_suffix(ext), 0) + 1
    out = {}
    for f, rel in rels.items():
        dest = rel.with_suffix(ext)
        if counts[dest] > 1:
            dest = rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.').lower()}{ext}")
        out[f] = dest
    return out


def prepare_folder(src: str | os.PathLike, out: str | os.PathLike, cfg: PrepareConfig | None = None) -> PrepareSummary:
    """Writes every image of `src` resized + center-cropped to `out`, keeping relative paths.

    Sub-folders (classes, and `train/` / `test/` layouts) are kept as they are; names starting
    with `_` or `.` are skipped. The extension becomes `.png` or `.jpg` per `cfg.format`.
    Images that cannot be opened are not written; they are counted by reason and listed in
    `out/_reports/prepare_rejects.csv`. Existing outputs newer than their input are kept
    (a rerun resumes). Every file is written atomically.

    Args:
        src: path. An ImageFolder tree (`src/<class>/<file>`), usually the `clean` output.
        out: path. Output folder; created if missing. Must not be `src` or inside it.
        cfg: PrepareConfig or None. `size` (pixels), `format`, `quality`, `workers`.

    Returns:
        PrepareSummary with counts.

    Raises:
        DataError: if `src` is missing, holds no class folder or no file, or `out` is inside `src`.
    """
    cfg = cfg or PrepareConfig()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"input folder not found: {src}", "run `imgclf clean` first or check the path")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise DataError(f"output folder {out} must not be the input folder {src} or inside it")
    files = [f for f in list_images(src) if f.parent != src]
    if not files:
        raise DataError(f"no images found in class folders under {src}", "expected <folder>/<class>/<image>")
    ext = ".png" if cfg.format == "png" else ".jpg"
    result = PrepareSummary(out=out)
    rejects: list[tuple[str, str, str]] = []

    dests = _output_names(src, files, ext)

    def work(path: Path) -> tuple[Path, str | None, str]:
        dest = out / dests[path]
        if dest.exists() and dest.stat().st_mtime >= path.stat().st_mtime:
            return path, "__exists__", ""
        try:
            img = open_image(path, draft=(cfg.size, cfg.size))
        except ImageError as exc:
            return path, exc.reason, exc.detail
        atomic_write_bytes(dest, _encode(resize_center_crop(img, cfg.size), cfg))
        return path, None, ""

    workers = cfg.workers or default_workers()
    with progress("prepare", total=len(files)) as advance, ThreadPoolExecutor(workers) as pool:
        for path, reason, detail in pool.map(work, files):
            if reason is None:
                result.kept += 1
            elif reason == "__exists__":
                result.skipped_existing += 1
                result.kept += 1
            else:
                result.rejected[reason] = result.rejected.get(reason, 0) + 1
                rejects.append((str(path), reason, detail))
            advance(status=f"kept {result.kept}  set aside {len(rejects)}")
    if rejects:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "reason", "detail"])
        w.writerows(rejects)
        atomic_write_text(out / "_reports" / "prepare_rejects.csv", buf.getvalue())
    why = ", ".join(f"{n} {r}" for r, n in sorted(result.rejected.items())) or "none"
    reused = f" ({result.skipped_existing} already done)" if result.skipped_existing else ""
    summary(
        f"prepare: {result.kept} images at {cfg.size}x{cfg.size}{reused}, "
        f"{result.total_rejected} set aside ({why}) -> {out}"
    )
    return result
