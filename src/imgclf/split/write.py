"""split's apply: the output folder from the plan -- files placed, then the records.

A previous split output in `out` is removed first, so no stale file remains; files are
hard-linked into `out/<split>/<class>/` (a copy where the file system refuses, e.g. across
devices) or copied, each copy written under a temporary name and renamed; the records
(`imgclf.records.split`, the input's `prepare.json`, the carried source signatures) are
written atomically.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from imgclf.clean.similarity import write_source_record
from imgclf.config import SplitConfig
from imgclf.errors import DataError
from imgclf.fsutil import is_visibility_marker, tmp_path_for
from imgclf.records.prepare import PrepareRecord
from imgclf.records.split import (
    DetectorSettings,
    ProvenanceUse,
    SourceSignatureCounts,
    SplitReport,
    TrainCopiesOfTest,
    TrainCopyOfTest,
    save_split_table,
)
from imgclf.split.assign import SPLITS
from imgclf.split.plan import SplitPlan
from imgclf.ui import progress

#: How `split_report.json` names the detector.
DETECTOR_METHOD = "imgclf.clean.similarity.find_duplicate_pairs (docs/dedupe.md)"


#: Written into `out/_reports/` before `split` writes into `out`, removed when it is done: an
#: output interrupted before its report (a killed driver, a lost cluster) is still recognised
#: as a split output, so the same command starts it again.
IN_PROGRESS = ".split-in-progress"


def check_output(src: Path, out: Path) -> None:
    """Refuses an output folder `split` must not write into, before any work is done.

    Raises:
        DataError: `out` is `src`, inside it or contains it, or holds files (other than a
            node-check file, `imgclf.fsutil.is_visibility_marker`) that are not a previous
            split output.
    """
    rs, ro = src.resolve(), out.resolve()
    if ro == rs or rs in ro.parents or ro in rs.parents:
        raise DataError(f"output folder {out} must not be the input folder {src}, inside it, or contain it")
    present = [p for p in out.iterdir() if not is_visibility_marker(p)] if out.is_dir() else []
    if present and not (SplitReport.path(out).is_file() or (out / "_reports" / IN_PROGRESS).is_file()):
        raise DataError(
            f"output folder {out} is not empty and is not a previous split output",
            "choose a new --out folder or empty it",
        )


def prepare_output(src: Path, out: Path) -> None:
    """Makes `out` an empty folder (but for the in-progress marker): a previous or interrupted
    split output there is removed, any other content refused (`check_output`).

    Raises:
        DataError: see `check_output`.
    """
    check_output(src, out)
    marker = out / "_reports" / IN_PROGRESS
    for stale in [p for p in out.iterdir() if is_visibility_marker(p)] if out.is_dir() else []:
        stale.unlink()  # left by a check of a command whose driver or head died
    if out.exists() and any(out.iterdir()):
        marker.touch()  # an interrupted removal is still recognised
        # a previous split: rewrite from scratch so no stale file remains
        for p in [q for q in out.iterdir() if q != marker.parent] + list(marker.parent.iterdir()):
            if p == marker:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def place_file(src_file: str | Path, dest: str | Path, link: str) -> bool:
    """Puts `src_file` at `dest`: a hard link with `link="hardlink"` where possible, else a copy.

    Returns:
        bool: True when hard-linked.
    """
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    if link == "hardlink":
        try:
            os.link(src_file, dest)
            return True
        except OSError:
            pass
    tmp = tmp_path_for(dest)
    shutil.copyfile(src_file, tmp)
    os.replace(tmp, dest)
    return False


def split_report(plan: SplitPlan, cfg: SplitConfig, src: Path, out: Path, presplit: bool, linked: int) -> SplitReport:
    """The `split_report.json` record of `plan` (`linked`: files hard-linked by `write_split`)."""
    totals = plan.totals
    placed = sum(totals.values())
    return SplitReport(
        src=str(src),
        out=str(out),
        layout="pre-split" if presplit else "flat",
        keep_test=cfg.keep_test,
        ratios_requested=list(cfg.ratios),
        ratios_used=list(plan.ratios),
        ratios_actual={s: round(totals[s] / placed, 4) if placed else 0.0 for s in SPLITS},
        seed=cfg.seed,
        detector=DetectorSettings(
            method=DETECTOR_METHOD,
            radius=cfg.radius,
            max_residual=cfg.max_residual,
            flips=cfg.flips,
            source_signatures=SourceSignatureCounts(files=plan.source_files, more_pairs=plan.source_pairs),
        ),
        counts=plan.counts,
        totals=totals,
        groups=plan.groups,
        duplicate_groups=plan.duplicate_groups,
        duplicate_pairs=plan.pair_kinds,
        largest_group=plan.largest_group,
        provenance=ProvenanceUse(enabled=cfg.provenance, source=plan.provenance_source, groups=plan.provenance_groups),
        train_copies_of_test=TrainCopiesOfTest(
            count=len(plan.test_copies), files=[TrainCopyOfTest(**c) for c in plan.test_copies]
        ),
        dropped_near_test=[plan.table.rel(k) for k in plan.dropped],
        cross_split_pairs=[list(p) for p in plan.leaks],
        link=cfg.link,
        hardlinked=linked,
    )


def write_split(
    plan: SplitPlan, cfg: SplitConfig, src: Path, out: Path, *, presplit: bool, prepared: PrepareRecord | None
) -> int:
    """split's apply: places the files of `plan` into `out` and writes its records.

    Args:
        plan: SplitPlan (`imgclf.split.plan.plan_split`).
        cfg: SplitConfig. `link` ("hardlink" | "copy") and what the report records.
        src, out: Path. Input and output folders.
        presplit: bool. The input is a pre-split tree (recorded as the report's `layout`).
        prepared: PrepareRecord or None. The input's record, copied so `train` knows how the
            images were made.

    Returns:
        int: files hard-linked (the others were copied).

    Raises:
        DataError: `out` is not empty and not a previous split output, or overlaps `src`.
    """
    prepare_output(src, out)
    linked = 0
    with progress("split: write", total=sum(plan.totals.values())) as advance:
        for k, dest in plan.destinations():
            # str paths: a `Path` per image here made the driver's peak 550 bytes an image higher
            linked += place_file(plan.table.path(k), os.path.join(out, dest), cfg.link)
            advance()
    for s in SPLITS:
        (out / s).mkdir(exist_ok=True)
    write_source_record(out, plan.sources)  # under the new paths, for the evaluation's leak audit
    save_split_table(out, plan.iter_rows())  # streamed: `write_csv` writes a row at a time
    if prepared is not None:
        prepared.save(out)
    split_report(plan, cfg, src, out, presplit, linked).save(out)
    (out / "_reports" / IN_PROGRESS).unlink(missing_ok=True)
    return linked
