"""prepare's map: one source file -> its resized file, written atomically, and a small record.

`prepare_file(task, cfg=cfg)` is pure in the sense of `imgclf.engine`: it depends only on its
arguments, shares nothing with other calls, and writes nothing but its own destination file,
so any executor (threads, processes, a cluster) can run it. What the stage used to keep in a
shared dict (the source signature of each file it kept or wrote) is in the record it returns.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from imgclf.clean import similarity as sim
from imgclf.config import PrepareConfig
from imgclf.errors import ImageError
from imgclf.fsutil import atomic_write_bytes
from imgclf.images import ORIGINAL_SIZE_KEY
from imgclf.inputs import InputSpec, open_for_spec, resize_image

#: `PreparedFile.status` of a file written by this run.
WRITTEN = "written"
#: ... of a file whose destination is newer than its source (a rerun keeps it).
KEPT = "kept"
#: ... of a file that could not be prepared (`reason`, `detail` say why).
REJECTED = "rejected"


def prepare_spec(cfg: PrepareConfig) -> InputSpec:
    """The `InputSpec` that `prepare` applies for `cfg` (size, resize policy, interpolation)."""
    return InputSpec(size=cfg.size, resize=cfg.resize, interpolation=cfg.interpolation, pad_color=cfg.pad_color)


@dataclass(frozen=True)
class PrepareTask:
    """One file for `prepare_file` (an item of the map).

    Attributes:
        index: int. Position of the file in the input's listing (the reduce's sort key).
        source: Path. The input file.
        source_rel: str. `source` relative to the input folder, "/"-separated.
        dest: Path. The output file (in the output folder).
        dest_rel: str. `dest` relative to the output folder, "/"-separated.
        given: Signatures or None. The source signature the input's own record holds for it
            (`clean` writes one), used as it is.
        known: Signatures or None. The source signature the output's record holds for `dest`
            from an earlier run, kept when the destination is kept.
    """

    index: int
    source: Path
    source_rel: str
    dest: Path
    dest_rel: str
    given: sim.Signatures | None = None
    known: sim.Signatures | None = None


@dataclass(frozen=True)
class PreparedFile:
    """What `prepare_file` did with one file (a record of the map).

    Attributes:
        index, source_rel, dest_rel: as the task's.
        source: str. The input file as given (`str(task.source)`), for the rejects table.
        status: str. `WRITTEN`, `KEPT` or `REJECTED`.
        reason, detail: str. Why it was rejected (`imgclf.errors.ImageError`), else "".
        signature: Signature, Signatures (one row) or None. The detector's signature of the
            whole source picture when the prepared file shows the detector less than it
            (`imgclf.clean.similarity.needs_source_signature`), else None.
        in_output: bool. The destination holds a prepared file after this call (written now,
            kept, or left by an earlier run when the source is now rejected).
    """

    index: int
    source: str
    source_rel: str
    dest_rel: str
    status: str
    reason: str = ""
    detail: str = ""
    signature: sim.Signature | sim.Signatures | None = None
    in_output: bool = True


def _encode(img: Image.Image, cfg: PrepareConfig) -> bytes:
    buf = io.BytesIO()
    if cfg.format == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=cfg.quality)
    return buf.getvalue()


def source_signature(
    img: Image.Image, path: Path, spec: InputSpec, carried: sim.Signatures | None = None
) -> sim.Signature | sim.Signatures | None:
    """The detector's signature of the whole source picture, or None when not needed.

    Args:
        img: PIL.Image.Image. `path` decoded by `imgclf.inputs.open_for_spec` (maybe a JPEG draft).
        path: Path. The source file (decoded again at 256 px when the draft is smaller).
        spec: InputSpec. What `prepare` applies.
        carried: Signatures or None. The input's own record of it (from `clean`), used as it is.

    Returns:
        Signature, the one-row `carried`, or None when the prepared file shows the detector the
        same picture (`imgclf.clean.similarity.needs_source_signature`) or the source cannot be
        decoded again.
    """
    full = tuple(img.info.get(ORIGINAL_SIZE_KEY, img.size))
    if not sim.needs_source_signature(full[0], full[1], spec.size, spec.resize == "center_crop"):
        return None
    if carried is not None:
        return carried
    if img.size == full or max(img.size) >= sim.WORK_SIDE:
        return sim.signature(img, size=(int(full[0]), int(full[1])))
    try:
        return sim.file_signature(path)
    except ImageError:
        return None


def prepare_file(task: PrepareTask, *, cfg: PrepareConfig) -> PreparedFile:
    """Prepares one file: decode, resize by the config's `InputSpec`, write atomically.

    A destination at least as new as its source is kept as it is (a rerun resumes).

    Args:
        task: PrepareTask.
        cfg: PrepareConfig. `size`, `resize`, `interpolation`, `pad_color`, `format`, `quality`.

    Returns:
        PreparedFile. An unreadable source is a record with status `REJECTED`, never an
        exception.

    Raises:
        OSError: the source vanished, or the destination cannot be written.
    """
    dest = task.dest
    if dest.exists() and dest.stat().st_mtime >= task.source.stat().st_mtime:
        return _record(task, KEPT, signature=task.known)
    spec = prepare_spec(cfg)
    try:
        decoded = open_for_spec(task.source, spec)  # the decode of `load_image`, kept for the signature
    except ImageError as exc:
        return _record(task, REJECTED, reason=exc.reason, detail=exc.detail, in_output=dest.is_file())
    img = resize_image(decoded, spec)
    sig = source_signature(decoded, task.source, spec, task.given)
    atomic_write_bytes(dest, _encode(img, cfg))
    return _record(task, WRITTEN, signature=sig)


def _record(task: PrepareTask, status: str, **rest) -> PreparedFile:
    """The record of `task` with `status` and the other fields of `PreparedFile` in `rest`."""
    return PreparedFile(task.index, str(task.source), task.source_rel, task.dest_rel, status, **rest)
