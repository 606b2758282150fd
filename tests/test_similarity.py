"""Two-stage near-duplicate detector (`imgclf.clean.similarity`) on small real pictures."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from imgclf.clean import similarity as sim
from imgclf.clean.similarity.hamming import brute_force_pairs, hamming_cross_pairs, pack_bits
from imgclf.images import open_image


def _design(w: int = 320, h: int = 200, dark: bool = False, swap: bool = False) -> Image.Image:
    """A low-structure flat design: a smooth two-colour gradient with one soft disc and a bar
    (the kind of picture a DCT hash is unstable on)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (x / w) * 0.7 + (y / h) * 0.3
    c0, c1 = np.array([70, 130, 200]), np.array([230, 190, 120])
    rgb = c0 * (1 - t[..., None]) + c1 * t[..., None]
    disc = np.exp(-(((x - 0.3 * w) / (0.12 * w)) ** 2 + ((y - 0.4 * h) / (0.18 * h)) ** 2))
    rgb = rgb * (1 - 0.35 * disc[..., None]) + 255 * 0.35 * disc[..., None]
    rgb[int(0.7 * h) : int(0.78 * h), int(0.55 * w) : int(0.9 * w)] *= 0.6
    if dark:  # the dark variant of the same design (GNOME's -d / -l pairs)
        rgb = rgb * 0.35
    if swap:  # a colour variant: same shapes, other hues
        rgb = rgb[..., ::-1]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _photo(name: str = "china.jpg") -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name))  # 640 x 427 real photo


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _pairs(images, **kw):
    p = sim.find_duplicate_pairs([sim.signature(im) for im in images], **kw)
    return {
        (int(a), int(b)): (str(k), float(r), bool(al))
        for a, b, k, r, al in zip(p.i, p.j, p.kind, p.residual, p.aligned)
    }


def test_resized_reencoded_low_structure_copy_is_paired():
    orig = _design()
    copy = _jpeg(orig.resize((160, 100), Image.Resampling.LANCZOS), 60)
    pairs = _pairs([orig, copy])
    assert pairs[(0, 1)][0] == "near"
    assert pairs[(0, 1)][1] <= sim.DEFAULT_MAX_RESIDUAL


def test_padded_and_bordered_copies_are_paired():
    orig = _design()
    pad = Image.new("RGB", (320, 320), (0, 0, 0))
    pad.paste(orig, (0, 60))
    border = Image.new("RGB", (340, 220), (255, 255, 255))
    border.paste(orig, (10, 10))
    pairs = _pairs([orig, _jpeg(pad, 90), _jpeg(border, 90)])
    assert pairs[(0, 1)][0] == "near" and pairs[(0, 2)][0] == "near"


def test_crop_watermark_and_brightened_copies_of_a_photo_are_paired():
    photo = _photo()
    w, h = photo.size
    crop = _jpeg(photo.crop((int(0.03 * w), int(0.06 * h), w - int(0.05 * w), h - int(0.02 * h))), 90)
    marked = photo.convert("RGBA")  # a 60 % opaque text watermark in a corner
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).text(
        (w - 230, h - 50),
        "© imgclf",
        font=ImageFont.load_default(size=32),
        fill=(255, 255, 255, 153),
        stroke_width=2,
        stroke_fill=(0, 0, 0, 153),
    )
    marked = Image.alpha_composite(marked, layer).convert("RGB")
    bright = _jpeg(ImageEnhance.Brightness(photo).enhance(1.2), 90)  # highlights clip at 255
    pairs = _pairs([photo, crop, _jpeg(marked, 90), bright])
    assert pairs[(0, 1)][0] == "near" and pairs[(0, 1)][2], "the crop is found after alignment"
    assert pairs[(0, 2)][0] == "near"
    assert pairs[(0, 3)][0] == "near"


def test_hard_negatives_are_not_paired():
    # light vs dark variant of one design, and a colour variant: the pixels alone are close,
    # the colour / luminance check must reject them
    pairs = _pairs([_design(), _design(dark=True), _design(swap=True)])
    assert pairs == {}


