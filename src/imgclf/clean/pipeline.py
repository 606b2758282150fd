"""`imgclf clean`: verify every image, score its quality, group duplicates, keep one per group.

Reads an ImageFolder tree (`src/<class>/<file>` or pre-split `src/{train,val,test}/<class>/...`)
and writes:

- `out/<same relative path>`: every kept image, byte-for-byte copy of the original;
- `out/_rejected/<reason>/<same relative path>`: every file set aside, with `reason` one of
  `imgclf.images.OPEN_REASONS` (unreadable, not_an_image, unsupported_format,
  decompression_bomb, truncated, corrupt, too_small), `not_in_class_folder`, `near_uniform`,
  `blurry`, `duplicate` (same decoded pixels as the kept image), `near_duplicate` (a verified
  near duplicate, `imgclf.clean.similarity`), `label_conflict` (only with
  `label_conflicts="reject"`), `manual` (rejected by a person in `imgclf review`);
- `out/_reports/rejects.csv` (file, reason, detail), `out/_reports/images.csv` (every file
  with size, 64-bit phash, blur, std, entropy, group and status), `out/_reports/clean_report.json`
  (typed records: `imgclf.records.clean`), and contact sheets `duplicate_groups.png`,
  `blurriest.png`, `label_conflicts.png`;
- `out/_reports/provenance.csv` (`imgclf.records.provenance`) when the input has a scrape
  manifest (or a provenance record of its own): the provenance group of every kept image, under
  its output path, for `prepare` and `split`. `clean_report.json` lists the provenance groups of
  two or more files (`provenance`); they are reported and kept, unless they are duplicates.

The input folder is never modified.

Review decisions: `out/_reports/decisions.sqlite` (`imgclf.records.decisions`, written by
`imgclf review out`) is read before anything is removed, never deleted, and replayed on every
run, idempotently, by the pure rule of `imgclf.clean.replay.plan_replay`: an image rejected in review goes to
`out/_rejected/manual/`, a relabelled one into its new class folder (before duplicate grouping,
so groups and label conflicts see the corrected label), an undone decision is not applied.
`clean_report.json` lists them under `decisions` (counts and files); the summary line says so.

Duplicate groups are the connected components of the graph whose edges join images with the
same decoded pixels or verified near duplicates: one `find_duplicate_pairs` call on the
signatures the map computed while decoding (exact candidates from a Hamming search, each
verified pixel by pixel; `docs/dedupe.md`). Mirrored copies are searched, reported as
`flip_pairs` and grouped only with `flips=True`. The image kept in a
group is chosen by this rule, in order: in a pre-split input, one in `test/` (then `val/`) --
so a published test set stays whole and its copies leave train; then the highest resolution
(width x height); then the largest file; then the first path in sort order. A group whose
members carry different labels is reported under `label_conflicts` (likely label noise) and not
resolved: with `label_conflicts="keep"` (default) one image per label is kept, with `"reject"`
every member is set aside.

The stage is map -> reduce -> apply (docs/architecture.md):

- list (`_list_input`): the files of the class folders as columns
  (`imgclf.inputs.list_image_columns`: about 30 bytes a file), strays, empty class folders;
  the review decisions and the input's provenance are read here too, before the output is touched;
- map (`imgclf.clean.verify.inspect_file`, through `inspect_item`): one read and decode per file -> an `ImageRecord`
  (size, digest, near-duplicate signature, quality scores, sha256 when there are decisions) or
  an `Unreadable`; pure and picklable, run on an `imgclf.engine` executor over items made a
  block at a time from the columns. The records are stored on arrival as columns
  (`imgclf.clean.table.RecordTable`, about 75 bytes an image): on a Ray cluster each block is
  made columnar in the worker (`imgclf.clean.table.split_block`) and its signatures stay in the
  object store of the node that made them, where the reduce's duplicate search runs
  (`imgclf.clean.similarity.held`); with the local engine the signatures are kept in a side
  list. The driver's peak is measured in docs/scale.md;
- reduce (`imgclf.clean.plan.plan_clean`): quality rules, decision replay, duplicate pairs,
  groups and keepers, label conflicts, flip pairs, provenance groups, counts -> a `CleanPlan`
  holding the typed report; pure, no I/O, the same plan whatever the order of the records; it
  works on the table's columns and makes objects only for the images in groups, the files set
  aside and the review decisions;
- apply (`imgclf.clean.apply`): copies (jobs made one at a time), tables (`images.csv` streamed
  row by row from the columns), records, report and contact sheets; then the summary line.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from imgclf.clean.apply import copy_files, write_reports, write_tables
from imgclf.clean.plan import CleanInput, CleanPlan, FindPairs, plan_clean
from imgclf.clean.provenance import stage_provenance
from imgclf.clean.similarity.held import HeldSignature, HeldSignatures
from imgclf.clean.similarity.params import DetectorParams
from imgclf.clean.table import BLOCK, RecordTable, record_block, split_block
from imgclf.clean.verify import ImageRecord, Unreadable, inspect_item
from imgclf.config import CleanConfig
from imgclf.engine import Executor, make_executor
from imgclf.errors import DataError
from imgclf.fsutil import is_visibility_marker
from imgclf.inputs import ImageColumns, class_folders, is_presplit, list_image_columns
from imgclf.records.clean import CleanReport
from imgclf.records.decisions import DB_FILES, REASON_MANUAL, Decision, database_path, read_decisions
from imgclf.records.provenance import ProvenanceEntry
from imgclf.ui import progress, summary, warn


@dataclass
class CleanSummary:
    """What `clean_folder` did.

    Attributes:
        out: Path. The output folder.
        total: int. Files examined.
        kept: int. Images written to `out`.
        rejected: dict reason -> count of files set aside (`"manual"`: rejected in review).
        groups: int. Duplicate groups (2+ images).
        label_conflicts: int. Groups whose members carry different labels.
        pairs: dict kind -> count of duplicate pairs found (`exact`, `near`, `flip`).
        provenance_groups: int. Provenance groups of 2+ images (0 without a scrape manifest).
        decisions: dict. Review decisions replayed (`ReplayPlan.counts()`: rows, rejected,
            relabelled, kept, undone, not_found, invalid); empty without a decisions database.
        seconds: float. Wall time.
    """

    out: Path
    total: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    groups: int = 0
    label_conflicts: int = 0
    pairs: dict[str, int] = field(default_factory=dict)
    provenance_groups: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())


#: Written into `out/_reports/` before a run touches `out`, removed when it is done: an output
#: interrupted before its report (a killed driver, a lost cluster) is still recognised as a
#: clean output, so the same command starts it again.
IN_PROGRESS = ".clean-in-progress"


def _prepare_out(src: Path, out: Path) -> None:
    """Checks the folders; clears a previous (or interrupted) clean output in `out`, except the
    decisions; marks `out` as a clean output in progress."""
    if not src.is_dir():
        raise DataError(
            f"input folder not found: {src}", "check the path, or run `imgclf datasets` / `imgclf scrape` first"
        )
    rs, ro = src.resolve(), out.resolve()
    if ro == rs or rs in ro.parents or ro in rs.parents:
        raise DataError(f"output folder {out} must not be the input folder {src}, inside it, or contain it")
    reports = out / "_reports"
    marker = reports / IN_PROGRESS
    if out.exists():
        if not out.is_dir():
            raise DataError(f"output {out} exists and is not a folder")
        keep = {reports / n for n in DB_FILES} | {marker}  # review decisions: never deleted
        present = [p for p in out.iterdir() if p != reports] + (list(reports.iterdir()) if reports.is_dir() else [])
        for stale in [p for p in present if is_visibility_marker(p)]:
            stale.unlink()  # left by a check of a command whose driver or head died
        others = [p for p in present if p not in keep and not is_visibility_marker(p)]
        if others and not (CleanReport.path(out).is_file() or marker.is_file()):
            raise DataError(
                f"output folder {out} is not empty and is not a previous clean output",
                "choose a new --out folder or empty it",
            )
        # A previous clean output: rewrite it from scratch, except the decisions database,
        # marked as in progress first, so an interrupted removal is still recognised.
        reports.mkdir(exist_ok=True)
        marker.touch()
        for p in others:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    reports.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _list_input(src: Path, out: Path) -> tuple[CleanInput, ImageColumns]:
    """Lists the input: the map's items (as columns), and what the reduce needs to know about the folder."""
    files = list_image_columns(src)
    if not len(files) and not files.strays:
        raise DataError(f"no files found under {src}", "expected <folder>/<class>/<image>")
    if not len(files):
        raise DataError(f"no class folders with files under {src}", "expected <folder>/<class>/<image>")
    presplit = is_presplit(src)
    empty = []
    for sub in [src / s for s in ("train", "val", "test") if (src / s).is_dir()] if presplit else [src]:
        for c in class_folders(sub):
            if not any(f.is_file() for f in (sub / c).rglob("*")):
                empty.append(str((sub / c).relative_to(src)))
    found = CleanInput(
        src=str(src),
        out=str(out),
        presplit=presplit,
        classes=tuple(sorted(files.labels)),
        empty=tuple(empty),
        strays=tuple(f.relative_to(src).as_posix() for f in files.strays),
        files=len(files),
    )
    return found, files


