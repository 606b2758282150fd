"""imgclf.images: the safe opener on the real tiny files of tests/data (make_images.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.errors import ImageError
from imgclf.images import (
    ORIGINAL_SIZE_KEY,
    open_image,
    sniff_format,
    to_rgb,
)

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "name",
    [
        "rgb.jpg",
        "rgb.png",
        "gray.png",
        "rgba.png",
        "la.png",
        "palette.gif",
        "gray16.png",
        "gray16.tif",
        "cmyk.jpg",
        "cmyk.tif",
        "exif_rotated.jpg",
        "animated.gif",
        "animated.webp",
        "rgb.bmp",
        "rgb.webp",
    ],
)
def test_every_allowed_kind_opens_as_8bit_rgb(name):
    img = open_image(DATA / name)
    assert img.mode == "RGB"
    assert np.asarray(img).dtype == np.uint8


@pytest.mark.parametrize(
    "name, reason",
    [
        ("truncated.jpg", "truncated"),
        ("truncated.png", "truncated"),
        ("not_an_image.jpg", "not_an_image"),
        ("empty.png", "not_an_image"),
        ("bomb.png", "decompression_bomb"),
        ("unsupported.pcx", "unsupported_format"),
    ],
)
def test_broken_files_raise_with_reason(name, reason):
    with pytest.raises(ImageError) as info:
        open_image(DATA / name)
    assert info.value.reason == reason
    assert name in str(info.value)


def test_truncated_jpeg_fails_in_draft_mode_too():
    with pytest.raises(ImageError) as info:
        open_image(DATA / "truncated.jpg", draft=8)
    assert info.value.reason == "truncated"


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(ImageError) as info:
        open_image(tmp_path / "nope.jpg")
    assert info.value.reason == "unreadable"


def test_max_pixels_refuses_before_decoding():
    with pytest.raises(ImageError) as info:
        open_image(DATA / "rgb.png", max_pixels=48 * 48 - 1)
    assert info.value.reason == "decompression_bomb"
    assert open_image(DATA / "rgb.png", max_pixels=48 * 48).size == (48, 48)


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.asarray(open_image(DATA / "gray16.png"))[0, :, 0].astype(int)
    assert arr[0] == 0 and arr[-1] == 255
    assert 120 <= arr[len(arr) // 2] <= 135  # mid-ramp stays mid-gray (convert("L") would give 255)
    assert np.all(np.diff(arr) >= 0)
    assert len(np.unique(arr)) > 40


def test_transparency_composited_on_background():
    white = np.asarray(open_image(DATA / "rgba.png"))
    assert (white[:, :24] == 255).all()
    black = np.asarray(open_image(DATA / "rgba.png", background=(0, 0, 0)))
    assert (black[:, :24] == 0).all()
    assert np.array_equal(white[:, 24:], black[:, 24:])


def test_cmyk_converted_to_rgb_colour():
    r, g, b = np.asarray(open_image(DATA / "cmyk.jpg"))[16, 16].astype(int)
    assert r < 40 and g > 200 and b > 200  # cyan


def test_exif_orientation_applied_before_anything():
    rotated = open_image(DATA / "exif_rotated.jpg")
    upright = open_image(DATA / "upright.png")
    assert rotated.size == upright.size == (48, 32)
    diff = np.abs(np.asarray(rotated, dtype=int) - np.asarray(upright, dtype=int)).mean()
    assert diff < 12  # JPEG noise only; unrotated it would be a different picture
    assert rotated.info[ORIGINAL_SIZE_KEY] == (48, 32)


def test_animated_gives_first_frame():
    assert tuple(np.asarray(open_image(DATA / "animated.gif"))[0, 0]) == (255, 0, 0)
    r, _g, b = np.asarray(open_image(DATA / "animated.webp"))[0, 0].astype(int)
    assert r > 200 and b < 50


def test_min_size_uses_full_size_even_with_draft(tmp_path):
    p = tmp_path / "big.jpg"
    Image.new("RGB", (800, 600), (10, 200, 30)).save(p, quality=90)
    img = open_image(p, draft=64, min_size=500)
    assert img.size[0] < 800  # decoded at a reduced DCT scale
    assert img.info[ORIGINAL_SIZE_KEY] == (800, 600)
    with pytest.raises(ImageError) as info:
        open_image(p, draft=64, min_size=601)
    assert info.value.reason == "too_small"
    with pytest.raises(ImageError) as info:
        open_image(DATA / "tiny.png", min_size=8)
    assert info.value.reason == "too_small"


def test_open_from_bytes_and_file_object():
    data = (DATA / "rgb.png").read_bytes()
    assert open_image(data).size == (48, 48)
    assert open_image(io.BytesIO(data)).size == (48, 48)


def test_sniff_format():
    assert sniff_format((DATA / "rgb.jpg").read_bytes()[:12]) == "JPEG"
    assert sniff_format((DATA / "rgb.webp").read_bytes()[:12]) == "WEBP"
    assert sniff_format(b"<html>") is None


def test_to_rgb_i_mode_and_float():
    f = Image.fromarray(np.array([[0.0, 0.5], [1.0, np.nan]], dtype=np.float32), mode="F")
    assert np.asarray(to_rgb(f))[1, 0, 0] == 255
