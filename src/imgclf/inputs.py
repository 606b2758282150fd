"""The one path from an image file to model input, the one batch iterator, the one folder lister.

Every command that feeds images to a model -- `train` (training and validation), `evaluate`,
`predict`, `serve`, `explore`, `explain`, `export`'s parity check, `audit` -- turns a file (or
downloaded / uploaded bytes) into model input with `load_image(source, spec)`. `spec` is the
`InputSpec` recorded in the run directory (`run.json`'s `input_spec`), resolved once, when the
run was trained (timm's `resolve_data_config` rule), so a model is never fed through a pipeline
it was not trained on.

`load_image` = `imgclf.images.open_image` (the safe opener: allow-listed formats, bomb check,
full decode, EXIF orientation, every mode to 8-bit RGB -- alpha composited onto
`spec.background`, 16-bit scaled, CMYK converted, first frame of animations) followed by
`resize_image` (the resize policy: `center_crop`, `pad` or `squish`).

`iter_batches` is the one batch iterator. Its default source is a thread pool decoding one batch
ahead (`thread_batches`: the path that never imports TensorFlow -- ONNX / TFLite models, one
photo); a caller that has TensorFlow loaded anyway passes `source=imgclf.data.tf_batches`, the
same `load_image` inside a `tf.data` pipeline. Every source yields `Batch`es with per-file
errors, in input order (the `BatchSource` contract). This module never imports `imgclf.data`:
the TensorFlow path sits above it.

The loader-error rule: an unreadable input is an `ImageError` -- reported in its batch's
`errors` (a reject), and the others go on. Anything else `load_item` meets is a bug, raised as a
`LoaderError` naming the input and the exception, which stops the iterator; its traceback is
saved to a log file named in the error's hint (docs/architecture.md). `BaseException`s
(`KeyboardInterrupt`) are never caught.

`list_images` is the one lister of image folders: a class tree `<root>/<class>/<file>`, a
pre-split tree `<root>/{train,val,test}/<class>/<file>`, or a loose folder. A name starting with
`_` or `.` is never a class, a subset, or an image (docs/architecture.md: stage reports and
set-aside files live there). `list_image_columns` lists a class tree the same way as columns
(`ImageColumns`, about 30 bytes a file), for a driver that lists millions of files (`clean`).

This module is on `imgclf predict`'s cold-start path: it imports no TensorFlow.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Literal, Protocol

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from imgclf.errors import DataError, ImageError, ImgclfError, LoaderError
from imgclf.images import DEFAULT_BACKGROUND, DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, open_image
from imgclf.parallel import default_workers, threaded_batches

#: Resize policies an `InputSpec` can name (see `resize_image`).
RESIZE_POLICIES: tuple[str, ...] = ("center_crop", "pad", "squish")

#: Interpolations an `InputSpec` can name; "auto" = Lanczos when shrinking, bicubic when enlarging.
INTERPOLATIONS: tuple[str, ...] = ("auto", "lanczos", "bicubic", "bilinear", "nearest")

#: Subset folder names of a pre-split layout (`<root>/train/<class>/...`).
SUBSETS: tuple[str, ...] = ("train", "val", "test")

_Channel = Annotated[int, Field(ge=0, le=255)]

_RESAMPLE = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


# ------------------------------------------------------------------------- the specification
class InputSpec(BaseModel):
    """How an image file becomes model input; recorded in `run.json` and export sidecars.

    The last five fields describe what `imgclf.images.open_image` does; they are recorded so a
    run says exactly how it saw its images, and they cannot be set to anything else today.

    Attributes:
        size: int >= 1. Side of the square input in pixels: the model takes
            `(batch, size, size, 3)`.
        resize: str, default "center_crop". One of `RESIZE_POLICIES`: `"center_crop"` (shortest
            side to `size`, then the center square; Krizhevsky et al. 2012 §2), `"pad"` (longest
            side to `size`, then centered on a `pad_color` square: letterbox), `"squish"` (both
            sides to `size`, aspect ratio not kept).
        interpolation: str, default "auto". One of `INTERPOLATIONS`; "auto" = Lanczos when
            shrinking (with Pillow's `reducing_gap` box pre-reduction below half size), bicubic
            when enlarging.
        pad_color: tuple of 3 int in [0, 255], default black. Fill of the `pad` policy.
        background: tuple of 3 int in [0, 255], default white. What transparent pixels are
            composited onto.
        jpeg_draft: bool, default True. Decode JPEGs at the smallest DCT scale still at least
            `size` on both sides (`Image.draft`), before resizing.
        exif_orientation, high_bit_depth, cmyk, animated, pixels: fixed descriptions of the
            opener's rules (EXIF orientation applied first; 16-bit / 32-bit images scaled to 8
            bits, not clipped; CMYK / YCbCr converted to RGB; the first frame of animations;
            output uint8 RGB in [0, 255]).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    size: int = Field(ge=1)
    resize: Literal["center_crop", "pad", "squish"] = "center_crop"
    interpolation: Literal["auto", "lanczos", "bicubic", "bilinear", "nearest"] = "auto"
    pad_color: tuple[_Channel, _Channel, _Channel] = (0, 0, 0)
    background: tuple[_Channel, _Channel, _Channel] = DEFAULT_BACKGROUND
    jpeg_draft: bool = True
    exif_orientation: Literal["applied"] = "applied"
    high_bit_depth: Literal["scaled_to_8_bit"] = "scaled_to_8_bit"
    cmyk: Literal["converted_to_rgb"] = "converted_to_rgb"
    animated: Literal["first_frame"] = "first_frame"
    pixels: Literal["uint8 RGB in [0, 255]"] = "uint8 RGB in [0, 255]"

    @property
    def shape(self) -> tuple[int, int, int]:
        """Model input shape of one image, `(size, size, 3)`."""
        return (self.size, self.size, 3)

    def describe(self) -> str:
        """One line for summaries, e.g. `"32x32 center_crop (auto interpolation)"`."""
        return f"{self.size}x{self.size} {self.resize} ({self.interpolation} interpolation)"


