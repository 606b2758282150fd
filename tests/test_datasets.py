"""`imgclf datasets`: digits and Fashion-MNIST (idx) exported as PNG folders."""

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from imgclf.datasets import FASHION_MNIST_CLASSES, FASHION_MNIST_DIRS, export_dataset, read_idx
from imgclf.errors import DataError


def test_digits_export_writes_all_1797_pngs(tmp_path):
    res = export_dataset("digits", tmp_path / "d")
    files = sorted((tmp_path / "d").glob("*/*.png"))
    assert len(files) == 1797 == res.written
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [str(i) for i in range(10)]
    from sklearn.datasets import load_digits

    d = load_digits()
    img = np.asarray(Image.open(tmp_path / "d" / str(d.target[5]) / "digits_0005.png"))
    assert img.shape == (8, 8)
    np.testing.assert_array_equal(img, np.rint(d.images[5] * 255 / 16).astype(np.uint8))


def test_export_resumes_without_rewriting(tmp_path):
    export_dataset("digits", tmp_path, limit_per_class=3)
    victim = next(tmp_path.glob("4/*.png"))
    victim.unlink()
    res = export_dataset("digits", tmp_path, limit_per_class=3)
    assert res.written == 1 and res.existing == 29
    assert len(list(tmp_path.glob("*/*.png"))) == 30


def _write_idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_read_idx_roundtrip_and_truncation(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "x-idx3-ubyte.gz", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "x-idx3-ubyte.gz"), arr)
    with gzip.open(tmp_path / "x-idx3-ubyte.gz") as f:
        raw = f.read()[:-5]
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(raw)
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "html.gz").write_bytes(gzip.compress(b"<html>nope</html>"))
    with pytest.raises(DataError, match="idx"):
        read_idx(tmp_path / "html.gz")


def test_unknown_dataset_suggests(tmp_path):
    with pytest.raises(DataError, match="digits"):
        export_dataset("digit", tmp_path)


@pytest.mark.skipif(not FASHION_MNIST_DIRS[0].is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_mnist_official_split_with_class_names(tmp_path):
    res = export_dataset("fashion-mnist", tmp_path, official_split=True, limit_per_class=2)
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == sorted(FASHION_MNIST_CLASSES)
    assert len(list((tmp_path / "test").glob("*/*.png"))) == 20
    assert len(list((tmp_path / "train").glob("*/*.png"))) == 20
    assert res.source.startswith("/usr/share/datasets")
    im = Image.open(next((tmp_path / "test" / "Bag").glob("*.png")))
    assert im.size == (28, 28)
