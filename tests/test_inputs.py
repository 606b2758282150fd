"""The one path from an image file to the model (`imgclf.inputs`): resize policies, the lister,
the batch iterator, and the promise that training and `evaluate` see the same pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from helpers_loader_bug import BUG_MESSAGE, planted_loader_bug, write_planted_bug
from imgclf.data import tf_batches
from imgclf.errors import DataError, ImageError, ImgclfError
from imgclf.inputs import (
    InputItem,
    InputSpec,
    is_presplit,
    iter_batches,
    list_images,
    load_image,
    load_item,
    resize_image,
)

DATA = Path(__file__).parent / "data"

#: The batch sources of `iter_batches`: the default thread pool, and tf.data.
SOURCES = {"threads": None, "tf": tf_batches}


def _stripes(w, h):
    """An image whose left third is red, middle green, right blue (so the crop is checkable)."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 3, 0] = 255
    a[:, w // 3 : 2 * w // 3, 1] = 255
    a[:, 2 * w // 3 :, 2] = 255
    return Image.fromarray(a)


# ----------------------------------------------------------------------------- resize policies
def test_center_crop_keeps_the_center():
    out = np.asarray(resize_image(_stripes(300, 100), InputSpec(size=50)))
    assert out.shape == (50, 50, 3)
    # 300x100 -> 150x50, crop x in [50, 100): exactly the green middle third
    assert out[:, 5:45, 1].min() > 200 and out[:, 5:45, 0].max() < 60


def test_pad_letterboxes_the_whole_image_onto_the_fill_colour():
    spec = InputSpec(size=60, resize="pad", pad_color=(7, 8, 9))
    out = np.asarray(resize_image(_stripes(300, 100), spec))  # -> 60x20 centered in 60x60
    assert out.shape == (60, 60, 3)
    assert (out[:20] == (7, 8, 9)).all() and (out[40:] == (7, 8, 9)).all()  # bands above and below
    band = out[20:40]
    assert band[:, :15, 0].min() > 200 and band[:, 25:35, 1].min() > 200 and band[:, 45:, 2].min() > 200


def test_squish_keeps_all_content_without_the_aspect_ratio():
    out = np.asarray(resize_image(_stripes(300, 100), InputSpec(size=30, resize="squish")))
    assert out.shape == (30, 30, 3)
    assert out[:, :8, 0].min() > 200 and out[:, 12:18, 1].min() > 200 and out[:, 22:, 2].min() > 200


@pytest.mark.parametrize("resize", ["center_crop", "pad", "squish"])
@pytest.mark.parametrize("size", [(10, 40), (40, 10), (7, 7), (1000, 3)])
def test_every_policy_gives_the_square_at_any_aspect(resize, size):
    assert resize_image(Image.new("RGB", size), InputSpec(size=16, resize=resize)).size == (16, 16)


def test_interpolation_is_part_of_the_spec():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 37, 3), dtype=np.uint8))
    near = np.asarray(resize_image(img, InputSpec(size=16, interpolation="nearest")))
    auto = np.asarray(resize_image(img, InputSpec(size=16)))
    assert near.shape == auto.shape and not np.array_equal(near, auto)
    assert set(np.unique(near)) <= set(np.unique(np.asarray(img)))  # nearest only copies pixels


def test_spec_rejects_bad_values():
    with pytest.raises(ValidationError):
        InputSpec(size=0)
    with pytest.raises(ValidationError):
        InputSpec(size=8, resize="stretch")
    with pytest.raises(ValidationError):
        InputSpec(size=8, pad_color=(0, 0, 300))


def test_load_image_applies_exif_then_the_policy(tmp_path):
    img = _stripes(60, 20)  # landscape stripes
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    arr = load_image(tmp_path / "r.jpg", InputSpec(size=20))
    # displayed portrait 20x60: the center crop is the (green) middle band
    assert arr.shape == (20, 20, 3) and arr.dtype == np.uint8
    assert arr[..., 1].mean() > 150 and arr[..., 0].mean() < 80


def test_load_image_alpha_and_16_bit_follow_the_spec():
    white = load_image(DATA / "rgba.png", InputSpec(size=8))
    grey = load_image(DATA / "rgba.png", InputSpec(size=8, background=(128, 128, 128)))
    assert not np.array_equal(white, grey)  # transparent pixels take the spec's background
    g16 = load_image(DATA / "gray16.png", InputSpec(size=8))
    assert g16.dtype == np.uint8 and 0 < g16.mean() < 255  # scaled to 8 bits, not clipped to white


# ------------------------------------------------------------------------------------ lister
def _touch(p: Path) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")


