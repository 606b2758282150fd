"""Epoch times of `imgclf train` with tf.data's autotuner on (TensorFlow's default) and off
(imgclf's pipelines, `imgclf.data.static_options`).

On a 2-core VM about half of the Fashion-MNIST epochs took 1.6-1.9x as long as the others,
whichever epoch, and always a whole epoch at a time (52-56 s or about 82 s, sometimes 114-142 s).
This script shows where that came from: it trains a run config's `train:` recipe with
`imgclf.train.train` on a class-stratified subset of a split made by `imgclf split` (symbolic
links, `--train-per-class` / `--val-per-class` images per class), each variant in a fresh
process, alternating `on, off, on, off, ...` so the machine's own drift hits both alike, and
prints every epoch's time (the line `imgclf train` prints) with the median, the mean and the
share of "slow" epochs (more than 1.3x the fastest epoch after the first, which also decodes
the images into the in-memory cache).

    .venv/bin/python scripts/bench/bench_epoch_times.py --split /tmp/fm/data/split \\
        --config configs/fashion_mnist.yaml --epochs 8 --pairs 1

"on" is the baseline: the same pipeline with `static_options` replaced by plain
`tf.data.Options()` (the autotuner on, as TensorFlow ships it).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+) \((\d+)s\)")
SLOW = 1.3  # an epoch slower than this multiple of the fastest later epoch counts as slow


def child(split: str, config: str, epochs: int, autotune: bool, run_dir: str) -> None:
    """Trains once; runs inside the child process (its output carries the epoch lines)."""
    import yaml

    import imgclf.data
    from imgclf.config import TrainConfig
    from imgclf.train import train

    if autotune:
        import tensorflow as tf

        imgclf.data.static_options = tf.data.Options  # TensorFlow's default: autotuner on
    section = yaml.safe_load(Path(config).read_text())["train"]
    section.update(epochs=epochs, run_name=None, models=[], repeats=1)
    train(Path(split), TrainConfig.model_validate(section), run_dir=Path(run_dir))


def subset(split: Path, dest: Path, per_class: dict[str, int]) -> None:
    """Links the first `per_class[name]` files (sorted) of every class of `split/name`."""
    for name, n in per_class.items():
        for cls in sorted(p for p in (split / name).iterdir() if p.is_dir() and not p.name.startswith("_")):
            out = dest / name / cls.name
            out.mkdir(parents=True)
            for f in sorted(cls.iterdir())[:n]:
                (out / f.name).symlink_to(f.resolve())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", help="a split folder made by `imgclf split` (train/, val/)")
    ap.add_argument("--config", default="configs/fashion_mnist.yaml", help="run YAML whose train: section is used")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=1, help="on/off pairs, alternated")
    ap.add_argument("--train-per-class", type=int, default=1000)
    ap.add_argument("--val-per-class", type=int, default=150)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        split, run_dir, autotune, epochs = args.child
        child(split, args.config, int(epochs), autotune == "on", run_dir)
        return
    if not args.split:
        ap.error("--split SPLIT is required (a folder made by `imgclf split`)")

    with tempfile.TemporaryDirectory(prefix="imgclf_epochs_") as tmp:
        data = Path(tmp) / "split"
        subset(Path(args.split), data, {"train": args.train_per_class, "val": args.val_per_class})
        n_train = sum(1 for _ in (data / "train").rglob("*") if _.is_symlink())
        print(f"subset: {n_train} train images, {args.epochs} epochs, config {args.config}")
        results: dict[str, list[int]] = {"on": [], "off": []}
        for i in range(args.pairs):
            for mode in ("on", "off"):
                cmd = [
                    sys.executable,
                    __file__,
                    "--config",
                    args.config,
                    "--child",
                    str(data),
                    str(Path(tmp) / f"run-{mode}-{i}"),
                    mode,
                    str(args.epochs),
                ]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{mode}: training failed:\n{out.stderr[-2000:]}")
                times = [int(m.group(3)) for m in EPOCH_LINE.finditer(out.stdout + out.stderr)][: args.epochs]
                print(f"autotuner {mode:3}: epochs (s) {' '.join(map(str, times))}")
                results[mode] += times[1:]
        for mode, later in results.items():
            fast = min(later)
            slow = sum(t > SLOW * fast for t in later)
            print(
                f"autotuner {mode:3}: epochs 2+ median {statistics.median(later):.1f} s, mean "
                f"{statistics.mean(later):.1f} s, slow (> {SLOW}x {fast} s) {slow} of {len(later)}"
            )
        print(f"mean epoch time, on / off: {statistics.mean(results['on']) / statistics.mean(results['off']):.2f}x")


if __name__ == "__main__":
    main()
