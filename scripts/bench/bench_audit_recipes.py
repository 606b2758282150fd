"""Which `--cv-train` recipe finds flipped Fashion-MNIST labels best for its time? One fold each.

`scripts/bench/bench_audit.py` runs the whole `imgclf audit --cv-train` (five folds, about ten
minutes on 2 CPU cores). This script asks a narrower question faster: for one fold of the same
set-up (Fashion-MNIST's 60,000 training images, 5 % of labels flipped uniformly at random with
seed 0 by `bench_audit.flip_labels`, the folds of `imgclf.audit.oof.assign_folds(seed=42)`), it
trains the audit's model (`imgclf.audit.cvtrain.default_recipe` plus each recipe's overrides)
on the other folds, predicts fold 0 (12,000 images, 600 of them flipped) with the mirror-image
average the audit uses, and scores confident learning on that fold alone
(`imgclf.audit.confident.find_label_issues`, which calls cleanlab; thresholds from the fold's
own probabilities).

Printed per recipe: training + prediction seconds, accuracy against the TRUE labels, F1 of
each rule against the flipped images, and the "ranked" F1 (flag exactly the 600 lowest
`label_quality` images: what a perfect count would give). One fold's F1 tracks the five-fold
figure closely (the default recipe: 0.737 / 0.773 here against 0.742 / 0.779 over five folds).

`--train-images N` trains on the first N of the other folds' images, to see what fewer, longer
trained folds would give (K = 3 folds train on 40,000 images, K = 2 on 30,000).

Usage:
    .venv/bin/python scripts/bench/bench_audit_recipes.py
    .venv/bin/python scripts/bench/bench_audit_recipes.py --recipes base,epochs5
    .venv/bin/python scripts/bench/bench_audit_recipes.py --recipe 'mine={"epochs": 4}'

Writes `--out` (default /tmp/bench_audit_recipes.json) as well.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT.parent / "src"))

#: name -> (TrainConfig overrides of the audit recipe, training images or None = the fold's 48,000)
RECIPES: dict[str, tuple[dict, int | None]] = {
    "base": ({}, None),  # the audit's recipe: 3 epochs
    "epochs5": ({"epochs": 5}, None),
    "smoothing0.1": ({"label_smoothing": 0.1}, None),
    "k3-epochs8": ({"epochs": 8}, 40000),  # what one of 3 folds would train on
    "k2-epochs10": ({"epochs": 10}, 30000),  # one of 2 folds
}

RULES = ("low_self_confidence", "prune_by_noise_rate", "both", "prune_by_class")


def f1(mask: np.ndarray, flipped: np.ndarray) -> float:
    tp = int((mask & flipped).sum())
    if tp == 0:
        return 0.0
    p, r = tp / int(mask.sum()), tp / int(flipped.sum())
    return 2 * p * r / (p + r)


def run_recipe(name: str, overrides: dict, n_train: int | None, x, noisy, truth, flipped, fold) -> dict:
    import keras
    import tensorflow as tf

    from imgclf.audit.confident import find_label_issues
    from imgclf.audit.cvtrain import _learning_rate, default_recipe
    from imgclf.data import build_augmenter
    from imgclf.models import create_model
    from imgclf.train import build_optimizer

    cfg = default_recipe(**overrides)
    test = np.flatnonzero(fold == 0)
    train = np.flatnonzero(fold != 0)[:n_train]
    t0 = time.monotonic()
    keras.utils.set_random_seed(cfg.seed)
    model = create_model(
        cfg.model, num_classes=10, input_shape=x.shape[1:], dropout=cfg.dropout, weights=None, **cfg.model_options
    )
    steps = math.ceil(len(train) / cfg.batch_size)
    sm = cfg.label_smoothing
    loss = (
        keras.losses.CategoricalCrossentropy(label_smoothing=sm)
        if sm > 0
        else keras.losses.SparseCategoricalCrossentropy()
    )
    model.compile(optimizer=build_optimizer(cfg, _learning_rate(cfg, cfg.epochs, steps), ema=False), loss=loss)
    aug = build_augmenter(cfg.augment, seed=cfg.seed)
    ds = tf.data.Dataset.from_tensor_slices((x[train], noisy[train])).shuffle(len(train), seed=cfg.seed)
    ds = ds.batch(cfg.batch_size)
    if aug is not None:
        ds = ds.map(lambda a, b: (aug(tf.cast(a, tf.float32), training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    if sm > 0:
        ds = ds.map(lambda a, b: (a, tf.one_hot(b, 10)))
    model.fit(ds.prefetch(2), epochs=cfg.epochs, verbose=0)
    p = model.predict(x[test], batch_size=512, verbose=0)
    p = (p + model.predict(x[test][:, :, ::-1], batch_size=512, verbose=0)) / 2
    seconds = time.monotonic() - t0
    p = p.astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    y, fl = noisy[test], flipped[test]
    row = {
        "recipe": name,
        "overrides": overrides,
        "train_images": len(train),
        "seconds": round(seconds, 1),
        "accuracy_true": round(float((p.argmax(1) == truth[test]).mean()), 4),
    }
    for rule in RULES:
        mask = find_label_issues(y, p, rule)
        row[rule] = {"flagged": int(mask.sum()), "f1": round(f1(mask, fl), 3)}
    worst = np.argsort(p[np.arange(len(y)), y], kind="stable")[: int(fl.sum())]
    ranked = np.zeros(len(y), bool)
    ranked[worst] = True
    row["ranked_f1"] = round(f1(ranked, fl), 3)
    keras.backend.clear_session()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)}")
    ap.add_argument(
        "--recipe",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an extra recipe: name=JSON overrides of the audit recipe",
    )
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_audit_recipes.json"))
    args = ap.parse_args()

    from bench_audit import flip_labels

    from imgclf.audit.oof import assign_folds
    from imgclf.datasets import load_fashion_mnist_arrays

    chosen = {n: RECIPES[n] for n in args.recipes.split(",") if n}
    for spec in args.recipe:
        name, _, js = spec.partition("=")
        chosen[name] = (json.loads(js), None)
    sets, _ = load_fashion_mnist_arrays()
    images, labels = sets["train"]
    x, truth = np.asarray(images), np.asarray(labels)
    if x.ndim == 3:  # grayscale -> RGB, as the audit reads the PNGs
        x = np.repeat(x[..., None], 3, axis=-1)
    noisy, flipped = flip_labels(truth, 10, 0.05, 0)
    fold = assign_folds(noisy, 5, seed=42)
    rows = []
    for name, (overrides, n_train) in chosen.items():
        print(f"[{name}] {overrides} on {n_train or 'all'} training images ...", flush=True)
        rows.append(run_recipe(name, overrides, n_train, x, noisy, truth, flipped, fold))
        print(json.dumps(rows[-1]), flush=True)
        args.out.write_text(json.dumps(rows, indent=1))
    print(
        "\n| recipe | training images | seconds | accuracy (true labels) | "
        + " | ".join(f"F1 {r}" for r in RULES)
        + " | ranked F1 |"
    )
    print("|---|---|---|---|" + "---|" * len(RULES) + "---|")
    for r in rows:
        print(
            f"| {r['recipe']} | {r['train_images']:,} | {r['seconds']:.0f} | {r['accuracy_true']:.4f} | "
            + " | ".join(f"{r[rule]['f1']:.3f} ({r[rule]['flagged']})" for rule in RULES)
            + f" | {r['ranked_f1']:.3f} |"
        )


if __name__ == "__main__":
    main()
