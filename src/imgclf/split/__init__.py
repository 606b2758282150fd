"""`imgclf split`: stratified train / val / test folders in which no duplicate or provenance group is split.

1. Every file is decoded once and fingerprinted (`imgclf.clean.similarity.signature`); exact
   and verified near duplicates (`find_duplicate_pairs`, the same detector and defaults as
   `clean`) are joined into duplicate groups. `split` computes them itself because its input is
   usually the `prepare` output (resized, re-encoded), not the `clean` output. With
   `provenance` (default), images of one scrape provenance group -- the same post, gallery,
   crosspost parent or (final) URL, read from the input's `_reports/provenance.csv` that
   `clean` and `prepare` carry forward, or from a scrape manifest in the input itself
   (`imgclf.clean.provenance`) -- are joined too, even when their pixels differ. The groups are
   the connected components of both kinds of links. When the input holds source signatures
   (`_reports/source_signatures.npz`, written by `prepare` for sources its center crop cut),
   the search runs a second time with those in place of the cropped files' own, and its pairs
   join the groups too: a photo and its letterboxed or bordered copy crop to different squares
   but are one picture before the crop. They are carried to `out/_reports` under the new paths
   for the evaluation's leak audit (`imgclf.leaks`).
2. Whole groups are assigned, class by class (a group counts for its majority label): the
   groups of a class are shuffled with `seed`, then taken largest first, each to the split
   that still has no image of this class if any, else to the split furthest below its target
   count (targets: `ratios` x class size, rounded by largest remainder). This is a greedy
   equivalent of scikit-learn's `StratifiedGroupKFold` for arbitrary ratios; with singleton
   groups it gives each class exactly its rounded targets.
3. With `keep_test=True` on a pre-split input (`src/train`, `src/test`, optional `src/val`),
   `test/` is the test split as it is; train and val images are pooled and split with the
   train/val ratios renormalized to sum to 1. Pool images in a group with a test image are
   set aside (`split.csv` split `dropped`, with the test image they copy in `note`), since they
   would leak into test; their count and files are in `split_report.json`
   (`train_copies_of_test`) and in the summary line.
4. Before anything is written, the assignment is checked again against every verified pair
   and provenance group (not against the groups it was built from): a pair or a provenance
   group whose images landed in different splits is a leak; with `check_leaks` (the
   default) the split fails with a `DataError` naming the files.
5. Files are hard-linked into `out/<split>/<class>/` (falling back to a copy when the file
   system refuses, e.g. across devices), or copied with `link="copy"`.

Same input and seed give identical output.

Layout (map -> reduce -> apply, docs/architecture.md):
- `imgclf.split.fingerprint`: the map, `fingerprint_file(item) -> SplitFile` -- the detector's
  signature of one file;
- `imgclf.split.table`: the driver's columns -- the map's items made a block at a time from the
  listing (`imgclf.inputs.list_image_columns`, `SplitItems`), the records of a block as
  `SplitBlock` (made in the Ray worker by `split_block`), all of them as one `SplitTable`
  (row k = file k of the listing), `rel_order` (the rows by name);
- `imgclf.split.search`: the map run on an executor (`fingerprint_table`; on a Ray cluster the
  signatures stay in the object store of the nodes that made them, the driver receives
  columns) and the reduce's near-duplicate search (`FindPairs`: `local_pairs` over the table's
  signatures, `held_pairs` where the cluster holds them, `imgclf.clean.similarity.held`);
- `imgclf.split.plan`: the reduce, `plan_split(table or records, cfg, sources=, provenance=)
  -> SplitPlan` -- pairs, groups, assignment (`imgclf.split.assign`: `assign_codes` on integer
  codes, `assign_splits`, `largest_remainder`), leak check (`imgclf.split.check`:
  `cross_split_codes`, `cross_split_pairs`, `raise_on_leaks`); pure and deterministic; the
  plan is columns (a split code per image), its destinations and `split.csv` rows are made
  when written (`SplitPlan.destinations`, `SplitPlan.iter_rows`);
- `imgclf.split.write`: the apply, `write_split(plan, ...)` -- files placed, then
  `split.csv` (streamed: `imgclf.records.split.save_split_table`) and `split_report.json`,
  the input's `prepare.json` and the source signatures under the new paths;
- here: `split_folder`, which wires them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.clean.provenance import stage_provenance
from imgclf.config import SplitConfig
from imgclf.engine import Executor, make_executor
from imgclf.errors import DataError
from imgclf.inputs import SUBSETS, class_folders, is_presplit, list_image_columns
from imgclf.records.base import write_csv
from imgclf.records.prepare import PrepareRecord
from imgclf.records.signatures import read_source_record
from imgclf.records.split import SPLIT_COLUMNS, SplitReport
from imgclf.split.assign import DROPPED, SPLITS, assign_codes, assign_splits, largest_remainder
from imgclf.split.check import cross_split_codes, cross_split_pairs, links_to_test, raise_on_leaks
from imgclf.split.fingerprint import SplitFile, SplitItem, fingerprint_file
from imgclf.split.plan import SplitPlan, plan_split, split_ratios
from imgclf.split.search import FindPairs, fingerprint_files, fingerprint_table, held_pairs, local_pairs
from imgclf.split.table import SplitTable, rel_order
from imgclf.split.write import check_output, write_split
from imgclf.ui import progress, summary

__all__ = [
    "DROPPED",
    "SPLITS",
    "FindPairs",
    "SplitFile",
    "SplitItem",
    "SplitPlan",
    "SplitSummary",
    "SplitTable",
    "assign_codes",
    "assign_splits",
    "cross_split_codes",
    "cross_split_pairs",
    "fingerprint_file",
    "fingerprint_files",
    "fingerprint_table",
    "held_pairs",
    "largest_remainder",
    "links_to_test",
    "local_pairs",
    "plan_split",
    "raise_on_leaks",
    "rel_order",
    "split_folder",
    "split_ratios",
    "write_split",
    "write_split_table",
]


@dataclass
class SplitSummary:
    """What `split_folder` did.

    Attributes:
        out: Path. Output folder.
        counts: dict split -> class -> number of images.
        groups: int. Groups of 2+ images (duplicate and provenance links; kept whole).
        duplicate_groups: int. Groups of 2+ images joined by duplicate pairs alone.
        provenance_groups: int. Provenance groups of 2+ images (0 without provenance).
        dropped: list of str. Pool images set aside as copies of (or of one source with) a kept
            test image (`keep_test`).
        test_copies: list of dict. One per dropped image: `file`, `test` (the test image it is
            linked to), `link` (`exact`, `near`, `flip`, `provenance`, or `group` when linked
            only through other members) and `residual` (grey levels, or None).
        leaks: list of (file, file, kind) crossing splits (empty unless `check_leaks=False`).
        linked: int. Files hard-linked; the others were copied.
    """

    out: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    groups: int = 0
    duplicate_groups: int = 0
    provenance_groups: int = 0
    dropped: list[str] = field(default_factory=list)
    test_copies: list[dict] = field(default_factory=list)
    leaks: list[tuple[str, str, str]] = field(default_factory=list)
    linked: int = 0

    def total(self, split: str) -> int:
        """Number of images in `split`."""
        return sum(self.counts.get(split, {}).values())


def write_split_table(path: Path, rows: Sequence[tuple[Any, ...]]) -> Path:
    """Writes a `split.csv` table at `path`: one row `(file, class, split, group, dest, note)` per image, atomically.

    `split` itself writes it through `imgclf.records.split.save_split_table`; this is the same
    table from plain tuples.

    Args:
        path: Path of the CSV.
        rows: sequence of `(relative path, class, split or "dropped", group id or "", destination
            relative to the output folder or "", note)`; the note says why an image was dropped
            (`linked to test image ...`), else "".

    Returns:
        Path: `path`.
    """
    return write_csv(path, SPLIT_COLUMNS, rows)


def _check_input(src: Path, presplit: bool, keep_test: bool) -> None:
    """Raises `DataError` for a missing input, no or an empty class folder, or `keep_test` without `src/test/`."""
    if not src.is_dir():
        raise DataError(f"input folder not found: {src}", "run `imgclf prepare` first or check the path")
    roots = [src / s for s in SUBSETS if (src / s).is_dir()] if presplit else [src]
    classes = [(r, c) for r in roots for c in class_folders(r)]
    if not classes:
        raise DataError(f"no class folders under {src}", "expected <folder>/<class>/<image>")
    for r, c in classes:
        if not any(p.is_file() and not p.name.startswith(("_", ".")) for p in (r / c).rglob("*")):
            raise DataError(f"class folder {r / c} is empty", "add images to it or remove the folder")
    if keep_test and (not presplit or not (src / "test").is_dir()):
        raise DataError(
            f"--keep-test needs a pre-split input with {src / 'test'}/<class>/",
            "drop --keep-test, or export the data with its official split",
        )


def _summary_line(plan: SplitPlan, out: Path, provenance: bool) -> str:
    """The line `split` prints when it is done."""
    totals = plan.totals
    drop = (
        (
            f", {len(plan.dropped)} train/val images set aside as copies of test images (listed in "
            f"{SplitReport.path(out)}: train_copies_of_test)"
        )
        if plan.dropped
        else ""
    )
    provs = f", {plan.provenance_groups} provenance groups" if provenance else ""
    return (
        f"split: train {totals['train']}, val {totals['val']}, test {totals['test']} "
        f"({len(plan.counts['train'])} classes, {plan.groups} groups kept whole{provs}, "
        f"{len(plan.leaks)} cross-split pairs{drop}) -> {out}"
    )


def split_folder(
    src: str | os.PathLike,
    out: str | os.PathLike,
    cfg: SplitConfig | None = None,
    *,
    executor: Executor | None = None,
) -> SplitSummary:
    """Splits an ImageFolder tree into `out/{train,val,test}/<class>/`, never splitting a group.

    Args:
        src: path. `src/<class>/<file>` (usually the `prepare` output), or pre-split
            `src/{train,val,test}/<class>/<file>`. Not modified.
        out: path. Created; a previous split output there is replaced, any other non-empty
            folder refused. Gets `train/`, `val/`, `test/` and `_reports/split.csv`
            (file, class, split, group, dest, note) and `_reports/split_report.json`.
        cfg: SplitConfig or None. `ratios` (train, val, test; sum 1), `seed`, `keep_test`,
            `check_leaks`, `link` ("hardlink" | "copy"), `radius`, `max_residual`, `flips`
            (the verified detector, as `clean`), `provenance`.
        executor: Executor or None, default None. Runs the per-file map (`imgclf.engine`);
            None = `make_executor("local")`. On a Ray executor the signatures stay on the
            cluster and the near-duplicate search runs there (`imgclf.split.search`).

    Returns:
        SplitSummary.

    Raises:
        DataError: missing input folder, no class / empty class folder, a class too small for
            the ratios (naming the class and its count), `keep_test` without `src/test/`, an
            unreadable image or provenance record, or a duplicate pair / provenance group
            across splits (naming the files).
        ConfigError: `keep_test` with zero train + val ratios.
    """
    cfg = cfg or SplitConfig()
    src, out = Path(src), Path(out)
    presplit = is_presplit(src)
    _check_input(src, presplit, cfg.keep_test)
    check_output(src, out)  # before the map: a wrong --out costs nothing
    split_ratios(cfg)  # a bad config fails before any file is read
    table, held = fingerprint_table(list_image_columns(src), executor or make_executor("local"))
    sources = read_source_record(src)
    provenance = stage_provenance(src) if cfg.provenance else None
    find_pairs = held_pairs(held, cfg) if held is not None else None
    with progress("split: near-duplicate search", total=None) as advance:
        plan = plan_split(table, cfg, sources=sources, provenance=provenance, find_pairs=find_pairs)
        more = f" ({plan.source_pairs} more before the crop)" if plan.source_files else ""
        advance(status=f"{len(plan.pairs)} pairs{more}")
    del held, find_pairs  # the plan has what it needs: the cluster may free the signatures
    linked = write_split(plan, cfg, src, out, presplit=presplit, prepared=PrepareRecord.load_optional(src))
    summary(_summary_line(plan, out, provenance is not None))
    return SplitSummary(
        out=out,
        counts=plan.counts,
        groups=plan.groups,
        duplicate_groups=plan.duplicate_groups,
        provenance_groups=plan.provenance_groups,
        dropped=[plan.table.rel(k) for k in plan.dropped],
        test_copies=plan.test_copies,
        leaks=plan.leaks,
        linked=linked,
    )
