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
from pathlib import Path

from imgclf.clean.plan import CleanPlan
from imgclf.clean.report import write_contact_sheets
from imgclf.clean.similarity import write_source_record
from imgclf.engine import Executor
from imgclf.fsutil import atomic_write_bytes
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
    """Copies every file of the plan (`CleanPlan.copies`) on `executor`; returns how many."""
    jobs = plan.copies()
    with progress("clean: write", total=len(jobs)) as advance:
        for _ in executor.map(functools.partial(copy_file, src=src, out=out), jobs):
            advance()
    return len(jobs)


def image_rows(plan: CleanPlan) -> list[ImageRow]:
    """The rows of `images.csv`: every readable image with its final label, group and status."""
    return [
        ImageRow(
            file=r.rel,
            label=r.label,
            subset=r.subset,
            width=r.width,
            height=r.height,
            nbytes=r.nbytes,
            format=r.format,
            phash64=r.hash_hex,
            blur=r.blur,
            std=r.std,
            entropy=r.entropy,
            group=r.group,
            status=r.status,
        )
        for r in plan.images
    ]


def write_tables(plan: CleanPlan, out: Path) -> None:
    """Writes rejects.csv, images.csv, provenance.csv (with provenance) and the source signatures."""
    RejectTable.save(out, [RejectRow(s.file, s.reason, s.detail) for s in plan.set_aside])
    ImageTable.save(out, image_rows(plan))
    if plan.provenance is not None:
        write_provenance(out, plan.provenance)
    # the signatures of the pictures as they are, for `prepare` to carry past its center crop
    write_source_record(out, plan.sources)


def write_reports(plan: CleanPlan, src: Path, out: Path, seconds: float) -> CleanReport:
    """Writes clean_report.json (with `seconds`, the wall time so far) and the contact sheets.

    Returns:
        CleanReport: the report written.
    """
    report = plan.report.model_copy(update={"seconds": round(seconds, 2)})
    report.save(out)
    try:
        write_contact_sheets(src, out / "_reports", plan.images, report.groups, report.label_conflicts)
    except Exception as exc:  # noqa: BLE001 - a failed picture must not lose the clean output
        warn(f"contact sheets not written: {exc}")
    return report
