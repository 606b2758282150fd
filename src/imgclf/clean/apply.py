"""`clean`'s apply step: writes the output folder and its reports from a `CleanPlan`.

- `copy_files`: every kept image to `OUT/<its output path>` and every file set aside to
  `OUT/_rejected/<reason>/<its input path>`, byte-for-byte copies written atomically, on the
  stage's executor (`copy_file` is the per-file function);
- `write_reports`: `OUT/_reports/rejects.csv` and `images.csv` (`imgclf.records.clean`),
  `provenance.csv` when the input has provenance (`imgclf.records.provenance`), the source
  signatures of the kept pictures (`source_signatures.npz`), `clean_report.json` (with the wall
  time) and the contact sheets (`imgclf.clean.report`; a failure there is a warning).

The input folder is only read.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from imgclf.clean.plan import CleanPlan
from imgclf.clean.report import CONTACT_COLS, CONTACT_ROWS, write_contact_sheets
from imgclf.clean.similarity import write_source_record
from imgclf.clean.table import RecordTable
from imgclf.clean.verify import ImageRecord
from imgclf.engine import Executor
from imgclf.fsutil import atomic_write_bytes
from imgclf.records.base import write_csv
from imgclf.records.clean import CleanReport, ImageRow, ImageTable, RejectRow, RejectTable
from imgclf.records.provenance import write_provenance
from imgclf.ui import progress, warn


def copy_file(job: tuple[str, str], *, src: Path, out: Path) -> None:
    """Copies `src/<job[0]>` to `out/<job[1]>` atomically (no fsync); a file that cannot be read
    any more is skipped (it is already recorded as unreadable, or vanished since the map)."""
    try:
        atomic_write_bytes(out / job[1], (src / job[0]).read_bytes(), fsync=False)
    except OSError:
        pass


def copy_files(plan: CleanPlan, src: Path, out: Path, executor: Executor) -> int:
    """Copies every file of the plan (`CleanPlan.copy_jobs`) on `executor`; returns how many."""
    jobs = plan.copy_jobs()
    with progress("clean: write", total=len(jobs)) as advance:
        for _ in executor.map(functools.partial(copy_file, src=src, out=out), jobs):
            advance()
    return len(jobs)


#: Rows turned into Python objects at a time (sort keys, CSV rows).
_CHUNK = 4096


def _by_file(table: RecordTable) -> np.ndarray:
    """Rows of the readable images in the order of their paths as strings (`ImageTable`'s order),
    sorted as a fixed-width array (bytes when every path is ASCII, else code points)."""
    rows = np.flatnonzero(table.ok)
    lengths = table.files.rel_lengths()[rows]
    width = max(1, int(lengths.max())) if len(rows) else 1
    ascii_only = table.files.names.isascii() and all(d.isascii() for d in table.files.folders)
    keys = np.empty(len(rows), f"S{width}" if ascii_only else f"U{width}")
    for a in range(0, len(rows), _CHUNK):
        part = [table.rel(k) for k in rows[a : a + _CHUNK].tolist()]
        keys[a : a + len(part)] = part
    return rows[np.argsort(keys, kind="stable")]


def image_rows(plan: CleanPlan) -> Iterator[ImageRow]:
    """The rows of `images.csv`, sorted by file: every readable image with its final label, group
    and status, made one at a time from the plan's columns."""
    t = plan.table
    order = _by_file(t)
    for k in (k for a in range(0, len(order), _CHUNK) for k in order[a : a + _CHUNK].tolist()):
        group = int(t.group[k])
        yield ImageRow(
            file=t.rel(k),
            label=t.label_of(k),
            subset=t.files.subset_of(k),
            width=int(t.width[k]),
            height=int(t.height[k]),
            nbytes=int(t.nbytes[k]),
            format=t.formats[int(t.fmt[k])],
            phash64=t.hash_hex(k),
            blur=float(t.blur[k]),
            std=float(t.std[k]),
            entropy=float(t.entropy[k]),
            group=group or None,
            status=t.status_of(k),
        )


def write_image_table(out: Path, rows: Iterable[ImageRow]) -> Path:
    """Writes `images.csv` (`imgclf.records.clean.ImageTable`, the same bytes as
    `ImageTable.save` of the rows sorted by file) row by row, atomically: `rows` must come
    sorted by file (`image_rows`)."""
    return write_csv(ImageTable.path(out), ImageTable.COLUMNS, (r.cells() for r in rows))


def write_tables(plan: CleanPlan, out: Path) -> None:
    """Writes rejects.csv, images.csv, provenance.csv (with provenance) and the source signatures."""
    RejectTable.save(out, [RejectRow(s.file, s.reason, s.detail) for s in plan.set_aside])
    write_image_table(out, image_rows(plan))
    if plan.provenance is not None:
        write_provenance(out, plan.provenance)
    # the signatures of the pictures as they are, for `prepare` to carry past its center crop
    write_source_record(out, plan.sources)


def _blurriest(plan: CleanPlan, n: int) -> list[ImageRecord]:
    """The `n` readable images with the lowest blur score (in path order among equal scores)."""
    rows = np.flatnonzero(plan.table.ok)
    return [plan.table.record(k) for k in rows[np.argsort(plan.table.blur[rows], kind="stable")[:n]]]


def write_reports(plan: CleanPlan, src: Path, out: Path, seconds: float) -> CleanReport:
    """Writes clean_report.json (with `seconds`, the wall time so far) and the contact sheets.

    Returns:
        CleanReport: the report written.
    """
    report = plan.report.model_copy(update={"seconds": round(seconds, 2)})
    report.save(out)
    try:
        blurriest = _blurriest(plan, CONTACT_ROWS * CONTACT_COLS // 2)
        write_contact_sheets(src, out / "_reports", blurriest, report.groups, report.label_conflicts)
    except Exception as exc:  # noqa: BLE001 - a failed picture must not lose the clean output
        warn(f"contact sheets not written: {exc}")
    return report
