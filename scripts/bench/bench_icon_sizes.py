"""Are the oxygen icon sizes of `dedupe_set.py` copies of one picture? Pixel distances, measured.

Issue 12 counts an oxygen icon at 32, 48, 64 and 128 px as a near duplicate of the same icon at
256 px. This script measures how far apart those versions are in pixels, next to how far apart
*different* icons are, with the simplest distances that ignore everything a redraw changes
least:

- each icon is composited onto white (as `imgclf.images.open_image` does) after cutting it to
  the bounding box of its opaque pixels (alpha > 16), so the margins, which differ between
  sizes, do not count;
- it is then area-reduced to `R x R` (R = 8, 16, 32) and compared by RGB RMS difference, and
  by the grayscale residual after one least-squares gain and offset (the fit the verifier of
  `imgclf.clean.similarity` makes).

For each size S and distance it prints: the median and 90th percentile of the distance between
an icon at S and its own 256 px version (the pairs the benchmark calls duplicates); the smallest
distance between an icon at S and a *different* icon at 256 px; rank-1 retrieval (the share of
icons at S whose nearest 256 px icon is their own); and the oracle recall: the largest share of
the duplicate pairs any single threshold on that distance finds while keeping precision >= 0.99
among these icon pairs alone (the threshold is chosen on the answers, so no method using that
distance can do better here).

Run: .venv/bin/python scripts/bench/bench_icon_sizes.py [--sheet icons.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedupe_set import OXYGEN, _icons

SIZES = (32, 48, 64, 128)
ANCHOR = 256
RESOLUTIONS = (8, 16, 32)
ALPHA_FLOOR = 16


def load(rel: str, size: int) -> Image.Image | None:
    path = OXYGEN / f"{size}x{size}" / rel
    if not path.exists():
        return None
    im = Image.open(path).convert("RGBA")
    alpha = np.asarray(im)[..., 3]
    ys, xs = np.nonzero(alpha > ALPHA_FLOOR)
    return im.crop((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def on_white(im: Image.Image, r: int) -> np.ndarray:
    a = np.asarray(im.resize((r, r), Image.BOX), dtype=np.float64)
    alpha = a[..., 3:] / 255.0
    return a[..., :3] * alpha + 255.0 * (1.0 - alpha)


def rgb_rms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """RMS difference of (n, r, r, 3) against (m, r, r, 3): (n, m)."""
    xf = x.reshape(len(x), -1)
    yf = y.reshape(len(y), -1)
    d2 = (xf**2).sum(1)[:, None] + (yf**2).sum(1)[None, :] - 2 * xf @ yf.T
    return np.sqrt(np.maximum(d2, 0) / xf.shape[1])


def gray_residual(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """RMS residual of y after the least-squares gain and offset from x: (n, m)."""
    gx = x.mean(-1).reshape(len(x), -1)
    gy = y.mean(-1).reshape(len(y), -1)
    gx = gx - gx.mean(1, keepdims=True)
    gy = gy - gy.mean(1, keepdims=True)
    vx = (gx**2).sum(1)[:, None]
    cov = gx @ gy.T
    vy = (gy**2).sum(1)[None, :]
    return np.sqrt(np.maximum(vy - cov**2 / np.maximum(vx, 1e-9), 0) / gx.shape[1])


def oracle_recall(d: np.ndarray, own: np.ndarray, min_precision: float = 0.99) -> float:
    """Largest recall of the own pairs at one threshold with precision >= min_precision."""
    pos = np.sort(d[own])
    neg = np.sort(d[~own])
    best = 0.0
    for t in pos:
        tp = np.searchsorted(pos, t, side="right")
        fp = np.searchsorted(neg, t, side="right")
        if tp / (tp + fp) >= min_precision:
            best = max(best, tp / len(pos))
    return best


def sheet(icons, path: str, cell: int = 64, rows: int = 10) -> None:
    sel = icons[:: max(1, len(icons) // rows)][:rows]
    per_row = len(SIZES) + 1
    out = Image.new("RGB", (cell * per_row, cell * len(sel)), "white")
    for r, (rel, _) in enumerate(sel):
        for c, s in enumerate(SIZES + (ANCHOR,)):
            im = Image.open(OXYGEN / f"{s}x{s}" / rel).convert("RGBA")
            im = im.resize((cell, cell), Image.NEAREST if s < cell else Image.BOX)
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            bg.alpha_composite(im)
            out.paste(bg.convert("RGB"), (c * cell, r * cell))
    out.quantize(256).save(path, optimize=True)
    print(
        f"sheet: {path} (columns {', '.join(map(str, SIZES + (ANCHOR,)))} px, each shown at {cell} px; "
        f"rows: {', '.join(rel.rsplit('/', 1)[-1].removesuffix('.png') for rel, _ in sel)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sheet", default=None, help="PNG path: contact sheet of 10 icons at every size")
    args = ap.parse_args()
    t0 = time.perf_counter()
    icons = _icons()
    names = [rel for rel, _ in icons]
    anchors = [load(rel, ANCHOR) for rel in names]
    print(
        f"{len(names)} oxygen icons of the dedupe benchmark (anchors {ANCHOR} px), "
        f"opaque box alpha > {ALPHA_FLOOR}, composited onto white\n"
    )
    print(
        "| size | distance | own pairs | own: median | own: 90th pct | nearest other icon: min | rank-1 own | oracle recall at P >= 0.99 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for s in SIZES:
        small = [(k, load(rel, s)) for k, rel in enumerate(names)]
        small = [(k, im) for k, im in small if im is not None]
        rows = np.array([k for k, _ in small])
        for r in RESOLUTIONS:
            a = np.stack([on_white(im, r) for im in anchors])
            x = np.stack([on_white(im, r) for _, im in small])
            for label, fn in (("RGB RMS", rgb_rms), ("gray residual", gray_residual)):
                d = fn(x, a)
                own = np.zeros_like(d, dtype=bool)
                own[np.arange(len(rows)), rows] = True
                dn = np.where(own, np.inf, d)
                rank1 = float((d.argmin(1) == rows).mean())
                print(
                    f"| {s} | {label} {r}x{r} | {len(rows)} | {np.median(d[own]):.1f} | "
                    f"{np.percentile(d[own], 90):.1f} | {dn.min():.1f} | {rank1:.2f} | "
                    f"{oracle_recall(d, own):.2f} |",
                    flush=True,
                )
    if args.sheet:
        sheet(icons, args.sheet)
    print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
