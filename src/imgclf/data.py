"""tf.data input pipelines and the augmentation layers.

`TFImages` runs `imgclf.inputs.load_image` -- the one function that turns an image file into
model input, used by every command -- inside `tf.data` (`tf.numpy_function`, parallel map,
deterministic order). `image_dataset` builds `train`'s pipeline on it, in the order the
TensorFlow "Better performance with the tf.data API" guide recommends: indices -> parallel
load -> `cache()` in memory when it fits -> shuffle -> batch -> augment (Keras preprocessing
layers, on the CPU, in the pipeline, on whole batches) -> `prefetch`, with tf.data's autotuner
off (`static_options`). So validation during training sees exactly the pixels `imgclf evaluate
--split val` sees. `tf_batches` is the same loader as a batch source of
`imgclf.inputs.iter_batches`, for `evaluate` and `predict` with a Keras model.

The loader-error rule (docs/architecture.md): an unreadable file is an `ImageError`, left out
of the batches and recorded (`image_dataset(rejects=...)`, `TFImages.errors`); anything else
`load_item` meets is a `LoaderError` that fails the pipeline and reaches the consumer as
itself (`raising_loader_bugs`), never dropping an image quietly.

Images come out as float32 raw RGB in `[0, 255]`, shape `(batch, image_size, image_size, 3)`;
models do their own preprocessing inside (see `imgclf.models.registry`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from imgclf.config import AugmentConfig
from imgclf.errors import ConfigError, DataError, ImageError, LoaderError
from imgclf.fsutil import atomic_write_bytes
from imgclf.inputs import (
    Batch,
    Fetch,
    ImageListing,
    InputItem,
    InputSpec,
    infer_image_size,
    list_images,
    load_image,
    load_item,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

#: Largest in-memory cache `image_dataset(cache=None)` builds: min(25% of RAM, 8 GiB), bytes.
MAX_CACHE_FRACTION = 0.25
MAX_CACHE_BYTES = 8 * 1024**3


def build_augmenter(cfg: AugmentConfig | None, seed: int = 42) -> keras.Sequential | None:
    """Builds the augmentation layers configured in `cfg`, or None if all are off.

    Layers, in this order, each only when its amount is > 0 (Keras 3 preprocessing layers;
    one random draw per image):
    `RandomFlip(flip)`, `RandomRotation(rotation)` (fraction of a full turn),
    `RandomZoom(zoom)` (in and out, fraction of height and width), `RandomTranslation(translation)`,
    `RandomShear(shear, shear)` (`keras.layers.RandomShear`, Keras >= 3.8: shear angle factor
    on both axes; older Keras: `RandomShear` missing -> a ConfigError if shear > 0),
    `RandomContrast(contrast)`, `RandomBrightness(brightness)` (both with
    `value_range=(0, 255)`), `RandomErasing` (with probability `erasing` per image, one
    rectangle whose height and width are each `sqrt(u)` of the image's, `u` uniform in
    `[0.02, 0.33]`, filled with clipped Gaussian noise in `[0, 255]`: Zhong et al., 2020,
    "Random Erasing Data Augmentation", as `keras.layers.RandomErasing` implements it).
    Geometric layers fill with `cfg.fill_mode`.

    Args:
        cfg: AugmentConfig or None.
        seed: int, default 42. Layer i gets seed `seed + i`.

    Returns:
        keras.Sequential named `"augment"` mapping float `(batch, h, w, 3)` in `[0, 255]` to
        the same shape and range (call with `training=True`), or None.

    Raises:
        ConfigError: if shear or erasing > 0 and this Keras has no `RandomShear` /
            `RandomErasing` (older Keras 3 releases; Keras 3.15 has both).
    """
    if cfg is None:
        return None
    import keras
    from keras import layers

    fill = {"fill_mode": cfg.fill_mode}
    out: list[Any] = []
    if cfg.flip != "none":
        out.append(layers.RandomFlip(cfg.flip, name="flip"))
    if cfg.rotation > 0:
        out.append(layers.RandomRotation(cfg.rotation, name="rotation", **fill))
    if cfg.zoom > 0:
        out.append(layers.RandomZoom(cfg.zoom, cfg.zoom, name="zoom", **fill))
    if cfg.translation > 0:
        out.append(layers.RandomTranslation(cfg.translation, cfg.translation, name="translation", **fill))
    if cfg.shear > 0:
        if not hasattr(layers, "RandomShear"):
            raise ConfigError(
                f"augment.shear={cfg.shear} needs keras.layers.RandomShear (Keras >= 3.8)",
                "upgrade keras, or set augment.shear: 0",
            )
        out.append(layers.RandomShear(cfg.shear, cfg.shear, name="shear", **fill))
    if cfg.contrast > 0:
        out.append(layers.RandomContrast(cfg.contrast, value_range=(0, 255), name="contrast"))
    if cfg.brightness > 0:
        out.append(layers.RandomBrightness(cfg.brightness, value_range=(0, 255), name="brightness"))
    if cfg.erasing > 0:
        if not hasattr(layers, "RandomErasing"):
            raise ConfigError(
                f"augment.erasing={cfg.erasing} needs keras.layers.RandomErasing, which this Keras lacks",
                "upgrade keras, or set augment.erasing: 0",
            )
        # factor (p, p): erase with probability exactly p (a single float would draw p per image)
        p = float(cfg.erasing)
        out.append(layers.RandomErasing(factor=(p, p), scale=(0.02, 0.33), value_range=(0, 255), name="erasing"))
    if not out:
        return None
    for i, layer in enumerate(out):
        layer.seed = seed + i
        if hasattr(layer, "generator"):
            layer.generator = keras.random.SeedGenerator(seed + i)
    return keras.Sequential(out, name="augment")


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


def fits_in_memory(n_images: int, image_size: int) -> bool:
    """Whether `n_images` uint8 RGB images of `image_size` pixels fit the in-memory cache
    budget (min(25% of physical RAM, 8 GiB))."""
    need = n_images * image_size * image_size * 3
    return need <= min(MAX_CACHE_FRACTION * _memory_bytes(), MAX_CACHE_BYTES)


class TFImages:
    """`load_image` inside tf.data: the loader of `train` (`image_dataset`) and of `tf_batches`.

    `map_fn` maps an input index (int64 scalar) to `(image, ok, index)`: `image` uint8
    `(size, size, 3)` from `imgclf.inputs.load_item` (through `tf.numpy_function`), `ok` a bool
    scalar, False when the input is unreadable -- its image is then blank and its `ImageError`
    is kept in `errors[index]` -- and `index` itself.

    A bug (`load_item` raised a `LoaderError`: anything but an unreadable image) is kept in
    `bugs` and stops the pipeline: tf.data fails at that element with a TensorFlow error,
    which `raising_bugs()` turns back into the `LoaderError` for the consumer.

    Args:
        items: list of InputItem.
        spec: InputSpec.
        fetch: callable `url -> bytes` or None, default None. For URL items.
        workers: int or None, default None (`tf.data.AUTOTUNE`). Parallel loads.

    Attributes:
        items: list of InputItem.
        spec: InputSpec.
        errors: dict int -> ImageError. Inputs that failed, by index.
        bugs: list of LoaderError. Bugs met while loading, in the order they happened.
    """

    def __init__(
        self, items: Sequence[InputItem], spec: InputSpec, fetch: Fetch | None = None, workers: int | None = None
    ):
        import tensorflow as tf

        self.items = list(items)
        self.spec = spec
        self.errors: dict[int, ImageError] = {}
        self.bugs: list[LoaderError] = []
        self.workers = workers or tf.data.AUTOTUNE
        self._fetch = fetch
        self._blank = np.zeros(spec.shape, np.uint8)

        def map_fn(index):
            image, ok = tf.numpy_function(self._load, [index], (tf.uint8, tf.bool), stateful=False)
            image.set_shape(spec.shape)
            ok.set_shape(())
            return image, ok, index

        self.map_fn = map_fn

    def _load(self, index: np.int64) -> tuple[np.ndarray, np.bool_]:
        """Runs in tf.data's threads: `(image, ok)` of input `index`; keeps a bug and raises it."""
        i = int(index)
        try:
            loaded = load_item(self.items[i], self.spec, self._fetch)
        except LoaderError as bug:
            self.bugs.append(bug)
            raise  # fails the tf.data element; `raising_bugs` raises `bug` itself to the consumer
        if isinstance(loaded, ImageError):
            self.errors[i] = loaded
            return self._blank, np.bool_(False)
        return loaded, np.bool_(True)

    def indices(self) -> tf.data.Dataset:
        """`tf.data.Dataset.range(len(items))`, int64."""
        import tensorflow as tf

        return tf.data.Dataset.range(len(self.items))

    @property
    def dataset(self) -> tf.data.Dataset:
        """`(image, ok, index)` for every input, in input order (parallel, deterministic map)."""
        ds = self.indices().map(self.map_fn, num_parallel_calls=self.workers, deterministic=True)
        return ds.with_options(static_options())

    def raising_bugs(self) -> AbstractContextManager[None]:
        """A context in which iterating the dataset raises a bug as the `LoaderError` it is
        (see `raising_loader_bugs`)."""
        return raising_loader_bugs(self.bugs)


