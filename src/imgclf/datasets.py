"""`imgclf datasets`: real labelled images without internet, written as ImageFolder PNGs.

- `digits`: scikit-learn's bundled copy of the UCI "Optical Recognition of Handwritten Digits"
  test set — 1,797 grayscale 8x8 images, 10 classes `0`…`9`, pixel values 0…16 (scaled here to
  [0, 255] as `round(v * 255 / 16)`).
- `fashion-mnist`: Zalando's Fashion-MNIST (Xiao et al., 2017, arXiv:1708.07747) — 70,000
  grayscale 28x28 product photos in 10 classes; official split 60,000 train / 10,000 test. Read
  from the idx files of Debian's `dataset-fashion-mnist` package
  (`/usr/share/datasets/fashion-mnist`), else Keras' dataset cache
  (`~/.keras/datasets/fashion-mnist`), else downloaded by `keras.datasets.fashion_mnist`.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclf.errors import DataError, suggest
from imgclf.fsutil import atomic_write_bytes
from imgclf.ui import progress, summary

#: Dataset names accepted by `export_dataset` / `imgclf datasets`.
DATASETS: tuple[str, ...] = ("digits", "fashion-mnist")

#: Fashion-MNIST class names in label order (from the dataset's README), made folder-safe.
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
)

#: Where the idx files are looked for, in order.
FASHION_MNIST_DIRS: tuple[Path, ...] = (
    Path("/usr/share/datasets/fashion-mnist"),
    Path.home() / ".keras" / "datasets" / "fashion-mnist",
)

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass
class ExportSummary:
    """What `export_dataset` wrote."""

    out: Path
    written: int = 0
    existing: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    source: str = ""

    @property
    def total(self) -> int:
        return self.written + self.existing


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an idx file (the MNIST format; gzip-compressed or not) into a NumPy array.

    Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): 2 zero bytes, a type code
    (0x08 = unsigned byte), the number of dimensions, then each dimension as a big-endian
    uint32, then the data.

    Args:
        path: path to an `*-idx1-ubyte[.gz]` (labels) or `*-idx3-ubyte[.gz]` (images) file.

    Returns:
        np.ndarray of dtype uint8: labels `(n,)` or images `(n, rows, cols)` in [0, 255].

    Raises:
        DataError: if the file is missing, truncated, or not an unsigned-byte idx file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read idx file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte idx file", "expected the Fashion-MNIST/MNIST format")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims)


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Returns scikit-learn's digits as `(images uint8 (1797, 8, 8) in [0, 255], labels, class_names)`."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)
    return images, d.target.astype(np.int64), [str(i) for i in range(10)]


def load_fashion_mnist_arrays(
    search_dirs: Sequence[Path] = FASHION_MNIST_DIRS,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Loads Fashion-MNIST's official train and test sets.

    Args:
        search_dirs: folders searched in order for the four idx files, default
            `FASHION_MNIST_DIRS` (Debian's package, then Keras' cache).

    Returns:
        tuple `(sets, source)`: `sets["train"] = (images (60000, 28, 28) uint8, labels (60000,))`,
        `sets["test"]` likewise with 10,000; `source` says where they were read from.

    Raises:
        DataError: if no folder has the files and Keras cannot download them.
    """
    for folder in search_dirs:
        if all((folder / name).is_file() for pair in _IDX_FILES.values() for name in pair):
            sets = {
                subset: (read_idx(folder / img), read_idx(folder / lab).astype(np.int64))
                for subset, (img, lab) in _IDX_FILES.items()
            }
            return sets, str(folder)
    try:
        import keras

        (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # noqa: BLE001 - network errors come in many types (URLError, socket, HTTP)
        raise DataError(
            "Fashion-MNIST not found in "
            + ", ".join(str(d) for d in search_dirs)
            + f" and the download failed ({exc})",
            "on Debian/Ubuntu run `sudo apt-get install dataset-fashion-mnist` (or `make fashion-data`)",
        ) from None
    return {"train": (xtr, ytr.astype(np.int64)), "test": (xte, yte.astype(np.int64))}, "keras download"


def _png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def write_image_folder(
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    prefix: str,
    *,
    limit_per_class: int | None = None,
    description: str = "datasets",
    result: ExportSummary | None = None,
) -> ExportSummary:
    """Writes grayscale images as `out/<class name>/<prefix>_<index>.png`, skipping existing files.

    Args:
        out: output folder.
        images: uint8 array `(n, height, width)` in [0, 255].
        labels: int array `(n,)` of indices into `class_names`.
        class_names: sequence of str, one folder per class.
        prefix: str. File-name prefix (e.g. `"digits"`, `"train"`); the index keeps names unique.
        limit_per_class: int or None. Keep only the first N images of each class.
        description: str. Progress-bar label.
        result: ExportSummary to add to, or None for a new one.

    Returns:
        ExportSummary with counts.
    """
    result = result or ExportSummary(out=out)
    todo: list[tuple[Path, int]] = []
    seen: dict[int, int] = {}
    width = len(str(len(images)))
    for i, lab in enumerate(labels.tolist()):
        if limit_per_class is not None and seen.get(lab, 0) >= limit_per_class:
            continue
        seen[lab] = seen.get(lab, 0) + 1
        name = class_names[lab]
        result.per_class[name] = result.per_class.get(name, 0) + 1
        todo.append((out / name / f"{prefix}_{i:0{width}d}.png", i))
    for name in {class_names[lab] for lab in seen}:
        (out / name).mkdir(parents=True, exist_ok=True)

    def work(item: tuple[Path, int]) -> bool:
        path, i = item
        if path.exists():
            return False
        atomic_write_bytes(path, _png_bytes(images[i]), fsync=False)
        return True

    with progress(description, total=len(todo)) as advance, ThreadPoolExecutor(4) as pool:
        for wrote in pool.map(work, todo, chunksize=64):
            if wrote:
                result.written += 1
            else:
                result.existing += 1
            advance()
    return result


def export_dataset(
    name: str,
    out: str | os.PathLike,
    *,
    official_split: bool = False,
    limit_per_class: int | None = None,
) -> ExportSummary:
    """Writes a bundled dataset as PNG files in ImageFolder layout.

    Args:
        name: str, one of `"digits"`, `"fashion-mnist"`.
        out: path. Output folder (created). Files already there are kept, so a rerun resumes.
        official_split: bool, default False. Fashion-MNIST only: write `out/train/<class>/` and
            `out/test/<class>/` to keep the published 10,000-image test set apart; otherwise all
            70,000 images go to `out/<class>/`.
        limit_per_class: int or None, default None. Keep at most N images per class (and per
            subset with `official_split`), for quick runs.

    Returns:
        ExportSummary: images written, already present, per class, and the data source.

    Raises:
        DataError: unknown `name`, `official_split` with digits, or Fashion-MNIST unavailable.
    """
    out = Path(out)
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}.{suggest(name, DATASETS)}")
    if name == "digits":
        if official_split:
            raise DataError("digits has no official split; drop --official-split")
        images, labels, classes = load_digits_arrays()
        result = write_image_folder(out, images, labels, classes, "digits", limit_per_class=limit_per_class)
        result.source = "scikit-learn load_digits"
    else:
        sets, source = load_fashion_mnist_arrays()
        result = ExportSummary(out=out, source=source)
        for subset, (images, labels) in sets.items():
            dest = out / subset if official_split else out
            write_image_folder(
                dest,
                images,
                labels,
                FASHION_MNIST_CLASSES,
                subset,
                limit_per_class=limit_per_class,
                description=f"datasets: {subset}",
                result=result,
            )
    again = f" ({result.existing} were already there)" if result.existing else ""
    summary(
        f"datasets: {name}: {result.total} images in {len(result.per_class)} classes{again} "
        f"from {result.source} -> {out}"
    )
    return result
