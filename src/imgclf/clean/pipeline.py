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
  with size, 64-bit phash, blur, std, entropy, group and status), `out/_reports/clean_report.json`,
  and contact sheets `duplicate_groups.png`, `blurriest.png`, `label_conflicts.png`;
- `out/_reports/provenance.csv` (`imgclf.clean.provenance`) when the input has a scrape
  manifest (or a provenance record of its own): the provenance group of every kept image, under
  its output path, for `prepare` and `split`. `clean_report.json` lists the provenance groups of
  two or more files (`provenance`); they are reported and kept, unless they are duplicates.

The input folder is never modified.

Review decisions: `out/_reports/decisions.sqlite` (written by `imgclf review out`) is read
before anything is removed, never deleted, and replayed on every run, idempotently, by the pure
rule of `imgclf.review.decisions.plan_replay`: an image rejected in review goes to
`out/_rejected/manual/`, a relabelled one into its new class folder (before duplicate grouping,
so groups and label conflicts see the corrected label), an undone decision is not applied.
`clean_report.json` lists them under `decisions` (counts and files); the summary line says so.

Duplicate groups are the connected components of the graph whose edges join images with the
same decoded pixels or verified near duplicates: one `find_duplicate_pairs` call on the
signatures `inspect_file` computed while decoding (exact candidates from a Hamming search, each
verified pixel by pixel; `docs/dedupe.md`). Mirrored copies are searched, reported as
`flip_pairs` and grouped only with `flips=True`. The image kept in a
group is chosen by this rule, in order: in a pre-split input, one in `test/` (then `val/`) --
so a published test set stays whole and its copies leave train; then the highest resolution
(width x height); then the largest file; then the first path in sort order. A group whose
members carry different labels is reported under `label_conflicts` (likely label noise) and not
resolved: with `label_conflicts="keep"` (default) one image per label is kept, with `"reject"`
every member is set aside.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.clean.groups import (
    KEEP_RULE,
    STATUS_DUPLICATE,
    STATUS_KEPT,
    STATUS_LABEL_CONFLICT,
    Member,
    duplicate_groups,
    resolve_groups,
)
from imgclf.clean.provenance import ProvenanceEntry, groups_report, stage_provenance, write_provenance
from imgclf.clean.similarity import KIND_FLIP, find_duplicate_pairs, stack
from imgclf.clean.verify import ImageRecord, inspect_file
from imgclf.config import CleanConfig
from imgclf.errors import DataError
from imgclf.fsutil import atomic_write_bytes, atomic_write_json
from imgclf.inputs import class_folders, is_presplit, list_images
from imgclf.parallel import default_workers
from imgclf.review.decisions import (
    DB_FILES,
    REASON_MANUAL,
    ReplayItem,
    database_path,
    file_sha256,
    plan_replay,
    read_decisions,
)
from imgclf.ui import progress, summary, warn

REASON_NOT_IN_CLASS = "not_in_class_folder"
REASON_NEAR_UNIFORM = "near_uniform"
REASON_BLURRY = "blurry"
REASON_DUPLICATE = "duplicate"
REASON_NEAR_DUPLICATE = "near_duplicate"
REASON_LABEL_CONFLICT = "label_conflict"

#: How duplicates are found, in words (clean_report.json `detector`).
DETECTOR_METHOD = (
    "exact pixel digest + verified near duplicates (imgclf.clean.similarity: 64-bit phash "
    "candidates within `radius` bits, crop windows and layouts; verified by a censored "
    "brightness/contrast fit of 32x32 thumbnails within `max_residual` grey levels, "
    "a colour check and, for crops, an ECC alignment); docs/dedupe.md"
)


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


#: `clean` keeps the signatures of the pictures a `prepare` to this size (pixels) or larger
#: would crop or reduce below half (`imgclf.clean.similarity.needs_source_signature`).
CLEAN_SOURCE_SIZE = 32


