"""tf.data input pipelines from split folders, and the augmentation layers.

`image_dataset` reads `<folder>/<class>/<file>` (a split of `imgclf split`), in the order the
TensorFlow "Better performance with the tf.data API" guide recommends: list files -> parallel
decode (`num_parallel_calls=AUTOTUNE`) -> `cache()` in memory when it fits -> shuffle ->
batch -> augment (Keras preprocessing layers, on the CPU, in the pipeline, on whole batches)
-> `prefetch(AUTOTUNE)`. Files are decoded with `tf.io.decode_image` (`channels=3`,
`expand_animations=False`): split folders hold PNG/JPEG files already verified by `clean`.

Images come out as float32 raw RGB in `[0, 255]`, shape `(batch, image_size, image_size, 3)`;
models do their own preprocessing inside (see `imgclf.models.registry`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.config import AugmentConfig
from imgclf.errors import DataError
from imgclf.images import class_folders, list_images

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

#: Largest in-memory cache `image_dataset(cache=None)` builds: min(25% of RAM, 8 GiB), bytes.
MAX_CACHE_FRACTION = 0.25
MAX_CACHE_BYTES = 8 * 1024**3


@dataclass(frozen=True)
class SplitFiles:
    """The image files of one split folder.

    Attributes:
        paths: list of str. Files, sorted by class then name.
        labels: numpy int32 array, shape `(n,)`. Index into `class_names` of each file.
        class_names: list of str. Index i = label i.
    """

    paths: list[str]
    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> np.ndarray:
        """Images per class, shape `(num_classes,)`."""
        return np.bincount(self.labels, minlength=len(self.class_names))


def list_split(folder: str | os.PathLike, class_names: list[str] | None = None) -> SplitFiles:
    """Lists the images of a split folder `<folder>/<class>/<file>`.

    Args:
        folder: path. E.g. `data/split/train`.
        class_names: list of str or None, default None (the folder's own classes, sorted).
            With a list (the training classes), a class folder missing here is allowed (no
            images), an extra one is an error.

    Returns:
        SplitFiles.

    Raises:
        DataError: the folder is missing, has no class folders or no images, or holds a
            class that is not in `class_names`.
    """
    folder = Path(folder)
    found = class_folders(folder)  # raises DataError if missing
    if class_names is None:
        class_names = found
    if not class_names:
        raise DataError(f"{folder} has no class folders", "expected <folder>/<class>/<image files>")
    extra = sorted(set(found) - set(class_names))
    if extra:
        raise DataError(
            f"{folder} holds class folder(s) {extra} that the model was not trained on",
            f"the classes are {class_names}",
        )
    paths: list[str] = []
    labels: list[int] = []
    for i, name in enumerate(class_names):
        if not (folder / name).is_dir():
            continue
        files = [str(p) for p in list_images(folder / name)]
        paths += files
        labels += [i] * len(files)
    if not paths:
        raise DataError(f"{folder} holds no images", "run `imgclf split` first, or check the path")
    return SplitFiles(paths, np.asarray(labels, dtype=np.int32), list(class_names))


def infer_image_size(folder: str | os.PathLike) -> int:
    """Returns the side in pixels of the first image under `folder` (prepare makes them square).

    Raises:
        DataError: if there is no image or it is not square.
    """
    import tensorflow as tf

    files = list_images(folder)
    if not files:
        raise DataError(f"{folder} holds no images", "run `imgclf split` first, or check the path")
    # Decoded the way the pipeline decodes (split folders hold verified PNG/JPEG files).
    h, w = tf.io.decode_image(tf.io.read_file(str(files[0])), channels=3, expand_animations=False).shape[:2]
    if w != h:
        raise DataError(
            f"{files[0]} is {w}x{h} pixels, not square",
            "run `imgclf prepare --size N` before splitting, or pass --image-size",
        )
    return w


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

    from imgclf.errors import ConfigError

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


def decode_resize(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """Reads and decodes one image file to uint8 `(image_size, image_size, 3)`.

    Square images of the right size (what `prepare` writes) pass through untouched; others get
    the prepare policy in TensorFlow: center-cropped to a square, then resized (bilinear,
    antialiased).
    """
    import tensorflow as tf

    img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    shape = tf.shape(img)
    h, w = shape[0], shape[1]

    def fix() -> tf.Tensor:
        side = tf.minimum(h, w)
        crop = tf.image.crop_to_bounding_box(img, (h - side) // 2, (w - side) // 2, side, side)
        out = tf.image.resize(crop, (image_size, image_size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    same = tf.logical_and(tf.equal(h, image_size), tf.equal(w, image_size))
    img = tf.cond(same, lambda: img, fix)
    img.set_shape((image_size, image_size, 3))
    return img


def image_dataset(
    folder: str | os.PathLike | SplitFiles,
    class_names: list[str] | None,
    image_size: int,
    batch_size: int,
    *,
    shuffle: bool,
    augment: AugmentConfig | keras.Sequential | None = None,
    cache: bool | str | None = None,
    seed: int = 42,
) -> tf.data.Dataset:
    """Builds the tf.data pipeline of a split folder.

    Args:
        folder: path of a split folder (`<folder>/<class>/<file>`), or a `SplitFiles` from
            `list_split`.
        class_names: list of str or None. Label order (the training classes); None = the
            folder's own classes, sorted.
        image_size: int. Output side in pixels.
        batch_size: int, >= 1.
        shuffle: bool. Reshuffle every epoch (training), with `seed`.
        augment: AugmentConfig, a Keras layer/Sequential (see `build_augmenter`) or None,
            default None. Applied to training batches (`training=True`).
        cache: bool, str or None, default None. True = cache decoded images in memory,
            False = decode every epoch, a str = cache file prefix on disk, None = in memory
            when they fit (`fits_in_memory`), else no cache.
        seed: int, default 42. Shuffle and augmentation seed.

    Returns:
        tf.data.Dataset of `(images, labels)`: images float32 `(batch, image_size,
        image_size, 3)` raw RGB in `[0, 255]`, labels int32 `(batch,)`. The last batch may be
        smaller.

    Raises:
        DataError: see `list_split`.
        ValueError: if `image_size` or `batch_size` < 1.
    """
    import tensorflow as tf

    if image_size < 1 or batch_size < 1:
        raise ValueError(f"image_size and batch_size must be >= 1, received {image_size=}, {batch_size=}")
    files = folder if isinstance(folder, SplitFiles) else list_split(folder, class_names)
    if isinstance(augment, AugmentConfig):
        augment = build_augmenter(augment, seed=seed)
    if cache is None:
        cache = fits_in_memory(len(files), image_size)
    autotune = tf.data.AUTOTUNE
    n = len(files)

    ds = tf.data.Dataset.from_tensor_slices((tf.constant(files.paths), tf.constant(files.labels, tf.int32)))
    if shuffle and not cache:
        # No cache: shuffle the (cheap) file list, decode in parallel afterwards.
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda p, y: (decode_resize(p, image_size), y), num_parallel_calls=autotune)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, num_parallel_calls=autotune)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(tf.cast(x, tf.float32), training=True), y), num_parallel_calls=autotune)
    else:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def augment_preview(
    folder: str | os.PathLike,
    cfg: AugmentConfig,
    out: str | os.PathLike,
    *,
    n_images: int = 6,
    n_variants: int = 7,
    image_size: int | None = None,
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
        cell: int, default 96. Side of one grid cell in pixels (nearest-neighbour enlarged).
        seed: int, default 42. Picks the samples and seeds the layers.

    Returns:
        Path: `out`.

    Raises:
        DataError: no images in `folder`.
    """
    import tensorflow as tf
    from PIL import Image

    from imgclf.fsutil import atomic_write_bytes

    files = list_split(folder)
    size = image_size or infer_image_size(folder)
    rng = np.random.default_rng(seed)
    picks = []
    by_class = [np.flatnonzero(files.labels == c) for c in range(len(files.class_names))]
    by_class = [rng.permutation(ix) for ix in by_class if len(ix)]
    for r in range(n_images):
        ix = by_class[r % len(by_class)]
        if r // len(by_class) < len(ix):
            picks.append(ix[r // len(by_class)])
    batch = tf.stack([decode_resize(tf.constant(files.paths[i]), size) for i in picks])
    batch = tf.cast(batch, tf.float32)
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
    import io

    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    return atomic_write_bytes(out, buf.getvalue())