@contextmanager
def raising_loader_bugs(bugs: list[LoaderError]) -> Iterator[None]:
    """Raises the first loader bug in place of the TensorFlow error it caused, and at the end.

    A `LoaderError` raised inside `tf.numpy_function` reaches the consumer as a TensorFlow
    error (`tf.errors.UnknownError`) whose message is not the user's business; the loader kept
    the error itself in `bugs` (`TFImages.bugs`, `image_dataset(bugs=...)`). Any exception
    that leaves the block while `bugs` is not empty is replaced by `bugs[0]`; a bug that did
    not stop the block (an element never consumed) is raised when the block ends.

    Args:
        bugs: list of LoaderError. Filled by the loaders while the block runs.

    Yields:
        None.

    Raises:
        LoaderError: `bugs[0]`, with the original exception as its `__cause__`.
    """
    try:
        yield
    except Exception:
        if bugs:
            raise bugs[0] from bugs[0].error
        raise
    if bugs:
        raise bugs[0] from bugs[0].error


def tf_images(
    items: Sequence[InputItem], spec: InputSpec, *, fetch: Fetch | None = None, workers: int | None = None
) -> TFImages:
    """Returns a `TFImages` loader for `items` (see its docstring).

    Args:
        items: sequence of `imgclf.inputs.InputItem`.
        spec: `imgclf.inputs.InputSpec`.
        fetch: callable `url -> bytes` or None. For URL items.
        workers: int or None, default None (`tf.data.AUTOTUNE`). Parallel loads.

    Returns:
        TFImages.
    """
    return TFImages(items, spec, fetch=fetch, workers=workers)


