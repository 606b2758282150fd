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

Layout (map -> reduce -> apply, docs/architecture.md):
- `imgclf.prepare.resize`: the map, `prepare_file(task, cfg=cfg) -> PreparedFile` -- one
  source file decoded, resized and written atomically (kept when newer than its source), with
  its source signature;
- `imgclf.prepare.plan`: the list (`prepare_tasks`, `output_names`) and the reduce,
  `plan_prepare(records, strays, provenance) -> PreparePlan`;
- `imgclf.prepare.write`: the apply, `write_prepare(out, spec, plan)` (the records of
  `imgclf.records.prepare`, the source signatures, the provenance);
- here: `prepare_folder`, which wires them, and the record's reader for other stages.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from imgclf.clean.provenance import stage_provenance
from imgclf.config import PrepareConfig
from imgclf.engine import Executor, make_executor
from imgclf.errors import DataError
from imgclf.inputs import InputSpec, list_images
from imgclf.prepare.plan import PreparePlan, output_names, plan_prepare, prepare_tasks
from imgclf.prepare.resize import REJECTED, PreparedFile, PrepareTask, prepare_file, prepare_spec
from imgclf.prepare.write import write_prepare
from imgclf.records.prepare import PrepareRecord
from imgclf.records.signatures import read_source_record
from imgclf.ui import progress, summary

__all__ = [
    "PREPARE_RECORD",
    "PreparePlan",
    "PrepareSummary",
    "PrepareTask",
    "PreparedFile",
    "output_names",
    "plan_prepare",
    "prepare_file",
    "prepare_folder",
    "prepare_spec",
    "prepare_tasks",
    "read_prepare_record",
    "write_prepare",
    "write_prepare_record",
]

#: Where `prepare` records how it made its images (read back by `split` and `train`).
PREPARE_RECORD = PrepareRecord.FILE


def write_prepare_record(folder: str | os.PathLike, spec: InputSpec) -> Path:
    """Writes `folder/_reports/prepare.json` (`imgclf.records.prepare.PrepareRecord`): the
    `InputSpec` the images of `folder` were made with."""
    return PrepareRecord(input_spec=spec).save(folder)


def read_prepare_record(folder: str | os.PathLike) -> InputSpec | None:
    """The `InputSpec` recorded by `prepare` (or copied by `split`) in `folder`, or None.

    Args:
        folder: path. A `prepare` output, or a `split` output made from one.

    Returns:
        InputSpec, or None when the folder has no record.

    Raises:
        DataError: the record exists but is not valid JSON, not a record, or was written by a
            newer imgclf (`imgclf.records.prepare.PrepareRecord`).
    """
    rec = PrepareRecord.load_optional(folder)
    return rec.input_spec if rec is not None else None


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


def _check_folders(src: Path, out: Path) -> None:
    """Raises `DataError` for a missing input, or an output that is the input or inside it."""
    if not src.is_dir():
        raise DataError(f"input folder not found: {src}", "run `imgclf clean` first or check the path")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise DataError(f"output folder {out} must not be the input folder {src} or inside it")


def _run_map(tasks: list[PrepareTask], cfg: PrepareConfig, executor: Executor, strays: int) -> list[PreparedFile]:
    """Runs `prepare_file` over `tasks` on `executor`, with a progress bar; the records in task order."""
    records: list[PreparedFile] = []
    kept, aside = 0, strays
    with progress("prepare", total=len(tasks)) as advance:
        for rec in executor.map(functools.partial(prepare_file, cfg=cfg), tasks):
            records.append(rec)
            if rec.status == REJECTED:
                aside += 1
            else:
                kept += 1
            advance(status=f"kept {kept}  set aside {aside}")
    return records


def prepare_folder(
    src: str | os.PathLike,
    out: str | os.PathLike,
    cfg: PrepareConfig | None = None,
    *,
    executor: Executor | None = None,
) -> PrepareSummary:
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
        executor: Executor or None, default None. Runs the per-file map (`imgclf.engine`);
            None = `make_executor("local", cfg.workers)`.

    Returns:
        PrepareSummary with counts.

    Raises:
        DataError: if `src` is missing, holds no class folder or no file, or `out` is inside `src`.
    """
    cfg = cfg or PrepareConfig()
    src, out = Path(src), Path(out)
    _check_folders(src, out)
    listing = list_images(src, layout="classes")
    if not listing.paths:
        raise DataError(f"no images found in class folders under {src}", "expected <folder>/<class>/<image>")
    ext = ".png" if cfg.format == "png" else ".jpg"
    # the output's record: a rerun keeps the source signatures of the files it keeps; the input's: `clean`'s
    tasks = prepare_tasks(src, out, listing.paths, ext, read_source_record(src), read_source_record(out))
    executor = executor or make_executor("local", cfg.workers)
    records = _run_map(tasks, cfg, executor, len(listing.strays))
    found = stage_provenance(src)
    plan = plan_prepare(records, listing.strays, found[0] if found is not None else None)
    spec = prepare_spec(cfg)
    write_prepare(out, spec, plan)
    result = PrepareSummary(out, plan.kept, plan.rejected, plan.skipped_existing)
    why = ", ".join(f"{n} {r}" for r, n in sorted(result.rejected.items())) or "none"
    reused = f" ({result.skipped_existing} already done)" if result.skipped_existing else ""
    summary(
        f"prepare: {result.kept} images at {spec.describe()}{reused}, "
        f"{result.total_rejected} set aside ({why}) -> {out}"
    )
    return result
