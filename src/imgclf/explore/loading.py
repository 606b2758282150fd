"""Listing a folder of images, reading ImageFolder labels, and loading images in batches.

Every image goes through `imgclf.prepare.load_for_model` (safe open, shortest side resized to
`size`, center crop), so explore sees images exactly as training and predict do. Files that
cannot be opened are skipped and recorded as `Reject(path, reason, detail)`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.errors import DataError, ImageError
from imgclf.fsutil import atomic_write_text
from imgclf.images import list_images, scan_image_folder
from imgclf.parallel import threaded_batches
from imgclf.prepare import load_for_model
from imgclf.ui import progress, warn


@dataclass(frozen=True)
class Reject:
    """A file that was skipped: `path` (relative to the folder), `reason` (see
    `imgclf.images`, e.g. `"not_an_image"`, `"truncated"`), human-readable `detail`."""

    path: str
    reason: str
    detail: str = ""


def scan_folder(root: str | os.PathLike) -> tuple[list[Path], list[str] | None]:
    """Lists the candidate image files of `root` and their class labels, if it has any.

    Labels follow the ImageFolder convention: when every file is `root/<class>/<file>`, its
    label is `<class>`; in a pre-split layout (`root/{train,val,test}/<class>/<file>`) it is the
    second folder. Anything else (loose files, mixed depths) has no labels. Names starting with
    `_` or `.` are skipped (`imgclf.images.list_images`).

    Args:
        root: path. A folder of images.

    Returns:
        tuple `(files, labels)`: sorted absolute-or-relative `Path`s as listed under `root`, and
        a list of str of the same length, or None.

    Raises:
        DataError: if `root` is not a folder or holds no file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder not found: {root}", "check the path")
    files = list_images(root)
    if not files:
        raise DataError(f"no images found in {root}", "put image files in the folder (or in class sub-folders)")
    # Labelled when every file sits in a class folder (both layouts, see scan_image_folder).
    labelled = scan_image_folder(root)
    labels = [label for _, label, _ in labelled] if len(labelled) == len(files) else None
    return files, labels


def _load_one(path: Path, size: int) -> tuple[np.ndarray | None, ImageError | None]:
    try:
        return load_for_model(path, size), None
    except ImageError as exc:
        return None, exc


def iter_batches(
    files: Sequence[Path],
    size: int,
    batch_size: int,
    rejects: list[Reject],
    *,
    root: Path,
    description: str = "loading",
    workers: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields batches of prepared images; a thread pool decodes one batch ahead.

    Args:
        files: sequence of Path. The files to load, in order.
        size: int. Side in pixels of the square images (shortest-side resize + center crop).
        batch_size: int. Files per batch (a batch can be smaller when files are rejected).
        rejects: list of Reject. Unreadable files are appended here (paths relative to `root`).
        root: Path. Folder the stored paths are relative to.
        description: str. Progress-bar label.
        workers: int or None. Decoding threads; None = `imgclf.parallel.default_workers()`.

    Yields:
        tuple `(images, indices)`: uint8 array `(batch, size, size, 3)` with values in
        [0, 255], and int64 array `(batch,)` of the positions of those images in `files`.
    """
    with progress(description, total=len(files)) as advance:
        for b, (chunk, loaded) in enumerate(threaded_batches(lambda p: _load_one(p, size), files, batch_size, workers)):
            start = b * batch_size
            arrays, idx = [], []
            for i, (arr, err) in enumerate(loaded):
                if err is None:
                    arrays.append(arr)
                    idx.append(start + i)
                else:
                    rejects.append(Reject(str(chunk[i].relative_to(root)), err.reason, err.detail))
            advance(len(chunk), status=f"kept {start + len(chunk) - len(rejects)}  skipped {len(rejects)}")
            if arrays:
                yield np.stack(arrays), np.asarray(idx, dtype=np.int64)


def load_all(
    files: Sequence[Path], size: int, *, root: Path, batch_size: int = 256, description: str = "loading"
) -> tuple[np.ndarray, np.ndarray, list[Reject]]:
    """Loads every readable file into one array (see `iter_batches`).

    Returns:
        tuple `(images, indices, rejects)`: uint8 `(n, size, size, 3)` in [0, 255], int64
        positions in `files`, and the skipped files.
    """
    rejects: list[Reject] = []
    arrays, idx = [], []
    for x, i in iter_batches(files, size, batch_size, rejects, root=root, description=description):
        arrays.append(x)
        idx.append(i)
    if not arrays:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0,), np.int64), rejects
    return np.concatenate(arrays), np.concatenate(idx), rejects


def probe_size(files: Sequence[Path], lo: int = 8, hi: int = 64) -> int:
    """Returns the shorter side of the first readable file, clipped to `[lo, hi]` pixels.

    Used as the default size of `raw` embeddings, so small images (8x8 digits, 28x28
    Fashion-MNIST) keep their own resolution and large photos stay affordable.

    Raises:
        DataError: if no file among `files` can be opened.
    """
    from imgclf.images import open_image

    for f in files:
        try:
            img = open_image(f)
        except ImageError:
            continue
        return int(min(hi, max(lo, min(img.size))))
    raise DataError(f"none of the {len(files)} files can be opened as an image", "check the folder contents")


def report_rejects(rejects: list[Reject], csv_path: str | os.PathLike | None = None, shown: int = 10) -> None:
    """Warns about skipped files (the first `shown`, then a count) and optionally writes all
    of them to a CSV (`path,reason,detail`)."""
    for r in rejects[:shown]:
        warn(f"skipped {r.path}: {r.reason}" + (f" ({r.detail})" if r.detail else ""))
    if len(rejects) > shown:
        warn(f"... and {len(rejects) - shown} more skipped files")
    if csv_path is not None and rejects:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["path", "reason", "detail"])
        w.writerows((r.path, r.reason, r.detail) for r in rejects)
        atomic_write_text(csv_path, buf.getvalue())


def reasons(rejects: list[Reject]) -> str:
    """Returns e.g. `"2 not_an_image, 1 truncated"`, or `"none"`."""
    counts: dict[str, int] = {}
    for r in rejects:
        counts[r.reason] = counts.get(r.reason, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