def tf_batches(
    items: list[InputItem], spec: InputSpec, *, batch_size: int, workers: int, fetch: Fetch | None
) -> Iterator[Batch]:
    """The tf.data `BatchSource` of `imgclf.inputs.iter_batches` (`source=tf_batches`).

    The same `load_item` as the thread pool, inside `tf.data` (`TFImages`: parallel map,
    deterministic order, two batches prefetched), for callers that have TensorFlow loaded anyway
    (`evaluate` and `predict` with a Keras model).

    Args:
        items: list of InputItem.
        spec: InputSpec.
        batch_size: int >= 1. Inputs per batch.
        workers: int >= 1. Parallel loads.
        fetch: callable `url -> bytes` or None. For URL items.

    Yields:
        Batch, in input order; unreadable inputs in its `errors`.

    Raises:
        LoaderError: at the first bug (anything but an unreadable image).
    """
    source = tf_images(items, spec, fetch=fetch, workers=workers)
    start = 0
    with source.raising_bugs():
        for images, ok, _ in source.dataset.batch(batch_size).prefetch(2).as_numpy_iterator():
            chunk = items[start : start + len(images)]
            loaded: list[np.ndarray | ImageError] = [
                images[j] if ok[j] else source.errors.pop(start + j) for j in range(len(chunk))
            ]
            yield Batch.of(chunk, start, loaded, spec)
            start += len(chunk)