def test_list_images_class_tree_presplit_and_hidden_names(tmp_path):
    flat = tmp_path / "flat"
    for rel in (
        "cat/a.png",
        "cat/sub/b.png",
        "dog/c.png",
        "_rejected/x/d.png",
        ".hidden/e.png",
        "loose.png",
        "cat/_x.png",
    ):
        _touch(flat / rel)
    lst = list_images(flat)
    assert lst.layout == "classes" and lst.class_names == ["cat", "dog"]
    assert [(e.rel, e.label, e.subset) for e in lst.entries] == [
        ("cat/a.png", "cat", None),
        ("cat/sub/b.png", "cat", None),
        ("dog/c.png", "dog", None),
    ]
    assert lst.labels.tolist() == [0, 0, 1] and lst.counts().tolist() == [2, 1]
    assert [p.name for p in lst.strays] == ["loose.png"] and not lst.labelled
    pre = tmp_path / "pre"
    for rel in ("train/cat/a.png", "test/cat/b.png", "val/dog/c.png", "_reports/r.png"):
        _touch(pre / rel)
    assert is_presplit(pre) and not is_presplit(flat)
    lst = list_images(pre)
    assert lst.layout == "presplit" and lst.labelled
    assert {(e.rel, e.label, e.subset) for e in lst.entries} == {
        ("train/cat/a.png", "cat", "train"),
        ("test/cat/b.png", "cat", "test"),
        ("val/dog/c.png", "dog", "val"),
    }


def test_classes_called_train_and_test_with_files_are_a_class_tree(tmp_path):
    _touch(tmp_path / "train" / "a.png")
    _touch(tmp_path / "test" / "b.png")
    assert not is_presplit(tmp_path)
    assert list_images(tmp_path).class_names == ["test", "train"]


def test_list_images_with_a_models_classes(tmp_path):
    for rel in ("a/1.png", "b/2.png"):
        _touch(tmp_path / rel)
    lst = list_images(tmp_path, class_names=["a", "b", "z"])
    assert lst.labels.tolist() == [0, 1] and lst.counts().tolist() == [1, 1, 0]  # a missing class is fine
    with pytest.raises(DataError, match=r"\['b'\].*not classes of this model"):
        list_images(tmp_path, class_names=["a"])
    with pytest.raises(DataError, match="not found"):
        list_images(tmp_path / "missing")


def test_loose_folder_and_extension_filter(tmp_path):
    for name in ("x.png", "y.JPG", "notes.txt"):
        _touch(tmp_path / name)
    lst = list_images(tmp_path)
    assert lst.layout == "loose" and len(lst) == 3 and lst.labels.tolist() == [-1, -1, -1]
    from imgclf.images import IMAGE_EXTENSIONS

    assert [p.name for p in list_images(tmp_path, extensions=IMAGE_EXTENSIONS).paths] == ["x.png", "y.JPG"]


# ---------------------------------------------------------------------------------- iterator
@pytest.mark.parametrize("backend", ["threads", "tf"])
def test_iter_batches_reports_each_failure_in_place(tmp_path, backend):
    rng = np.random.default_rng(0)
    items = []
    for i in range(7):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)).save(p)
        items.append(InputItem(name=str(p), path=p, label=i % 2))
    (tmp_path / "bad.png").write_bytes(b"<html>not an image</html>")
    items.insert(3, InputItem(name="bad", path=tmp_path / "bad.png", label=1))
    items.append(InputItem(name="missing", path=tmp_path / "none.png", error="file not found"))
    items.append(InputItem(name="upload", data=(tmp_path / "0.png").read_bytes()))
    spec = InputSpec(size=8)
    batches = list(iter_batches(items, spec, batch_size=4, workers=2, source=SOURCES[backend]))
    assert [b.start for b in batches] == [0, 4, 8]
    failed = {b.start + i: e.reason for b in batches for i, e in b.errors.items()}
    assert failed == {3: "not_an_image", 8: "unreadable"}
    ok = np.concatenate([b.images for b in batches])
    assert ok.shape == (8, 8, 8, 3)
    np.testing.assert_array_equal(ok[0], load_image(items[0].path, spec))
    np.testing.assert_array_equal(ok[-1], ok[0])  # the upload is the bytes of 0.png
    assert np.concatenate([b.labels for b in batches]).tolist() == [0, 1, 0, 1, 0, 1, 0, -1]


def _noise_items(folder: Path, n: int) -> list[InputItem]:
    rng = np.random.default_rng(1)
    items = []
    for i in range(n):
        p = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(p)
        items.append(InputItem(name=str(p), path=p))
    return items