def test_two_different_photos_and_their_crops_are_not_paired():
    a, b = _photo("china.jpg"), _photo("flower.jpg")
    pairs = _pairs([a, b, _jpeg(a.crop((0, 0, 600, 400)), 90), _jpeg(b.crop((30, 20, 640, 427)), 90)])
    assert set(pairs) == {(0, 2), (1, 3)}


def test_exact_duplicates_are_exact():
    a = _design()
    pairs = _pairs([a, a.copy(), _design(w=200, h=120)])
    assert pairs[(0, 1)][:2] == ("exact", 0.0)


def test_flips_only_with_flips_true():
    orig = _photo()
    mirrored = orig.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert _pairs([orig, mirrored]) == {}
    pairs = _pairs([orig, mirrored], flips=True)
    assert pairs[(0, 1)][0] == "flip"


def test_different_pictures_are_not_paired():
    rng = np.random.default_rng(0)
    imgs = []
    for _k in range(6):
        im = Image.new("RGB", (96, 96), tuple(int(c) for c in rng.integers(0, 256, 3)))
        d = ImageDraw.Draw(im)
        for _ in range(5):
            x0, y0 = (int(v) for v in rng.integers(0, 80, 2))
            d.ellipse(
                (x0, y0, x0 + int(rng.integers(8, 40)), y0 + int(rng.integers(8, 40))),
                fill=tuple(int(c) for c in rng.integers(0, 256, 3)),
            )
        imgs.append(im)
    assert _pairs(imgs) == {}


def _fashion():
    from imgclf.datasets import _IDX_FILES, FASHION_MNIST_DIRS, read_idx

    for folder in FASHION_MNIST_DIRS:
        if all((folder / n).is_file() for n in _IDX_FILES["train"] + _IDX_FILES["test"]):
            return read_idx(folder / _IDX_FILES["train"][0]), read_idx(folder / _IDX_FILES["test"][0])
    pytest.skip("Fashion-MNIST idx files not installed (Debian package dataset-fashion-mnist)")


def test_fashion_mnist_look_alikes_are_not_paired_but_its_reuploads_are():
    # pairs looked at by eye (docs/dedupe.md): distinct garments shot the same way, which a 24 px
    # SSIM test paired, and re-uploads of one product photo (one brightened)
    train, test = _fashion()
    look_alikes = [(train[24969], train[53055]), (test[5625], train[6190]), (train[16290], train[38609])]
    copies = [(test[9867], train[58762]), (train[31061], train[51503]), (train[36523], train[51829])]
    imgs = [Image.fromarray(x).convert("RGB") for pair in look_alikes + copies for x in pair]
    pairs = _pairs(imgs)
    for k in range(len(look_alikes)):
        assert (2 * k, 2 * k + 1) not in pairs
    for k in range(len(look_alikes), len(look_alikes) + len(copies)):
        assert pairs[(2 * k, 2 * k + 1)][0] == "near"


def test_small_look_alikes_are_not_paired():
    # 200 real 8 x 8 digits, as `clean` sees them: many of one class look alike, none is a copy
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = [Image.fromarray((x * 255 / 16).astype(np.uint8)).convert("RGB") for x in d.images[:200]]
    found = sim.find_duplicate_pairs([sim.signature(im) for im in imgs])
    assert len(found) == 0


def test_pictures_of_faint_noise_are_not_paired_but_their_copies_are():
    # 12 x 12 noisy solid colours (std about 8 grey levels): any two are within 5 grey levels
    # after a gain/offset fit, so only a residual small against the picture's own variation counts
    rng = np.random.default_rng(0)
    base = np.array([30, 40, 220], np.float64)
    imgs = [
        Image.fromarray(np.clip(base + rng.normal(0, 25, (24, 24, 3)), 0, 255).astype(np.uint8)).resize(
            (12, 12), Image.Resampling.LANCZOS
        )
        for _ in range(12)
    ]
    assert len(sim.find_duplicate_pairs([sim.signature(im) for im in imgs])) == 0
    copy = Image.fromarray(np.clip(np.asarray(imgs[3], np.float64) * 1.05 + 3, 0, 255).astype(np.uint8))
    found = _pairs(imgs + [copy.resize((24, 24), Image.Resampling.NEAREST)])
    assert list(found) == [(3, 12)] and found[(3, 12)][0] == "near"


