"""`imgclf prepare`: every image to a square of `size` pixels, through the one input function.

Each image goes through `imgclf.inputs.load_image` with the `InputSpec` of the config: safe
open (EXIF orientation, every mode to RGB), then the resize policy -- `center_crop` (default:
the shortest side resized to `size`, then the center square, Krizhevsky et al., 2012,
"ImageNet Classification with Deep Convolutional Neural Networks", §2: "rescaled the image such
that the shorter side was of length 256, and then cropped out the central 256x256 patch"),
`pad` (letterbox) or `squish` -- with Lanczos when shrinking and bicubic when enlarging by
default.

The spec is recorded in `OUT/_reports/prepare.json`; `split` copies the record and `train`
stores it in the run directory, so `predict` applies the same policy to a new photo.

A provenance record of the input (`_reports/provenance.csv`, written by `clean` from a scrape
manifest; `imgclf.clean.provenance`) is carried over to `OUT` under the new file names, so that
`split` keeps images of one post, gallery, crosspost family or URL together.

A source that the center crop cuts (longer side more than
`imgclf.clean.similarity.SOURCE_MIN_ASPECT` times the shorter) or that is reduced to less than
half its resolution (shorter side at least `SOURCE_MIN_SCALE` x `size`) also gets the
near-duplicate signature of the whole source picture, in `OUT/_reports/source_signatures.npz`:
the crop of a 16:9 photo and the crop of its letterboxed copy are different squares, and a
3 % border or a watermark is a few pixels at 64 px, so `split` and the leak audit compare the
sources too (docs/dedupe.md, "Duplicates after the center crop").
"""

from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from imgclf.config import PrepareConfig
from imgclf.errors import DataError, ImageError
from imgclf.fsutil import atomic_write_bytes, atomic_write_text
from imgclf.inputs import InputSpec, list_images, open_for_spec, resize_image
from imgclf.parallel import default_workers
from imgclf.ui import progress, summary

#: Where `prepare` records how it made its images (read back by `split` and `train`).
PREPARE_RECORD = "_reports/prepare.json"


def prepare_spec(cfg: PrepareConfig) -> InputSpec:
    """The `InputSpec` that `prepare` applies for `cfg` (size, resize policy, interpolation)."""
    return InputSpec(size=cfg.size, resize=cfg.resize, interpolation=cfg.interpolation, pad_color=tuple(cfg.pad_color))


def write_prepare_record(folder: str | os.PathLike, spec: InputSpec) -> Path:
    """Writes `folder/_reports/prepare.json`: the `InputSpec` the images of `folder` were made with."""
    import json

    return atomic_write_text(
        Path(folder) / PREPARE_RECORD, json.dumps({"input_spec": spec.model_dump(mode="json")}, indent=2) + "\n"
    )


def read_prepare_record(folder: str | os.PathLike) -> InputSpec | None:
    """The `InputSpec` recorded by `prepare` (or copied by `split`) in `folder`, or None.

    Args:
        folder: path. A `prepare` output, or a `split` output made from one.

    Returns:
        InputSpec, or None when the folder has no (readable) record.
    """
    import json

    path = Path(folder) / PREPARE_RECORD
    try:
        return InputSpec.model_validate(json.loads(path.read_text(encoding="utf-8"))["input_spec"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class PrepareSummary:
    """What `prepare_folder` did."""

    out: Path
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    skipped_existing: int = 0

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())


def _encode(img: Image.Image, cfg: PrepareConfig) -> bytes:
    buf = io.BytesIO()
    if cfg.format == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=cfg.quality)
    return buf.getvalue()


def _output_names(src: Path, files: list[Path], ext: str) -> dict[Path, Path]:
    """Maps each input to its output path relative to `src`, with extension `ext`.

    `a.jpg` and `a.png` in one folder would both become `a.png`; such names keep their old
    extension in the stem (`a_jpg.png`, `a_png.png`) so no image overwrites another.
    """
    rels = {f: f.relative_to(src) for f in files}
    counts: dict[Path, int] = {}
    for rel in rels.values():
        counts[rel.with_suffix(ext)] = counts.get(rel.with_suffix(ext), 0) + 1
    out = {}
    for f, rel in rels.items():
        dest = rel.with_suffix(ext)
        if counts[dest] > 1:
            dest = rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.').lower()}{ext}")
        out[f] = dest
    return out


def _carry_provenance(src: Path, out: Path, dests: dict[Path, Path]) -> None:
    """Writes `out`'s provenance record from `src`'s (record or scrape manifest), renamed by `dests`."""
    from imgclf.clean.provenance import ProvenanceEntry, stage_provenance, write_provenance

    found = stage_provenance(src)
    if found is None:
        return
    entries, _ = found
    renamed = {f.relative_to(src).as_posix(): d.as_posix() for f, d in dests.items()}
    write_provenance(
        out,
        [
            ProvenanceEntry(renamed[e.file], e.group, e.links)
            for e in entries.values()
            if e.file in renamed and (out / renamed[e.file]).is_file()
        ],
    )