class _Items(Sequence[tuple[str, str | None, str | None]]):
    """The map's items, `(rel, label, subset)` of each file, made when asked for (a block at a time)."""

    def __init__(self, files: ImageColumns) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, k: int) -> tuple[str, str | None, str | None]:  # type: ignore[override]
        if not 0 <= k < len(self.files):
            raise IndexError(k)
        return self.files.rel(k), self.files.label_of(k), self.files.subset_of(k)


def _map(
    files: ImageColumns, cfg: CleanConfig, strays: int, sha256: bool, executor: Executor
) -> tuple[RecordTable, HeldSignatures | None]:
    """Runs `inspect_file` over the files on `executor`, with a progress bar, into a
    `RecordTable`. On a Ray cluster each block arrives as columns and its signatures stay where
    they are made: the second value says where (else None, the signatures in the table)."""
    inspect = functools.partial(inspect_item, root=str(files.root), cfg=cfg, sha256=sha256)
    items = _Items(files)
    table = RecordTable.empty(files, sha256=sha256, signatures=executor.name != "ray")
    read = 0
    with progress("clean: verify + fingerprint", total=len(files)) as advance:
        if executor.name == "ray":
            from imgclf.engine.ray import Kept

            keep = Kept(split_block)
            for block in cast(Any, executor).map(inspect, items, keep=keep):
                table.put(block)
                read += int(block.ok.sum())
                advance(len(block), status=f"read {read}  unreadable {strays + block.start + len(block) - read}")
            return table, HeldSignatures(keep.refs, keep.starts)
        _map_local(executor.map(inspect, items), table, strays, advance)
    return table, None