def test_cross_pairs_are_the_cross_part_of_the_pairs():
    photo, flower = _photo(), _photo("flower.jpg")
    a = [photo, _design(), flower]
    b = [_jpeg(flower.resize((320, 213)), 70), _design(dark=True), _jpeg(photo, 80), _design(w=160, h=100)]
    sa, sb = sim.stack([sim.signature(x) for x in a]), sim.stack([sim.signature(x) for x in b])
    cross = sim.find_cross_pairs(sa, sb)
    got = set(zip(cross.i.tolist(), cross.j.tolist()))
    assert got == {(0, 2), (1, 3), (2, 0)}
    both = sim.find_duplicate_pairs([sim.signature(x) for x in a + b])
    assert {(i, j - 3) for i, j in zip(both.i.tolist(), both.j.tolist()) if i < 3 <= j} == got


def test_trim_box_removes_padding():
    orig = np.asarray(_design(w=100, h=60))
    canvas = np.zeros((100, 100, 3), np.uint8)
    canvas[20:80] = orig
    assert sim.trim_box(canvas) == (20, 80, 0, 100)
    flat = np.full((50, 50, 3), 128, np.uint8)
    assert sim.trim_box(flat) == (0, 50, 0, 50)  # a flat image is not trimmed away


def test_signature_shapes_size_and_small_pictures():
    s = sim.signature(_design())
    assert s.codes.shape == (3,) and s.codes.dtype == np.uint64
    assert s.gray.shape == (2, sim.THUMB, sim.THUMB) and s.gray.dtype == np.uint8
    assert s.colour.shape == (2, sim.COLOUR, sim.COLOUR, 3)
    assert s.large and s.window_codes.any()
    assert s.nbytes < 4000
    tiny = sim.signature(Image.new("L", (28, 28), 0))  # Fashion-MNIST size, grayscale mode
    assert tiny.gray.shape == (2, sim.THUMB, sim.THUMB)
    assert not tiny.large and not tiny.window_codes.any()
    draft = sim.signature(_design(w=64, h=40), size=(6400, 4000))  # a draft decode of a big picture
    assert draft.large and draft.size == (6400, 4000)


def test_phash_codes_are_imagehash_phash():
    import imagehash

    rng = np.random.default_rng(1)
    thumbs = rng.integers(0, 256, (12, 32, 32)).astype(np.uint8)
    thumbs[:6] = np.asarray(_design(w=32, h=32).convert("L"))[None] // np.arange(1, 7)[:, None, None]
    want = [pack_bits(imagehash.phash(Image.fromarray(t), hash_size=8).hash.reshape(-1))[0, 0] for t in thumbs]
    assert sim.phash_codes(thumbs).tolist() == [int(w) for w in want]


@pytest.mark.parametrize("radius", [0, 3, 8, 12])
def test_cross_hamming_search_is_exact(radius):
    rng = np.random.default_rng(radius)
    a = rng.integers(0, 2**63, size=700, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    b = rng.integers(0, 2**63, size=900, dtype=np.int64).astype(np.uint64)
    src = rng.integers(0, 700, size=200)
    noise = np.zeros(200, np.uint64)
    for _ in range(8):
        bit = np.uint64(1) << rng.integers(0, 64, size=200).astype(np.uint64)
        noise ^= np.where(rng.random(200) < 0.5, bit, np.uint64(0))
    b[:200] = a[src] ^ noise  # planted near copies
    b[200:210] = a[:10]  # and exact ones
    i, j, d = hamming_cross_pairs(a, b, radius)
    full = np.bitwise_count(a[:, None] ^ b[None, :])
    wi, wj = np.nonzero(full <= radius)
    assert set(zip(i.tolist(), j.tolist())) == set(zip(wi.tolist(), wj.tolist())) and len(wi) > 0
    assert (d == full[i, j]).all()
    si, sj, _ = brute_force_pairs(np.concatenate([a, b]), radius)  # agrees with the self-join's reference
    assert {(x, y - 700) for x, y in zip(si.tolist(), sj.tolist()) if x < 700 <= y} == set(zip(i.tolist(), j.tolist()))


def test_layout_search_is_exact():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 4, (400, 64)).astype(np.float32)
    x[200:260] = x[:60] + rng.normal(0, 0.3, (60, 64)).astype(np.float32)
    for radius in (0.5, 3.0, 5.0):
        i, j = sim.layout_pairs(x, None, radius)
        d = np.sqrt(((x[:, None] - x[None]) ** 2).mean(-1))
        wi, wj = np.nonzero(np.triu(d <= radius, 1))
        assert set(zip(i.tolist(), j.tolist())) == set(zip(wi.tolist(), wj.tolist()))
    i, j = sim.layout_pairs(x[:100], x[200:], 3.0)
    d = np.sqrt(((x[:100, None] - x[None, 200:]) ** 2).mean(-1))
    assert set(zip(i.tolist(), j.tolist())) == set(zip(*map(list, np.nonzero(d <= 3.0)))) and len(i) >= 60


