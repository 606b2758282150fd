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
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclf.config import SplitConfig
from imgclf.errors import ConfigError, DataError, ImageError
from imgclf.fsutil import atomic_write_json, atomic_write_text, tmp_path_for
from imgclf.inputs import SUBSETS, class_folders, is_presplit, list_images
from imgclf.parallel import default_workers
from imgclf.ui import progress, summary

SPLITS: tuple[str, ...] = ("train", "val", "test")


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


def largest_remainder(n: int, ratios: tuple[float, ...]) -> list[int]:
    """Splits `n` items by `ratios` into integers summing to `n` (largest remainder method).

    Every ratio > 0 gets at least 1 when `n` allows, taken from the largest share.

    Args:
        n: int >= 0.
        ratios: tuple of non-negative floats summing to 1.

    Returns:
        list of int, one per ratio, summing to `n`.
    """
    raw = [n * r for r in ratios]
    out = [int(np.floor(x)) for x in raw]
    order = sorted(range(len(raw)), key=lambda k: (-(raw[k] - out[k]), k))
    for k in order[: n - sum(out)]:
        out[k] += 1
    for k, r in enumerate(ratios):
        if r > 0 and out[k] == 0:
            donor = max(range(len(out)), key=lambda m: out[m])
            if out[donor] > 1:
                out[donor] -= 1
                out[k] += 1
    return out


#: `assign_splits`' value for an image left out: in a group with a fixed image but not fixed itself.
DROPPED = "dropped"


def assign_splits(
    labels: Sequence[str],
    groups: Sequence[int] | np.ndarray,
    ratios: Sequence[float],
    seed: int = 42,
    fixed: Sequence[str | None] | None = None,
    *,
    require_pool: bool = False,
) -> np.ndarray:
    """Assigns every image to train / val / test, stratified by class, never splitting a group.

    A pure splitter in the style of scikit-learn's `StratifiedGroupKFold.split(X, y, groups)`:
    arrays in, an assignment out, no I/O. Whole groups are assigned class by class (a group
    counts for its majority label, ties to the smaller label): the groups of a class are
    shuffled with `seed`, then taken largest first, each to the split that still has no image
    of this class if any, else to the split furthest below its target count (targets: `ratios`
    x class size, rounded by largest remainder). With singleton groups every class gets exactly
    its rounded targets.

    Invariants: images of one group share a split; an image with a `fixed` split keeps it; an
    image grouped with a fixed one but not fixed itself is `DROPPED` (it would leak into that
    split); the same inputs and seed give the same output.

    Args:
        labels: sequence of n str. Class of each image.
        groups: sequence of n int. Group id of each image (e.g. duplicate or provenance groups;
            `imgclf.clean.groups.duplicate_groups` gives one); unique ids = no groups. Groups are
            ordered by their smallest index, members by index, so callers pass images in a
            stable order (by path).
        ratios: 3 floats >= 0 summing to 1: train, val, test.
        seed: int, default 42. Shuffles the groups of each class.
        fixed: sequence of n (str or None), or None. A split an image must take (e.g. "test" for
            a published test set), or None to let the splitter choose.
        require_pool: bool, default False. A class with no image left to assign is an error
            (set for `keep_test`, where every class needs training images).

    Returns:
        np.ndarray of n str (dtype object): "train", "val", "test" or `DROPPED`.

    Raises:
        DataError: a class too small for the ratios (naming it and its count), or with no image
            to assign when `require_pool`.
        ValueError: if the lengths differ or `ratios` is not 3 numbers.
    """
    n = len(labels)
    groups = np.asarray(groups)
    if len(groups) != n or (fixed is not None and len(fixed) != n) or len(ratios) != 3:
        raise ValueError(
            f"labels, groups and fixed must have one entry per image and ratios 3, received "
            f"{n}, {len(groups)}, {None if fixed is None else len(fixed)} and {len(ratios)}"
        )
    fixed = list(fixed) if fixed is not None else [None] * n
    assign = np.array([f for f in fixed], dtype=object)
    members: dict[int, list[int]] = defaultdict(list)
    for k, g in enumerate(groups.tolist()):
        members[g].append(k)
    ordered_groups = sorted(members.values(), key=min)
    for ks in ordered_groups:
        if any(fixed[k] is not None for k in ks):
            for k in ks:
                if fixed[k] is None:
                    assign[k] = DROPPED
    pool_groups: dict[str, list[list[int]]] = defaultdict(list)
    for ks in ordered_groups:
        free = [k for k in ks if assign[k] is None]
        if not free:
            continue
        counts = Counter(labels[k] for k in free)
        major = sorted(counts, key=lambda lab: (-counts[lab], lab))[0]
        pool_groups[major].append(free)
    nonzero = [s for s, r in zip(SPLITS, ratios) if r > 0]
    rng = np.random.default_rng(seed)
    for cls in sorted(set(labels)):
        cls_groups = pool_groups.get(cls, [])
        size = sum(len(g) for g in cls_groups)
        if require_pool and size == 0:
            raise DataError(f"class {cls!r} has no train/val images to split (only test)", "add training images for it")
        if size == 0:
            continue
        if size < len(nonzero) or len(cls_groups) < len(nonzero):
            need = ", ".join(f"{s} {r:.2f}" for s, r in zip(SPLITS, ratios) if r > 0)
            grp = f" in {len(cls_groups)} duplicate groups" if len(cls_groups) != size else ""
            raise DataError(
                f"class {cls!r} has {size} images{grp}; ratios ({need}) need at least {len(nonzero)} "
                "so that every split gets one",
                "add images to this class, remove it, or change --ratios",
            )
        targets = dict(zip(SPLITS, largest_remainder(size, tuple(ratios))))
        perm = rng.permutation(len(cls_groups))
        ordered = sorted((cls_groups[p] for p in perm), key=len, reverse=True)  # stable: ties keep shuffle
        have = dict.fromkeys(SPLITS, 0)
        for g in ordered:
            best = max(
                nonzero,
                key=lambda s: (have[s] == 0 and targets[s] > 0, targets[s] - have[s], -SPLITS.index(s)),
            )
            have[best] += len(g)
            for k in g:
                assign[k] = best
    return assign


