"""Test helper (not a conftest): a tiny real training run directory, made by `imgclf.train`.

`make_run(dest)` gives, under `dest`:

    data/train/<class>/<file>.png   noisy solid-colour images (red / green / blue), `SIZE` px,
    data/val/<class>/...            20 / 6 / 6 per class
    data/test/<class>/...
    run/                            what `imgclf.train.train` wrote for the registry model
                                    `cnn` (width 8, two stages: layers "last_conv" and
                                    "embedding" exist) trained on data/ for a few epochs:
                                    best.keras, run.json, history.csv, train_state.json...

The run is trained once per test process (a few seconds) and copied afterwards, so a change
to what `train` writes is seen by every test that uses it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 16
CLASSES = ("blue", "green", "red")
PER_SPLIT = {"train": 20, "val": 6, "test": 6}
_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
_CACHE: dict[str, Path] = {}


def colour_image(name: str, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Returns a noisy solid `(size, size, 3)` uint8 image of colour `name`."""
    base = np.array(_COLOURS[name], dtype=np.float32)
    img = base + rng.normal(0, 25, size=(size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_split(root: Path, per_class: int, seed: int, size: int = SIZE) -> None:
    """Writes `root/<class>/<class>_<i>.png` for every class in `CLASSES`."""
    rng = np.random.default_rng(seed)
    for c in CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(colour_image(c, rng, size)).save(root / c / f"{c}_{i:03d}.png")


def train_config(**overrides):
    """The `TrainConfig` of the tiny run (a registry cnn, a few epochs)."""
    from imgclf.config import TrainConfig

    values = dict(
        model="cnn",
        model_options={"width": 8, "depth": [1, 1]},
        epochs=4,
        batch_size=16,
        learning_rate=0.01,
        augment={"flip": "horizontal"},
        seed=0,
        early_stopping_patience=10,
        class_weights=False,
    )
    values.update(overrides)
    return TrainConfig.model_validate(values)


def _build(dest: Path) -> None:
    from imgclf.train import train

    data = dest / "data"
    for seed, (split, n) in enumerate(PER_SPLIT.items(), start=1):
        write_split(data / split, per_class=n, seed=seed)
    train(data, train_config(), run_dir=dest / "run")


def make_run(dest: str | Path) -> Path:
    """Copies the cached tiny run into `dest` (training it on first use); returns `dest/run`.

    `run.json`'s `data_dir` is rewritten to point at `dest/data`.
    """
    from imgclf.records.run import load_run_info, save_run_info

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
