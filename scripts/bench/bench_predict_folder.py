"""Folder throughput of `imgclf predict` with a Keras model: predict's own map on the engine
against the `imgclf.inputs.iter_batches` loaders and a per-image `model.predict()` loop (what
issue 6 rules out).

All of them prepare every image with `imgclf.inputs.load_image` and call the same model;
only the way images are decoded and batched differs:

    engine        predict's map (`imgclf.predict.load_input`) on `imgclf.engine`'s local executor,
                  one batch ahead (`imgclf.parallel.batched_ahead`): what `imgclf predict DIR` uses
    thread pool   imgclf.inputs.iter_batches()                               (the default batch source)
    tf.data       imgclf.inputs.iter_batches(source=imgclf.data.tf_batches)  (evaluate, Keras models)
    per image     load_image + model.predict(one image) in a Python loop (the baseline)

The model is the registry's `cnn` (random weights: speed does not depend on them) at `--size`
pixels; the folder holds `--images` JPEGs of 640x480 pixels. Prints images/s of each (median of
`--repeats`, after one warm-up pass) and the ratio to the per-image baseline.

    .venv/bin/python scripts/bench/bench_predict_folder.py [--images 512] [--size 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_folder(folder: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    base = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = np.clip(base + rng.integers(0, 60, (480, 640, 3)), 0, 255).astype("uint8")
        Image.fromarray(photo).save(folder / f"{i:05d}.jpg", quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--size", type=int, default=64, help="model input side, pixels")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from functools import partial

    import numpy as np

    from imgclf.data import tf_batches
    from imgclf.engine import make_executor
    from imgclf.inputs import InputSpec, collect_inputs, iter_batches, load_image
    from imgclf.models.registry import create_model
    from imgclf.parallel import batched_ahead, default_workers
    from imgclf.predict import load_input, stack_loaded

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        make_folder(folder, args.images)
        items = collect_inputs([folder])
        model = create_model("cnn", num_classes=10, input_shape=(args.size, args.size, 3))
        spec, workers = InputSpec(size=args.size), default_workers()

        def through(source) -> None:
            for batch in iter_batches(items, spec, batch_size=args.batch_size, workers=workers, source=source):
                np.asarray(model(batch.images.astype(np.float32), training=False))

        def engine() -> None:
            load = partial(load_input, spec=spec)
            for loaded in batched_ahead(make_executor("local", workers).map(load, items), args.batch_size):
                images, _ = stack_loaded(loaded, spec.shape)
                np.asarray(model(images.astype(np.float32), training=False))

        def per_image() -> None:
            for it in items:
                assert it.path is not None
                model.predict(load_image(it.path, spec)[None].astype(np.float32), verbose=0)

        variants: dict[str, Callable[[], None]] = {
            "per image (baseline)": per_image,
            "engine (predict)": engine,
            "thread pool": lambda: through(None),
            "tf.data": lambda: through(tf_batches),
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        for f in variants.values():  # warm-up: tf.function tracing, file cache
            f()
        for _ in range(args.repeats):  # interleaved, so every variant sees the same load
            for name, f in variants.items():
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
        print(
            f"{args.images} JPEGs 640x480 -> cnn at {args.size}x{args.size}, batch {args.batch_size}, "
            f"{workers} workers, {os.cpu_count()} CPUs, median of {args.repeats}"
        )
        base = statistics.median(times["per image (baseline)"])
        for name, ts in times.items():
            m = statistics.median(ts)
            print(f"{name:<22} {m:7.2f} s  {args.images / m:8.1f} img/s  {base / m:5.2f}x baseline")


if __name__ == "__main__":
    main()
