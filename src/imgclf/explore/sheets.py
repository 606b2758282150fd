"""Pictures for people: contact sheets, reconstruction grids and 2-D maps, written as PNG.

Every file is written atomically (`imgclf.fsutil.atomic_write_bytes`).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from imgclf.errors import ImageError
from imgclf.fsutil import atomic_write_bytes
from imgclf.images import open_image
from imgclf.inputs import InputSpec, resize_image

#: Background of sheets and grids, RGB in [0, 255].
BACKGROUND = (255, 255, 255)
#: Height of the title band, in pixels.
TITLE_HEIGHT = 18
#: Gap between cells, in pixels.
GAP = 2


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _fit(img: Image.Image, cell: int) -> Image.Image:
    """Square thumbnail of side `cell`: center crop, nearest-neighbour when enlarging."""
    side = min(img.size)
    if side < cell:
        img = resize_image(img, InputSpec(size=side))
        return img.resize((cell, cell), Image.Resampling.NEAREST)
    return resize_image(img, InputSpec(size=cell))


def contact_sheet(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    thumb: int = 64,
    columns: int | None = None,
    title: str = "",
) -> Path:
    """Writes a grid of thumbnails of `paths` (in the given order) as one PNG.

    Args:
        paths: sequence of image paths. Unreadable files are drawn as a grey cell with an "x".
        out: path of the PNG to write.
        thumb: int, default 64. Thumbnail side in pixels (center crop).
        columns: int or None. Thumbnails per row; None = ceil(sqrt(n)).
        title: str, default "". Drawn in a band above the grid.

    Returns:
        Path: `out`.
    """
    n = max(1, len(paths))
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    top = TITLE_HEIGHT if title else 0
    sheet = Image.new("RGB", (cols * (thumb + GAP) + GAP, top + rows * (thumb + GAP) + GAP), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((GAP + 2, 3), title, fill=(0, 0, 0))
    for i, p in enumerate(paths):
        x0 = GAP + (i % cols) * (thumb + GAP)
        y0 = top + GAP + (i // cols) * (thumb + GAP)
        try:
            sheet.paste(_fit(open_image(p), thumb), (x0, y0))
        except ImageError:
            draw.rectangle((x0, y0, x0 + thumb - 1, y0 + thumb - 1), fill=(200, 200, 200))
            draw.line((x0, y0, x0 + thumb - 1, y0 + thumb - 1), fill=(150, 0, 0))
            draw.line((x0, y0 + thumb - 1, x0 + thumb - 1, y0), fill=(150, 0, 0))
    return atomic_write_bytes(out, _png(sheet))


def reconstruction_grid(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    out: str | os.PathLike,
    *,
    columns: int = 8,
    cell: int = 64,
) -> Path:
    """Writes originals and their reconstructions as alternating rows of one PNG.

    Args:
        originals: uint8 array `(n, height, width, 3)` in [0, 255].
        reconstructions: uint8 array of the same shape.
        out: path of the PNG to write.
        columns: int, default 8. Images per row.
        cell: int, default 64. Side of each cell in pixels (nearest-neighbour scaling).

    Returns:
        Path: `out`.

    Raises:
        ValueError: if the two arrays differ in shape or are empty.
    """
    if originals.shape != reconstructions.shape or len(originals) == 0:
        raise ValueError(
            f"originals {originals.shape} and reconstructions {reconstructions.shape} must be the same, non-empty shape"
        )
    n = len(originals)
    cols = min(columns, n)
    groups = math.ceil(n / cols)
    label_w = 44
    width = label_w + cols * (cell + GAP) + GAP
    height = groups * (2 * (cell + GAP) + GAP * 3) + GAP
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for g in range(groups):
        y_orig = GAP + g * (2 * (cell + GAP) + GAP * 3)
        y_rec = y_orig + cell + GAP
        draw.text((2, y_orig + cell // 2 - 5), "input", fill=(0, 0, 0))
        draw.text((2, y_rec + cell // 2 - 5), "output", fill=(0, 0, 0))
        for c in range(cols):
            i = g * cols + c
            if i >= n:
                break
            x0 = label_w + GAP + c * (cell + GAP)
            for arr, y0 in ((originals[i], y_orig), (reconstructions[i], y_rec)):
                grid.paste(Image.fromarray(arr).resize((cell, cell), Image.Resampling.NEAREST), (x0, y0))
    return atomic_write_bytes(out, _png(grid))


def scatter_map(
    points: np.ndarray,
    clusters: np.ndarray,
    out: str | os.PathLike,
    *,
    title: str = "",
    method: str = "pca",
    centers: np.ndarray | None = None,
) -> Path:
    """Writes a 2-D scatter plot of `points` coloured by cluster as a PNG (matplotlib, Agg).

    Args:
        points: float array `(n, 2)`. The projected embeddings.
        clusters: int array `(n,)`. Cluster of each point, 0..k-1.
        out: path of the PNG to write.
        title: str. Figure title.
        method: str, default "pca". Axis label prefix ("pca" -> "PC1"/"PC2", "tsne" -> "t-SNE 1"/...).
        centers: float array `(k, 2)` or None. Cluster centres, drawn as labelled crosses.

    Returns:
        Path: `out`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = int(clusters.max()) + 1 if len(clusters) else 1
    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20" if k <= 20 else "turbo", max(k, 1))
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    try:
        size = max(2.0, min(30.0, 3000.0 / max(1, len(points))))
        for c in range(k):
            m = clusters == c
            ax.scatter(
                points[m, 0], points[m, 1], s=size, color=cmap(c), label=f"cluster {c} ({int(m.sum())})", alpha=0.7
            )
        if centers is not None:
            for c, (cx, cy) in enumerate(centers):
                ax.scatter([cx], [cy], marker="X", s=120, color=cmap(c), edgecolors="black", linewidths=1)
                ax.annotate(str(c), (cx, cy), xytext=(5, 5), textcoords="offset points", fontsize=9, weight="bold")
        names = ("PC1", "PC2") if method == "pca" else ("t-SNE 1", "t-SNE 2")
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1])
        ax.set_title(title, fontsize=10)
        if k <= 20:
            ax.legend(loc="best", fontsize=7, markerscale=1.5, frameon=True)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return atomic_write_bytes(out, buf.getvalue())