@pytest.mark.parametrize("backend", ["threads", "tf"])
def test_a_loader_bug_stops_the_batches_naming_the_file(tmp_path, backend):
    """Anything but an unreadable image (here a Pillow plugin's bug, through the real opener)
    stops the iterator with one line naming the file and the exception; the rest is not loaded
    quietly without it."""
    items = _noise_items(tmp_path, 6)
    planted = write_planted_bug(tmp_path / "planted.bmp")
    items.insert(3, InputItem(name=str(planted), path=planted))
    spec = InputSpec(size=8)
    with planted_loader_bug(), pytest.raises(ImgclfError) as caught:
        list(iter_batches(items, spec, batch_size=2, workers=2, source=SOURCES[backend]))
    assert str(planted) in str(caught.value) and f"ValueError: {BUG_MESSAGE}" in str(caught.value)
    assert "\n" not in caught.value.message
    assert isinstance(caught.value.__cause__, ValueError)  # the original, with its traceback
    log = caught.value.log  # the hint names the file that keeps the traceback
    assert log is not None and str(log) in str(caught.value)
    assert "Traceback (most recent call last)" in log.read_text() and "to_rgb" in log.read_text()
    log.unlink()
    # without the buggy plugin the same file is just unreadable: a reject, in place
    batches = list(iter_batches(items, spec, batch_size=2, workers=2, source=SOURCES[backend]))
    assert {b.start + i: e.reason for b in batches for i, e in b.errors.items()} == {3: "not_an_image"}


@pytest.mark.parametrize("backend", ["threads", "tf"])
def test_a_failed_download_is_a_reject_and_a_bug_in_fetch_stops(tmp_path, backend):
    good = (_noise_items(tmp_path, 1)[0].path).read_bytes()

    def fetch(url: str) -> bytes:
        if url.endswith("/gone"):
            raise ImageError(url, "http_404", "HTTP 404")
        if url.endswith("/refused"):
            raise ConnectionRefusedError(111, "Connection refused")
        if url.endswith("/bug"):
            return {"data": good}["body"]  # a bug in the downloader: KeyError
        return good

    urls = [f"http://127.0.0.1:9/{name}" for name in ("a", "gone", "b", "refused", "c")]
    items = [InputItem(name=u, url=u) for u in urls]
    spec = InputSpec(size=8)
    batches = list(iter_batches(items, spec, batch_size=2, workers=2, fetch=fetch, source=SOURCES[backend]))
    failed = {b.start + i: e.reason for b in batches for i, e in b.errors.items()}
    assert failed == {1: "http_404", 3: "download_failed"}
    assert sum(len(b.images) for b in batches) == 3
    items.insert(2, InputItem(name="http://127.0.0.1:9/bug", url="http://127.0.0.1:9/bug"))
    with pytest.raises(ImgclfError) as caught:
        list(iter_batches(items, spec, batch_size=2, workers=2, fetch=fetch, source=SOURCES[backend]))
    assert "http://127.0.0.1:9/bug" in str(caught.value) and "KeyError" in str(caught.value)
    caught.value.log.unlink()


def test_keyboard_interrupt_passes_through_the_loader():
    """`load_item` catches bugs (`Exception`), never a `BaseException` such as Ctrl-C."""

    def fetch(url: str) -> bytes:
        raise KeyboardInterrupt

    item = InputItem(name="http://127.0.0.1:9/x", url="http://127.0.0.1:9/x")
    with pytest.raises(KeyboardInterrupt):
        load_item(item, InputSpec(size=8), fetch)
    with pytest.raises(KeyboardInterrupt):
        list(iter_batches([item, item], InputSpec(size=8), batch_size=2, workers=1, fetch=fetch))


def test_a_loader_bug_stops_evaluate_and_predict_with_one_line(tmp_path):
    """`imgclf evaluate` and `imgclf predict` (a Keras run: the tf.data source) stop on a loader
    bug with one line naming the file and the exception; the hint names the traceback's file."""
    from typer.testing import CliRunner

    from helpers_runs import make_run
    from imgclf.cli.main import app

    run = make_run(tmp_path)
    folder = tmp_path / "data" / "test" / "red"
    write_planted_bug(folder / "zz_planted.bmp")
    with planted_loader_bug():
        evaluated = CliRunner().invoke(app, ["evaluate", str(run), "--split", "test"])
        predicted = CliRunner().invoke(app, ["predict", str(folder), "--model", str(run)])
    for r in (evaluated, predicted):
        assert r.exit_code == 1, r.output
        assert "Traceback" not in r.output
        error = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "zz_planted.bmp" in error[0] and f"ValueError: {BUG_MESSAGE}" in error[0]
        log = r.output.split("the traceback is in ")[-1].split()[0]
        assert "Traceback (most recent call last)" in Path(log).read_text()
        Path(log).unlink()