def image_dataset(
    listing: ImageListing,
    spec: InputSpec,
    batch_size: int,
    *,
    shuffle: bool,
    augment: AugmentConfig | keras.Sequential | None = None,
    cache: bool | str | None = None,
    seed: int = 42,
    rejects: dict[int, ImageError] | None = None,
    bugs: list[LoaderError] | None = None,
    shard: tuple[int, int] | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Builds the tf.data pipeline of a labelled listing (a split folder), for `train`.

    Order, as the TensorFlow "Better performance with the tf.data API" guide recommends:
    indices -> (this worker's shard) -> (shuffle, when not cached) -> parallel `load_image`
    (`TFImages`, the very function `evaluate` and `predict` use) -> drop failed files ->
    `cache()` -> (shuffle, when cached) -> (repeat) -> batch -> augment (Keras preprocessing
    layers, training only) -> `prefetch`.

    With `shard=(k, i)` each of `k` workers reads, decodes and caches only its `1 / k` of the
    files (the listing is sorted by class: every shard holds every class in proportion).

    Args:
        listing: ImageListing with class labels (`imgclf.inputs.list_images` of a split folder).
        spec: InputSpec. How files become model input.
        batch_size: int, >= 1.
        shuffle: bool. Reshuffle every epoch (training), with `seed`.
        augment: AugmentConfig, a Keras layer/Sequential (see `build_augmenter`) or None,
            default None. Applied to training batches (`training=True`).
        cache: bool, str or None, default None. True = cache decoded images in memory,
            False = decode every epoch, a str = cache file prefix on disk, None = in memory
            when they fit (`fits_in_memory`), else no cache.
        seed: int, default 42. Shuffle and augmentation seed.
        rejects: dict or None. Filled with `entry index -> ImageError` for every file that
            failed to load, as the dataset is iterated (such files are left out of the batches).
        bugs: list or None. Filled with the `LoaderError` of a bug in the loader (anything but
            an unreadable image), which also fails the dataset at that element with a
            TensorFlow error; iterate inside `raising_loader_bugs(bugs)` to get the
            `LoaderError` instead (as `train` does).
        shard: tuple `(num_shards, index)` or None, default None (every entry). Keep the
            entries whose listing index is `index` modulo `num_shards`, before loading.
        repeat: bool, default False. Repeat forever (reshuffled every pass); the caller counts steps.
        drop_remainder: bool, default False. Leave out a last batch smaller than `batch_size`.

    Returns:
        tf.data.Dataset of `(images, labels)`: images float32 `(batch, size, size, 3)` raw RGB
        in `[0, 255]`, labels int32 `(batch,)`. The last batch may be smaller (see above).

    Raises:
        ValueError: if `batch_size` < 1, the listing has unlabelled files, or `shard` is not
            `(k, i)` with `0 <= i < k`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, received batch_size={batch_size}")
    labels = listing.labels
    if (labels < 0).any():
        raise ValueError(f"{listing.root}: every file must sit in a class folder")
    if isinstance(augment, AugmentConfig):
        augment = build_augmenter(augment, seed=seed)
    num_shards, index = shard or (1, 0)
    if not 0 <= index < num_shards:
        raise ValueError(f"shard must be (num_shards, index) with 0 <= index < num_shards, received shard={shard}")
    n = len(range(index, len(listing), num_shards))
    if cache is None:
        cache = fits_in_memory(n, spec.size)
    loader = tf_images(listing.items(), spec)
    if rejects is not None:
        loader.errors = rejects  # filled as the dataset is iterated
    if bugs is not None:
        loader.bugs = bugs
    ds = _labelled_images(loader, labels, (num_shards, index), shuffle and not cache, seed)
    if cache:
        ds = _cached(ds, cache, (num_shards, index), shuffle, seed, n)
    if repeat:
        ds = ds.repeat()
    return _batched(ds, batch_size, augment, drop_remainder)


def _cached(
    ds: tf.data.Dataset, cache: bool | str, shard: tuple[int, int], shuffle: bool, seed: int, n: int
) -> tf.data.Dataset:
    """`ds.cache()` (in memory, or files named after `cache` and the shard), then the shuffle of
    its `n` elements."""
    num_shards, index = shard
    prefix = cache if isinstance(cache, str) else ""
    if prefix and num_shards > 1:  # workers sharing a disk keep their own cache files
        prefix = f"{prefix}.shard{index}of{num_shards}"
    ds = ds.cache(prefix)
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    return ds


def _labelled_images(
    loader: TFImages, labels: np.ndarray, shard: tuple[int, int], shuffle: bool, seed: int
) -> tf.data.Dataset:
    """`(image uint8, label int32)` of the readable files of one shard, shuffled first if asked."""
    import tensorflow as tf

    num_shards, index = shard
    label_table = tf.constant(labels, tf.int32)
    ds = loader.indices()
    if num_shards > 1:
        ds = ds.shard(num_shards, index)
    if shuffle:
        n = len(range(index, len(loader.items), num_shards))
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(loader.map_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def loaded(image, ok, index):
        return ok

    def labelled(image, ok, index):
        return image, tf.gather(label_table, index)

    return ds.filter(loaded).map(labelled)


def _batched(
    ds: tf.data.Dataset, batch_size: int, augment: keras.Layer | None, drop_remainder: bool = False
) -> tf.data.Dataset:
    """`(image, label)` elements -> float32 batches, augmented when `augment` is given, prefetched."""
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=autotune)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y), num_parallel_calls=autotune)
    else:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=autotune)
    return ds.prefetch(autotune).with_options(static_options())