def _map_local(results: Iterable[ImageRecord | Unreadable], table: RecordTable, strays: int, advance: Any) -> None:
    """The local engine's records into `table`, a block of `BLOCK` at a time (their signatures
    in its side list)."""
    buf: list[ImageRecord | Unreadable] = []
    read = done = 0
    for rec in results:
        buf.append(rec)
        done += 1
        read += isinstance(rec, ImageRecord)
        if len(buf) == BLOCK:
            table.put(record_block(buf, done - len(buf)), [getattr(r, "signature", None) for r in buf])
            buf = []
        advance(status=f"read {read}  unreadable {strays + done - read}")
    if buf:
        table.put(record_block(buf, done - len(buf)), [getattr(r, "signature", None) for r in buf])


def _held_search(held: HeldSignatures, cfg: CleanConfig) -> FindPairs:
    """The reduce's duplicate search where the signatures are held (`HeldSignatures`)."""
    params = DetectorParams(radius=cfg.radius, max_residual=cfg.max_residual, flips=cfg.flips)

    def search(rows: np.ndarray) -> Any:
        return held.find_duplicate_pairs(cast(Any, rows), params)

    return search


def _fetch_sources(plan: CleanPlan, held: HeldSignatures) -> None:
    """The source signatures the plan keeps, fetched from where they are held."""
    names = [k for k, v in plan.sources.items() if isinstance(v, HeldSignature)]
    rows = held.gather([cast(HeldSignature, plan.sources[k]).position for k in names])
    plan.sources.update(zip(names, cast(Any, rows)))


def _reduce(
    listing: CleanInput,
    table: RecordTable,
    cfg: CleanConfig,
    decisions: list[Decision],
    provenance: tuple[dict[str, ProvenanceEntry], str] | None,
    held: HeldSignatures | None,
) -> CleanPlan:
    """`plan_clean`, under a spinner when there is a near-duplicate search to wait for."""
    find_pairs = _held_search(held, cfg) if held is not None else None
    if not (cfg.dedupe and int(table.ok.sum()) > 1):
        return plan_clean(listing, table, cfg, decisions, provenance, find_pairs=find_pairs)
    with progress("clean: near-duplicate search", total=None) as advance:
        plan = plan_clean(listing, table, cfg, decisions, provenance, find_pairs=find_pairs)
        advance(status=", ".join(f"{n} {k}" for k, n in sorted(plan.pairs.items())) or "no pairs")
    return plan