def _check_input(src: Path, presplit: bool) -> None:
    if not src.is_dir():
        raise DataError(f"input folder not found: {src}", "run `imgclf prepare` first or check the path")
    roots = [src / s for s in SUBSETS if (src / s).is_dir()] if presplit else [src]
    classes = [(r, c) for r in roots for c in class_folders(r)]
    if not classes:
        raise DataError(f"no class folders under {src}", "expected <folder>/<class>/<image>")
    for r, c in classes:
        if not any(p.is_file() and not p.name.startswith(("_", ".")) for p in (r / c).rglob("*")):
            raise DataError(f"class folder {r / c} is empty", "add images to it or remove the folder")


def _prepare_out(src: Path, out: Path) -> None:
    rs, ro = src.resolve(), out.resolve()
    if ro == rs or rs in ro.parents or ro in rs.parents:
        raise DataError(f"output folder {out} must not be the input folder {src}, inside it, or contain it")
    if out.exists() and any(out.iterdir()):
        if not (out / "_reports" / "split_report.json").is_file():
            raise DataError(
                f"output folder {out} is not empty and is not a previous split output",
                "choose a new --out folder or empty it",
            )
        shutil.rmtree(out)  # a previous split: rewrite from scratch so no stale file remains
    out.mkdir(parents=True, exist_ok=True)


def _signatures(files: list[Path]):
    """Decodes every file once (JPEG draft at 256 px) and computes its detector signature."""
    from imgclf.clean.similarity import file_signature, stack

    def one(p: Path):
        try:
            return file_signature(p)
        except ImageError as exc:
            raise DataError(
                f"cannot read {p}: {exc.reason} ({exc.detail})", "run `imgclf clean` on the raw data first"
            ) from None

    sigs = []
    with progress("split: fingerprint", total=len(files)) as advance, ThreadPoolExecutor(default_workers()) as pool:
        for sig in pool.map(one, files):
            sigs.append(sig)
            advance()
    return stack(sigs)


def _place(src_file: Path, dest: Path, link: str) -> bool:
    dest.parent.mkdir(parents=True, exist_ok=True)
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