def static_options() -> tf.data.Options:
    """`tf.data.Options` with tf.data's autotuner off, for every imgclf pipeline.

    `AUTOTUNE` parallelism then resolves to the number of CPU cores and `prefetch(AUTOTUNE)`
    to tf.data's default buffer, fixed for the whole run. The autotuner's own background work
    competes with training on a small CPU: measured on 2 cores (docs/benchmarks.md, "tf.data's
    autotuner and the slow epochs"), with it on about half of the epochs of `imgclf train` on
    Fashion-MNIST took 1.6-1.9x as long as the others, whichever epoch; with it off every
    epoch ran at the fast speed.

    Returns:
        tf.data.Options: `autotune.enabled = False`; apply with `Dataset.with_options`.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def augment_preview(
    folder: str | os.PathLike,
    cfg: AugmentConfig,
    out: str | os.PathLike,
    *,
    n_images: int = 6,
    n_variants: int = 7,
    image_size: int | None = None,
    spec: InputSpec | None = None,
    cell: int = 96,
    seed: int = 42,
) -> Path:
    """Writes a grid PNG: one row per sample image, the original then `n_variants` augmented.

    Args:
        folder: path. A split folder (e.g. `data/split/train`) or any ImageFolder.
        cfg: AugmentConfig. The augmentation to show.
        out: path of the PNG to write (atomically).
        n_images: int, default 6. Rows; samples are spread over the classes.
        n_variants: int, default 7. Augmented copies per row.
        image_size: int or None, default None (the images' own size). Pixels.
        spec: InputSpec or None, default None (center crop at `image_size`). How files
            become model input, as in training.
        cell: int, default 96. Side of one grid cell in pixels (nearest-neighbour enlarged).
        seed: int, default 42. Picks the samples and seeds the layers.

    Returns:
        Path: `out`.

    Raises:
        DataError: no images in `folder`.
    """
    import tensorflow as tf

    files = list_images(folder, layout="classes")
    if not len(files):
        raise DataError(f"no images found in class folders under {folder}", "expected <folder>/<class>/<image>")
    spec = spec or InputSpec(size=image_size or infer_image_size(files))
    rng = np.random.default_rng(seed)
    picks = []
    by_class = [np.flatnonzero(files.labels == c) for c in range(len(files.class_names))]
    by_class = [rng.permutation(ix) for ix in by_class if len(ix)]
    for r in range(n_images):
        ix = by_class[r % len(by_class)]
        if r // len(by_class) < len(ix):
            picks.append(ix[r // len(by_class)])
    batch = tf.cast(tf.stack([load_image(files.paths[i], spec) for i in picks]), tf.float32)
    aug = build_augmenter(cfg, seed=seed)
    cols = [batch]
    for _ in range(n_variants):
        cols.append(aug(batch, training=True) if aug is not None else batch)
    grid = Image.new("RGB", ((n_variants + 1) * cell, len(picks) * cell), (255, 255, 255))
    for c, col in enumerate(cols):
        arr = np.clip(np.asarray(col), 0, 255).astype(np.uint8)
        for r in range(len(picks)):
            tile = Image.fromarray(arr[r]).resize((cell, cell), Image.Resampling.NEAREST)
            grid.paste(tile, (c * cell, r * cell))
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    return atomic_write_bytes(out, buf.getvalue())