def _prepare_out(src: Path, out: Path) -> None:
    if not src.is_dir():
        raise DataError(
            f"input folder not found: {src}", "check the path, or run `imgclf datasets` / `imgclf scrape` first"
        )
    rs, ro = src.resolve(), out.resolve()
    if ro == rs or rs in ro.parents or ro in rs.parents:
        raise DataError(f"output folder {out} must not be the input folder {src}, inside it, or contain it")
    if out.exists():
        if not out.is_dir():
            raise DataError(f"output {out} exists and is not a folder")
        reports = out / "_reports"
        keep = {reports / n for n in DB_FILES}  # review decisions: never deleted
        present = [p for p in out.iterdir() if p != reports] + (list(reports.iterdir()) if reports.is_dir() else [])
        others = [p for p in present if p not in keep]
        if others:
            if not (reports / "clean_report.json").is_file():
                raise DataError(
                    f"output folder {out} is not empty and is not a previous clean output",
                    "choose a new --out folder or empty it",
                )
            # A previous clean output: rewrite it from scratch, except the decisions database;
            # its clean_report.json goes last, so an interrupted removal is still recognised.
            for p in sorted(others, key=lambda p: p.name == "clean_report.json"):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _sha256_or_empty(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError:  # vanished since it was read: matched by path only
        return ""


def clean_folder(src: str | os.PathLike, out: str | os.PathLike, cfg: CleanConfig | None = None) -> CleanSummary:
    """Verifies, scores and de-duplicates an ImageFolder tree into `out` (see module docs).

    Args:
        src: path. `src/<class>/<file>` or `src/{train,val,test}/<class>/<file>`; not modified.
        out: path. Output folder: created; a previous clean output there is replaced; any
            other non-empty folder is refused. Must not be inside `src` or contain it.
        cfg: CleanConfig or None (defaults). `min_size` (pixels), `max_pixels`, `dedupe`,
            `radius` (candidate bits), `max_residual` (grey levels), `flips` (see
            `imgclf.clean.similarity.find_duplicate_pairs`), `label_conflicts` (keep | reject),
            `reject_blurry` + `blur_threshold`, `reject_uniform` + `uniform_std`, `workers`.

    Returns:
        CleanSummary.

    Raises:
        DataError: `src` missing or without class folders / files; `out` not usable; an
            unreadable scrape manifest or provenance record.
    """
    t0 = time.perf_counter()
    cfg = cfg or CleanConfig()
    src, out = Path(src), Path(out)
    decisions = read_decisions(database_path(out)) if out.is_dir() else []  # before anything is removed
    _prepare_out(src, out)
    listing = list_images(src, layout="classes")
    entries = [(e.path, e.label, e.subset) for e in listing.entries]
    layout_classes = sorted({e[1] for e in entries})
    strays = listing.strays
    if not entries and not strays:
        raise DataError(f"no files found under {src}", "expected <folder>/<class>/<image>")
    if not entries:
        raise DataError(f"no class folders with files under {src}", "expected <folder>/<class>/<image>")
    presplit = is_presplit(src)
    empty = []
    for sub in [src / s for s in ("train", "val", "test") if (src / s).is_dir()] if presplit else [src]:
        for c in class_folders(sub):
            if not any(f.is_file() for f in (sub / c).rglob("*")):
                empty.append(str((sub / c).relative_to(src)))

    rejects: list[tuple[str, str, str, str]] = []  # rel, reason, detail, label
    for f in strays:
        rejects.append((f.relative_to(src).as_posix(), REASON_NOT_IN_CLASS, "file is not inside a class folder", ""))

    records: list[ImageRecord] = []
    workers = cfg.workers or default_workers()
    with progress("clean: verify + fingerprint", total=len(entries)) as advance, ThreadPoolExecutor(workers) as pool:
        jobs = ((p, p.relative_to(src).as_posix(), label, subset) for p, label, subset in entries)
        results = pool.map(lambda a: (a[1], a[2], inspect_file(a[0], cfg, rel=a[1], label=a[2], subset=a[3])), jobs)
        for rel, label, res in results:
            if isinstance(res, ImageRecord):
                if cfg.reject_uniform and res.std < cfg.uniform_std:
                    res.status, res.detail = REASON_NEAR_UNIFORM, f"grayscale std {res.std:.2f} < {cfg.uniform_std}"
                elif cfg.reject_blurry and res.blur < cfg.blur_threshold:
                    res.status, res.detail = (
                        REASON_BLURRY,
                        f"variance of Laplacian {res.blur:.1f} < {cfg.blur_threshold}",
                    )
                records.append(res)
            else:
                rejects.append((rel, res[0], res[1], label))
            advance(status=f"read {len(records)}  unreadable {len(rejects)}")

    # ------------------------------------------------------------------ review decisions
    replay = None
    dest: dict[str, str] = {}  # rel -> output path of a relabelled image
    if decisions:
        with ThreadPoolExecutor(workers) as pool:
            shas = list(pool.map(lambda r: _sha256_or_empty(src / r.rel), records))
        replay = plan_replay(decisions, [ReplayItem(r.rel, h, r.label, r.subset) for r, h in zip(records, shas)])
        for r in records:
            act = replay.actions.get(r.rel)
            if act is None or act.action == "keep":
                continue
            if act.action == "reject":
                r.status, r.detail = REASON_MANUAL, act.detail
            else:  # relabel: a member of the new class from here on (groups, conflicts, folders)
                r.label = str(act.new_label)
                dest[r.rel] = act.dest

    groups_out: list[dict[str, Any]] = []
    conflicts_out: list[dict[str, Any]] = []
    flips_out: list[dict[str, Any]] = []
    pair_counts: dict[str, int] = {}
    live = [r for r in records if r.status == "kept"]
    if cfg.dedupe and len(live) > 1:
        with progress("clean: near-duplicate search", total=None) as advance:
            found = find_duplicate_pairs(
                stack([r.signature for r in live]), radius=cfg.radius, max_residual=cfg.max_residual, flips=cfg.flips
            )
            pair_counts = dict(Counter(found.kind.tolist()))
            advance(status=", ".join(f"{n} {k}" for k, n in sorted(pair_counts.items())) or "no pairs")
        link = {
            (int(a), int(b)): (str(k), float(r)) for a, b, k, r in zip(found.i, found.j, found.kind, found.residual)
        }
        for (a, b), (k, r) in link.items():
            if k == KIND_FLIP:
                flips_out.append({"files": [live[a].rel, live[b].rel], "residual": round(r, 2)})
        _, groups = duplicate_groups(len(live), found.i, found.j, [r.digest for r in live])
        members = [Member(r.rel, r.label, r.subset, r.width, r.height, r.nbytes, r.digest) for r in live]
        for d in resolve_groups(groups, members, cfg.label_conflicts):
            for k in d.members:
                live[k].group = d.group
                status = d.status[k]
                if status == STATUS_LABEL_CONFLICT:
                    live[k].status, live[k].detail = status, f"group {d.group} mixes labels {d.labels}"
                elif status != STATUS_KEPT:
                    keeper = d.keeper[k]
                    how = link.get((min(k, keeper), max(k, keeper)))
                    why = (
                        (f"{how[0]}, residual {how[1]:.1f}" if how and how[0] != "exact" else "same pixels")
                        if how
                        else "joined through other members"
                    )
                    live[k].status = REASON_DUPLICATE if status == STATUS_DUPLICATE else REASON_NEAR_DUPLICATE
                    live[k].detail = f"group {d.group}: kept {live[keeper].rel} ({why})"
            index = set(d.members)
            entry = {
                "group": d.group,
                "labels": d.labels,
                "kept": [live[k].rel for k in d.kept],
                "members": [
                    {
                        "file": live[k].rel,
                        "label": live[k].label,
                        "status": live[k].status,
                        "width": live[k].width,
                        "height": live[k].height,
                        "bytes": live[k].nbytes,
                    }
                    for k in d.members
                ],
                "pairs": [
                    [live[a].rel, live[b].rel, kd, round(r, 2)]
                    for (a, b), (kd, r) in sorted(link.items())
                    if a in index and b in index
                ],
            }
            groups_out.append(entry)
            if d.conflict:
                conflicts_out.append(entry)

    # ------------------------------------------------------------------ provenance
    prov = stage_provenance(src)
    prov_groups: list[dict[str, Any]] = []
    if prov is not None:
        entries_by_file, prov_origin = prov
        status_of = {r.rel: r.status for r in records} | {rel: reason for rel, reason, _, _ in rejects}
        prov_groups = groups_report(sorted(status_of), entries_by_file, status_of)

    # ------------------------------------------------------------------ write files
    for r in records:
        if r.status != "kept":
            rejects.append((r.rel, r.status, r.detail, r.label))
    result = CleanSummary(
        out=out, total=len(entries) + len(strays), pairs=pair_counts, provenance_groups=len(prov_groups)
    )
    kept = [r for r in records if r.status == "kept"]
    result.kept = len(kept)
    result.rejected = dict(Counter(x[1] for x in rejects))
    result.groups = len(groups_out)
    result.label_conflicts = len(conflicts_out)
    result.decisions = replay.counts() if replay else {}
    jobs2 = [(src / r.rel, out / dest.get(r.rel, r.rel)) for r in kept] + [
        (src / rel, out / "_rejected" / reason / rel) for rel, reason, _, _ in rejects
    ]
    with progress("clean: write", total=len(jobs2)) as advance, ThreadPoolExecutor(workers) as pool:

        def copy(job):
            s, d = job
            try:
                atomic_write_bytes(d, s.read_bytes(), fsync=False)
            except OSError:  # unreadable input: already recorded as such, nothing to copy
                pass

        for _ in pool.map(copy, jobs2):
            advance()

    # ------------------------------------------------------------------ reports
    rep = out / "_reports"
    from imgclf.clean.report import write_image_table, write_rejects

    write_rejects(rep / "rejects.csv", [(rel, reason, detail) for rel, reason, detail, _ in rejects])
    write_image_table(rep / "images.csv", records, "phash64")
    if prov is not None:
        entries_by_file = prov[0]
        write_provenance(
            out,
            [
                ProvenanceEntry((dest.get(r.rel, r.rel)), entries_by_file[r.rel].group, entries_by_file[r.rel].links)
                for r in kept
                if r.rel in entries_by_file
            ],
        )

    from imgclf.clean.similarity import needs_source_signature, write_source_record

    # the signatures of the pictures as they are, for `prepare` to carry past its center crop
    write_source_record(
        out,
        {
            Path(dest.get(r.rel, r.rel)).as_posix(): r.signature
            for r in kept
            if r.signature is not None and needs_source_signature(r.width, r.height, CLEAN_SOURCE_SIZE)
        },
    )
    per_class: dict[str, dict[str, int]] = {c: {"kept": 0} for c in layout_classes}
    for r in kept:
        per_class.setdefault(r.label, {"kept": 0})["kept"] += 1
    for _, reason, _, label in rejects:
        if label:
            per_class.setdefault(label, {"kept": 0})
            per_class[label][reason] = per_class[label].get(reason, 0) + 1
    blur = np.array([r.blur for r in records]) if records else np.zeros(0)
    result.seconds = time.perf_counter() - t0
    report = {
        "src": str(src),
        "out": str(out),
        "layout": "pre-split" if presplit else "flat",
        "total": result.total,
        "kept": result.kept,
        "rejected": dict(sorted(result.rejected.items())),
        "per_class": per_class,
        "empty_class_folders": empty,
        "settings": cfg.model_dump(),
        "detector": DETECTOR_METHOD,
        "keep_rule": KEEP_RULE,
        "duplicate_pairs": dict(sorted(pair_counts.items())),
        "duplicate_groups": len(groups_out),
        "images_in_groups": sum(len(g["members"]) for g in groups_out),
        "label_conflicts": conflicts_out,
        "groups": groups_out,
        "flip_pairs": flips_out,
        "provenance": {"source": prov[1] if prov is not None else None, "groups": prov_groups},
        "quality": {
            "blur_percentiles": dict(
                zip(("p1", "p10", "p50", "p90"), np.percentile(blur, [1, 10, 50, 90]).round(2).tolist())
            )
            if len(blur)
            else {},
            "near_uniform": sum(r.std < cfg.uniform_std for r in records),
            "below_blur_threshold": int((blur < cfg.blur_threshold).sum()),
        },
        "decisions": {"database": str(database_path(out).relative_to(out)), **replay.report()}
        if replay
        else {"database": None, "rows": 0},
        "seconds": round(result.seconds, 2),
    }
    atomic_write_json(rep / "clean_report.json", report)
    try:
        from imgclf.clean.report import write_contact_sheets

        write_contact_sheets(src, rep, records, groups_out, conflicts_out)
    except Exception as exc:  # noqa: BLE001 - a failed picture must not lose the clean output
        warn(f"contact sheets not written: {exc}")
    for e in empty:
        warn(f"empty class folder: {src / e}")
    why = ", ".join(f"{n} {r}" for r, n in sorted(result.rejected.items())) or "none"
    said = ""
    if replay:
        c = replay.counts()
        said = (
            f"; review decisions replayed: {c['rejected']} rejected (_rejected/{REASON_MANUAL}/), {c['relabelled']} relabelled, "
            f"{c['kept']} kept, {c['undone']} undone, {c['not_found']} not found"
            + (f", {c['invalid']} invalid" if c["invalid"] else "")
        )
    flips = f", {len(flips_out)} mirrored pairs" if cfg.flips else ""
    provs = f", {len(prov_groups)} provenance groups (kept)" if prov is not None else ""
    summary(
        f"clean: kept {result.kept} of {result.total}, set aside {result.total_rejected} ({why}); "
        f"{result.groups} duplicate groups, {result.label_conflicts} label conflicts{flips}{provs} "
        f"(verified detector: radius {cfg.radius} bits, residual <= {cfg.max_residual:g}){said} -> {out} (reports in {rep})"
    )
    return result
