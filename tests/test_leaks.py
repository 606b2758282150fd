"""Leak audit (`imgclf.leaks`): test images with a near copy in train / val, on real small images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.inputs import list_images
from imgclf.leaks import audit_split, leak_summary, near_copies


def _split(root: Path, n: int = 90) -> list[tuple[str, Image.Image]]:
    """A split folder of real scikit-learn digits, 32 x 32, every fifth image in test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for k in range(n):
        im = Image.fromarray((d.images[k] * 255 / 16).astype(np.uint8)).resize((32, 32), Image.Resampling.BICUBIC)
        sub = "test" if k % 5 == 0 else ("val" if k % 5 == 1 else "train")
        rel = f"{sub}/{d.target[k]}/{k:04d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        im.save(root / rel)
        out.append((rel, im))
    return out


def test_a_clean_split_has_no_near_copies(tmp_path):
    _split(tmp_path / "s")
    res = audit_split(tmp_path / "s")
    assert res["test_images"] == 18 and res["test_images_with_copy"] == 0 and res["pairs"] == 0
    assert res["compared_with"] == ["train", "val"] and res["max_residual"] == 5.0


def test_planted_test_train_pair_is_counted_and_named(tmp_path):
    root = tmp_path / "s"
    imgs = _split(root)
    rel, im = imgs[10]  # a test image; a re-encoded, slightly brighter copy goes into train
    label = rel.split("/")[1]
    copy = Image.fromarray(np.clip(np.asarray(im, np.float64) * 1.1 + 5, 0, 255).astype(np.uint8))
    copy.save(root / "train" / label / "planted.jpg", quality=90)
    im.save(root / "val" / label / "exact.png")  # and a byte-different PNG of the same pixels into val
    test = list_images(root / "test")
    copies = near_copies(test, [list_images(root / "train"), list_images(root / "val")])
    assert [(c.test, c.other, c.kind) for c in copies] == [
        (rel, f"train/{label}/planted.jpg", "near"),
        (rel, f"val/{label}/exact.png", "exact"),
    ]
    summary = leak_summary(test, copies)
    assert summary["test_images_with_copy"] == 1 and summary["pairs"] == 2
    assert summary["by_kind"] == {"exact": 1, "near": 1}
    assert summary["copies"][0] == {"test": rel, "other": f"val/{label}/exact.png", "kind": "exact", "residual": 0.0}
    json.dumps(summary)  # fit for metrics.json


def test_unreadable_files_are_listed_not_dropped(tmp_path):
    root = tmp_path / "s"
    _split(root, 30)
    (root / "train" / "2" / "broken.png").write_bytes(b"not an image")
    res = audit_split(root)
    assert res["not_checked"] == [{"file": "train/2/broken.png", "reason": "not_an_image"}]


def test_missing_test_folder_is_a_clear_error(tmp_path):
    from imgclf.errors import DataError

    (tmp_path / "s" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="not found"):
        audit_split(tmp_path / "s")


# ------------------------------------------------------------------ map and reduce
def test_leak_map_and_reduce_on_real_files_in_any_order(tmp_path):
    from imgclf.leaks import AuditItem, find_near_copies, fingerprint_file, unreadable_files

    root = tmp_path / "s"
    imgs = _split(root, 40)
    rel, im = imgs[10]
    im.save(root / "train" / "copy.jpg", quality=90)
    (root / "train" / "broken.png").write_bytes(b"not an image")
    test = [fingerprint_file(AuditItem(k, root / r, r)) for k, (r, _) in enumerate(imgs) if r.startswith("test/")]
    names = [r for r, _ in imgs if not r.startswith("test/")] + ["train/copy.jpg", "train/broken.png"]
    others = [fingerprint_file(AuditItem(k, root / r, r)) for k, r in enumerate(names)]
    assert unreadable_files(others) == [("train/broken.png", "not_an_image")]
    found = find_near_copies(test, others)
    assert [(c.test, c.other, c.kind) for c in found] == [(rel, "train/copy.jpg", "near")]
    assert find_near_copies(test[::-1], others[::-1]) == found
    assert find_near_copies(test, others[-1:]) == []  # nothing readable on one side