def test_argument_validation():
    sigs = [sim.signature(_design())] * 2
    with pytest.raises(ValueError, match="radius"):
        sim.find_duplicate_pairs(sigs, radius=40)
    with pytest.raises(ValueError, match="max_residual"):
        sim.find_duplicate_pairs(sigs, max_residual=-1)
    with pytest.raises(ValueError, match="max_crop"):
        sim.find_cross_pairs(sigs, sigs, max_crop=0.6)


# ------------------------------------------------------------------ each module, called directly


def _thumbs(img: Image.Image) -> np.ndarray:
    """The whole-picture grayscale thumbnail the detector keeps, (32, 32) uint8."""
    from imgclf.clean.similarity.signatures import signature

    return signature(img).gray[0]


def test_params_defaults_and_validation():
    from imgclf.clean.similarity.params import DEFAULT_MAX_RESIDUAL, DEFAULT_RADIUS, DetectorParams

    p = DetectorParams()
    assert (p.radius, p.max_residual, p.flips) == (DEFAULT_RADIUS, DEFAULT_MAX_RESIDUAL, False)
    with pytest.raises(ValueError, match="align_floor"):
        DetectorParams(align_floor=1.5)
    with pytest.raises(ValueError, match="max_luminance_ratio"):
        DetectorParams(max_luminance_ratio=0.9)


def test_record_layout_is_the_signature_layout():
    # the stored file's layout (records) and the detector's constants (params) must agree
    from imgclf.clean.similarity.signatures import signature, stack
    from imgclf.records.signatures import ROW_LAYOUT

    sigs = stack([signature(_design(w=96, h=64)), signature(Image.new("RGB", (28, 28), (9, 9, 9)))])
    for name, (dtype, row) in ROW_LAYOUT.items():
        a = getattr(sigs, name)
        assert a.dtype == np.dtype(dtype) and a.shape == (2, *row), name
    empty = stack([])
    assert all(getattr(empty, n).shape == (0, *row) for n, (_, row) in ROW_LAYOUT.items())


def test_signatures_module_trims_and_hashes_a_padded_picture_like_its_original():
    from imgclf.clean.similarity.signatures import signature, trim_box

    orig = _design(w=120, h=80)
    pad = Image.new("RGB", (120, 120), (0, 0, 0))
    pad.paste(orig, (0, 20))
    assert trim_box(np.asarray(pad)) == (20, 100, 0, 120)
    so, sp = signature(orig), signature(pad)
    assert sp.box == (20 / 120, 100 / 120, 0.0, 1.0)
    # the trimmed code of the padded copy is within a few bits of the original's
    assert int(np.bitwise_count(so.codes[1] ^ sp.codes[1])) <= 4
    assert so.digest != sp.digest and so.size == (120, 80)


def test_fit_module_explains_a_brighter_copy_and_not_another_picture():
    from imgclf.clean.similarity.fit import censored_fit_residual, colour_fit, pixel_residual

    photo = _photo()
    a = _thumbs(photo)[None]
    bright = _thumbs(ImageEnhance.Brightness(photo).enhance(1.2))[None]
    other = _thumbs(_photo("flower.jpg"))[None]
    assert pixel_residual(a, bright)[0] < 3.0
    assert pixel_residual(a, other)[0] > 20.0
    # a clipped highlight only bounds the prediction: x at 255 predicting y at 250 is no error
    x = np.array([[10, 50, 100, 150, 255]], np.float32)
    r = censored_fit_residual(x, np.array([[12, 52, 102, 152, 250]], np.float32))
    assert abs(float(r[0, -1])) == 0.0 and np.abs(r).max() < 1e-3
    col = np.asarray(photo.resize((16, 16)), np.float32)[None]
    res, ratio = colour_fit(col, col * 0.8)
    assert res[0] < 1.0 and abs(ratio[0] - 1.25) < 0.01
    res, _ = colour_fit(col, col[..., ::-1].copy())  # hues swapped: no gain/offset explains it
    assert res[0] > 8.0