def cross_split_pairs(
    names: Sequence[str],
    splits: Sequence[str | None],
    pairs,
    *,
    provenance: Sequence[int] | np.ndarray | None = None,
) -> list[tuple[str, str, str]]:
    """Finds images linked by duplicate pairs or provenance that sit in different splits.

    An independent re-check of an assignment against the evidence it was built from, not
    against the groups `assign_splits` received: the connected components of every verified
    pair (`imgclf.clean.similarity.find_duplicate_pairs` on all the images) and every provenance
    link are formed again, through unplaced images too (exact duplicates are stored as a star
    around the first copy, which may be the one set aside), and a component whose placed images
    are in two splits is a leak. The detector's decisions are per pair, so running it again on
    the placed images alone would only find a subset of the same pairs.

    Args:
        names: sequence of n str. One name per image (reported in the result).
        splits: sequence of n str or None. `"train"`, `"val"`, `"test"`, or anything else for an
            image that is not placed (ignored).
        pairs: `imgclf.clean.similarity.DuplicatePairs` among the n images.
        provenance: sequence of n int or None. Provenance group id of each image
            (`imgclf.clean.provenance.group_ids`); None = no provenance.

    Returns:
        list of `(name, name, kind)` sorted: the first placed image of a component and one in
        another split, `kind` the link between them (`exact`, `near`, `flip`, `provenance`) or
        `group` when they are linked only through other images; empty when nothing leaks.
    """
    from imgclf.clean.groups import duplicate_groups

    n = len(names)
    link: dict[tuple[int, int], str] = {}
    for a, b, k in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.kind.tolist()):
        link.setdefault((min(a, b), max(a, b)), str(k))
    ei, ej = [pairs.i.astype(np.int64)], [pairs.j.astype(np.int64)]
    if provenance is not None:
        first_of: dict[int, int] = {}
        for k in range(n):
            f = first_of.setdefault(int(provenance[k]), k)
            if f != k:
                link.setdefault((f, k), "provenance")
                ei.append(np.array([f]))
                ej.append(np.array([k]))
    comp, _ = duplicate_groups(n, np.concatenate(ei), np.concatenate(ej))
    first: dict[int, int] = {}
    out = set()
    for k, s in enumerate(splits):
        if s not in SPLITS:
            continue
        f = first.setdefault(int(comp[k]), k)
        if f != k and splits[f] != s:
            out.add((names[f], names[k], link.get((f, k), "group")))
    return sorted(out)


def raise_on_leaks(leaks: Sequence[tuple[str, str, str]]) -> None:
    """Raises `DataError` naming up to 5 cross-split pairs (see `cross_split_pairs`)."""
    if leaks:
        shown = "; ".join(f"{a} <-> {b} ({k})" for a, b, k in leaks[:5])
        raise DataError(
            f"{len(leaks)} duplicate pair(s) or provenance link(s) would cross splits: {shown}",
            "run `imgclf clean` first, or pass --no-check-leaks to accept them",
        )


def write_split_table(path: Path, rows: Sequence[tuple]) -> Path:
    """Writes `split.csv`: one row `(file, class, split, group, dest, note)` per input image, atomically.

    Args:
        path: Path of the CSV.
        rows: sequence of `(relative path, class, split or "dropped", group id or "", destination
            relative to the output folder or "", note)`; the note says why an image was dropped
            (`copy of test/...`), else "".

    Returns:
        Path: `path`.
    """
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "class", "split", "group", "dest", "note"])
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def _test_links(
    comp: np.ndarray, dropped: list[int], fixed: list[str | None], pairs, prov: np.ndarray | None, rels: list[str]
) -> list[dict]:
    """For each dropped pool image, the test image it is linked to and how (for the report)."""
    direct: dict[int, list[tuple[int, str, float]]] = defaultdict(list)
    for a, b, k, r in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.kind.tolist(), pairs.residual.tolist()):
        direct[a].append((b, k, r))
        direct[b].append((a, k, r))
    tests_of: dict[int, list[int]] = defaultdict(list)
    for k, f in enumerate(fixed):
        if f is not None:
            tests_of[int(comp[k])].append(k)
    out = []
    for k in dropped:
        hit = sorted(((r, t, kind) for t, kind, r in direct[k] if fixed[t] is not None), key=lambda x: x[0])
        if hit:
            r, t, kind = hit[0]
            out.append({"file": rels[k], "test": rels[t], "link": kind, "residual": round(float(r), 2)})
            continue
        same = [t for t in tests_of[int(comp[k])] if prov is not None and prov[t] == prov[k]]
        t = (same or tests_of[int(comp[k])])[0]
        out.append({"file": rels[k], "test": rels[t], "link": "provenance" if same else "group", "residual": None})
    return out


