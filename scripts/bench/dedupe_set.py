"""Builds the near-duplicate benchmark of `bench_dedupe.py` from real pictures on this machine.

Sources (Debian packages; every file is read, never modified):

- `gnome-backgrounds` (/usr/share/backgrounds/gnome/*.webp): 8 designs, each in a light (`-l`)
  and a dark (`-d`) variant. Left out: `vnc-l` / `vnc-d`, 256 x 256 pictures of one flat
  colour (grayscale std 0): `clean` sets such near-uniform images aside (std < 2) before it
  looks for duplicates, and any two flat pictures of one colour are alike. Each variant is its
  own picture; light vs dark of one design is a *hard negative* pair (family `gnome:<design>`).
  The SVG designs are skipped (Pillow cannot decode SVG).
- `mate-backgrounds` (/usr/share/backgrounds/mate/*/*): each file is a picture, except
  `Elephants*.jpg`, one picture at three resolutions. Hard-negative family: the four
  `Ubuntu-Mate-*-no-logo` colour variants. Left out: the overlay PNGs whose median alpha is
  below 128 (Arc-Colors-Transparent-Wallpaper, Flow, Gulp, Silk, Spring, Waves,
  MATE-Stripes-Light): composited onto white, as `imgclf.images.open_image` does, they are
  nearly blank (grayscale std < 1) and `clean` sets them aside as near-uniform.
- `plasma-workspace-wallpapers` (/usr/share/wallpapers/<Name>/contents/): one picture per
  folder at the package's landscape resolutions (`images/WxH.*`; Debian links most of the
  `WxH` names to one file, so a folder has one or two real files) plus its 400x250 (or
  440x247, 400x225) `screenshot.*`. The largest is the anchor; a version whose aspect ratio differs from the
  anchor's by at most 10.5 % (16:9 vs 16:10 is 10 %) is kind `package`, a larger aspect change
  (4:3, 5:4 versions: 17-22 % of the width cut) is kind `package_aspect` (reported, outside the
  goal). Portrait versions (`1080x1920` etc.) are recompositions, not copies, and are left out.
  `images_dark/` landscape versions are separate pictures and hard negatives of the light ones
  (family `plasma:<Name>`).
- `oxygen-icon-theme` (/usr/share/icons/oxygen/base/<S>x<S>/<category>/<name>.png): one icon
  at 16, 22, 32, 48, 64, 128 and 256 px is one duplicate set, anchor 256 px, kinds `icon_<S>`
  (the goal counts 32 px and up). Icons: every `places/folder-*` (hard-negative family
  `oxygen:folder`, e.g. folder-red vs folder-green, folder-locked vs folder-important), every
  `mimetypes/application-vnd.oasis.opendocument.*` (family `oxygen:opendocument`: one page
  shape with different emblems) and 24 other icons (every k-th of apps / devices / categories in
  name order). Names that are symlinks at 256 px are skipped, and a file whose bytes equal an
  already included file is skipped (small sizes are sometimes shared between names).

Copies made of every wallpaper anchor (not of the icons or dark variants), with a random
generator seeded from the picture's name (so the set is identical on every run):

| kind | how |
| --- | --- |
| `resize` | longest side 480 px (Lanczos), PNG |
| `jpeg_q60` | half size (Lanczos), JPEG quality 60 |
| `crop` (x2) | 4-10 % of the width and of the height cut, split at random between the two sides; JPEG q90 |
| `pad` | letterboxed to a square canvas (black, white or mid grey); longest side 1280, JPEG q90 |
| `border` | a solid frame of 3-6 % of the short side (black, white or a random colour); JPEG q90 |
| `watermark` | 60 % opaque white text with a dark outline, 7 % of the height, in a random corner; JPEG q90 |
| `bright+20`, `bright-20` | `PIL.ImageEnhance.Brightness` factor 1.2 / 0.8; JPEG q90 |
| `contrast+20`, `contrast-20` | `PIL.ImageEnhance.Contrast` factor 1.2 / 0.8; JPEG q90 |
| `flip` | horizontal mirror; longest side 1280, JPEG q90 (a duplicate only with `flips=True`; reported separately) |

Every edited copy (crop ... contrast) starts from the anchor reduced to a longest side of
1280 px, so it is also a resize and a JPEG re-encode of the original.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from imgclf.images import open_image

#: Bump when the set's content changes, so that an old `--work` folder is rebuilt.
VERSION = 7

GNOME = Path("/usr/share/backgrounds/gnome")
MATE = Path("/usr/share/backgrounds/mate")
PLASMA = Path("/usr/share/wallpapers")
OXYGEN = Path("/usr/share/icons/oxygen/base")
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

ICON_SIZES = (16, 22, 32, 48, 64, 128, 256)
COPY_KINDS = (
    "resize",
    "jpeg_q60",
    "crop",
    "pad",
    "border",
    "watermark",
    "bright+20",
    "bright-20",
    "contrast+20",
    "contrast-20",
    "flip",
    "gray",
    "sepia",
    "sat-50",
    "sat+50",
    "hue",
    "wb",
    "border_wide",
    "frame",
    "caption_top",
    "caption_bottom",
)
#: Copy kinds that change the colours (issue 30).
COLOUR_KINDS = ("gray", "sepia", "sat-50", "sat+50", "hue", "wb")
#: Copy kinds that add a frame, a border or a caption bar (issue 30).
FRAME_KINDS = ("border", "border_wide", "frame", "caption_top", "caption_bottom")
BASE_SIDE = 1280
#: Sepia tone (the classic matrix of photo apps: rows are the output R, G, B).
SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
#: Families whose sets are colour grades of one photo by its publisher (Ubuntu MATE's Cold /
#: Warm / Radioactive / Dark): pairs between their sets are neither true nor false pairs
#: (`bench_dedupe.py` leaves them out of precision and recall and reports them; docs/dedupe.md).
GRADE_FAMILIES = ("mate:ubuntu-mate",)
CAPTIONS = ("WHEN THE CODE WORKS", "me after one coffee", "nobody:", "THIS IS FINE", "monday again")


@dataclass
class Item:
    """One file of the benchmark.

    Attributes:
        file: str. Name inside `<work>/images/`.
        set: str. True duplicate set (every file of a set is a copy of the same picture).
        kind: str. `anchor`, a copy kind (`COPY_KINDS`), `package`, `package_aspect`, `icon_<S>`.
        family: str. Hard-negative family ("" if none): different sets of one family look alike
            but are different pictures.
        source: str. The package file it comes from.
    """

    file: str
    set: str
    kind: str
    family: str
    source: str


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-")


def _fit(img: Image.Image, side: int) -> Image.Image:
    w, h = img.size
    s = side / max(w, h)
    if s >= 1:
        return img.copy()
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)


def _watermark(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    img = img.convert("RGBA")
    w, h = img.size
    size = max(8, round(0.07 * h))
    font = ImageFont.truetype(str(FONT), size)
    text = "© imgclf stock"
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    x0, y0, x1, y1 = d.textbbox((0, 0), text, font=font, stroke_width=max(1, size // 12))
    tw, th = x1 - x0, y1 - y0
    m = round(0.03 * min(w, h))
    corner = int(rng.integers(4))
    x = m if corner in (0, 2) else w - tw - m
    y = m if corner in (0, 1) else h - th - m
    d.text(
        (x - x0, y - y0),
        text,
        font=font,
        fill=(255, 255, 255, 153),
        stroke_width=max(1, size // 12),
        stroke_fill=(0, 0, 0, 153),
    )
    return Image.alpha_composite(img, layer).convert("RGB")


def _sepia(img: Image.Image) -> Image.Image:
    rgb = np.asarray(img, dtype=np.float64) @ SEPIA.T
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _hue(img: Image.Image, degrees: float) -> Image.Image:
    """Hue rotated by `degrees` in HSV (saturation and value kept, as photo apps' hue slider)."""
    h, s, v = (np.asarray(c, dtype=np.int32) for c in img.convert("HSV").split())
    h = ((h + round(degrees / 360 * 256)) % 256).astype(np.uint8)
    return Image.merge("HSV", [Image.fromarray(c.astype(np.uint8)) for c in (h, s, v)]).convert("RGB")


def _white_balance(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A white-balance (colour temperature) or colour-balance (tint) shift: per-channel gains."""
    k = rng.uniform(0.08, 0.15)
    gains = [
        (1 + k, 1.0, 1 - k),  # warmer
        (1 - k, 1.0, 1 + k),  # cooler
        (1 + k / 2, 1 - k / 2, 1 + k / 2),  # magenta tint
        (1 - k / 2, 1 + k / 2, 1 - k / 2),  # green tint
    ][int(rng.integers(4))]
    rgb = np.asarray(img, dtype=np.float64) * np.array(gains)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _border_wide(base: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A mat: a wide solid border (8-15 % of each side, each side its own width) with a thin
    line of another colour around the picture."""
    w, h = base.size
    outer = tuple(int(c) for c in rng.integers(0, 256, 3))
    line = (255, 255, 255) if sum(outer) < 384 else (0, 0, 0)
    left, right = (round(w * f) for f in rng.uniform(0.08, 0.15, 2))
    top, bottom = (round(h * f) for f in rng.uniform(0.08, 0.15, 2))
    t = max(2, round(0.004 * max(w, h)))
    canvas = Image.new("RGB", (w + left + right, h + top + bottom), outer)
    ImageDraw.Draw(canvas).rectangle((left - t, top - t, left + w + t - 1, top + h + t - 1), fill=line)
    canvas.paste(base, (left, top))
    return canvas


def _frame(base: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The picture in an image viewer's window on a desktop (a screenshot): a title bar with
    three buttons and a title, a status bar, a 1 px edge, a drop shadow, the desktop around;
    up to 15 % of each side."""
    w, h = base.size
    dark = bool(rng.integers(2))
    chrome = (48, 48, 52) if dark else (232, 232, 236)
    ink = (230, 230, 230) if dark else (30, 30, 30)
    bar, status = round(h * rng.uniform(0.05, 0.08)), round(h * rng.uniform(0.02, 0.04))
    mx, my = (round(s * f) for s, f in zip((w, h), rng.uniform(0.02, 0.05, 2)))
    ww, wh = w + 2, h + bar + status + 2
    desk = Image.new("RGB", (ww + 2 * mx, wh + 2 * my), tuple(int(c) for c in rng.integers(40, 200, 3)))
    d = ImageDraw.Draw(desk)
    sh = max(3, round(0.006 * w))
    d.rectangle((mx + sh, my + sh, mx + ww + sh - 1, my + wh + sh - 1), fill=(20, 20, 20))
    d.rectangle((mx, my, mx + ww - 1, my + wh - 1), fill=chrome, outline=(128, 128, 128))
    r = max(3, bar // 5)
    for k, c in enumerate(((237, 106, 94), (245, 191, 79), (97, 197, 84))):
        cx, cy = mx + 3 * r + k * 3 * r, my + bar // 2
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c)
    font = ImageFont.truetype(str(FONT), max(8, round(bar * 0.45)))
    d.text((mx + ww // 2, my + bar // 2), "picture.jpg - Image Viewer", fill=ink, font=font, anchor="mm")
    sfont = ImageFont.truetype(str(FONT), max(6, round(status * 0.6)))
    d.text((mx + 8, my + bar + h + 1 + status // 2), f"{w} x {h}  100 %", fill=ink, font=sfont, anchor="lm")
    desk.paste(base, (mx + 1, my + bar + 1))
    return desk


def _caption(base: Image.Image, rng: np.random.Generator, top: bool) -> Image.Image:
    """A meme caption: a white (or black) bar of 8-15 % of the height with one line of text,
    added above or below the picture."""
    w, h = base.size
    bh = round(h * rng.uniform(0.08, 0.15))
    white = bool(rng.integers(4))  # mostly white bars, as meme generators make them
    bg, ink = ((255, 255, 255), (0, 0, 0)) if white else ((0, 0, 0), (255, 255, 255))
    canvas = Image.new("RGB", (w, h + bh), bg)
    canvas.paste(base, (0, bh if top else 0))
    text = CAPTIONS[int(rng.integers(len(CAPTIONS)))]
    size = round(bh * 0.55)
    font = ImageFont.truetype(str(FONT), size)
    while size > 6 and ImageDraw.Draw(canvas).textlength(text, font=font) > 0.9 * w:
        size -= 2
        font = ImageFont.truetype(str(FONT), size)
    ImageDraw.Draw(canvas).text((w // 2, bh // 2 if top else h + bh // 2), text, fill=ink, font=font, anchor="mm")
    return canvas


def _colour_copy(kind: str, base: Image.Image, rng: np.random.Generator) -> Image.Image:
    if kind == "gray":
        return base.convert("L")
    if kind == "sepia":
        return _sepia(base)
    if kind in ("sat-50", "sat+50"):
        return ImageEnhance.Color(base).enhance(0.5 if kind == "sat-50" else 1.5)
    if kind == "hue":
        return _hue(base, float(rng.choice((-1, 1)) * rng.uniform(10, 30)))
    return _white_balance(base, rng)


def make_copy(kind: str, anchor: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, str, int]:
    """Returns (image, format, jpeg quality) for one copy kind of `anchor` (RGB)."""
    if kind == "resize":
        return _fit(anchor, 480), "PNG", 0
    if kind == "jpeg_q60":
        w, h = anchor.size
        return anchor.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS), "JPEG", 60
    base = _fit(anchor, BASE_SIDE)
    w, h = base.size
    if kind == "crop":
        fx, fy = rng.uniform(0.04, 0.10, size=2)
        sx, sy = rng.uniform(0, 1, size=2)
        cw, ch = round(w * fx), round(h * fy)
        left, top = round(cw * sx), round(ch * sy)
        return base.crop((left, top, w - (cw - left), h - (ch - top))), "JPEG", 90
    if kind == "pad":
        colour = [(0, 0, 0), (255, 255, 255), (128, 128, 128)][int(rng.integers(3))]
        s = max(w, h)
        canvas = Image.new("RGB", (s, s), colour)
        canvas.paste(base, ((s - w) // 2, (s - h) // 2))
        return canvas, "JPEG", 90
    if kind == "border":
        pick = int(rng.integers(3))
        rgb = [int(c) for c in rng.integers(0, 256, 3)]
        colour = [(0, 0, 0), (255, 255, 255), (rgb[0], rgb[1], rgb[2])][pick]
        b = round(min(w, h) * rng.uniform(0.03, 0.06))
        canvas = Image.new("RGB", (w + 2 * b, h + 2 * b), colour)
        canvas.paste(base, (b, b))
        return canvas, "JPEG", 90
    if kind == "watermark":
        return _watermark(base, rng), "JPEG", 90
    if kind in ("bright+20", "bright-20"):
        return ImageEnhance.Brightness(base).enhance(1.2 if kind.endswith("+20") else 0.8), "JPEG", 90
    if kind in ("contrast+20", "contrast-20"):
        return ImageEnhance.Contrast(base).enhance(1.2 if kind.endswith("+20") else 0.8), "JPEG", 90
    if kind == "flip":
        return base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", 90
    if kind in COLOUR_KINDS:
        return _colour_copy(kind, base, rng), "JPEG", 90
    if kind == "border_wide":
        return _border_wide(base, rng), "JPEG", 90
    if kind == "frame":
        return _frame(base, rng), "PNG", 0
    if kind in ("caption_top", "caption_bottom"):
        return _caption(base, rng, kind == "caption_top"), "JPEG", 90
    raise ValueError(f"unknown copy kind {kind!r}")


def _link(src: Path, dest: Path) -> None:
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    os.symlink(src, dest)


def _wallpapers() -> list[tuple[str, list[Path], str, bool]]:
    """(set name, files largest first, family, make copies) for every wallpaper picture."""
    out: list[tuple[str, list[Path], str, bool]] = []
    for f in sorted(GNOME.glob("*.webp")):
        if _uniform(f):
            continue
        design = f.stem.rsplit("-", 1)[0]
        out.append((f"gnome-{f.stem}", [f], f"gnome:{design}", True))
    mate = sorted(p for p in MATE.glob("*/*") if p.suffix.lower() in (".jpg", ".png") and not _mostly_transparent(p))
    elephants = [p for p in mate if p.name.startswith("Elephants")]
    for f in mate:
        if f in elephants:
            continue
        fam = ""
        if f.name.startswith("Ubuntu-Mate-"):
            fam = "mate:ubuntu-mate"
        out.append((f"mate-{f.stem}", [f], fam, True))
    out.append(("mate-Elephants", sorted(elephants, key=lambda p: -_pixels(p)), "", True))
    for d in sorted(p for p in PLASMA.iterdir() if (p / "contents").is_dir()):
        files = _landscape(_real(sorted((d / "contents" / "images").glob("*"))))
        shots = _real(sorted((d / "contents").glob("screenshot.*")))
        dark = _landscape(_real(sorted((d / "contents" / "images_dark").glob("*"))))
        fam = f"plasma:{d.name}" if dark else ""
        if files:
            out.append((f"plasma-{d.name}", sorted(files, key=lambda p: -_pixels(p)) + shots, fam, True))
        if dark:
            out.append((f"plasma-{d.name}-dark", sorted(dark, key=lambda p: -_pixels(p)), fam, False))
    return out


def _uniform(p: Path) -> bool:
    """True for a picture `clean` sets aside as near-uniform (grayscale std below 2, its default)."""
    return float(np.asarray(open_image(p, draft=256).convert("L"), dtype=np.float64).std()) < 2.0


def _mostly_transparent(p: Path) -> bool:
    """True for an overlay wallpaper whose median alpha is below 128 (half transparent):
    composited onto white as `open_image` does, it is a nearly blank picture."""
    with Image.open(p) as im:
        if "A" not in im.getbands():
            return False
        return float(np.median(np.asarray(im.getchannel("A")))) < 128


def _real(files: list[Path]) -> list[Path]:
    """Resolves symlinks (the package links most `WxH` names to its one large file), keeping
    each real file once."""
    out: list[Path] = []
    for p in files:
        r = p.resolve()
        if r not in out:
            out.append(r)
    return out


def _pixels(p: Path) -> int:
    with Image.open(p) as im:
        return im.width * im.height


def _landscape(files: list[Path]) -> list[Path]:
    keep = []
    for p in files:
        with Image.open(p) as im:
            if im.width >= im.height:
                keep.append(p)
    return keep


def _icons() -> list[tuple[str, str]]:
    """(category/name.png, family) of the icons in the set."""
    sizes = [f"{s}x{s}" for s in ICON_SIZES]

    def complete(rel: str) -> bool:
        return all((OXYGEN / s / rel).is_file() for s in sizes[2:]) and not (OXYGEN / "256x256" / rel).is_symlink()

    folders = sorted(f"places/{p.name}" for p in (OXYGEN / "256x256" / "places").glob("folder-*.png"))
    odf = sorted(
        f"mimetypes/{p.name}"
        for p in (OXYGEN / "256x256" / "mimetypes").glob("application-vnd.oasis.opendocument.*.png")
    )
    out = [(r, "oxygen:folder") for r in folders if complete(r)]
    out += [(r, "oxygen:opendocument") for r in odf if complete(r)]
    others = []
    for cat in ("apps", "devices", "categories"):
        names = sorted(f"{cat}/{p.name}" for p in (OXYGEN / "256x256" / cat).glob("*.png"))
        names = [r for r in names if complete(r)]
        others += names[:: max(1, len(names) // 8)][:8]
    out += [(r, "") for r in others]
    return out


def build(work: Path, *, log=print) -> list[Item]:
    """Writes the benchmark into `work/images/` (copies as files, package files as symlinks) and
    `work/truth.csv`; reuses a complete folder of the same `VERSION`."""
    work = Path(work)
    img_dir = work / "images"
    truth = work / "truth.csv"
    stamp = work / "VERSION"
    if truth.is_file() and stamp.is_file() and stamp.read_text().strip() == str(VERSION):
        with open(truth, newline="") as fh:
            return [Item(**row) for row in csv.DictReader(fh)]
    img_dir.mkdir(parents=True, exist_ok=True)
    for old in img_dir.iterdir():
        old.unlink()
    items: list[Item] = []
    seen: dict[str, str] = {}

    def add(src: Path | None, name: str, set_: str, kind: str, family: str, source: str, img=None, fmt="", q=0):
        dest = img_dir / name
        if src is not None:
            digest = hashlib.sha256(src.read_bytes()).hexdigest()
            if digest in seen:
                return
            seen[digest] = name
            _link(src, dest)
        else:
            kw = {"quality": q} if fmt == "JPEG" else {}
            img.save(dest, format=fmt, **kw)
        items.append(Item(name, set_, kind, family, source))

    walls = _wallpapers()
    log(f"building {len(walls)} wallpaper pictures ...")
    for set_, files, fam, copies in walls:
        anchor = files[0]
        add(anchor, f"{_slug(set_)}__anchor{anchor.suffix.lower()}", set_, "anchor", fam, str(anchor))
        with Image.open(anchor) as im:
            ar0 = im.width / im.height
        for k, f in enumerate(files[1:]):
            with Image.open(f) as im:
                ar = im.width / im.height
            cut = 1 - min(ar, ar0) / max(ar, ar0)
            kind = "package" if cut <= 0.105 else "package_aspect"
            add(f, f"{_slug(set_)}__{kind}{k}_{_slug(f.stem)}{f.suffix.lower()}", set_, kind, fam, str(f))
        if not copies:
            continue
        rng = np.random.default_rng(_seed(set_))
        img = open_image(anchor)
        for kind in COPY_KINDS:
            for rep in range(2 if kind == "crop" else 1):
                out, fmt, q = make_copy(kind, img, rng)
                ext = ".jpg" if fmt == "JPEG" else ".png"
                name = f"{_slug(set_)}__{kind.replace('+', 'p').replace('-', 'm')}{rep}{ext}"
                add(None, name, set_, kind, fam, str(anchor), out, fmt, q)
    icons = _icons()
    log(f"adding {len(icons)} icons at {len(ICON_SIZES)} sizes ...")
    for rel, fam in icons:
        set_ = "icon-" + _slug(rel.removesuffix(".png"))
        for s in sorted(ICON_SIZES, reverse=True):
            icon = OXYGEN / f"{s}x{s}" / rel
            if not icon.is_file():
                continue
            kind = "anchor" if s == 256 else f"icon_{s}"
            add(icon.resolve(), f"{_slug(set_)}__{s}.png", set_, kind, fam, str(icon))
    with open(truth, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "set", "kind", "family", "source"])
        w.writeheader()
        for it in items:
            w.writerow(it.__dict__)
    stamp.write_text(str(VERSION))
    return items