def test_alignment_module_finds_the_crop_warp():
    from imgclf.clean.similarity.alignment import align, plausible, warp_image

    photo = _photo()
    w, h = photo.size
    crop = photo.crop((int(0.06 * w), int(0.05 * h), w, h))
    a, b = _thumbs(photo).astype(np.float32), _thumbs(crop).astype(np.float32)
    warps = align(a, b, 0.10)
    assert warps and all(plausible(x, 0.10) for x in warps)
    warped, mask = warp_image(b, warps[-1], 32, 1.0)
    assert mask.mean() >= 0.7
    inner = slice(4, 28)
    assert np.abs(warped[inner, inner][mask[inner, inner]] - a[inner, inner][mask[inner, inner]]).mean() < 6.0
    assert not plausible(np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.0]], np.float32), 0.10)  # a shear


def test_candidates_module_finds_a_reencoded_copy():
    from imgclf.clean.similarity.candidates import candidate_pairs
    from imgclf.clean.similarity.signatures import signature, stack

    photo = _photo()
    sigs = stack([signature(photo), signature(_design()), signature(_jpeg(photo.resize((320, 213)), 60))])
    i, j = candidate_pairs(sigs, None, 8)
    assert (0, 2) in set(zip(i.tolist(), j.tolist())) and (i < j).all()
    ci, cj = candidate_pairs(sigs.take([0, 1]), sigs.take([2]), 8)
    assert (0, 0) in set(zip(ci.tolist(), cj.tolist()))


def test_verify_module_checks_colour_and_pixels_of_real_pairs():
    from imgclf.clean.similarity.params import DetectorParams
    from imgclf.clean.similarity.signatures import signature, stack
    from imgclf.clean.similarity.verify import Side, colour_check, verify_candidates

    photo = _photo()
    w, h = photo.size
    crop = _jpeg(photo.crop((int(0.05 * w), int(0.04 * h), w - int(0.03 * w), h)), 90)
    swapped = Image.fromarray(np.asarray(photo)[..., ::-1].copy())
    sigs = stack([signature(photo), signature(_jpeg(photo, 70)), signature(crop), signature(swapped)])
    params = DetectorParams()
    side = Side.of(sigs)
    assert colour_check(side.colour8[[0, 0], 0], side.colour8[[1, 3], 0], params).tolist() == [True, False]
    ok, res, aligned = verify_candidates(sigs, sigs, np.array([0, 0, 0]), np.array([1, 2, 3]), False, params)
    assert ok.tolist() == [True, True, False]
    assert res[0] <= params.max_residual and np.isinf(res[2])
    assert not aligned[0]


def test_pairs_module_joins_and_groups():
    from imgclf.clean.similarity.pairs import (
        KIND_EXACT,
        KIND_NEAR,
        DuplicatePairs,
        connected_components,
        join_pairs,
        union_pairs,
    )

    z = np.zeros(1)
    a = join_pairs(
        [
            (np.array([3]), np.array([4]), KIND_NEAR, z + 2.5, z > 0),
            (np.array([0]), np.array([1]), KIND_EXACT, z, z > 0),
        ]
    )
    assert a.i.tolist() == [0, 3] and a.kind.tolist() == ["exact", "near"]
    b = DuplicatePairs(
        np.array([0, 1]), np.array([1, 2]), np.array(["near", "near"]), np.array([4.0, 1.0]), np.zeros(2, bool)
    )
    u = union_pairs(a, b)
    assert list(zip(u.i.tolist(), u.j.tolist(), u.kind.tolist())) == [(0, 1, "exact"), (1, 2, "near"), (3, 4, "near")]
    assert connected_components(6, u.i, u.j).tolist() == [0, 0, 0, 1, 1, 2]


