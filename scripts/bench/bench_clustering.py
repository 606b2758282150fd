"""Cluster quality of three kinds of embeddings, against the true labels (issue 7).

On (1) scikit-learn's digits (1,797 real 8x8 handwritten digits; a stratified 70/30 split,
seed 0: the training part trains the models, the test part is clustered) and (2) the 10,000
Fashion-MNIST test images (a random subset of the official training set trains the models),
every image written as a PNG in class folders and read back through `imgclf.explore`:

  (a) raw     flattened pixels in [0, 1]                         (`imgclf embed --model raw`)
  (b) autoenc the bottleneck of imgclf's convolutional autoencoder, trained on the training
              images without labels                              (`imgclf autoencoder train`)
  (c) cnn     the "embedding" layer (global-average-pooled penultimate layer) of a classifier
              trained on the training images: `imgclf.train.train` with the registry `cnn`
              when it exists, otherwise the registry `cnn` fitted here with plain `keras.fit`
              (said in the output), otherwise a small Keras CNN defined here

then KMeans with k = 10 (n_init 10, random_state = seed) and purity / adjusted Rand index
(`imgclf.explore.cluster.kmeans`). Prints a markdown table and writes `results.json`.

    .venv/bin/python scripts/bench/bench_clustering.py                   # both datasets
    .venv/bin/python scripts/bench/bench_clustering.py --datasets digits --work /tmp/bc
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "T-shirt_top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle_boot",
)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def read_idx(path: Path) -> np.ndarray:
    """Reads a gzipped idx file (LeCun's MNIST format: magic, dims as big-endian uint32, uint8 data)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray, names) -> Path:
    """Writes `root/<class>/<i>.png` (grayscale) unless the folder already holds them all."""
    if root.is_dir() and sum(1 for _ in root.rglob("*.png")) == len(images):
        return root
    for i, (img, y) in enumerate(zip(images, labels)):
        p = root / names[int(y)] / f"{i:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(p, compress_level=1)
    return root


def _split_train(root: Path, images: np.ndarray, labels: np.ndarray, names, seed: int, val: float) -> Path:
    """Writes `root/train/<class>/` and `root/val/<class>/` (stratified), the layout `imgclf train` reads."""
    from sklearn.model_selection import train_test_split

    i_tr, i_va = train_test_split(np.arange(len(images)), test_size=val, stratify=labels, random_state=seed)
    write_folder(root / "train", images[i_tr], labels[i_tr], names)
    write_folder(root / "val", images[i_va], labels[i_va], names)
    return root


def export_digits(work: Path, seed: int) -> tuple[Path, Path, int]:
    """Digits: 30% test (clustered), the rest split 85/15 into train/val (models trained on it)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    imgs = np.round(d.images * 255 / 16).astype(np.uint8)
    idx_tr, idx_te = train_test_split(np.arange(len(imgs)), test_size=0.3, stratify=d.target, random_state=seed)
    names = [str(i) for i in range(10)]
    split = _split_train(work / "digits" / "split", imgs[idx_tr], d.target[idx_tr], names, seed, 0.15)
    te = write_folder(work / "digits" / "test", imgs[idx_te], d.target[idx_te], names)
    return split, te, 8


def export_fashion(work: Path, seed: int, n_train: int) -> tuple[Path, Path, int]:
    """Fashion-MNIST: the 10,000 official test images (clustered); `n_train` random official
    training images split 90/10 into train/val (models trained on it)."""
    xt = read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz")
    yt = read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")
    xtr = read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz")
    ytr = read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    pick = np.sort(np.random.default_rng(seed).choice(len(xtr), size=n_train, replace=False))
    split = _split_train(work / "fashion" / f"split{n_train}", xtr[pick], ytr[pick], FASHION_CLASSES, seed, 0.1)
    te = write_folder(work / "fashion" / "test", xt, yt, FASHION_CLASSES)
    return split, te, 28


def train_classifier(split_dir: Path, size: int, epochs: int, seed: int, out: Path, flip: str) -> tuple[Path, str]:
    """Trains a `cnn` classifier on `split_dir/{train,val}`; returns (what `embed --model` takes, how)."""
    try:
        from imgclf.train import train as imgclf_train  # the pipeline's own trainer, once it has landed
    except ImportError:
        imgclf_train = None
    if imgclf_train is not None:
        from imgclf.config import AugmentConfig, TrainConfig

        cfg = TrainConfig(
            model="cnn", image_size=size, epochs=epochs, seed=seed, run_name=out.name, augment=AugmentConfig(flip=flip)
        )
        try:
            run = Path(imgclf_train(split_dir, cfg, models_dir=out.parent))
        except Exception as exc:
            failed = f"imgclf.train.train failed ({type(exc).__name__}: {str(exc)[:120]}); "
        else:
            hist = (run / "history.csv").read_text().splitlines()
            return run, f"imgclf.train.train, registry cnn, {epochs} epochs (history: {hist[0]} / {hist[-1]})"
    else:
        failed = "imgclf.train.train not available; "
    train_dir = split_dir / "train"
    import keras

    from imgclf.explore.loading import load_all, scan_folder

    files, labels = scan_folder(train_dir)
    x, idx, _ = load_all(files, size, root=train_dir, description="classifier: loading")
    names = sorted(set(labels))
    y = np.array([names.index(labels[i]) for i in idx])
    keras.utils.set_random_seed(seed)
    try:
        from imgclf.models.registry import create_model

        model = create_model("cnn", num_classes=len(names), input_shape=(size, size, 3))
        how = failed + "registry cnn fitted with plain keras.fit in this script"
    except ImportError:
        from keras import layers

        inp = keras.Input((size, size, 3))
        h = layers.Rescaling(1 / 255)(inp)
        for f in (32, 64):
            h = layers.Conv2D(f, 3, padding="same", activation="relu")(h)
            h = layers.MaxPooling2D()(h)
        h = layers.GlobalAveragePooling2D(name="embedding")(h)
        model = keras.Model(inp, layers.Dense(len(names), activation="softmax")(h))
        how = failed + "a small Keras CNN defined in this script (no registry)"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=epochs, batch_size=64, validation_split=0.0, shuffle=True, verbose=0)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "classifier.keras")
    acc = hist.history["accuracy"][-1]
    return out / "classifier.keras", f"{how}; train accuracy {acc:.3f} after {epochs} epochs"


def score(emb, seed: int) -> dict:
    from imgclf.explore.cluster import kmeans
    from imgclf.explore.options import ClusterOptions

    t, c = time.perf_counter(), cpu_seconds()
    res = kmeans(emb.embeddings, ClusterOptions(k=10, seed=seed, n_init=10), emb.labels)
    return {
        "images": len(emb.paths),
        "dims": int(emb.embeddings.shape[1]),
        "purity": round(res.purity, 4),
        "ari": round(res.ari, 4),
        "kmeans_wall_s": round(time.perf_counter() - t, 2),
        "kmeans_cpu_s": round(cpu_seconds() - c, 2),
        "sizes": res.sizes,
    }


def bench(name: str, split_dir: Path, test_dir: Path, size: int, args, work: Path) -> dict:
    from imgclf.explore.autoencoder import train_autoencoder
    from imgclf.explore.embed import embed_folder
    from imgclf.explore.options import AutoencoderOptions, EmbedOptions

    train_dir = split_dir / "train"
    out: dict = {
        "train_images": sum(1 for _ in train_dir.rglob("*.png")),
        "test_images": sum(1 for _ in test_dir.rglob("*.png")),
    }
    emb = embed_folder(test_dir, EmbedOptions(model="raw", size=size))
    out["raw"] = score(emb, args.seed)

    ae_size = size if size % 4 == 0 else size + (4 - size % 4)
    t, c = time.perf_counter(), cpu_seconds()
    ae_run = work / name / "ae"
    ae = train_autoencoder(
        train_dir,
        ae_run,
        AutoencoderOptions(size=ae_size, bottleneck=args.bottleneck, epochs=args.ae_epochs, seed=args.seed),
    )
    out["autoencoder_train"] = {
        "epochs": args.ae_epochs,
        "bottleneck": args.bottleneck,
        "size": ae_size,
        "loss": round(ae.loss, 5),
        "val_loss": None if ae.val_loss is None else round(ae.val_loss, 5),
        "wall_s": round(time.perf_counter() - t, 1),
        "cpu_s": round(cpu_seconds() - c, 1),
    }
    emb = embed_folder(test_dir, EmbedOptions(model=f"autoencoder:{ae_run}"))
    out["autoencoder"] = score(emb, args.seed)

    t, c = time.perf_counter(), cpu_seconds()
    clf_path, how = train_classifier(split_dir, size, args.clf_epochs, args.seed, work / name / "clf", args.flip)
    out["classifier_train"] = {
        "how": how,
        "epochs": args.clf_epochs,
        "wall_s": round(time.perf_counter() - t, 1),
        "cpu_s": round(cpu_seconds() - c, 1),
    }
    emb = embed_folder(test_dir, EmbedOptions(model=str(clf_path)))
    out["classifier"] = score(emb, args.seed)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "fashion"], choices=["digits", "fashion"])
    ap.add_argument("--work", type=Path, default=None, help="Where PNGs and models go (default: a temp dir).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fashion-train", type=int, default=12000, help="Official training images used to train.")
    ap.add_argument("--ae-epochs", type=int, default=None, help="Default: 30 digits, 8 fashion.")
    ap.add_argument("--clf-epochs", type=int, default=None, help="Default: 20 digits, 4 fashion.")
    ap.add_argument("--bottleneck", type=int, default=32)
    args = ap.parse_args()
    os.environ.setdefault("IMGCLF_QUIET", "1")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_clustering_"))
    results: dict = {"machine": "2-core CPU, 24 GB, no GPU", "seed": args.seed, "k": 10, "n_init": 10}
    t0, c0 = time.perf_counter(), cpu_seconds()
    for name in args.datasets:
        a = argparse.Namespace(**vars(args))
        if name == "digits":
            tr, te, size = export_digits(work, args.seed)
            a.ae_epochs, a.clf_epochs, a.flip = args.ae_epochs or 30, args.clf_epochs or 20, "none"
        else:
            tr, te, size = export_fashion(work, args.seed, args.fashion_train)
            a.ae_epochs, a.clf_epochs, a.flip = args.ae_epochs or 8, args.clf_epochs or 4, "horizontal"
        results[name] = bench(name, tr, te, size, a, work)
        print(json.dumps({name: results[name]}, indent=1), file=sys.stderr)
    results["total_wall_s"] = round(time.perf_counter() - t0, 1)
    results["total_cpu_s"] = round(cpu_seconds() - c0, 1)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| data | embedding | dims | purity | ARI | ratio ARI vs raw |\n|---|---|---|---|---|---|")
    for name in args.datasets:
        r = results[name]
        for key, label in (
            ("raw", "raw pixels"),
            ("autoencoder", "autoencoder bottleneck"),
            ("classifier", "classifier embedding"),
        ):
            s = r[key]
            print(
                f"| {name} ({s['images']} test images) | {label} | {s['dims']} | {s['purity']:.3f} | {s['ari']:.3f} | "
                f"{s['ari'] / r['raw']['ari']:.2f}x |"
            )
    print(
        f"\ntotal: {results['total_wall_s']} s wall, {results['total_cpu_s']} s CPU; details in {work / 'results.json'}"
    )


if __name__ == "__main__":
    main()
