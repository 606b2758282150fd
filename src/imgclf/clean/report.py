"""`clean`'s contact sheets, for a person to check by eye: duplicate groups side by side, label
conflicts, the blurriest images.

Drawn with Pillow (`ImageDraw`, its default bitmap font): one row per duplicate group (kept
image first, marked `KEEP`), or a grid of the images with the lowest blur score and their
variance-of-Laplacian values. Images are opened with `imgclf.images.open_image`. The CSV tables
and the JSON report are typed records (`imgclf.records.clean`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from imgclf.clean.verify import ImageRecord
from imgclf.errors import ImageError
from imgclf.fsutil import atomic_write_bytes
from imgclf.images import open_image
from imgclf.records.clean import DuplicateGroup

#: Thumbnail side in pixels.
THUMB = 112
_CAPTION = 28


#: Rows and images per row of a contact sheet (`write_contact_sheets`' defaults).
CONTACT_ROWS, CONTACT_COLS = 12, 6


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


def _group_rows(src: Path, groups: Sequence[DuplicateGroup], max_rows: int, max_cols: int) -> list:
    rows = []
    for g in list(groups)[:max_rows]:
        row = []
        for m in g.members[:max_cols]:
            tag = "KEEP" if m.status == "kept" else m.status.replace("near_duplicate", "near-dup")
            row.append((src / m.file, f"g{g.group} {tag}\n{m.label} {m.width}x{m.height}"))
        rows.append(row)
    return rows


def write_contact_sheets(
    src: Path,
    reports: Path,
    records: Sequence[ImageRecord],
    groups: Sequence[DuplicateGroup],
    conflicts: Sequence[DuplicateGroup],
    max_rows: int = CONTACT_ROWS,
    max_cols: int = CONTACT_COLS,
) -> list[Path]:
    """Writes `duplicate_groups.png`, `label_conflicts.png` and `blurriest.png` to `reports`.

    Args:
        src: Path. The input folder (images are read from there).
        reports: Path. Where the PNGs go.
        records: sequence of `imgclf.clean.verify.ImageRecord`: the images `blurriest.png` may
            show (every readable image, or the `max_rows * max_cols // 2` blurriest).
        groups, conflicts: sequence of `imgclf.records.clean.DuplicateGroup` (the report's).
        max_rows: int, default 12. Groups (or rows of blurry images) shown.
        max_cols: int, default 6. Images per row.

    Returns:
        list of Path: the files written (a sheet with nothing to show is not written).
    """
    written = []
    if groups:
        p = reports / "duplicate_groups.png"
        rows = _group_rows(src, groups, max_rows, max_cols)
        _save(contact_sheet(rows, f"{len(groups)} duplicate groups (first {min(len(groups), max_rows)})"), p)
        written.append(p)
    if conflicts:
        p = reports / "label_conflicts.png"
        rows = _group_rows(src, conflicts, max_rows, max_cols)
        _save(contact_sheet(rows, f"{len(conflicts)} groups with mixed labels (likely label noise)"), p)
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