def _summary(plan: CleanPlan, out: Path, seconds: float) -> CleanSummary:
    rep = plan.report
    return CleanSummary(
        out=out,
        total=rep.total,
        kept=rep.kept,
        rejected=dict(Counter(s.reason for s in plan.set_aside)),
        groups=len(rep.groups),
        label_conflicts=len(rep.label_conflicts),
        pairs=plan.pairs,
        provenance_groups=len(rep.provenance.groups),
        decisions=rep.decisions.counts(),
        seconds=seconds,
    )


def summary_line(result: CleanSummary, report: CleanReport, cfg: CleanConfig) -> str:
    """The one line `imgclf clean` prints when it is done."""
    why = ", ".join(f"{n} {r}" for r, n in sorted(result.rejected.items())) or "none"
    said = ""
    if result.decisions:
        c = result.decisions
        said = (
            f"; review decisions replayed: {c['rejected']} rejected (_rejected/{REASON_MANUAL}/), "
            f"{c['relabelled']} relabelled, {c['kept']} kept, {c['undone']} undone, {c['not_found']} not found"
            + (f", {c['invalid']} invalid" if c["invalid"] else "")
        )
    flips = f", {len(report.flip_pairs)} mirrored pairs" if cfg.flips else ""
    provs = f", {len(report.provenance.groups)} provenance groups (kept)" if report.provenance.source else ""
    return (
        f"clean: kept {result.kept} of {result.total}, set aside {result.total_rejected} ({why}); "
        f"{result.groups} duplicate groups, {result.label_conflicts} label conflicts{flips}{provs} "
        f"(verified detector: radius {cfg.radius} bits, residual <= {cfg.max_residual:g}){said} "
        f"-> {result.out} (reports in {result.out / '_reports'})"
    )


def clean_folder(
    src: str | os.PathLike,
    out: str | os.PathLike,
    cfg: CleanConfig | None = None,
    *,
    executor: Executor | None = None,
) -> CleanSummary:
    """Verifies, scores and de-duplicates an ImageFolder tree into `out` (see module docs).

    Args:
        src: path. `src/<class>/<file>` or `src/{train,val,test}/<class>/<file>`; not modified.
        out: path. Output folder: created; a previous clean output there is replaced; any
            other non-empty folder is refused. Must not be inside `src` or contain it.
        cfg: CleanConfig or None (defaults). `min_size` (pixels), `max_pixels`, `dedupe`,
            `radius` (candidate bits), `max_residual` (grey levels), `flips` (see
            `imgclf.clean.similarity.find_duplicate_pairs`), `label_conflicts` (keep | reject),
            `reject_blurry` + `blur_threshold`, `reject_uniform` + `uniform_std`, `workers`.
        executor: `imgclf.engine.Executor` or None, default None. Runs the per-file map and
            the copies; None = `make_executor("local", cfg.workers)`.

    Returns:
        CleanSummary.

    Raises:
        DataError: `src` missing or without class folders / files; `out` not usable; an
            unreadable scrape manifest, provenance record or decisions database.
    """
    t0 = time.perf_counter()
    cfg = cfg or CleanConfig()
    src, out = Path(src), Path(out)
    executor = executor or make_executor("local", cfg.workers)
    decisions = read_decisions(database_path(out)) if out.is_dir() else []  # before anything is removed
    _prepare_out(src, out)
    listing, files = _list_input(src, out)
    provenance = stage_provenance(src)
    table, held = _map(files, cfg, len(listing.strays), bool(decisions), executor)
    plan = _reduce(listing, table, cfg, decisions, provenance, held)
    if held is not None:
        _fetch_sources(plan, held)
    copy_files(plan, src, out, executor)
    write_tables(plan, out)
    result = _summary(plan, out, time.perf_counter() - t0)
    report = write_reports(plan, src, out, result.seconds)
    (out / "_reports" / IN_PROGRESS).unlink(missing_ok=True)
    for e in listing.empty:
        warn(f"empty class folder: {src / e}")
    summary(summary_line(result, report, cfg))
    return result
