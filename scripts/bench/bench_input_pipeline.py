"""Input-pipeline benchmark (issue 5 §6): `cnn` epoch time reading PNG files from disk through
`imgclf.data.image_dataset` vs. the same images already decoded in memory (`from_tensor_slices`).

Both pipelines shuffle, augment (the same layers), batch and prefetch identically; the model,
seed and batch size are the same. Goal: disk / memory epoch time <= 1.15.

    .venv/bin/python scripts/bench/bench_input_pipeline.py --per-class 1000 --epochs 3

Without `--data`, `--per-class` images per class of Fashion-MNIST's official train set (the
idx files of Debian's `dataset-fashion-mnist`) are written as PNG files to a temporary folder
first. Prints per-epoch seconds for each pipeline and the ratios (first epoch, which decodes and
fills the cache, and the mean over all epochs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def export_subset(out: Path, per_class: int) -> Path:
    import numpy as np
    from PIL import Image

    from imgclf.datasets import load_fashion_mnist_arrays

    sets, _ = load_fashion_mnist_arrays()
    x, y = sets["train"]
    for c in range(10):
        folder = out / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(y == c)[:per_class]:
            Image.fromarray(x[i]).convert("RGB").save(folder / f"{i:05d}.png")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, help="A split folder of class sub-folders (e.g. data/fashion_mnist/split/train)."
    )
    ap.add_argument("--per-class", type=int, default=1000, help="Images per class exported when --data is not given.")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--rounds", type=int, default=2, help="Alternating memory/disk rounds (median taken).")
    ap.add_argument(
        "--cache", choices=["auto", "off"], default="auto", help="Disk pipeline cache (auto = in memory when it fits)."
    )
    args = ap.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from imgclf.config import AugmentConfig
    from imgclf.data import build_augmenter, image_dataset
    from imgclf.inputs import InputSpec, infer_image_size, list_images
    from imgclf.models import create_model

    tmp = None
    folder = args.data
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_pipeline_")
        t = time.perf_counter()
        folder = export_subset(Path(tmp.name) / "train", args.per_class)
        print(f"exported {10 * args.per_class} Fashion-MNIST PNGs in {time.perf_counter() - t:.1f}s -> {folder}")
    files = list_images(folder)
    size = infer_image_size(files)
    aug_cfg = AugmentConfig(flip="horizontal", translation=0.08)
    n = len(files)
    print(
        f"{n} images of {size}x{size} px, {len(files.class_names)} classes, model {args.model}, "
        f"batch {args.batch_size}, {args.epochs} epochs, augment flip+translation, tf {tf.__version__}, "
        f"{os.cpu_count()} CPUs"
    )

    # In-memory baseline: decode everything first (not timed), then the same shuffle/batch/augment.
    from PIL import Image

    x = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files.paths])
    y = files.labels

    def memory_ds():
        aug = build_augmenter(aug_cfg, seed=0)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=0, reshuffle_each_iteration=True)
        ds = ds.batch(args.batch_size, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.map(lambda a, b: (aug(tf.cast(a, tf.float32), training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def disk_ds():
        return image_dataset(
            files,
            InputSpec(size=size),
            args.batch_size,
            shuffle=True,
            augment=aug_cfg,
            cache=None if args.cache == "auto" else False,
            seed=0,
        )

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t)

    def run(make_ds) -> list[float]:
        keras.utils.set_random_seed(0)
        model = create_model(args.model, num_classes=len(files.class_names), input_shape=(size, size, 3))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(memory_ds().take(2), epochs=1, verbose=0, shuffle=False)  # build + trace outside the timing
        timer = Timer()
        timer.times = []
        model.fit(make_ds(), epochs=args.epochs, verbose=0, callbacks=[timer], shuffle=False)
        return timer.times

    # Rounds alternate memory and disk so that load from other processes hits both alike;
    # each pipeline's epoch i is the median over rounds.
    runs: dict[str, list[list[float]]] = {"memory": [], "disk": []}
    for r in range(args.rounds):
        for name, make in (("memory", memory_ds), ("disk", disk_ds)):
            times = run(make)
            runs[name].append(times)
            print(f"round {r + 1} {name:>6}: " + ", ".join(f"{t:.1f}s" for t in times), flush=True)
    mem = [statistics.median(ts) for ts in zip(*runs["memory"])]
    disk = [statistics.median(ts) for ts in zip(*runs["disk"])]
    for name, ts in (("memory", mem), ("disk", disk)):
        print(
            f"{name:>6} (median over rounds): "
            + ", ".join(f"{t:.1f}s" for t in ts)
            + f"  (mean {statistics.mean(ts):.1f}s/epoch)"
        )
    first = disk[0] / mem[0]
    mean = statistics.mean(disk) / statistics.mean(mem)
    later = statistics.mean(disk[1:]) / statistics.mean(mem[1:]) if len(disk) > 1 else float("nan")
    print(
        f"ratio disk/memory: first epoch {first:.3f}, later epochs {later:.3f}, mean over {args.epochs} epochs {mean:.3f} "
        f"(goal <= 1.15: {'met' if mean <= 1.15 else 'NOT met'})"
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