# ------------------------------------------------------------- training and evaluate agree
def _mixed_split(root: Path) -> None:
    """A split whose files are NOT prepared: mixed sizes, EXIF-rotated JPEG, RGBA and 16-bit PNG."""
    rng = np.random.default_rng(3)
    colours = {"dark": 50, "light": 200}
    for split, n in (("train", 24), ("val", 12)):
        for cls, level in colours.items():
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                w, h = int(rng.integers(12, 40)), int(rng.integers(12, 40))
                arr = np.clip(rng.normal(level, 40, (h, w, 3)), 0, 255).astype(np.uint8)
                kind = i % 4
                if kind == 0:
                    exif = Image.Exif()
                    exif[0x0112] = 6
                    Image.fromarray(arr).save(folder / f"{i}.jpg", exif=exif, quality=90)
                elif kind == 1:
                    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
                    Image.fromarray(np.dstack([arr, alpha]), "RGBA").save(folder / f"{i}.png")
                elif kind == 2:
                    g16 = (arr[..., 0].astype(np.uint16) * 257).astype(np.uint16)
                    Image.fromarray(g16).save(folder / f"{i}.png")
                else:
                    Image.fromarray(arr).save(folder / f"{i}.webp")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["prepared", "raw"])
def test_evaluate_val_equals_the_best_epoch_of_training(tmp_path, layout):
    """Issue "one path": `evaluate --split val` gives exactly the best epoch's val_accuracy and a
    loss within 1 % of its val_loss, with --image-size different from the files' size."""
    from helpers_runs import train_config
    from imgclf.config import PrepareConfig, SplitConfig
    from imgclf.evaluate import evaluate_run
    from imgclf.records.run import best_epoch_row, load_run_info, read_history
    from imgclf.train import train

    if layout == "prepared":  # digits prepared at 32 px, trained at 20 px
        from imgclf.datasets import export_dataset
        from imgclf.prepare import prepare_folder
        from imgclf.split import split_folder

        export_dataset("digits", tmp_path / "raw", limit_per_class=40)
        prepare_folder(tmp_path / "raw", tmp_path / "prep", PrepareConfig(size=32))
        split_folder(tmp_path / "prep", tmp_path / "split", SplitConfig(seed=1))
        cfg = train_config(image_size=20, epochs=3, augment={"flip": "none"}, learning_rate=0.003)
    else:  # files of mixed sizes and kinds, never prepared, trained at 16 px
        _mixed_split(tmp_path / "split")
        cfg = train_config(image_size=16, epochs=3, augment={"flip": "none"}, learning_rate=0.003)
    run = train(tmp_path / "split", cfg, run_dir=tmp_path / "run")
    best = best_epoch_row(read_history(run))
    metrics = evaluate_run(run, split="val")
    assert metrics["set_aside"]["count"] == 0
    assert metrics["accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)
    assert metrics["loss"] == pytest.approx(best["val_loss"], rel=0.01)
    assert load_run_info(run).input_spec.size == cfg.image_size
    assert json.loads((run / "metrics_val.json").read_text())["input_spec"]["size"] == cfg.image_size


@pytest.mark.slow
def test_prepare_policy_is_recorded_and_used_by_train_and_predict(tmp_path):
    """`prepare --resize pad` is recorded, carried by split, stored by train, applied by predict."""
    from helpers_runs import train_config, write_split
    from imgclf.config import PrepareConfig, SplitConfig
    from imgclf.predict import predict_inputs
    from imgclf.prepare import prepare_folder, read_prepare_record
    from imgclf.records.run import load_run_info
    from imgclf.split import split_folder
    from imgclf.train import train

    write_split(tmp_path / "raw", per_class=12, seed=0, size=24)
    prepare_folder(tmp_path / "raw", tmp_path / "prep", PrepareConfig(size=12, resize="pad", pad_color=(10, 20, 30)))
    assert read_prepare_record(tmp_path / "prep") == InputSpec(size=12, resize="pad", pad_color=(10, 20, 30))
    split_folder(tmp_path / "prep", tmp_path / "split", SplitConfig(seed=0))
    assert read_prepare_record(tmp_path / "split").resize == "pad"
    run = train(tmp_path / "split", train_config(epochs=1), run_dir=tmp_path / "run")
    spec = load_run_info(run).input_spec
    assert (spec.size, spec.resize, tuple(spec.pad_color)) == (12, "pad", (10, 20, 30))
    wide = tmp_path / "wide.png"
    Image.fromarray(np.full((10, 40, 3), 200, np.uint8)).save(wide)
    [p] = predict_inputs([wide], model=run)
    assert p.ok
    arr = load_image(wide, spec)
    assert (arr[0, 0] == (10, 20, 30)).all()  # predict letterboxes a new photo as training did
