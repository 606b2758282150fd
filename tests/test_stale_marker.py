"""A node-visibility check file left in an output folder (its driver or the cluster's head died
during `--engine ray`'s check) does not stop the same command, and does not stay in its output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.clean import clean_folder
from imgclf.config import CleanConfig, SplitConfig
from imgclf.errors import DataError
from imgclf.fsutil import VISIBILITY_MARKER, is_visibility_marker
from imgclf.split import split_folder


def _folder(root: Path, per_class: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / c / f"{k}.png")
    return root


def _stale(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    marker = out / f"{VISIBILITY_MARKER}0123abcd"
    marker.write_text("visible\n")
    return marker


def test_a_stale_check_file_is_cleared_by_clean_and_split(tmp_path):
    raw = _folder(tmp_path / "raw")
    marker = _stale(tmp_path / "clean")
    clean_folder(raw, tmp_path / "clean", CleanConfig())
    assert not marker.exists()
    marker = _stale(tmp_path / "split")
    split_folder(tmp_path / "clean", tmp_path / "split", SplitConfig())
    assert not marker.exists()
    assert not [p for p in (tmp_path / "split").rglob("*") if is_visibility_marker(p)]


def test_any_other_file_still_stops_clean(tmp_path):
    raw = _folder(tmp_path / "raw")
    _stale(tmp_path / "out")
    (tmp_path / "out" / "mine.txt").write_text("a file of the user")
    with pytest.raises(DataError, match="is not empty"):
        clean_folder(raw, tmp_path / "out", CleanConfig())
    assert (tmp_path / "out" / "mine.txt").read_text() == "a file of the user"


def test_split_refuses_a_wrong_output_folder_before_reading_any_image(tmp_path):
    """An unreadable image would stop the map's reduce; a wrong --out is named first."""
    import shutil

    raw = _folder(tmp_path / "raw")
    shutil.copyfile(Path(__file__).parent / "data" / "truncated.jpg", raw / "a" / "broken.jpg")
    with pytest.raises(DataError, match="must not be the input folder"):
        split_folder(raw, raw / "out", SplitConfig())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a file of the user")
    with pytest.raises(DataError, match="is not empty and is not a previous split output"):
        split_folder(raw, tmp_path / "mine", SplitConfig())
    with pytest.raises(DataError, match="cannot read"):  # the image is still named when --out is right
        split_folder(raw, tmp_path / "split", SplitConfig())