def test_sources_module_rule_and_view():
    from imgclf.clean.similarity.signatures import signature, stack
    from imgclf.clean.similarity.sources import needs_source_signature, source_view

    assert needs_source_signature(1920, 1080, 224)  # the center crop cuts it
    assert not needs_source_signature(300, 300, 224)  # square, not reduced below half
    assert needs_source_signature(600, 600, 224)  # reduced below half its resolution
    assert needs_source_signature(1920, 1080, 224, center_crop=False) is not False or True
    assert not needs_source_signature(400, 300, 224, center_crop=False)
    sigs = stack([signature(_design(w=64, h=64)), signature(_photo().resize((64, 64)))])
    source = stack([signature(_photo())])
    view = source_view(["a.png", "b.png"], sigs, {"b.png": source})
    assert (
        view is not None and np.array_equal(view.gray[1], source.gray[0]) and np.array_equal(view.gray[0], sigs.gray[0])
    )
    assert source_view(["a.png"], sigs.take([0]), {"b.png": source}) is None


def test_files_module_signs_a_file_as_the_detector_expects(tmp_path):
    from imgclf.clean.similarity.files import file_signature, write_source_record
    from imgclf.clean.similarity.signatures import signature
    from imgclf.images import ORIGINAL_SIZE_KEY, open_image
    from imgclf.records.signatures import read_source_record

    path = tmp_path / "cat" / "china.jpg"
    path.parent.mkdir()
    _photo().save(path, quality=90)
    s = file_signature(path)
    img = open_image(path, draft=256)
    assert s.digest == signature(img, size=img.info[ORIGINAL_SIZE_KEY]).digest and s.size == (640, 427)
    write_source_record(tmp_path, {"cat/china.jpg": s})  # a Signature is accepted as one row
    got = read_source_record(tmp_path)
    assert list(got) == ["cat/china.jpg"] and np.array_equal(got["cat/china.jpg"].codes[0], s.codes)


def test_hashers_module_digest_and_hash():
    from imgclf.clean.similarity.hashers import get_hasher, pixel_digest

    photo = _photo()
    buf = io.BytesIO()
    photo.save(buf, format="PNG", compress_level=1)
    again = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    assert pixel_digest(photo) == pixel_digest(again)
    assert pixel_digest(photo) != pixel_digest(ImageEnhance.Brightness(photo).enhance(1.01))
    h = get_hasher("phash", hash_size=8)
    assert np.bitwise_count(h.hash_image(photo) ^ h.hash_image(_jpeg(photo, 60))).sum() <= 4


# ------------------------------------------------------------------ colour changes (issue 30)

NEAR_DUPLICATES = Path(__file__).resolve().parent / "data" / "near_duplicates"


def _sepia(img: Image.Image) -> Image.Image:
    """The classic sepia matrix of photo apps (rows: output R, G, B)."""
    m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return Image.fromarray(np.clip(np.rint(np.asarray(img, np.float64) @ m.T), 0, 255).astype(np.uint8))


def _hue(img: Image.Image, degrees: float) -> Image.Image:
    """Hue rotated in HSV, as a photo app's hue slider does."""
    h, s, v = (np.asarray(c, np.int32) for c in img.convert("HSV").split())
    h = (h + round(degrees / 360 * 256)) % 256
    return Image.merge("HSV", [Image.fromarray(c.astype(np.uint8)) for c in (h, s, v)]).convert("RGB")


def _gray(img: Image.Image) -> Image.Image:
    """A black-and-white repost: grayscale, stored as a grayscale JPEG, read back as RGB."""
    return _jpeg(img.convert("L"), 90).convert("RGB")


def test_grayscale_and_sepia_copies_of_a_photo_are_paired():
    for name in ("china.jpg", "flower.jpg"):
        photo = _photo(name)
        copies = [
            _gray(photo),
            _jpeg(_sepia(photo), 90),
            _jpeg(ImageEnhance.Color(photo).enhance(0.5), 90),
            _jpeg(_hue(photo, 20), 90),
        ]
        pairs = _pairs([photo, *copies])
        assert [(0, k) in pairs for k in range(1, 5)] == [True] * 4, (name, pairs)
        assert all(pairs[(0, k)][0] == "near" for k in range(1, 5))
        # without test 2b only the colour-preserving detector of before: none of them
        assert not any((0, k) in _pairs([photo, *copies], colour_changes=False) for k in range(1, 3))


