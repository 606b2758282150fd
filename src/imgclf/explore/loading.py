"""Explore's view of a folder: files and labels, batches of model input, and skipped files.

Built on `imgclf.inputs` (the one lister and the one loader): every image goes through
`load_image` with an `InputSpec` (a run's own, or a center crop at a given size), so explore
sees images exactly as training and predict do. Files that cannot be opened are skipped and
recorded as `Reject(path, reason, detail)`.
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
from imgclf.images import open_image
from imgclf.inputs import InputItem, InputSpec, iter_batches, list_images
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

    Built on the one lister, `imgclf.inputs.list_images`: labels follow the ImageFolder
    convention (`root/<class>/<file>`, or the second folder of `root/{train,val,test}/<class>/`)
    when every file sits in a class folder; anything else (loose files, mixed depths) has no
    labels and every file is listed. Names starting with `_` or `.` are skipped.

    Args:
        root: path. A folder of images.

    Returns:
        tuple `(files, labels)`: sorted `Path`s under `root`, and a list of str of the same
        length, or None.

    Raises:
        DataError: if `root` is not a folder or holds no file.
    """
    listing = list_images(root)
    if listing.labelled:
        return listing.paths, [e.label for e in listing.entries if e.label is not None]  # every one has a label
    files = sorted(listing.paths + listing.strays)
    if not files:
        raise DataError(f"no images found in {root}", "put image files in the folder (or in class sub-folders)")
    return files, None


def as_spec(spec: InputSpec | int) -> InputSpec:
    """`spec` itself, or a center-crop `InputSpec` of that many pixels."""
    return spec if isinstance(spec, InputSpec) else InputSpec(size=int(spec))


def load_batches(
    files: Sequence[Path],
    spec: InputSpec | int,
    batch_size: int,
    rejects: list[Reject],
    *,
    root: Path,
    description: str = "loading",
    workers: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields batches of model input from `files`, through the one loader (`inputs.iter_batches`).

    Args:
        files: sequence of Path. The files to load, in order.
        spec: InputSpec or int. How files become input (a run's spec), or a side in pixels
            (center crop).
        batch_size: int. Files per batch (a batch can be smaller when files are rejected).
        rejects: list of Reject. Unreadable files are appended here (paths relative to `root`).
        root: Path. Folder the stored paths are relative to.
        description: str. Progress-bar label.
        workers: int or None. Decoding threads; None = `imgclf.parallel.default_workers()`.

    Yields:
        tuple `(images, indices)`: uint8 array `(batch, size, size, 3)` with values in
        [0, 255], and int64 array `(batch,)` of the positions of those images in `files`.
    """
    spec = as_spec(spec)
    items = [InputItem(name=str(f), path=f) for f in files]
    kept = 0
    with progress(description, total=len(files)) as advance:
        for batch in iter_batches(items, spec, batch_size=batch_size, workers=workers):
            for i, err in batch.errors.items():
                rejects.append(Reject(str(files[batch.start + i].relative_to(root)), err.reason, err.detail))
            kept += len(batch.ok)
            advance(len(batch.items), status=f"kept {kept}  skipped {len(rejects)}")
            if batch.ok:
                yield batch.images, np.asarray([batch.start + i for i in batch.ok], dtype=np.int64)


def load_all(
    files: Sequence[Path], spec: InputSpec | int, *, root: Path, batch_size: int = 256, description: str = "loading"
) -> tuple[np.ndarray, np.ndarray, list[Reject]]:
    """Loads every readable file into one array (see `load_batches`).

    Returns:
        tuple `(images, indices, rejects)`: uint8 `(n, size, size, 3)` in [0, 255], int64
        positions in `files`, and the skipped files.
    """
    spec = as_spec(spec)
    rejects: list[Reject] = []
    arrays, idx = [], []
    for x, i in load_batches(files, spec, batch_size, rejects, root=root, description=description):
        arrays.append(x)
        idx.append(i)
    if not arrays:
        return np.zeros((0, *spec.shape), np.uint8), np.zeros((0,), np.int64), rejects
    return np.concatenate(arrays), np.concatenate(idx), rejects


def probe_size(files: Sequence[Path], lo: int = 8, hi: int = 64) -> int:
    """Returns the shorter side of the first readable file, clipped to `[lo, hi]` pixels.

    Used as the default size of `raw` embeddings, so small images (8x8 digits, 28x28
    Fashion-MNIST) keep their own resolution and large photos stay affordable.

    Raises:
        DataError: if no file among `files` can be opened.
    """
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
