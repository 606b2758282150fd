"""`clean`'s report writers: the CSV tables, and contact sheets a person can check by eye --
duplicate groups side by side, blurriest images.

Drawn with Pillow (`ImageDraw`, its default bitmap font): one row per duplicate group (kept
image first, marked `KEEP`), or a grid of the images with the lowest blur score and their
variance-of-Laplacian values. Images are opened with `imgclf.images.open_image`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from imgclf.errors import ImageError
from imgclf.fsutil import atomic_write_bytes
from imgclf.images import open_image


def write_rejects(path: Path, rejects: Sequence[tuple[str, str, str]]) -> Path:
    """Writes `rejects.csv`: one row `(file, reason, detail)` per file set aside, sorted.

    Args:
        path: Path of the CSV (written atomically).
        rejects: sequence of `(relative path, reason, detail)`.

    Returns:
        Path: `path`.
    """
    import csv

    from imgclf.fsutil import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "reason", "detail"])
    w.writerows(sorted(rejects))
    return atomic_write_text(path, buf.getvalue())


def write_image_table(path: Path, records: Sequence[Any], hash_name: str) -> Path:
    """Writes `images.csv`: every readable image with size, hash, quality scores, group, status.

    Args:
        path: Path of the CSV (written atomically).
        records: sequence of `imgclf.clean.verify.ImageRecord`.
        hash_name: str. Name of the hash column (e.g. "phash").

    Returns:
        Path: `path`.
    """
    import csv

    from imgclf.fsutil import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "file",
            "class",
            "subset",
            "width",
            "height",
            "bytes",
            "format",
            hash_name,
            "blur",
            "std",
            "entropy",
            "group",
            "status",
        ]
    )
    for r in sorted(records, key=lambda r: r.rel):
        w.writerow(
            [
                r.rel,
                r.label,
                r.subset or "",
                r.width,
                r.height,
                r.nbytes,
                r.format,
                r.hash_hex,
                f"{r.blur:.2f}",
                f"{r.std:.2f}",
                f"{r.entropy:.3f}",
                r.group or "",
                r.status,
            ]
        )
    return atomic_write_text(path, buf.getvalue())


#: Thumbnail side in pixels.
THUMB = 112
_CAPTION = 28


def _thumb(path: Path) -> Image.Image:
    try:
        img = open_image(path, draft=THUMB)
    except ImageError:
        return Image.new("RGB", (THUMB, THUMB), (200, 0, 0))
    img = img.copy()
    img.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS if max(img.size) > THUMB else Image.Resampling.NEAREST)
    if max(img.size) < THUMB:  # tiny images (digits): enlarge so they can be seen
        k = THUMB / max(img.size)
        img = img.resize((max(1, int(img.width * k)), max(1, int(img.height * k))), Image.Resampling.NEAREST)
    return img


def contact_sheet(rows: Sequence[Sequence[tuple[Path, str]]], title: str) -> Image.Image:
    """Draws rows of captioned thumbnails.

    Args:
        rows: sequence of rows; each row a sequence of `(image path, caption)`.
        title: str. Printed at the top.

    Returns:
        PIL.Image.Image (RGB), `THUMB + 28` pixels per row.
    """
    ncol = max((len(r) for r in rows), default=1)
    cell_w, cell_h = THUMB + 8, THUMB + _CAPTION
    sheet = Image.new("RGB", (max(ncol * cell_w, 320), 20 + len(rows) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill="black")
    for y, row in enumerate(rows):
        for x, (path, caption) in enumerate(row):
            t = _thumb(path)
            ox, oy = x * cell_w + 4, 20 + y * cell_h
            sheet.paste(t, (ox + (THUMB - t.width) // 2, oy + (THUMB - t.height) // 2))
            for k, line in enumerate(caption.split("\n")[:2]):
                draw.text((ox, oy + THUMB + 2 + 11 * k), line[:20], fill="black")
    return sheet


def _save(img: Image.Image, path: Path) -> None:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    atomic_write_bytes(path, buf.getvalue())


def write_contact_sheets(
    src: Path,
    reports: Path,
    records: Sequence[Any],
    groups: Sequence[dict[str, Any]],
    conflicts: Sequence[dict[str, Any]],
    max_rows: int = 12,
    max_cols: int = 6,
) -> list[Path]:
    """Writes `duplicate_groups.png`, `label_conflicts.png` and `blurriest.png` to `reports`.

    Args:
        src: Path. The input folder (images are read from there).
        reports: Path. Where the PNGs go.
        records: sequence of `imgclf.clean.pipeline.ImageRecord`.
        groups, conflicts: group dicts as in `clean_report.json`.
        max_rows: int, default 12. Groups (or rows of blurry images) shown.
        max_cols: int, default 6. Images per row.

    Returns:
        list of Path: the files written (a sheet with nothing to show is not written).
    """
    written = []

    def group_rows(gs):
        rows = []
        for g in list(gs)[:max_rows]:
            row = []
            for m in g["members"][:max_cols]:
                tag = "KEEP" if m["status"] == "kept" else m["status"].replace("near_duplicate", "near-dup")
                row.append((src / m["file"], f"g{g['group']} {tag}\n{m['label']} {m['width']}x{m['height']}"))
            rows.append(row)
        return rows

    if groups:
        p = reports / "duplicate_groups.png"
        _save(
            contact_sheet(group_rows(groups), f"{len(groups)} duplicate groups (first {min(len(groups), max_rows)})"), p
        )
        written.append(p)
    if conflicts:
        p = reports / "label_conflicts.png"
        _save(
            contact_sheet(group_rows(conflicts), f"{len(conflicts)} groups with mixed labels (likely label noise)"), p
        )
        written.append(p)
    if records:
        worst = sorted(records, key=lambda r: r.blur)[: max_rows * max_cols // 2]
        rows = [
            [(src / r.rel, f"blur {r.blur:.1f}\n{r.label}") for r in worst[k : k + max_cols]]
            for k in range(0, len(worst), max_cols)
        ]
        p = reports / "blurriest.png"
        _save(contact_sheet(rows, "lowest variance of Laplacian (blurriest first)"), p)
        written.append(p)
    return written
