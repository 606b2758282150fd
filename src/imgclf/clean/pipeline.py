"""`imgclf clean`: verify every image, score its quality, group duplicates, keep one per group.

Reads an ImageFolder tree (`src/<class>/<file>` or pre-split `src/{train,val,test}/<class>/...`)
and writes:

- `out/<same relative path>`: every kept image, byte-for-byte copy of the original;
- `out/_rejected/<reason>/<same relative path>`: every file set aside, with `reason` one of
  `imgclf.images.OPEN_REASONS` (unreadable, not_an_image, unsupported_format,
  decompression_bomb, truncated, corrupt, too_small), `not_in_class_folder`, `near_uniform`,
  `blurry`, `duplicate` (same decoded pixels as the kept image), `near_duplicate` (perceptual
  hash within the threshold), `label_conflict` (only with `label_conflicts="reject"`);
- `out/_reports/rejects.csv` (file, reason, detail), `out/_reports/images.csv` (every file
  with size, hash, blur, std, entropy, group and status), `out/_reports/clean_report.json`,
  and contact sheets `duplicate_groups.png`, `blurriest.png`, `label_conflicts.png`.

The input folder is never modified.

Duplicate groups are the connected components of the graph whose edges join images with the
same decoded pixels or with perceptual hashes within `threshold` bits. The image kept in a
group is chosen by this rule, in order: in a pre-split input, one in `test/` (then `val/`) --
so a published test set stays whole and its copies leave train; then the highest resolution
(width x height); then the largest file; then the first path in sort order. A group whose
members carry different labels is reported under `label_conflicts` (likely label noise) and not
resolved: with `label_conflicts="keep"` (default) one image per label is kept, with `"reject"`
every member is set aside.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.clean.hashing import get_hasher
from imgclf.clean.search import connected_components, hamming, hamming_pairs
from imgclf.clean.verify import ImageRecord, inspect_file
from imgclf.config import CleanConfig
from imgclf.errors import DataError
from imgclf.fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text
from imgclf.images import class_folders, is_presplit, list_images, scan_image_folder
from imgclf.parallel import default_workers
from imgclf.ui import progress, summary, warn

REASON_NOT_IN_CLASS = "not_in_class_folder"
REASON_NEAR_UNIFORM = "near_uniform"
REASON_BLURRY = "blurry"
REASON_DUPLICATE = "duplicate"
REASON_NEAR_DUPLICATE = "near_duplicate"
REASON_LABEL_CONFLICT = "label_conflict"

#: Priority of subsets when choosing the image to keep (lower wins).
_SUBSET_RANK = {"test": 0, "val": 1, "train": 2, None: 3}


@dataclass
class CleanSummary:
    """What `clean_folder` did.

    Attributes:
        out: Path. The output folder.
        total: int. Files examined.
        kept: int. Images written to `out`.
        rejected: dict reason -> count of files set aside.
        groups: int. Duplicate groups (2+ images).
        label_conflicts: int. Groups whose members carry different labels.
        threshold: int. Near-duplicate radius used, in bits.
        seconds: float. Wall time.
    """

    out: Path
    total: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    groups: int = 0
    label_conflicts: int = 0
    threshold: int = 0
    seconds: float = 0.0

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())


def _prepare_out(src: Path, out: Path) -> None:
    if not src.is_dir():
        raise DataError(f"input folder not found: {src}", "check the path, or run `imgclf datasets` / `imgclf scrape` first")
    rs, ro = src.resolve(), out.resolve()
    if ro == rs or rs in ro.parents or ro in rs.parents:
        raise DataError(f"output folder {out} must not be the input folder {src}, inside it, or contain it")
    if out.exists():
        if not out.is_dir():
            raise DataError(f"output {out} exists and is not a folder")
        if any(out.iterdir()):
            if not (out / "_reports" / "clean_report.json").is_file():
                raise DataError(
                    f"output folder {out} is not empty and is not a previous clean output",
                    "choose a new --out folder or empty it",
                )
            shutil.rmtree(out)  # a previous clean output: rewrite it from scratch
    out.mkdir(parents=True, exist_ok=True)


def _keep_key(r: ImageRecord) -> tuple:
    return (_SUBSET_RANK.get(r.subset, 3), -(r.width * r.height), -r.nbytes, r.rel)


def clean_folder(src: str | os.PathLike, out: str | os.PathLike, cfg: CleanConfig | None = None) -> CleanSummary:
    """Verifies, scores and de-duplicates an ImageFolder tree into `out` (see module docs).

    Args:
        src: path. `src/<class>/<file>` or `src/{train,val,test}/<class>/<file>`; not modified.
        out: path. Output folder: created; a previous clean output there is replaced; any
            other non-empty folder is refused. Must not be inside `src` or contain it.
        cfg: CleanConfig or None (defaults). `min_size` (pixels), `max_pixels`, `dedupe`,
            `hash` (phash | dhash | ahash | whash), `hash_size`, `threshold` (bits; None =
            measured default, `Hasher.default_threshold`), `label_conflicts` (keep | reject),
            `reject_blurry` + `blur_threshold`, `reject_uniform` + `uniform_std`, `workers`.

    Returns:
        CleanSummary.

    Raises:
        DataError: `src` missing or without class folders / files; `out` not usable.
        ConfigError: invalid hash settings.
    """
    t0 = time.perf_counter()
    cfg = cfg or CleanConfig()
    src, out = Path(src), Path(out)
    hasher = get_hasher(cfg.hash, cfg.hash_size)
    threshold = cfg.threshold if cfg.threshold is not None else hasher.default_threshold()
    _prepare_out(src, out)
    entries = scan_image_folder(src)
    layout_classes = sorted({e[1] for e in entries})
    in_class = {e[0] for e in entries}
    strays = [f for f in list_images(src) if f not in in_class]
    if not entries and not strays:
        raise DataError(f"no files found under {src}", "expected <folder>/<class>/<image>")
    if not entries:
        raise DataError(f"no class folders with files under {src}", "expected <folder>/<class>/<image>")
    presplit = is_presplit(src)
    empty = []
    for sub in ([src / s for s in ("train", "val", "test") if (src / s).is_dir()] if presplit else [src]):
        for c in class_folders(sub):
            if not any(f.is_file() for f in (sub / c).rglob("*")):
                empty.append(str((sub / c).relative_to(src)))

    rejects: list[tuple[str, str, str, str]] = []  # rel, reason, detail, label
    for f in strays:
        rejects.append((f.relative_to(src).as_posix(), REASON_NOT_IN_CLASS, "file is not inside a class folder", ""))

    records: list[ImageRecord] = []
    workers = cfg.workers or default_workers()
    with progress("clean: verify + hash", total=len(entries)) as advance, ThreadPoolExecutor(workers) as pool:
        jobs = ((p, p.relative_to(src).as_posix(), label, subset) for p, label, subset in entries)
        results = pool.map(
            lambda a: (a[1], a[2], inspect_file(a[0], hasher, cfg, rel=a[1], label=a[2], subset=a[3])), jobs
        )
        for rel, label, res in results:
            if isinstance(res, ImageRecord):
                if cfg.reject_uniform and res.std < cfg.uniform_std:
                    res.status, res.detail = REASON_NEAR_UNIFORM, f"grayscale std {res.std:.2f} < {cfg.uniform_std}"
                elif cfg.reject_blurry and res.blur < cfg.blur_threshold:
                    res.status, res.detail = REASON_BLURRY, f"variance of Laplacian {res.blur:.1f} < {cfg.blur_threshold}"
                records.append(res)
            else:
                rejects.append((rel, res[0], res[1], label))
            advance(status=f"read {len(records)}  unreadable {len(rejects)}")

    groups_out: list[dict[str, Any]] = []
    conflicts_out: list[dict[str, Any]] = []
    live = [r for r in records if r.status == "kept"]
    if cfg.dedupe and len(live) > 1:
        codes = np.stack([r.code for r in live])
        with progress("clean: near-duplicate search", total=None) as advance:
            i, j, d = hamming_pairs(codes, threshold, bits=hasher.bits)
            advance(status=f"{len(i)} pairs within {threshold} bits")
        by_digest: dict[str, int] = {}
        ei, ej = [i], [j]
        for k, r in enumerate(live):  # exact duplicates always join, whatever the hash says
            first = by_digest.setdefault(r.digest, k)
            if first != k:
                ei.append(np.array([first]))
                ej.append(np.array([k]))
        comp = connected_components(len(live), np.concatenate(ei), np.concatenate(ej))
        members: dict[int, list[int]] = defaultdict(list)
        for k, c in enumerate(comp):
            members[int(c)].append(k)
        gid = 0
        for c in sorted(members):
            idx = members[c]
            if len(idx) < 2:
                continue
            gid += 1
            for k in idx:
                live[k].group = gid
            labels = sorted({live[k].label for k in idx})
            conflict = len(labels) > 1
            kept_rels = []
            if conflict and cfg.label_conflicts == "reject":
                for k in idx:
                    live[k].status = REASON_LABEL_CONFLICT
                    live[k].detail = f"group {gid} mixes labels {labels}"
            else:
                by_label: dict[str, list[int]] = defaultdict(list)
                for k in idx:
                    by_label[live[k].label].append(k)
                for lab, ks in by_label.items():
                    ks = sorted(ks, key=lambda k: _keep_key(live[k]))
                    keeper = live[ks[0]]
                    kept_rels.append(keeper.rel)
                    for k in ks[1:]:
                        r = live[k]
                        dist = int(hamming(r.code, keeper.code))
                        r.status = REASON_DUPLICATE if r.digest == keeper.digest else REASON_NEAR_DUPLICATE
                        r.detail = f"group {gid}: kept {keeper.rel} ({dist} bits apart)"
            entry = {
                "group": gid,
                "labels": labels,
                "kept": kept_rels,
                "members": [
                    {"file": live[k].rel, "label": live[k].label, "status": live[k].status,
                     "width": live[k].width, "height": live[k].height, "bytes": live[k].nbytes}
                    for k in sorted(idx, key=lambda k: _keep_key(live[k]))
                ],
            }
            groups_out.append(entry)
            if conflict:
                conflicts_out.append(entry)

    # ------------------------------------------------------------------ write files
    for r in records:
        if r.status != "kept":
            rejects.append((r.rel, r.status, r.detail, r.label))
    result = CleanSummary(out=out, total=len(entries) + len(strays), threshold=threshold)
    kept = [r for r in records if r.status == "kept"]
    result.kept = len(kept)
    result.rejected = dict(Counter(x[1] for x in rejects))
    result.groups = len(groups_out)
    result.label_conflicts = len(conflicts_out)
    jobs2 = [(src / r.rel, out / r.rel) for r in kept] + [(src / rel, out / "_rejected" / reason / rel) for rel, reason, _, _ in rejects]
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
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "reason", "detail"])
    w.writerows(sorted((rel, reason, detail) for rel, reason, detail, _ in rejects))
    atomic_write_text(rep / "rejects.csv", buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "class", "subset", "width", "height", "bytes", "format", cfg.hash, "blur", "std", "entropy", "group", "status"])
    for r in sorted(records, key=lambda r: r.rel):
        w.writerow([r.rel, r.label, r.subset or "", r.width, r.height, r.nbytes, r.format, r.hash_hex,
                    f"{r.blur:.2f}", f"{r.std:.2f}", f"{r.entropy:.3f}", r.group or "", r.status])
    atomic_write_text(rep / "images.csv", buf.getvalue())

    per_class: dict[str, dict[str, int]] = {c: {"kept": 0} for c in layout_classes}
    for r in kept:
        per_class[r.label]["kept"] += 1
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
        "settings": {**cfg.model_dump(), "threshold_used": threshold, "hash_bits": hasher.bits},
        "keep_rule": "test > val > train, then highest resolution, then largest file, then path",
        "duplicate_groups": len(groups_out),
        "images_in_groups": sum(len(g["members"]) for g in groups_out),
        "label_conflicts": conflicts_out,
        "groups": groups_out,
        "quality": {
            "blur_percentiles": dict(zip(("p1", "p10", "p50", "p90"), np.percentile(blur, [1, 10, 50, 90]).round(2).tolist()))
            if len(blur) else {},
            "near_uniform": sum(r.std < cfg.uniform_std for r in records),
            "below_blur_threshold": int((blur < cfg.blur_threshold).sum()),
        },
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
    summary(
        f"clean: kept {result.kept} of {result.total}, set aside {result.total_rejected} ({why}); "
        f"{result.groups} duplicate groups, {result.label_conflicts} label conflicts "
        f"({cfg.hash} {hasher.bits} bits, threshold {threshold}) -> {out} (reports in {rep})"
    )
    return result