def _resample(spec: InputSpec, scale: float) -> Image.Resampling:
    if spec.interpolation == "auto":
        return Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    return _RESAMPLE[spec.interpolation]


def _resized(img: Image.Image, size: tuple[int, int], spec: InputSpec) -> Image.Image:
    if size == img.size:
        return img
    scale = min(size[0] / img.size[0], size[1] / img.size[1])
    # reducing_gap: a fast box reduction before the filter, for big shrinks (Pillow >= 7).
    gap = 3.0 if scale < 0.5 and spec.interpolation in ("auto", "lanczos", "bicubic") else None
    return img.resize(size, resample=_resample(spec, scale), reducing_gap=gap)


def resize_image(img: Image.Image, spec: InputSpec) -> Image.Image:
    """Applies `spec`'s resize policy to a decoded RGB image.

    Args:
        img: PIL.Image.Image. Any size; RGB expected (`imgclf.images.open_image` output).
        spec: InputSpec. `size`, `resize`, `interpolation`, `pad_color`.

    Returns:
        PIL.Image.Image of size `(spec.size, spec.size)`, same mode as `img`. `center_crop`:
        when the side to crop has an odd excess, the extra pixel comes off the right / bottom.
        `pad`: the image is centered, an odd leftover pixel of padding goes right / bottom.
    """
    s = spec.size
    w, h = img.size
    if spec.resize == "squish":
        return _resized(img, (s, s), spec)
    if spec.resize == "pad":
        scale = s / max(w, h)
        new = (max(1, min(s, round(w * scale))), max(1, min(s, round(h * scale))))
        img = _resized(img, new, spec)
        if img.size == (s, s):
            return img
        canvas = Image.new(img.mode, (s, s), tuple(spec.pad_color) if img.mode == "RGB" else 0)
        canvas.paste(img, ((s - new[0]) // 2, (s - new[1]) // 2))
        return canvas
    scale = s / min(w, h)
    new_w, new_h = max(s, round(w * scale)), max(s, round(h * scale))
    img = _resized(img, (new_w, new_h), spec)
    left, top = (new_w - s) // 2, (new_h - s) // 2
    return img.crop((left, top, left + s, top + s)) if (new_w, new_h) != (s, s) else img


def load_image(
    source: str | os.PathLike | bytes,
    spec: InputSpec,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Turns one image file or encoded bytes into model input, the one way imgclf does it.

    Args:
        source: path or bytes. The encoded image (JPEG, PNG, WebP, GIF, BMP, TIFF).
        spec: InputSpec. How (from the run directory, or `InputSpec(size=...)`).
        name: str or None. Name used in errors when `source` is bytes (a URL, an upload).
        max_pixels: int, default `imgclf.images.DEFAULT_MAX_PIXELS`. Larger images are refused
            as decompression bombs before decoding.

    Returns:
        np.ndarray of shape `(spec.size, spec.size, 3)`, dtype uint8, RGB values in [0, 255].

    Raises:
        ImageError: if the image cannot be opened safely; `reason` is one of
            `imgclf.images.OPEN_REASONS`.
    """
    img = open_for_spec(source, spec, name=name, max_pixels=max_pixels)
    return np.asarray(resize_image(img, spec), dtype=np.uint8)


def open_for_spec(
    source: str | os.PathLike | bytes,
    spec: InputSpec,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """The decode step of `load_image` alone: `load_image` is `resize_image(open_for_spec(...))`.

    For a caller that needs the decoded picture too (`prepare` signs the source picture for
    near-duplicate search from the same decode).

    Args:
        source, spec, name, max_pixels: as `load_image`.

    Returns:
        PIL.Image.Image, RGB, EXIF-oriented, transparency composited onto `spec.background`; a
        JPEG may be a draft decode of at least `spec.size` px (`spec.jpeg_draft`), with the full
        `(width, height)` in `img.info[imgclf.images.ORIGINAL_SIZE_KEY]`.

    Raises:
        ImageError: as `load_image`.
    """
    draft = (spec.size, spec.size) if spec.jpeg_draft else None
    return open_image(source, draft=draft, name=name, background=spec.background, max_pixels=max_pixels)


# ------------------------------------------------------------------------------- the lister
def _walk(root: Path) -> list[Path]:
    """Every regular file below `root`, sorted, skipping `_` / `.`-prefixed names at any level."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
        for fn in sorted(filenames):
            if not fn.startswith(("_", ".")):
                out.append(Path(dirpath) / fn)
    return out


def _subdirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def class_folders(root: str | os.PathLike) -> list[str]:
    """Returns the class names of a class tree: sorted sub-folders not starting with `_` / `.`.

    Args:
        root: path. A stage folder `<root>/<class>/<file>`.

    Returns:
        list of str.

    Raises:
        DataError: if `root` does not exist or is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder not found: {root}", "check the path, or run the previous stage first")
    return [p.name for p in _subdirs(root)]


def is_presplit(root: str | os.PathLike) -> bool:
    """Tells whether `root` uses the pre-split layout `<root>/{train,val,test}/<class>/<file>`.

    Args:
        root: path. A stage folder.

    Returns:
        bool: True when every sub-folder not starting with `_` or `.` is one of `SUBSETS`, there
        is at least one, and each holds sub-folders (classes) rather than only files -- a flat
        tree whose classes happen to be called `train` and `test` is not pre-split.
    """
    root = Path(root)
    if not root.is_dir():
        return False
    subs = _subdirs(root)
    if not subs or any(p.name not in SUBSETS for p in subs):
        return False
    return all(_subdirs(p) for p in subs)


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One candidate image file of a listing.

    Attributes:
        path: Path. The file, under the listing's root.
        rel: str. Path relative to the root, "/"-separated.
        label: str or None. Its class folder name; None in a loose folder.
        subset: str or None. `"train"`, `"val"` or `"test"` in a pre-split tree, else None.
    """

    path: Path
    rel: str
    label: str | None = None
    subset: str | None = None


@dataclass
class ImageListing:
    """The candidate image files of one folder (see `list_images`).

    Attributes:
        root: Path. The folder listed.
        layout: str. `"classes"` (`<root>/<class>/<file>`), `"presplit"`
            (`<root>/<subset>/<class>/<file>`) or `"loose"` (no class folders).
        entries: list of ImageEntry, sorted by path. In a class tree only files inside a class
            folder; in a loose folder every file.
        strays: list of Path. Files of a class tree or pre-split tree outside any class folder.
        class_names: list of str. Label i = `class_names[i]`; empty for a loose folder.
    """

    root: Path
    layout: str
    entries: list[ImageEntry]
    strays: list[Path] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def paths(self) -> list[Path]:
        """The files, in listing order."""
        return [e.path for e in self.entries]

    @property
    def labels(self) -> np.ndarray:
        """int32 `(n,)`: index into `class_names` of each entry; -1 when it has no class."""
        index = {c: i for i, c in enumerate(self.class_names)}
        return np.asarray([index.get(e.label, -1) if e.label is not None else -1 for e in self.entries], np.int32)

    @property
    def labelled(self) -> bool:
        """True when every file sits in a class folder (and there is at least one)."""
        return bool(self.entries) and self.layout != "loose" and not self.strays

    def counts(self) -> np.ndarray:
        """Images per class, int64 `(len(class_names),)`."""
        labels = self.labels
        return np.bincount(labels[labels >= 0], minlength=len(self.class_names))

    def items(self) -> list[InputItem]:
        """The entries as `InputItem`s for `iter_batches` (name = path, label = class index)."""
        labels = self.labels
        return [
            InputItem(name=str(e.path), path=e.path, label=int(y) if y >= 0 else None)
            for e, y in zip(self.entries, labels)
        ]


def list_images(
    root: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    extensions: frozenset[str] | None = None,
    layout: Literal["auto", "classes", "loose"] = "auto",
) -> ImageListing:
    """Lists the candidate image files of a folder: a class tree, a pre-split tree or loose files.

    The one lister of imgclf. The layout is detected: a pre-split tree (`is_presplit`), else a
    class tree when `root` has sub-folders, else a loose folder. Files in sub-folders of a class
    folder belong to that class (as in `keras.utils.image_dataset_from_directory`). Names
    starting with `_` or `.` are skipped at every level. The extension is not checked unless
    `extensions` is given: content decides what is an image (`imgclf.images.open_image`).

    Args:
        root: path. The folder.
        class_names: sequence of str or None, default None (the folder's own classes, sorted).
            Given (a model's classes), labels index into it; a class folder missing here is
            allowed, a class folder not in it is an error.
        extensions: frozenset of str or None, default None. Keep only files with these
            lower-case suffixes (e.g. `imgclf.images.IMAGE_EXTENSIONS`).
        layout: str, default "auto". `"auto"` detects; `"classes"` reads a class tree (or a
            pre-split tree) even when there are no class folders (every file is then a stray);
            `"loose"` lists every file with no labels.

    Returns:
        ImageListing.

    Raises:
        DataError: if `root` is not a folder, or holds a class folder that is not in
            `class_names` (naming it and the known classes).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder not found: {root}", "check the path, or run the previous stage first")
    files = _walk(root)
    if extensions is not None:
        files = [f for f in files if f.suffix.lower() in extensions]
    presplit = layout != "loose" and is_presplit(root)
    has_classes = layout == "classes" or (layout == "auto" and (presplit or bool(_subdirs(root))))
    if not has_classes:
        loose = [ImageEntry(f, f.relative_to(root).as_posix()) for f in files]
        return ImageListing(root, "loose", loose, [], list(class_names or []))
    entries: list[ImageEntry] = []
    strays: list[Path] = []
    depth = 3 if presplit else 2
    for f in files:
        parts = f.relative_to(root).parts
        if len(parts) < depth:
            strays.append(f)
            continue
        label = parts[1] if presplit else parts[0]
        entries.append(ImageEntry(f, "/".join(parts), label, parts[0] if presplit else None))
    found = sorted({e.label for e in entries if e.label is not None} | _class_dirs(root, presplit))
    if class_names is None:
        names = found
    else:
        names = list(class_names)
        extra = sorted(set(found) - set(names))
        if extra:
            raise DataError(
                f"{root} holds class folder(s) {extra} that are not classes of this model",
                f"the model's classes are {names}; use data with the same classes",
            )
    return ImageListing(root, "presplit" if presplit else "classes", entries, strays, names)


def _class_dirs(root: Path, presplit: bool) -> set[str]:
    if presplit:
        return {c.name for s in _subdirs(root) for c in _subdirs(s)}
    return {c.name for c in _subdirs(root)}


@dataclass(eq=False)
class ImageColumns(Sequence[ImageEntry]):
    """The files of a class tree as columns: what `list_images(root, layout="classes")` lists,
    in its order, at about 30 bytes a file (plus the name) instead of an `ImageEntry` each.

    A sequence of `ImageEntry`, each made when it is asked for (`columns[k]`), so a map over
    millions of files makes its items a block at a time. Made by `list_image_columns` (or
    `ImageColumns.from_rels`).

    Args:
        root: Path. The folder listed.
        folders: tuple of str. The folders holding files, relative to `root` ("/"-separated,
            "" for `root` itself).
        labels: tuple of str. The class names, in order of first appearance.
        subsets: tuple of str. The subset names (`"train"`, `"val"`, `"test"`) of a pre-split tree.
        folder: np.ndarray of int32, shape `(n,)`. Each file's folder (index into `folders`).
        label: np.ndarray of int32, shape `(n,)`. Each file's class (index into `labels`, -1: none).
        subset: np.ndarray of int8, shape `(n,)`. Each file's subset (index into `subsets`, -1: none).
        names: bytes. The file names, UTF-8 (`surrogateescape`), one after the other.
        starts: np.ndarray of int64, shape `(n + 1,)`. Where each name starts in `names` (and ends).
        strays: list of Path. Files outside any class folder.
    """

    root: Path
    folders: tuple[str, ...]
    labels: tuple[str, ...]
    subsets: tuple[str, ...]
    folder: np.ndarray
    label: np.ndarray
    subset: np.ndarray
    names: bytes
    starts: np.ndarray
    strays: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, k: int) -> ImageEntry:  # type: ignore[override]
        if not -len(self) <= k < len(self):
            raise IndexError(k)
        rel = self.rel(k)
        return ImageEntry(self.root / rel, rel, self.label_of(k), self.subset_of(k))

    def name(self, k: int) -> str:
        """The file name of file `k`."""
        return self.names[self.starts[k] : self.starts[k + 1]].decode("utf-8", "surrogateescape")

    def rel(self, k: int) -> str:
        """The path of file `k` relative to `root`, "/"-separated (`ImageEntry.rel`)."""
        d = self.folders[self.folder[k]]
        return f"{d}/{self.name(k)}" if d else self.name(k)

    def label_of(self, k: int) -> str | None:
        """The class of file `k` (None outside a class)."""
        c = int(self.label[k])
        return self.labels[c] if c >= 0 else None

    def subset_of(self, k: int) -> str | None:
        """The subset of file `k` in a pre-split tree, else None."""
        c = int(self.subset[k])
        return self.subsets[c] if c >= 0 else None

    def rel_lengths(self) -> np.ndarray:
        """The length in characters of every `rel(k)` (int64, shape `(n,)`)."""
        folder_len = np.array([len(d) + 1 if d else 0 for d in self.folders] or [0], np.int64)
        if self.names.isascii():
            return np.diff(self.starts) + folder_len[self.folder]
        return np.array([len(self.rel(k)) for k in range(len(self))], np.int64)

    @classmethod
    def from_rels(cls, root: str | os.PathLike, files: Iterable[tuple[str, str | None, str | None]]) -> ImageColumns:
        """Columns of given files, in the order given.

        Args:
            root: path. The folder the paths are relative to.
            files: iterable of `(rel, label, subset)`: "/"-separated path, class (or None),
                subset (or None).

        Returns:
            ImageColumns.
        """
        build = _ColumnsBuilder()
        for rel, label, subset in files:
            folder, _, name = rel.rpartition("/")
            build.add(folder, label, subset, [name])
        return build.done(Path(root), [])


class _ColumnsBuilder:
    """Appends files folder by folder (`ImageColumns`' columns, growing)."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str | None, int]] = {"folder": {}, "label": {None: -1}, "subset": {None: -1}}
        self.folder, self.label, self.subset = array("i"), array("i"), array("b")
        self.names, self.starts = bytearray(), array("q", [0])

    def add(self, folder: str, label: str | None, subset: str | None, names: Sequence[str]) -> None:
        """Adds the files `names` of one folder (relative to the root), all of one class and subset."""
        codes = [
            self.codes[k].setdefault(v, len(self.codes[k]) - (k != "folder"))
            for k, v in (("folder", folder), ("label", label), ("subset", subset))
        ]
        for name in names:
            self.names += name.encode("utf-8", "surrogateescape")
            self.starts.append(len(self.names))
        self.folder.extend([codes[0]] * len(names))
        self.label.extend([codes[1]] * len(names))
        self.subset.extend([codes[2]] * len(names))

    def done(self, root: Path, strays: list[Path]) -> ImageColumns:
        """The columns made so far."""
        return ImageColumns(
            root,
            tuple(str(k) for k in self.codes["folder"]),
            tuple(str(k) for k in self.codes["label"] if k is not None),
            tuple(str(k) for k in self.codes["subset"] if k is not None),
            np.frombuffer(self.folder, np.int32) if self.folder else np.zeros(0, np.int32),
            np.frombuffer(self.label, np.int32) if self.label else np.zeros(0, np.int32),
            np.frombuffer(self.subset, np.int8) if self.subset else np.zeros(0, np.int8),
            bytes(self.names),
            np.frombuffer(self.starts, np.int64),
            strays,
        )


def list_image_columns(root: str | os.PathLike) -> ImageColumns:
    """`list_images(root, layout="classes")` as columns (`ImageColumns`), for millions of files.

    The same files, labels, subsets and strays in the same order as `list_images`, without an
    object per file: the folder is walked one folder at a time.

    Args:
        root: path. A class tree `<root>/<class>/<file>` or a pre-split tree.

    Returns:
        ImageColumns.

    Raises:
        DataError: if `root` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder not found: {root}", "check the path, or run the previous stage first")
    presplit = is_presplit(root)
    depth = 3 if presplit else 2
    build, strays = _ColumnsBuilder(), []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
        names = [fn for fn in sorted(filenames) if not fn.startswith(("_", "."))]
        parts = Path(dirpath).relative_to(root).parts
        if len(parts) + 1 < depth:
            strays += [Path(dirpath) / fn for fn in names]
        elif names:
            label = parts[1] if presplit else parts[0]
            build.add("/".join(parts), label, parts[0] if presplit else None, names)
    return build.done(root, strays)


def infer_image_size(listing: ImageListing, spec_hint: str = "") -> int:
    """The side in pixels of the first readable image of `listing` (what `prepare` made square).

    Args:
        listing: ImageListing. E.g. a training split.
        spec_hint: str. Appended to the error, e.g. how to choose a size explicitly.

    Returns:
        int: the side in pixels (after EXIF orientation).

    Raises:
        DataError: no readable image, or the first one is not square.
    """
    for e in listing.entries:
        try:
            img = open_image(e.path, draft=None)
        except ImageError:
            continue
        w, h = img.size
        if w != h:
            raise DataError(
                f"{e.path} is {w}x{h} pixels, not square, so the input size is not obvious",
                spec_hint or "run `imgclf prepare --size N` before splitting, or pass --image-size",
            )
        return w
    raise DataError(f"{listing.root} holds no readable image", "run `imgclf split` first, or check the path")


# --------------------------------------------------------------------------- the iterator
@dataclass
class InputItem:
    """One image to load: a file, a URL or bytes, named as the user named it.

    Attributes:
        name: str. The path as given, the URL, or an upload's file name (shown in results).
        path: Path or None. A local file.
        url: str or None. An http(s) URL (loaded through the `fetch` given to `iter_batches`).
        data: bytes or None. The encoded image itself (an upload).
        label: int or None. Index into the class names, for labelled listings.
        error: str or None. Set when the input cannot even be listed (a missing path); it is
            then reported as an `"unreadable"` ImageError.
    """

    name: str
    path: Path | None = None
    url: str | None = None
    data: bytes | None = None
    label: int | None = None
    error: str | None = None


#: Downloads a URL and returns its bytes (e.g. the scraper's safe downloader).
Fetch = Callable[[str], bytes]


def load_item(item: InputItem, spec: InputSpec, fetch: Fetch | None = None) -> np.ndarray | ImageError:
    """Loads one `InputItem` with `load_image`, returning the error instead of raising it.

    Args:
        item: InputItem.
        spec: InputSpec.
        fetch: callable `url -> bytes` or None. Needed for URL items (else they fail with
            reason `"download_failed"`). It raises an `ImageError` (or another `ImgclfError`, or
            an `OSError`) for a URL it cannot download; anything else it raises is a bug.

    Returns:
        np.ndarray `(size, size, 3)` uint8, or the `ImageError` saying why it failed (`reason`
        one of `imgclf.images.OPEN_REASONS`, `"download_failed"`, or the downloader's own).

    Raises:
        LoaderError: for a bug -- any exception other than an unreadable image or a failed
            download -- naming `item.name` and the exception (its `__cause__`). A
            `BaseException` such as `KeyboardInterrupt` passes through untouched.
    """
    try:
        return _load(item, spec, fetch)
    except ImageError as exc:
        return exc
    except LoaderError:
        raise
    except ImgclfError as exc:
        return ImageError(item.name, "unreadable", exc.message)
    except Exception as exc:  # not a bad image: a bug, which stops the caller
        raise LoaderError(item.name, exc) from exc


def _load(item: InputItem, spec: InputSpec, fetch: Fetch | None) -> np.ndarray:
    """`load_item` raising: `ImageError` for an input that cannot be loaded, anything else for a bug."""
    if item.error:
        raise ImageError(item.name, "unreadable", item.error)
    if item.data is not None:
        return load_image(item.data, spec, name=item.name)
    if item.url is not None:
        return load_image(_download(item.url, fetch), spec, name=item.url)
    if item.path is None:
        raise ImageError(item.name, "unreadable", "no path, URL or data given")
    return load_image(item.path, spec, name=item.name)


def _download(url: str, fetch: Fetch | None) -> bytes:
    """`fetch(url)`, a failed download (an `ImgclfError` or `OSError`) turned into an `ImageError`."""
    if fetch is None:
        raise ImageError(url, "download_failed", "URL inputs are not enabled here")
    try:
        return fetch(url)
    except ImageError:
        raise
    except (ImgclfError, OSError) as exc:  # one bad URL must not stop the others
        raise ImageError(url, "download_failed", f"{getattr(exc, 'message', None) or exc}") from None


@dataclass
class Batch:
    """One batch of `iter_batches`.

    Attributes:
        items: list of InputItem. The inputs of this batch, in order.
        start: int. Position of `items[0]` among all inputs.
        images: np.ndarray `(n_ok, size, size, 3)` uint8 in [0, 255]: the inputs that loaded.
        ok: list of int. Positions within `items` of the rows of `images`, ascending.
        errors: dict int -> ImageError. Positions within `items` that failed, and why.
    """

    items: list[InputItem]
    start: int
    images: np.ndarray
    ok: list[int]
    errors: dict[int, ImageError]

    @classmethod
    def of(
        cls, items: list[InputItem], start: int, loaded: Sequence[np.ndarray | ImageError], spec: InputSpec
    ) -> Batch:
        """Assembles a batch from what `load_item` gave for each of `items`.

        Args:
            items: list of InputItem. The inputs of the batch, in order.
            start: int. Position of `items[0]` among all inputs.
            loaded: sequence, one per item: a uint8 `(size, size, 3)` array or an `ImageError`.
            spec: InputSpec. Gives the shape of an empty `images`.

        Returns:
            Batch.
        """
        ok = [i for i, a in enumerate(loaded) if isinstance(a, np.ndarray)]
        errors = {i: a for i, a in enumerate(loaded) if isinstance(a, ImageError)}
        images = np.stack([np.asarray(loaded[i]) for i in ok]) if ok else np.zeros((0, *spec.shape), np.uint8)
        return cls(items, start, images, ok, errors)

    @property
    def labels(self) -> np.ndarray:
        """int64 `(n_ok,)`: the `label` of each loaded item (-1 where it has none)."""
        return np.asarray([-1 if self.items[i].label is None else self.items[i].label for i in self.ok], np.int64)


class BatchSource(Protocol):
    """What `iter_batches` loads batches with (`thread_batches`, `imgclf.data.tf_batches`).

    Called with every input, the spec and keyword arguments `batch_size` (int >= 1), `workers`
    (int >= 1) and `fetch` (callable or None); yields a `Batch` per `batch_size` inputs, in
    input order, each input loaded with `load_item` (so an unreadable input is in its batch's
    `errors`, and a bug raises `LoaderError`).
    """

    def __call__(
        self, items: list[InputItem], spec: InputSpec, *, batch_size: int, workers: int, fetch: Fetch | None
    ) -> Iterator[Batch]: ...


def thread_batches(
    items: list[InputItem], spec: InputSpec, *, batch_size: int, workers: int, fetch: Fetch | None
) -> Iterator[Batch]:
    """The default `BatchSource` of `iter_batches`: `load_item` in a thread pool, one batch ahead.

    Never imports TensorFlow (the path of ONNX / TFLite models and of a single photo).

    Args:
        items: list of InputItem.
        spec: InputSpec.
        batch_size: int >= 1. Inputs per batch.
        workers: int >= 1. Threads.
        fetch: callable `url -> bytes` or None. For URL items.

    Yields:
        Batch, in input order; unreadable inputs in its `errors`.

    Raises:
        LoaderError: at the first bug, raised again in the consumer from the worker thread
            (`imgclf.parallel.threaded_batches`).
    """
    start = 0
    for chunk, loaded in threaded_batches(partial(load_item, spec=spec, fetch=fetch), items, batch_size, workers):
        yield Batch.of(list(chunk), start, loaded, spec)
        start += len(chunk)


def iter_batches(
    items: Sequence[InputItem],
    spec: InputSpec,
    *,
    batch_size: int = 64,
    workers: int | None = None,
    fetch: Fetch | None = None,
    source: BatchSource | None = None,
) -> Iterator[Batch]:
    """Loads inputs batch by batch with `load_image`, a batch or more ahead of the consumer.

    The one batch iterator of imgclf. Memory stays bounded (a few batches of pixels) whatever
    the number of inputs. A failed input never stops the others: it is reported in its batch's
    `errors`. A bug does (see Raises).

    Args:
        items: sequence of InputItem (e.g. `ImageListing.items()`).
        spec: InputSpec. How files become model input.
        batch_size: int >= 1, default 64. Inputs per batch (a batch holds fewer images when some
            fail; it may hold none).
        workers: int or None, default None (`imgclf.parallel.default_workers()`). Parallel loads.
        fetch: callable `url -> bytes` or None. For URL items.
        source: BatchSource or None, default None (`thread_batches`: a thread pool one batch
            ahead, never imports TensorFlow). `imgclf.data.tf_batches` runs the same
            `load_image` inside `tf.data` (parallel map, deterministic order, prefetch), for
            callers that have TensorFlow loaded anyway; a single input is always loaded by
            `thread_batches`.

    Yields:
        Batch, in input order.

    Raises:
        ValueError: if `batch_size` < 1.
        LoaderError: on the first input whose loading raised anything but an unreadable image
            (a bug); it names the input and the exception, and its traceback is saved to a new
            temporary log file named in its hint (`LoaderError.save_traceback`) unless the
            source saved it already.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, received batch_size={batch_size}")
    items = list(items)
    load = source if source is not None and len(items) > 1 else thread_batches
    try:
        yield from load(items, spec, batch_size=batch_size, workers=workers or default_workers(), fetch=fetch)
    except LoaderError as exc:
        if exc.log is None:
            exc.save_traceback()
        raise


def collect_inputs(inputs: Sequence[str | os.PathLike | InputItem]) -> list[InputItem]:
    """Expands what a user named (files, folders, URLs) into single `InputItem`s.

    Args:
        inputs: paths of image files, folders (listed recursively with `list_images`, only files
            with an image extension, `_` / `.` names skipped), http(s) URLs, or `InputItem`s
            (kept as they are).

    Returns:
        list of InputItem in the given order (folder contents sorted). A missing path or an
        empty folder becomes an item with `error` set, so it is reported with the others.

    Raises:
        DataError: if `inputs` is empty.
    """
    if not inputs:
        raise DataError("no images given", "pass image files, folders or URLs, e.g. `imgclf predict photo.jpg`")
    out: list[InputItem] = []
    for raw in inputs:
        if isinstance(raw, InputItem):
            out.append(raw)
            continue
        s = str(raw)
        if is_url(s):
            out.append(InputItem(name=s, url=s))
            continue
        p = Path(s)
        if p.is_dir():
            files = list_images(p, extensions=IMAGE_EXTENSIONS, layout="loose").paths
            if not files:
                out.append(InputItem(name=s, path=p, error="no image files in this folder"))
            out.extend(InputItem(name=str(f), path=f) for f in files)
        elif p.is_file():
            out.append(InputItem(name=s, path=p))
        else:
            out.append(InputItem(name=s, path=p, error="file not found"))
    return out


def is_url(item: str) -> bool:
    """True if `item` is an http(s) URL."""
    return item.lower().startswith(("http://", "https://"))
