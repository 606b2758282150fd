"""The audit's map: one image file in, its pixels (or why it cannot be read) out.

`load_entry` is the per-image work of the audit, pure and picklable: it decodes one listed file
with the one loader (`imgclf.inputs.load_item`, an `InputSpec`) and returns a `LoadedImage`.
It runs through the executor interface (`imgclf.engine`), which yields the records in listing
order, so what follows does not depend on which worker finished first.

Two consumers, both in the driver:

- `load_all` (`--cv-train`): every image into one uint8 array, which the folds slice;
- `embed_all` (the default, linear probe): images streamed in batches of `batch_size` through
  the embedding model (`imgclf.explore.embed.resolve_encoder`: raw pixels, an autoencoder, a
  run or a registry model), so memory holds one batch of pixels and the vectors, whatever the
  number of images.

A file that cannot be read as an image (`imgclf.errors.ImageError`) becomes a record with its
reason; any other exception is a bug and stops the audit, raised in the driver with its
traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from imgclf.engine import Executor
from imgclf.errors import ImageError
from imgclf.inputs import ImageEntry, InputItem, InputSpec, load_item
from imgclf.records.audit import NotAudited
from imgclf.ui import progress


@dataclass(frozen=True)
class LoadedImage:
    """What the map returns for one listed file.

    Attributes:
        rel: str. Path relative to the audited folder, "/"-separated.
        pixels: uint8 array `(size, size, 3)` in [0, 255], or None when unreadable.
        reason: str. Why it is unreadable (`imgclf.images.OPEN_REASONS`), else "".
        detail: str. A human-readable detail, else "".
    """

    rel: str
    pixels: np.ndarray | None
    reason: str = ""
    detail: str = ""


def load_entry(entry: ImageEntry, *, spec: InputSpec) -> LoadedImage:
    """The map: decodes one listed file into model input.

    Pure and picklable (use `functools.partial(load_entry, spec=spec)`); reads only its own file.

    Args:
        entry: ImageEntry. One file of `imgclf.inputs.list_images`.
        spec: InputSpec. How files become input (size, resize policy, ...).

    Returns:
        LoadedImage: `pixels` of shape `(spec.size, spec.size, 3)`, uint8 in [0, 255], or None
        with the reason the file cannot be read.

    Raises:
        Exception: only for bugs (an unreadable image is a record, not an exception).
    """
    loaded = load_item(InputItem(name=str(entry.path), path=entry.path), spec)
    if isinstance(loaded, ImageError):
        return LoadedImage(entry.rel, None, loaded.reason, loaded.detail)
    return LoadedImage(entry.rel, loaded)


def _records(
    entries: Sequence[ImageEntry], spec: InputSpec, executor: Executor, description: str
) -> Iterator[LoadedImage]:
    """The map over every entry, in order, with a progress bar."""
    kept = skipped = 0
    with progress(description, total=len(entries)) as advance:
        for rec in executor.map(partial(load_entry, spec=spec), entries):
            kept += rec.pixels is not None
            skipped += rec.pixels is None
            advance(status=f"kept {kept}  skipped {skipped}")
            yield rec


@dataclass
class LoadedSet:
    """The readable images of a listing, and the files that were not.

    Attributes:
        rels: list of str. Readable images, in listing order.
        images: uint8 `(n, size, size, 3)` or None (`load_all`).
        features: float32 `(n, d)` or None (`embed_all`).
        unreadable: list of NotAudited.
    """

    rels: list[str] = field(default_factory=list)
    images: np.ndarray | None = None
    features: np.ndarray | None = None
    unreadable: list[NotAudited] = field(default_factory=list)

    def add(self, rec: LoadedImage) -> bool:
        """Records `rec`; True when it is readable."""
        if rec.pixels is None:
            self.unreadable.append(NotAudited(path=rec.rel, reason=rec.reason, detail=rec.detail))
            return False
        self.rels.append(rec.rel)
        return True


def load_all(entries: Sequence[ImageEntry], spec: InputSpec, executor: Executor) -> LoadedSet:
    """Loads every readable entry into one array (for `--cv-train`).

    Args:
        entries: sequence of ImageEntry.
        spec: InputSpec.
        executor: Executor. Runs the map.

    Returns:
        LoadedSet with `images` uint8 `(n, spec.size, spec.size, 3)` in [0, 255].
    """
    out = LoadedSet()
    pixels: list[np.ndarray] = []
    for rec in _records(entries, spec, executor, "audit: loading images"):
        if out.add(rec) and rec.pixels is not None:
            pixels.append(rec.pixels)
    out.images = np.stack(pixels) if pixels else np.zeros((0, *spec.shape), np.uint8)
    return out


def encode_batch(encoder: Any, images: np.ndarray) -> np.ndarray:
    """One batch of embeddings, as `imgclf embed` makes them.

    Args:
        encoder: `imgclf.explore.embed.Encoder`. `model` None = raw pixels.
        images: uint8 `(batch, size, size, 3)` in [0, 255].

    Returns:
        float32 `(batch, d)`: raw pixels scaled to [0, 1] and flattened, or the model's
        `"embedding"` layer (a feature map is averaged over its spatial axes).
    """
    if encoder.model is None:
        return images.reshape(len(images), -1).astype(np.float32) / 255.0
    y = np.asarray(encoder.model.predict_on_batch(images), dtype=np.float32)
    if y.ndim > 2:
        y = y.mean(axis=tuple(range(1, y.ndim - 1)))
    return y.reshape(len(y), -1)


def embed_all(entries: Sequence[ImageEntry], encoder: Any, batch_size: int, executor: Executor) -> LoadedSet:
    """Embeds every readable entry, `batch_size` images at a time (the default method).

    Args:
        entries: sequence of ImageEntry.
        encoder: `imgclf.explore.embed.Encoder` (its `spec` says how files become input).
        batch_size: int >= 1. Images per call of the model.
        executor: Executor. Runs the map.

    Returns:
        LoadedSet with `features` float32 `(n, d)`.
    """
    out = LoadedSet()
    chunks: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    for rec in _records(entries, encoder.spec, executor, "audit: embedding"):
        if out.add(rec) and rec.pixels is not None:
            batch.append(rec.pixels)
        if len(batch) == batch_size:
            chunks.append(encode_batch(encoder, np.stack(batch)))
            batch = []
    if batch:
        chunks.append(encode_batch(encoder, np.stack(batch)))
    out.features = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    return out