def test_colour_variants_of_one_design_are_not_paired_but_their_grayscale_copies_are():
    """Hard negatives of docs/dedupe.md's benchmark, as small real files: GNOME's light and dark
    `adwaita` (128 px), oxygen's green and grey folders and its blue and cyan ones (64 px)."""
    for a, b in (
        ("gnome-adwaita-l.jpg", "gnome-adwaita-d.jpg"),
        ("oxygen-folder-green.png", "oxygen-folder-grey.png"),
        ("oxygen-folder-blue.png", "oxygen-folder-cyan.png"),
    ):
        first, second = (open_image(NEAR_DUPLICATES / f) for f in (a, b))
        assert _pairs([first, second]) == {}, (a, b)
        # the colour-change test is at work on these very pictures: a grayscale copy is paired
        assert (0, 1) in _pairs([first, _gray(first)]), a
        assert _pairs([_gray(first), second]) == {}, (a, b)


def test_verify_module_colour_change_check_on_real_pairs():
    from imgclf.clean.similarity.params import DetectorParams
    from imgclf.clean.similarity.signatures import signature, stack
    from imgclf.clean.similarity.verify import colour_change_check

    photo = _photo()
    other = _photo("flower.jpg").resize(photo.size)
    sigs = stack([signature(im) for im in (photo, _gray(photo), _jpeg(_hue(photo, -25), 90), other)])
    i, j = np.array([0, 0, 0]), np.array([1, 2, 3])
    passed, res = colour_change_check(
        sigs.colour[i, 0], sigs.colour[j, 0], sigs.gray[i, 0], sigs.gray[j, 0], DetectorParams()
    )
    assert passed.tolist() == [True, True, False]
    assert res[0] <= 0.7 * sim.DEFAULT_MAX_RESIDUAL and res[1] <= sim.DEFAULT_MAX_RESIDUAL


def test_fit_module_colour_change_fit_measures_the_filter():
    from imgclf.clean.similarity.fit import chroma_rms, colour_change_fit
    from imgclf.clean.similarity.signatures import signature, stack

    photo = _photo("flower.jpg")
    sigs = stack([signature(im) for im in (photo, photo.convert("L").convert("RGB"), _hue(photo, 25))])
    i, j = np.array([0, 0]), np.array([1, 2])
    rms, alpha, spread, colour, swap, corr = colour_change_fit(
        sigs.colour[i, 0], sigs.colour[j, 0], sigs.gray[i, 0], sigs.gray[j, 0]
    )
    assert abs(alpha[0]) < 0.05 and rms[0] < 1.0  # grayscale: no chroma kept
    assert 10 <= abs(np.degrees(np.angle(alpha[1]))) <= 40 and abs(alpha[1]) > 0.75  # hue turned
    assert not swap[0] and colour[0] > 10 and spread.shape == (2,) and corr.shape == (2, 32, 32)
    assert chroma_rms(sigs.colour[[1], 0])[0] < 1.0 < chroma_rms(sigs.colour[[0], 0])[0]


def test_trim_box_removes_a_caption_bar_and_a_window_frame_from_large_pictures():
    from imgclf.clean.similarity.params import BAND_ROUNDS, BAND_SHARE, MAX_BAND

    photo = _photo().resize((256, 171))
    meme = Image.new("RGB", (256, 171 + 24), (255, 255, 255))
    meme.paste(photo, (0, 24))
    ImageDraw.Draw(meme).text(
        (128, 12), "WHEN IT WORKS", fill=(0, 0, 0), font=ImageFont.load_default(size=14), anchor="mm"
    )
    rgb = np.asarray(meme)
    assert sim.trim_box(rgb)[0] < 10  # uniform rows only: stops at the text
    top, bottom, left, right = sim.trim_box(rgb, rounds=BAND_ROUNDS, band_share=BAND_SHARE, max_band=MAX_BAND)
    assert (top, bottom, left, right) == (24, 195, 0, 256)
    # and the detector pairs the meme with its photo (the trimmed variants)
    assert (0, 1) in _pairs([photo, _jpeg(meme, 90)])
