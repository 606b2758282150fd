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

On a Ray cluster (`executor.name == "ray"`), `embed_all` keeps the decoded pixels in the object
store of the nodes that decoded them (`hold_pixels`), and the embedding model runs there too
(`embed_held`: the same batches of `batch_size` readable images, in listing order, so the same
model calls; each worker builds the encoder once): the driver receives only the embeddings.

A file that cannot be read as an image (`imgclf.errors.ImageError`) becomes a record with its
reason; any other exception is a bug and stops the audit, raised in the driver with its
traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

import numpy as np

from imgclf.engine import Executor
from imgclf.errors import ImageError
from imgclf.inputs import ImageEntry, InputItem, InputSpec, load_item
from imgclf.records.audit import NotAudited
from imgclf.ui import progress


@dataclass(frozen=True)
class HeldPixels:
    """Stands in a record for pixels a Ray cluster holds (`hold_pixels`).

    Attributes:
        position: int. Position of the record's file in the map.
    """

    position: int


@dataclass(frozen=True)
class LoadedImage:
    """What the map returns for one listed file.

    Attributes:
        rel: str. Path relative to the audited folder, "/"-separated.
        pixels: uint8 array `(size, size, 3)` in [0, 255], `HeldPixels` on a Ray cluster, or
            None when unreadable.
        reason: str. Why it is unreadable (`imgclf.images.OPEN_REASONS`), else "".
        detail: str. A human-readable detail, else "".
    """

    rel: str
    pixels: np.ndarray | HeldPixels | None
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
        if out.add(rec) and isinstance(rec.pixels, np.ndarray):
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


def embed_all(
    entries: Sequence[ImageEntry],
    encoder: Any,
    batch_size: int,
    executor: Executor,
    make_encoder: Callable[[], Any] | None = None,
) -> LoadedSet:
    """Embeds every readable entry, `batch_size` images at a time (the default method).

    Args:
        entries: sequence of ImageEntry.
        encoder: `imgclf.explore.embed.Encoder` (its `spec` says how files become input).
        batch_size: int >= 1. Images per call of the model.
        executor: Executor. Runs the map.
        make_encoder: picklable callable `() -> Encoder` or None, default None. Builds the same
            encoder on a Ray worker: with a Ray executor, the embedding runs there
            (`embed_held`); None = in this process.

    Returns:
        LoadedSet with `features` float32 `(n, d)`.
    """
    if executor.name == "ray" and make_encoder is not None:
        return _embed_on_cluster(entries, encoder, batch_size, executor, make_encoder)
    out = LoadedSet()
    chunks: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    for rec in _records(entries, encoder.spec, executor, "audit: embedding"):
        if out.add(rec) and isinstance(rec.pixels, np.ndarray):
            batch.append(rec.pixels)
        if len(batch) == batch_size:
            chunks.append(encode_batch(encoder, np.stack(batch)))
            batch = []
    if batch:
        chunks.append(encode_batch(encoder, np.stack(batch)))
    out.features = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    return out


def hold_pixels(records: list[LoadedImage], start: int) -> tuple[list[LoadedImage], tuple[np.ndarray, np.ndarray]]:
    """Takes the pixels out of a map block's records (runs in the Ray worker; `imgclf.engine.ray.Kept`).

    Args:
        records: list of LoadedImage, a block of the map.
        start: int. Position of the block's first record.

    Returns:
        tuple `(records, (positions, pixels))`: the records with `HeldPixels` for their pixels,
        and the readable positions with their pixels stacked, uint8 `(k, size, size, 3)`.
    """
    light, pos, arrays = [], [], []
    for k, r in enumerate(records):
        if isinstance(r.pixels, np.ndarray):
            light.append(replace(r, pixels=HeldPixels(start + k)))
            pos.append(start + k)
            arrays.append(r.pixels)
        else:
            light.append(r)
    stacked = np.stack(arrays) if arrays else np.zeros((0, 0, 0, 3), np.uint8)
    return light, (np.asarray(pos, np.int64), stacked)


_ENCODERS: dict[str, Any] = {}  # a worker process's encoder, by how it is made
_ENCODER_LOCK = threading.Lock()  # built by one thread at a time (TensorFlow's import is not reentrant)


def _worker_encoder(make_encoder: Callable[[], Any]) -> Any:
    """The encoder of this worker process, built once per recipe (the last one only)."""
    key = repr(
        (
            getattr(make_encoder, "func", make_encoder),
            getattr(make_encoder, "args", ()),
            sorted(getattr(make_encoder, "keywords", {}).items()),
        )
    )
    with _ENCODER_LOCK:
        if key not in _ENCODERS:
            _ENCODERS.clear()
            _ENCODERS[key] = make_encoder()
        return _ENCODERS[key]


def embed_held(
    job: tuple[np.ndarray, list[int]], *, make_encoder: Callable[[], Any], refs: Sequence[Any]
) -> np.ndarray:
    """One batch of embeddings from pixels a Ray cluster holds (a task on a worker).

    Args:
        job: tuple `(positions, blocks)`: the batch's positions, in order, and the indices in
            `refs` of the held blocks `(positions, pixels)` that hold them.
        make_encoder: picklable callable `() -> Encoder`.
        refs: sequence of ObjectRef. The held blocks (`imgclf.engine.ray.Kept.refs`), given in
            the map's function rather than in its items, so that Ray counts their references
            (a reference pickled inside an item is pinned until the driver exits).

    Returns:
        float32 `(len(positions), d)`: `encode_batch` of the batch, as in one process.
    """
    from imgclf.engine.ray import import_ray

    positions, owners = job
    blocks = import_ray().get([refs[o] for o in owners])
    rows = []
    for p in positions.tolist():
        for pos, pixels in blocks:
            k = int(np.searchsorted(pos, p))
            if k < len(pos) and pos[k] == p:
                rows.append(pixels[k])
                break
    return encode_batch(_worker_encoder(make_encoder), np.stack(rows))


def _embed_on_cluster(
    entries: Sequence[ImageEntry], encoder: Any, batch_size: int, executor: Executor, make_encoder: Callable[[], Any]
) -> LoadedSet:
    """`embed_all` on a Ray cluster: the map keeps the pixels, the batches are embedded where they are."""
    from imgclf.engine.ray import Kept

    keep = Kept(hold_pixels)
    out = LoadedSet()
    readable: list[int] = []
    kept = skipped = 0
    with progress("audit: loading", total=len(entries)) as advance:
        for rec in cast(Any, executor).map(partial(load_entry, spec=encoder.spec), entries, keep=keep):
            if out.add(rec):
                readable.append(cast(HeldPixels, rec.pixels).position)
            kept, skipped = len(readable), len(out.unreadable)
            advance(status=f"kept {kept}  skipped {skipped}")
    starts = np.asarray(keep.starts, np.int64)
    jobs = []
    for b in range(0, len(readable), batch_size):
        positions = np.asarray(readable[b : b + batch_size], np.int64)
        owners = np.unique(np.searchsorted(starts, positions, side="right") - 1)
        jobs.append((positions, owners.tolist()))
    chunks = []
    embed = partial(embed_held, make_encoder=make_encoder, refs=list(keep.refs))
    with progress("audit: embedding", total=len(readable)) as advance:
        for features in executor.map(embed, jobs):
            chunks.append(features)
            advance(len(features))
    out.features = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    return out
