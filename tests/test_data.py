"""tf.data input pipeline and augmentation (imgclf.data), on tiny real digit images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from imgclf.config import AugmentConfig  # noqa: E402
from imgclf.data import build_augmenter, image_dataset  # noqa: E402
from imgclf.inputs import InputSpec, infer_image_size, list_images, load_image  # noqa: E402


def write_digits(root: Path, per_class: int = 6, size: int = 16, classes=(0, 1, 2)) -> Path:
    """Writes scikit-learn digits as RGB PNGs `<root>/<digit>/<i>.png`, upscaled to `size` px."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * 255 / 16).astype(np.uint8)
    for c in classes:
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(d.target == c)[:per_class]:
            Image.fromarray(images[i]).convert("RGB").resize((size, size), Image.Resampling.NEAREST).save(
                root / str(c) / f"{i}.png"
            )
    return root


def test_split_listing_orders_by_class_and_skips_underscore_folders(tmp_path):
    root = write_digits(tmp_path / "train", per_class=3)
    (root / "_rejected").mkdir()
    Image.new("RGB", (16, 16)).save(root / "_rejected" / "x.png")
    files = list_images(root)
    assert files.class_names == ["0", "1", "2"]
    assert files.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(Path(p).parent.name == files.class_names[y] for p, y in zip(files.paths, files.labels))
    assert infer_image_size(files) == 16


def _ds(root, size, batch, **kw):
    return image_dataset(list_images(root), InputSpec(size=size), batch, **kw)


@pytest.mark.parametrize("cache", [True, False])
def test_image_dataset_yields_raw_pixels_and_labels(tmp_path, cache):
    root = write_digits(tmp_path / "train", per_class=5)
    ds = _ds(root, 16, 4, shuffle=False, cache=cache, seed=0)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (15, 16, 16, 3) and x.dtype == np.float32
    assert y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert x.min() >= 0 and x.max() == 255  # raw [0, 255], not rescaled
    first = list_images(root).paths[0]
    np.testing.assert_array_equal(x[0], np.asarray(Image.open(first).convert("RGB"), dtype=np.float32))


def test_shuffle_is_seeded_and_reshuffles_each_epoch(tmp_path):
    root = write_digits(tmp_path / "train", per_class=8)

    def two_epochs(seed):
        ds = _ds(root, 16, 64, shuffle=True, seed=seed)
        return [np.concatenate([y.numpy() for _, y in ds]).tolist() for _epoch in range(2)]

    a1, a2 = two_epochs(1)
    b1, _ = two_epochs(1)
    assert a1 == b1  # same seed, same order
    assert sorted(a1) == [0] * 8 + [1] * 8 + [2] * 8  # every image once per epoch
    assert a1 != a2  # the next epoch is reshuffled


def test_images_of_another_size_go_through_the_one_input_function(tmp_path):
    root = tmp_path / "train" / "a"
    root.mkdir(parents=True)
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 200  # the center square is uniform 200, the sides black
    Image.fromarray(img).save(root / "wide.png")
    Image.fromarray(np.full((8, 8, 3), 50, np.uint8)).save(root / "small.jpg", quality=100)
    (root / "broken.png").write_bytes(b"not an image")
    rejects = {}
    listing = list_images(tmp_path / "train")
    ds = image_dataset(listing, InputSpec(size=10), 3, shuffle=False, rejects=rejects)
    x = np.concatenate([b[0].numpy() for b in ds])
    assert x.shape == (2, 10, 10, 3)  # the unreadable file is left out...
    assert [listing.entries[i].path.name for i in rejects] == ["broken.png"]  # ...and recorded
    # files in name order: small.jpg (8 px, enlarged), wide.png (40x20, center square kept)
    assert abs(x[0].mean() - 50) < 2 and abs(x[1].mean() - 200) < 3  # Lanczos rings a little at the crop edge
    for got, e in zip(x, [e for e in listing.entries if e.path.name != "broken.png"]):
        np.testing.assert_array_equal(got, load_image(e.path, InputSpec(size=10)))  # the very pixels of evaluate


def test_build_augmenter_layers_follow_the_config():
    assert build_augmenter(AugmentConfig(flip="none")) is None
    aug = build_augmenter(
        AugmentConfig(
            flip="horizontal",
            rotation=0.1,
            zoom=0.1,
            translation=0.1,
            shear=0.2,
            contrast=0.2,
            brightness=0.1,
            erasing=0.5,
        )
    )
    names = ["flip", "rotation", "zoom", "translation", "shear", "contrast", "brightness", "erasing"]
    assert [layer.name for layer in aug.layers] == names
    assert type(aug.get_layer("shear")).__name__ == "RandomShear"


def test_random_erasing_replaces_one_rectangle_per_image():
    x = np.full((16, 20, 20, 3), 128.0, dtype="float32")
    aug = build_augmenter(AugmentConfig(flip="none", erasing=1.0), seed=5)
    out = np.asarray(aug(x, training=True))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    for img in out:
        changed = np.argwhere((img != 128).any(axis=-1))
        assert len(changed), "erasing=1.0 erases every image"
        (r0, c0), (r1, c1) = changed.min(axis=0), changed.max(axis=0)
        box = (r1 - r0 + 1) * (c1 - c0 + 1)
        assert 0.01 * 400 <= box <= 0.4 * 400  # each side sqrt(u) of the image's, u in [0.02, 0.33], whole pixels
        assert len(changed) >= 0.5 * box  # a filled rectangle, not scattered pixels
    assert np.array_equal(np.asarray(aug(x, training=False)), x)  # never at inference
    rarely = build_augmenter(AugmentConfig(flip="none", erasing=0.25), seed=5)
    erased = [(img != 128).any() for img in np.asarray(rarely(np.repeat(x, 8, axis=0), training=True))]
    assert 0.05 < np.mean(erased) < 0.5  # probability 0.25 per image, 128 images


def test_augmentation_changes_training_images_within_range(tmp_path):
    root = write_digits(tmp_path / "train", per_class=4)
    plain = np.concatenate([x.numpy() for x, _ in _ds(root, 16, 12, shuffle=False)])
    cfg = AugmentConfig(flip="horizontal", rotation=0.1, translation=0.1, brightness=0.2, fill_mode="constant")
    aug = np.concatenate([x.numpy() for x, _ in _ds(root, 16, 12, shuffle=False, augment=cfg, seed=3)])
    assert aug.shape == plain.shape
    assert aug.min() >= 0 and aug.max() <= 255
    assert np.abs(aug - plain).mean() > 1.0


def test_augment_preview_cli_writes_a_grid(tmp_path):
    from typer.testing import CliRunner

    from imgclf.cli.main import app

    root = write_digits(tmp_path / "train", per_class=2)
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(
        app,
        [
            "augment-preview",
            str(root),
            "--out",
            str(out),
            "--rotation",
            "0.1",
            "--shear",
            "0.2",
            "--images",
            "3",
            "--variants",
            "4",
        ],
    )
    assert res.exit_code == 0, res.output
    with Image.open(out) as im:
        assert im.size == (5 * 96, 3 * 96)
        grid = np.asarray(im.convert("RGB"), dtype=np.int16)
    # column 0 is the original; augmented columns differ from it
    assert np.abs(grid[:, 96:192] - grid[:, :96]).mean() > 1.0
    bad = CliRunner().invoke(app, ["augment-preview", str(root), "--out", str(out), "--rotation", "2"])
    assert bad.exit_code == 1 and "rotation" in bad.output and "Traceback" not in bad.output
