"""Test helper (not a conftest): a tiny real training run directory, as `imgclf train` writes it.

`make_run(dest)` writes, under `dest`:

    data/test/<class>/<file>.png   tiny solid-colour images (+ noise), square at `SIZE` pixels
    data/train/<class>/...         the images the model was fitted on
    run/best.keras                 a real Keras model: Rescaling(1/255) inside, takes raw RGB
                                   `(batch, SIZE, SIZE, 3)` in [0, 255], softmax output; a Conv2D
                                   named "last_conv" (Grad-CAM target) and a Dense "embedding"
    run/run.json                   `RunInfo` (model, class_names, image_size, data_dir=data/)
    run/history.csv                Keras CSVLogger columns

The model is trained once per process and copied afterwards (training takes a few seconds).
"""

from __future__ import annotations

import atexit
import csv
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 16
CLASSES = ("blue", "green", "red")
_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
_CACHE: dict[str, Path] = {}


def colour_image(name: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Returns a noisy solid `(size, size, 3)` uint8 image of colour `name`."""
    base = np.array(_COLOURS[name], dtype=np.float32)
    img = base + rng.normal(0, 25, size=(size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_split(root: Path, per_class: int, seed: int, size: int = SIZE) -> None:
    """Writes `root/<class>/<i>.png` for every class in `CLASSES`."""
    rng = np.random.default_rng(seed)
    for c in CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(colour_image(c, rng, size)).save(root / c / f"{c}_{i:03d}.png")


def build_model(num_classes: int = len(CLASSES), size: int = SIZE):
    """The tiny CNN used by the tests (layer names as the model registry names them)."""
    import keras

    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="rescaling")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(8, activation="relu", name="embedding")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def _build(dest: Path) -> None:
    import keras

    from imgclf.rundir import RunInfo, save_run_info

    data = dest / "data"
    write_split(data / "train", per_class=20, seed=1)
    write_split(data / "test", per_class=6, seed=2)
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for k, c in enumerate(CLASSES):
        for _ in range(40):
            xs.append(colour_image(c, rng))
            ys.append(k)
    x = np.stack(xs).astype("float32")
    y = np.array(ys)
    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=12, batch_size=20, verbose=0, shuffle=True)
    run = dest / "run"
    run.mkdir(parents=True)
    model.save(run / "best.keras")
    save_run_info(
        run,
        RunInfo(model="cnn", class_names=list(CLASSES), image_size=SIZE, data_dir=str(data), status="finished"),
    )
    with open(run / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"])
        h = hist.history
        for e in range(len(h["loss"])):
            w.writerow([e, h["accuracy"][e], 0.02, h["loss"][e], h["accuracy"][e] * 0.95, h["loss"][e] * 1.1])


def make_run(dest: str | Path) -> Path:
    """Copies the cached tiny run into `dest` (building it on first use); returns `dest/run`.

    `run.json`'s `data_dir` is rewritten to point at `dest/data`.
    """
    from imgclf.rundir import load_run_info, save_run_info

    dest = Path(dest)
    if "root" not in _CACHE:
        root = Path(tempfile.mkdtemp(prefix="imgclf_tiny_run_"))
        atexit.register(shutil.rmtree, root, True)
        _build(root)
        _CACHE["root"] = root
    shutil.copytree(_CACHE["root"], dest, dirs_exist_ok=True)
    info = load_run_info(dest / "run")
    info.data_dir = str(dest / "data")
    save_run_info(dest / "run", info)
    return dest / "run"