def split_folder(src: str | os.PathLike, out: str | os.PathLike, cfg: SplitConfig | None = None) -> SplitSummary:
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

    Returns:
        SplitSummary.

    Raises:
        DataError: missing input folder, no class / empty class folder, a class too small for
            the ratios (naming the class and its count), `keep_test` without `src/test/`, an
            unreadable image or provenance record, or a duplicate pair / provenance group
            across splits (naming the files).
        ConfigError: `keep_test` with zero train + val ratios.
    """
    from imgclf.clean.groups import duplicate_groups
    from imgclf.clean.provenance import group_ids, stage_provenance
    from imgclf.clean.similarity import (
        find_duplicate_pairs,
        read_source_record,
        source_view,
        union_pairs,
        write_source_record,
    )

    cfg = cfg or SplitConfig()
    src, out = Path(src), Path(out)
    presplit = is_presplit(src)
    _check_input(src, presplit)
    entries = [(e.path, e.label, e.subset) for e in list_images(src, layout="classes").entries]
    if cfg.keep_test:
        if not presplit or not (src / "test").is_dir():
            raise DataError(
                f"--keep-test needs a pre-split input with {src / 'test'}/<class>/",
                "drop --keep-test, or export the data with its official split",
            )
        tv = cfg.ratios[0] + cfg.ratios[1]
        if tv <= 0:
            raise ConfigError(f"ratios {list(cfg.ratios)}: with keep_test the train and val ratios must not both be 0")
        ratios = (cfg.ratios[0] / tv, cfg.ratios[1] / tv, 0.0)
    else:
        ratios = tuple(cfg.ratios)

    files = [e[0] for e in entries]
    labels = [e[1] for e in entries]
    fixed = ["test" if cfg.keep_test and e[2] == "test" else None for e in entries]
    rels = [f.relative_to(src).as_posix() for f in files]
    n = len(files)

    sigs = _signatures(files)
    with progress("split: near-duplicate search", total=None) as advance:
        pairs = find_duplicate_pairs(sigs, radius=cfg.radius, max_residual=cfg.max_residual, flips=cfg.flips)
        advance(status=f"{len(pairs)} pairs")
    # the pictures before `prepare`'s center crop (its source signatures): a photo and its
    # letterboxed copy are one picture there, two different squares here
    record = read_source_record(src)
    view = source_view(rels, sigs, record)
    source_pairs = 0
    if view is not None:
        with progress("split: near-duplicate search before the crop", total=None) as advance:
            n_here = len(pairs)
            pairs = union_pairs(
                pairs, find_duplicate_pairs(view, radius=cfg.radius, max_residual=cfg.max_residual, flips=cfg.flips)
            )
            source_pairs = len(pairs) - n_here
            advance(status=f"{source_pairs} more pairs")
    _, dup_groups = duplicate_groups(n, pairs.i, pairs.j)
    prov = stage_provenance(src) if cfg.provenance else None
    prov_ids = group_ids(rels, prov[0]) if prov is not None else None
    ei, ej = [pairs.i], [pairs.j]
    n_prov = 0
    if prov_ids is not None:
        first: dict[int, int] = {}
        sizes = Counter(prov_ids.tolist())
        n_prov = sum(1 for c in sizes.values() if c > 1)
        for k, g in enumerate(prov_ids.tolist()):
            f = first.setdefault(g, k)
            if f != k:
                ei.append(np.array([f]))
                ej.append(np.array([k]))
    comp, all_groups = duplicate_groups(n, np.concatenate(ei), np.concatenate(ej))
    assign = assign_splits(labels, comp, ratios, cfg.seed, fixed, require_pool=cfg.keep_test).tolist()
    dropped = [k for k in range(n) if assign[k] == DROPPED]
    test_copies = _test_links(comp, dropped, fixed, pairs, prov_ids, rels)
    note = {c["file"]: f"linked to test image {c['test']} ({c['link']})" for c in test_copies}
    all_classes = sorted(set(labels))
    group_size = np.bincount(comp, minlength=n) if n else np.zeros(0, np.int64)

    # ------------------------------------------------------------- leak re-check
    leaks = cross_split_pairs(rels, assign, pairs, provenance=prov_ids)
    if leaks and cfg.check_leaks:
        raise_on_leaks(leaks)

    # ------------------------------------------------------------- write
    _prepare_out(src, out)
    dests: dict[int, Path] = {}
    taken: set[Path] = set()
    for k in sorted(range(n), key=lambda k: rels[k]):
        s = assign[k]
        if s not in SPLITS:
            continue
        name = files[k].name
        dest = out / s / labels[k] / name
        if dest in taken:  # same name from another subset / sub-folder
            stem = "__".join(Path(rels[k]).parts[:-1]).replace("/", "_")
            dest = out / s / labels[k] / f"{stem}__{name}"
        taken.add(dest)
        dests[k] = dest
    result = SplitSummary(
        out=out,
        groups=len(all_groups),
        duplicate_groups=len(dup_groups),
        provenance_groups=n_prov,
        dropped=[rels[k] for k in dropped],
        test_copies=test_copies,
        leaks=leaks,
    )
    with progress("split: write", total=len(dests)) as advance:
        for k, dest in dests.items():
            result.linked += _place(files[k], dest, cfg.link)
            advance()
    for s in SPLITS:
        (out / s).mkdir(exist_ok=True)
    # carried forward under the new paths, for the evaluation's leak audit
    write_source_record(
        out, {dests[k].relative_to(out).as_posix(): record[rels[k]] for k in dests if rels[k] in record}
    )
    counts = {s: {c: 0 for c in all_classes} for s in SPLITS}
    for k in dests:
        counts[assign[k]][labels[k]] += 1
    result.counts = counts

    rep = out / "_reports"
    write_split_table(
        rep / "split.csv",
        [
            (
                rels[k],
                labels[k],
                assign[k],
                int(comp[k]) if group_size[comp[k]] > 1 else "",
                dests[k].relative_to(out).as_posix() if k in dests else "",
                note.get(rels[k], ""),
            )
            for k in sorted(range(n), key=lambda k: rels[k])
        ],
    )
    from imgclf.prepare import read_prepare_record, write_prepare_record

    prepared = read_prepare_record(src)
    if prepared is not None:  # so `train` knows how these images were made
        write_prepare_record(out, prepared)
    totals = {s: sum(counts[s].values()) for s in SPLITS}
    placed = sum(totals.values())
    kinds = Counter(pairs.kind.tolist())
    atomic_write_json(
        rep / "split_report.json",
        {
            "src": str(src),
            "out": str(out),
            "layout": "pre-split" if presplit else "flat",
            "keep_test": cfg.keep_test,
            "ratios_requested": list(cfg.ratios),
            "ratios_used": list(ratios),
            "ratios_actual": {s: round(totals[s] / placed, 4) if placed else 0.0 for s in SPLITS},
            "seed": cfg.seed,
            "detector": {
                "method": "imgclf.clean.similarity.find_duplicate_pairs (docs/dedupe.md)",
                "radius": cfg.radius,
                "max_residual": cfg.max_residual,
                "flips": cfg.flips,
                "source_signatures": {"files": sum(1 for r in rels if r in record), "more_pairs": source_pairs},
            },
            "counts": counts,
            "totals": totals,
            "groups": len(all_groups),
            "duplicate_groups": len(dup_groups),
            "duplicate_pairs": dict(sorted(kinds.items())),
            "largest_group": int(group_size.max()) if n else 0,
            "provenance": {
                "enabled": cfg.provenance,
                "source": prov[1] if prov is not None else None,
                "groups": n_prov,
            },
            "train_copies_of_test": {"count": len(test_copies), "files": test_copies},
            "dropped_near_test": result.dropped,
            "cross_split_pairs": [list(p) for p in leaks],
            "link": cfg.link,
            "hardlinked": result.linked,
        },
    )
    drop = (
        (
            f", {len(dropped)} train/val images set aside as copies of test images (listed in "
            f"{rep / 'split_report.json'}: train_copies_of_test)"
        )
        if dropped
        else ""
    )
    provs = f", {n_prov} provenance groups" if prov is not None else ""
    summary(
        f"split: train {totals['train']}, val {totals['val']}, test {totals['test']} "
        f"({len(all_classes)} classes, {len(all_groups)} groups kept whole{provs}, {len(leaks)} cross-split pairs{drop}) -> {out}"
    )
    return result
