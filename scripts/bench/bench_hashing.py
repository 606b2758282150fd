"""Perceptual-hash measurements behind the default dedupe threshold, and hashing throughput.

Part 1 (distances, `--part distances`): Hamming distances (64-bit hashes) between an image
and transformed copies of it, versus the nearest *distinct* image, for
- photos: 24 distinct 192x192 crops of scikit-learn's two sample photos (china.jpg,
  flower.jpg; the only real photos on a machine without internet),
- digits: scikit-learn's 1,797 8x8 digits, upscaled to 32x32 as `prepare` does,
- Fashion-MNIST: the first N images of the official training set (28x28 grayscale).
Copies: resize (x0.5 photos / x2 small), JPEG recompress (q=70 photos, q=90 small), 5% border
crop, EXIF-rotated copy (Orientation=6, read back through `open_image`).

Part 2 (throughput, `--part throughput`): images/second hashing large JPEGs (3000x2000, q=90;
half noise + gradient, half sample-photo crops upscaled with noise) with draft-mode decode
(`open_image(draft=...)`, what `clean` and `split` do) vs a plain full-decode
`imagehash.phash(Image.open(f).convert("RGB"))` loop, in the same run, and how many bits the
draft-decoded hash differs from the full-decode one.

    .venv/bin/python scripts/bench/bench_hashing.py --part all --fashion 10000
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.clean.similarity.hamming import hamming_pairs, pack_bits
from imgclf.clean.similarity.hashers import HASHERS, get_hasher
from imgclf.images import open_image

ALGOS = ("phash", "dhash", "ahash", "whash")


def _jpeg(img: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=q)
    return open_image(buf.getvalue())


def _exif_rotated(img: Image.Image) -> Image.Image:
    """Stores the image rotated 90 degrees with EXIF Orientation=6; open_image undoes it."""
    rotated = img.transpose(Image.Transpose.ROTATE_90)  # what a camera would store
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    rotated.save(buf, format="PNG", exif=exif)
    return open_image(buf.getvalue())


def _crop(img: Image.Image, frac: float = 0.05) -> Image.Image:
    w, h = img.size
    dx, dy = max(1, round(w * frac)), max(1, round(h * frac))
    return img.crop((dx, dy, w - dx, h - dy))


def photos() -> list[Image.Image]:
    from sklearn.datasets import load_sample_images

    out = []
    for arr in load_sample_images().images:
        h, w = arr.shape[:2]
        for y in range(0, h - 192 + 1, 200):
            for x in range(0, w - 192 + 1, 200):
                out.append(Image.fromarray(arr[y : y + 192, x : x + 192]))
    return out


def digits() -> list[Image.Image]:
    from sklearn.datasets import load_digits

    imgs = load_digits().images  # (1797, 8, 8) in [0, 16]
    return [
        Image.fromarray((im * 255 / 16).astype(np.uint8)).convert("RGB").resize((32, 32), Image.Resampling.BICUBIC)
        for im in imgs
    ]


def fashion(n: int) -> list[Image.Image]:
    import gzip

    with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
        arr = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    return [Image.fromarray(a).convert("RGB") for a in arr]


def transforms(kind: str):
    if kind.startswith("photos"):
        return {
            "resize x0.5": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
            "jpeg q70": lambda im: _jpeg(im, 70),
            "crop 5%": _crop,
            "exif rot": _exif_rotated,
        }
    return {
        "resize x2": lambda im: im.resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC),
        "jpeg q90": lambda im: _jpeg(im, 90),
        "crop 5%": _crop,
        "exif rot": _exif_rotated,
    }


def measure(kind: str, imgs: list[Image.Image], hash_size: int, max_copies: int = 300) -> None:
    bits = hash_size * hash_size
    ts = [round(x * bits / 64) for x in (0, 1, 2, 4, 6)]
    print(f"\n## {kind}: {len(imgs)} distinct images, hash_size {hash_size} ({bits} bits)")
    for algo in ALGOS:
        h = get_hasher(algo, hash_size)
        codes = np.stack([h.hash_image(im) for im in imgs])
        # distinct: nearest-neighbour distance of every image to any other
        i, j, d = hamming_pairs(codes, ts[-1], bits=bits)
        nn = np.full(len(imgs), 10**6)
        np.minimum.at(nn, i, d)
        np.minimum.at(nn, j, d)
        line = [f"{algo}: distinct NN<=t:"]
        for t in ts:
            line.append(f"t{t}={np.mean(nn <= t) * 100:.2f}%")
        # pairs within t among distinct images (what clean would group)
        pair_counts = {t: int((d <= t).sum()) for t in ts[1:]}
        line.append("pairs " + " ".join(f"t{t}={c}" for t, c in pair_counts.items()))
        print("  " + "  ".join(line))
        sample = imgs[:max_copies]
        for name, fn in transforms(kind).items():
            dist = np.array([int(np.bitwise_count(h.hash_image(im) ^ h.hash_image(fn(im))).sum()) for im in sample])
            if name == "crop 5%":
                print(f"    copy {name:11s}: median {np.median(dist):.0f} (not a near-duplicate at any safe threshold)")
                continue
            q = np.percentile(dist, [50, 90, 99, 100])
            print(f"    copy {name:11s}: median {q[0]:.0f}  p90 {q[1]:.0f}  p99 {q[2]:.0f}  max {q[3]:.0f}")


def throughput(n: int, size: tuple[int, int]) -> None:
    import imagehash
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(0)
    photos_ = load_sample_images().images
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        w, h = size
        gy, gx = np.mgrid[0:h, 0:w]
        for k in range(n):
            if k % 2 == 0:  # noise + gradient (no structure: the worst case for phash agreement)
                base = np.stack(
                    [
                        (gx * 255 // w + 40 * k) % 256,
                        (gy * 255 // h) % 256,
                        ((gx + gy) * 128 // (w + h) + 17 * k) % 256,
                    ],
                    -1,
                )
                arr = np.clip(base + rng.integers(-30, 30, size=(h, w, 3)), 0, 255).astype(np.uint8)
            else:  # a sample photo crop upscaled to full size, with sensor-like noise
                src = photos_[(k // 2) % 2]
                y0, x0 = rng.integers(0, 100), rng.integers(0, 200)
                crop = Image.fromarray(src[y0 : y0 + 320, x0 : x0 + 440]).resize((w, h), Image.Resampling.BICUBIC)
                arr = np.clip(np.asarray(crop, dtype=np.int16) + rng.integers(-8, 8, size=(h, w, 3)), 0, 255).astype(
                    np.uint8
                )
            p = Path(tmp) / f"big{k}.jpg"
            Image.fromarray(arr).save(p, quality=90)
            files.append(p)
        for hash_size in (8, 16):
            hasher = get_hasher("phash", hash_size)
            print(
                f"\n## throughput: {n} JPEGs {w}x{h} q90 ({sum(f.stat().st_size for f in files) / n / 1e6:.1f} MB each), "
                f"phash {hasher.bits}-bit, 1 thread"
            )
            t = time.perf_counter()
            full = [imagehash.phash(Image.open(f).convert("RGB"), hash_size=hash_size) for f in files]
            t_full = time.perf_counter() - t
            for draft in (hasher.draft_size, 256):
                t = time.perf_counter()
                got = [hasher.hash_image(open_image(f, draft=draft)) for f in files]
                t_draft = time.perf_counter() - t
                dist = [
                    int(np.bitwise_count(pack_bits(np.asarray(a.hash).reshape(-1))[0] ^ b).sum())
                    for a, b in zip(full, got)
                ]
                print(
                    f"  open_image(draft={draft:<3d}) + phash : {n / t_draft:6.2f} images/s  ({t_full / t_draft:.1f}x the baseline)  "
                    f"hash vs full decode: photos max {max(dist[1::2])} bits, noise max {max(dist[0::2])} bits"
                )
            print(f"  baseline Image.open + imagehash.phash (full decode): {n / t_full:6.2f} images/s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("distances", "throughput", "all"), default="all")
    ap.add_argument("--fashion", type=int, default=10000, help="Fashion-MNIST images to measure")
    ap.add_argument("--hash-sizes", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--big", type=int, default=20, help="large JPEGs for the throughput part")
    args = ap.parse_args()
    assert set(ALGOS) == set(HASHERS)
    if args.part in ("distances", "all"):
        sets = [
            ("photos", photos()),
            ("digits (8x8 -> 32x32)", digits()),
            (f"fashion-mnist (first {args.fashion} train)", fashion(args.fashion)),
        ]
        for hash_size in args.hash_sizes:
            for kind, imgs in sets:
                measure(kind, imgs, hash_size)
    if args.part in ("throughput", "all"):
        throughput(args.big, (3000, 2000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
