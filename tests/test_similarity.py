"""Two-stage near-duplicate detector (`imgclf.clean.similarity`) on small real pictures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from imgclf.clean import similarity as sim
from imgclf.clean.search import brute_force_pairs, hamming_cross_pairs, pack_bits


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
    for k in range(6):
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
