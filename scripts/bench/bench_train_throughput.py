"""Training throughput of `cnn` layouts and precision / XLA switches on this machine.

What the Fashion-MNIST recipe (`configs/fashion_mnist.yaml`) was chosen with: images per second
of `model.fit` on in-memory random `--size` x `--size` x 3 batches (default 28 px, Fashion-MNIST's
native size; the config trains at 32: `--size 32`; no input pipeline, no augmentation), so the
figures are the model's own cost. Each variant runs in a fresh process (a mixed-precision
policy is global), one warm-up fit of 5 batches, then one timed fit of `--batches` batches.
The first variant is the baseline of the ratios.

    .venv/bin/python scripts/bench/bench_train_throughput.py
    .venv/bin/python scripts/bench/bench_train_throughput.py --variants "32 1,1,1 float32 0" "16 1,1,1,1,1 float32 0"
    .venv/bin/python scripts/bench/bench_train_throughput.py --variants "16 1,1,1,1,1 float32 0 keras" "16 1,1,1,1,1 float32 0 fused"
    .venv/bin/python scripts/bench/bench_train_throughput.py --size 32 --batch-size 256 --batches 100

A variant is "WIDTH DEPTH PRECISION JIT [BN]": `cnn` options `width` and `depth` (comma-separated
blocks per stage), precision `float32` or `mixed_bfloat16`, XLA `0` or `1`, and the batch-norm
layer: `fused` (imgclf's `FusedBatchNormalization`, the default) or `keras`
(`keras.layers.BatchNormalization`, unfused ops on TensorFlow). Prints one line per
variant: images/s, the implied seconds per epoch of Fashion-MNIST's 53,944 training images, and
the ratio to the baseline's throughput.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_VARIANTS = [
    "16 1,1,1,1,1 float32 0 keras",  # the 2026-11-22 recipe's layout, Keras' batch norm
    "16 1,1,1,1,1 float32 0 fused",  # ... with the fused batch-norm kernel
    "16 1,1,1,1,1 mixed_bfloat16 0 fused",
    "16 1,1,1,1,1 float32 1 fused",  # ... with XLA
    "32 1,1,1 float32 0 fused",  # the first Fashion-MNIST recipe's layout
]
TRAIN_IMAGES = 53_944  # Fashion-MNIST train split in docs/benchmarks.md


def child(
    width: int, depth: list[int], precision: str, jit: bool, bn: str, batch_size: int, batches: int, size: int = 28
) -> float:
    """Images/s of one variant; runs inside the child process."""
    import keras
    import numpy as np
    import tensorflow as tf

    from imgclf.models import _common
    from imgclf.models.registry import create_model

    if bn == "keras":
        _common.BATCH_NORM = keras.layers.BatchNormalization

    keras.mixed_precision.set_global_policy(precision)
    model = create_model("cnn", num_classes=10, input_shape=(size, size, 3), width=width, depth=depth)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit,
    )
    rng = np.random.default_rng(0)
    n = batch_size * batches
    x = rng.integers(0, 256, (n, size, size, 3)).astype("float32")
    y = rng.integers(0, 10, n)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)
    model.fit(ds.take(5), epochs=1, verbose=0)
    t = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--variants", nargs="+", default=DEFAULT_VARIANTS, help='"WIDTH DEPTH PRECISION JIT [BN]" per variant'
    )
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--batches", type=int, default=40, help="timed batches per variant")
    ap.add_argument("--size", type=int, default=28, help="image height and width, pixels (the config trains at 32)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        width, depth, precision, jit, bn = args.child
        ips = child(
            int(width),
            [int(d) for d in depth.split(",")],
            precision,
            jit == "1",
            bn,
            args.batch_size,
            args.batches,
            args.size,
        )
        print(f"{ips:.1f}")
        return
    print(
        f"cnn at {args.size}x{args.size}x3, batch {args.batch_size}, {args.batches} timed batches, {os.cpu_count()} CPUs",
        flush=True,
    )
    base = None
    for v in args.variants:
        width, depth, precision, jit, bn = (v.split() + ["fused"])[:5]
        if bn not in ("fused", "keras"):
            ap.error(f"batch norm must be fused or keras, received {bn!r} in variant {v!r}")
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--batch-size",
                str(args.batch_size),
                "--batches",
                str(args.batches),
                "--size",
                str(args.size),
                "--child",
                width,
                depth,
                precision,
                jit,
                bn,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        ips = float(out.stdout.strip().splitlines()[-1])
        base = base or ips
        print(
            f"width {width:>3} depth [{depth}] {precision:<15} xla={jit} bn={bn:<5}: {ips:7.1f} img/s, "
            f"{TRAIN_IMAGES / ips:6.1f} s/epoch (53,944 images), {ips / base:.2f}x baseline",
            flush=True,
        )


if __name__ == "__main__":
    main()