def _source_signature(img: Image.Image, path: Path, spec: InputSpec, carried=None):
    """The detector's signature of the whole source picture `img` (decoded by `open_for_spec`),
    or None when the prepared file shows the detector the same
    (`imgclf.clean.similarity.needs_source_signature`). `carried` (the input's own record of
    it, from `clean`) is used as it is; else a JPEG drafted below the detector's 256 px is
    decoded again at 256."""
    from imgclf.clean import similarity as sim
    from imgclf.images import ORIGINAL_SIZE_KEY

    full = tuple(img.info.get(ORIGINAL_SIZE_KEY, img.size))
    if not sim.needs_source_signature(full[0], full[1], spec.size, spec.resize == "center_crop"):
        return None
    if carried is not None:
        return carried
    if img.size == full or max(img.size) >= sim.WORK_SIDE:
        return sim.signature(img, size=full)
    try:
        return sim.file_signature(path)
    except ImageError:
        return None


def prepare_folder(src: str | os.PathLike, out: str | os.PathLike, cfg: PrepareConfig | None = None) -> PrepareSummary:
    """Writes every image of `src` resized + center-cropped to `out`, keeping relative paths.

    Sub-folders (classes, and `train/` / `test/` layouts) are kept as they are; names starting
    with `_` or `.` are skipped. The extension becomes `.png` or `.jpg` per `cfg.format`.
    Images that cannot be opened are not written; they are counted by reason and listed in
    `out/_reports/prepare_rejects.csv`. Existing outputs newer than their input are kept
    (a rerun resumes). Every file is written atomically. Sources that the center crop cuts or
    that lose more than half their resolution also get their near-duplicate signature -- from
    the input's own record (`clean` writes one) or from the same decode -- in
    `out/_reports/source_signatures.npz` (for `split` and the leak audit; a rerun
    keeps those of the files it keeps).

    Args:
        src: path. An ImageFolder tree (`src/<class>/<file>`), usually the `clean` output.
        out: path. Output folder; created if missing. Must not be `src` or inside it.
        cfg: PrepareConfig or None. `size` (pixels), `format`, `quality`, `workers`.

    Returns:
        PrepareSummary with counts.

    Raises:
        DataError: if `src` is missing, holds no class folder or no file, or `out` is inside `src`.
    """
    cfg = cfg or PrepareConfig()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"input folder not found: {src}", "run `imgclf clean` first or check the path")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise DataError(f"output folder {out} must not be the input folder {src} or inside it")
    listing = list_images(src, layout="classes")
    files = listing.paths
    if not files:
        raise DataError(f"no images found in class folders under {src}", "expected <folder>/<class>/<image>")
    ext = ".png" if cfg.format == "png" else ".jpg"
    result = PrepareSummary(out=out)
    spec = prepare_spec(cfg)
    rejects: list[tuple[str, str, str]] = [
        (str(f), "not_in_class_folder", "file is not inside a class folder") for f in listing.strays
    ]
    if rejects:
        result.rejected["not_in_class_folder"] = len(rejects)

    dests = _output_names(src, files, ext)
    from imgclf.clean.similarity import read_source_record, write_source_record

    known = read_source_record(out)  # a rerun keeps the source signatures of the files it keeps
    given = read_source_record(src)  # `clean`'s, computed from the same pictures
    sources: dict[str, object] = {}

    def work(path: Path) -> tuple[Path, str | None, str]:
        dest = out / dests[path]
        rel = dests[path].as_posix()
        if dest.exists() and dest.stat().st_mtime >= path.stat().st_mtime:
            if rel in known:  # (a file kept from before source signatures existed keeps none)
                sources[rel] = known[rel]
            return path, "__exists__", ""
        try:
            decoded = open_for_spec(path, spec)  # the decode of `load_image`, kept for the signature
        except ImageError as exc:
            return path, exc.reason, exc.detail
        img = resize_image(decoded, spec)
        sig = _source_signature(decoded, path, spec, given.get(path.relative_to(src).as_posix()))
        atomic_write_bytes(dest, _encode(img, cfg))
        if sig is not None:
            sources[rel] = sig
        return path, None, ""

    workers = cfg.workers or default_workers()
    with progress("prepare", total=len(files)) as advance, ThreadPoolExecutor(workers) as pool:
        for path, reason, detail in pool.map(work, files):
            if reason is None:
                result.kept += 1
            elif reason == "__exists__":
                result.skipped_existing += 1
                result.kept += 1
            else:
                result.rejected[reason] = result.rejected.get(reason, 0) + 1
                rejects.append((str(path), reason, detail))
            advance(status=f"kept {result.kept}  set aside {len(rejects)}")
    write_prepare_record(out, spec)
    write_source_record(out, sources)
    _carry_provenance(src, out, dests)
    if rejects:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "reason", "detail"])
        w.writerows(rejects)
        atomic_write_text(out / "_reports" / "prepare_rejects.csv", buf.getvalue())
    why = ", ".join(f"{n} {r}" for r, n in sorted(result.rejected.items())) or "none"
    reused = f" ({result.skipped_existing} already done)" if result.skipped_existing else ""
    summary(
        f"prepare: {result.kept} images at {spec.describe()}{reused}, "
        f"{result.total_rejected} set aside ({why}) -> {out}"
    )
    return result
