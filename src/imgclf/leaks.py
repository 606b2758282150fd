"""Leak audit: test images with a near copy in the training (or validation) data.

A test number can only be trusted when no test image has a copy the model saw in training.
`split` keeps duplicate and provenance groups on one side, but a user who brings their own split
(or an official one, like Fashion-MNIST's) learns here whether it leaks. `near_copies` runs the
verified detector of `clean` and `split` (`imgclf.clean.similarity.find_cross_pairs`: exact
pixel digests, 64-bit phash candidates, a pixel test after the best brightness / contrast fit,
crop alignment; `docs/dedupe.md`) between the test images and every other listing, searching
only pairs with one image on each side -- and, where `split` recorded them
(`imgclf.clean.similarity.read_source_record`), also between the pictures as they were before
`prepare` cropped and reduced them. `leak_summary` turns the result into the JSON section
`evaluate` writes to `metrics.json` and the HTML report: how many test images have a near copy,
with the method and thresholds used.

Map -> reduce: `fingerprint_file(AuditItem) -> AuditFile` (the detector's signature of one
file, or why it could not be decoded) runs on an executor (`imgclf.engine`);
`find_near_copies(test_records, other_records, source_record)` is the pure search over the
records; `near_copies` wires them, `leak_summary` and `audit_split` report.

Example:

```python
from imgclf.inputs import list_images
from imgclf.leaks import leak_summary, near_copies

test = list_images("data/split/test")
others = [list_images("data/split/train"), list_images("data/split/val")]
copies = near_copies(test, others)
print(leak_summary(test, copies)["test_images_with_copy"])   # 0 expected
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgclf.clean import similarity as sim
from imgclf.engine import Executor, make_executor
from imgclf.errors import ImageError
from imgclf.inputs import ImageListing, list_images
from imgclf.ui import progress

#: How the audit decides, in words (recorded with every summary).
METHOD = (
    "verified near-duplicate detector (imgclf.clean.similarity.find_cross_pairs): exact pixel digest, "
    "64-bit phash candidates within `radius` bits (+ crop windows, layouts), verified by a censored "
    "brightness/contrast fit of 32x32 thumbnails within `max_residual` grey levels, a colour check and, "
    "for crops, an ECC alignment; docs/dedupe.md"
)
#: At most this many pairs are listed in a summary (the count is always complete).
MAX_LISTED = 100


@dataclass(frozen=True)
class NearCopy:
    """A test image and an image of another listing that is a copy of it.

    Attributes:
        test: str. The test image, relative to the parent of the test listing's root
            (e.g. `test/cat/0001.png`).
        other: str. The other image, relative to the same folder when it is inside it (e.g.
            `train/cat/0042.png`), else its full path.
        kind: str. `"exact"` (same decoded pixels), `"near"` or `"flip"` (see
            `imgclf.clean.similarity.DuplicatePairs`).
        residual: float. Residual in grey levels [0, 255] of the verified comparison (0 exact).
    """

    test: str
    other: str
    kind: str
    residual: float


@dataclass(frozen=True)
class AuditItem:
    """One file of the leak audit (an item of the map).

    Attributes:
        index: int. Position among the files of its side (test, or the others in listing
            order): the order the reduce puts them in.
        path: Path. The file.
        name: str. Its name in the results (`NearCopy.test` / `NearCopy.other`).
    """

    index: int
    path: Path
    name: str


@dataclass(frozen=True)
class AuditFile:
    """The map's record of one file: its detector signature, or why it could not be decoded.

    Attributes:
        item: AuditItem.
        signature: Signature or None (None when unreadable).
        reason: str. `imgclf.errors.ImageError.reason` when unreadable, else "".
    """

    item: AuditItem
    signature: sim.Signature | None
    reason: str = ""


def fingerprint_file(item: AuditItem) -> AuditFile:
    """The leak audit's map: the detector's signature of one file (`imgclf.clean.similarity.file_signature`).

    Args:
        item: AuditItem.

    Returns:
        AuditFile. An unreadable file is a record without signature, never an exception.
    """
    try:
        return AuditFile(item, sim.file_signature(item.path))
    except ImageError as exc:
        return AuditFile(item, None, exc.reason)


def _name(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _fingerprint(listing: ImageListing, base: Path, start: int, executor: Executor, what: str) -> list[AuditFile]:
    """Runs the map over the files of `listing` (indices from `start`), with a progress bar."""
    items = [AuditItem(start + k, e.path, _name(e.path, base)) for k, e in enumerate(listing.entries)]
    out = []
    with progress(f"leak audit: fingerprint {what}", total=len(items)) as advance:
        for rec in executor.map(fingerprint_file, items):
            out.append(rec)
            advance()
    return out


def _readable(records: Sequence[AuditFile]) -> tuple[list[str], list[sim.Signature]]:
    """Names and signatures of the readable files, in item order."""
    ok = sorted((r for r in records if r.signature is not None), key=lambda r: r.item.index)
    return [r.item.name for r in ok], [r.signature for r in ok if r.signature is not None]


def unreadable_files(records: Sequence[AuditFile]) -> list[tuple[str, str]]:
    """`(name, reason)` of the files the map could not decode, in item order."""
    bad = sorted((r for r in records if r.signature is None), key=lambda r: r.item.index)
    return [(r.item.name, r.reason) for r in bad]


def find_near_copies(
    test: Sequence[AuditFile],
    others: Sequence[AuditFile],
    record: Mapping[str, sim.Signatures] | None = None,
    *,
    radius: int = sim.DEFAULT_RADIUS,
    max_residual: float = sim.DEFAULT_MAX_RESIDUAL,
    flips: bool = False,
) -> list[NearCopy]:
    """The leak audit's reduce: every (test, other) pair the verified detector calls a duplicate.

    Pure and deterministic: each side is put in item order whatever order its records come in.

    Args:
        test: sequence of AuditFile. The test images' records (`fingerprint_file`).
        others: sequence of AuditFile. The other images' (train, val), indices unique among them.
        record: mapping name -> Signatures, or None. Source signatures of the pictures before
            `prepare`'s crop, by name (`imgclf.clean.similarity.read_source_record` of the folder
            the names are relative to); they are searched too.
        radius, max_residual, flips: the detector's settings (see `near_copies`).

    Returns:
        list of NearCopy, sorted by `(test, other)`; unreadable files are left out.
    """
    t_names, t_sigs = _readable(test)
    o_names, o_sigs = _readable(others)
    if not t_sigs or not o_sigs:
        return []
    ts, os_ = sim.stack(t_sigs), sim.stack(o_sigs)
    found = sim.find_cross_pairs(ts, os_, radius=radius, max_residual=max_residual, flips=flips)
    # and the pictures before `prepare`'s center crop, where `split` recorded them
    record = record or {}
    tv, ov = sim.source_view(t_names, ts, record), sim.source_view(o_names, os_, record)
    if tv is not None or ov is not None:
        found = sim.union_pairs(
            found,
            sim.find_cross_pairs(
                ts if tv is None else tv,
                os_ if ov is None else ov,
                radius=radius,
                max_residual=max_residual,
                flips=flips,
            ),
        )
    out = [
        NearCopy(t_names[a], o_names[b], str(k), round(float(r), 3))
        for a, b, k, r in zip(found.i.tolist(), found.j.tolist(), found.kind.tolist(), found.residual.tolist())
    ]
    return sorted(out, key=lambda c: (c.test, c.other))


def near_copies(
    test: ImageListing,
    others: Sequence[ImageListing],
    *,
    radius: int = sim.DEFAULT_RADIUS,
    max_residual: float = sim.DEFAULT_MAX_RESIDUAL,
    flips: bool = False,
    workers: int | None = None,
    unreadable: list[tuple[str, str]] | None = None,
    executor: Executor | None = None,
) -> list[NearCopy]:
    """Every (test image, other image) pair the verified detector calls a duplicate.

    Args:
        test: ImageListing (`imgclf.inputs.list_images`). The test images.
        others: sequence of ImageListing. The images the model learned from or was tuned on
            (train, val); a listing may be empty.
        radius: int in [0, 32], default 8. Candidate radius in bits (`find_duplicate_pairs`).
        max_residual: float >= 0, default 5.0. Largest residual, in grey levels, of a near copy.
        flips: bool, default False. Also count mirrored copies (kind `"flip"`).
        workers: int or None (default: `imgclf.parallel.default_workers()`). Decoding threads
            of the default executor.
        unreadable: list or None. If given, `(file, reason)` of every file that could not be
            decoded (and so was not checked) is appended to it.
        executor: Executor or None, default None. Runs the per-file map (`imgclf.engine`);
            None = `make_executor("local", workers)`.

    Returns:
        list of NearCopy, sorted by `(test, other)`; empty when nothing leaks.

    Raises:
        ValueError: `radius` or `max_residual` out of range (from the detector).
    """
    base = test.root.parent
    executor = executor or make_executor("local", workers)
    t = _fingerprint(test, base, 0, executor, "test")
    o: list[AuditFile] = []
    for listing in others:
        o += _fingerprint(listing, base, len(o), executor, listing.root.name)
    if unreadable is not None:
        unreadable.extend(unreadable_files(t) + unreadable_files(o))
    if not any(r.signature is not None for r in t) or not any(r.signature is not None for r in o):
        return []
    with progress("leak audit: near-copy search", total=None) as advance:
        found = find_near_copies(
            t, o, sim.read_source_record(base), radius=radius, max_residual=max_residual, flips=flips
        )
        advance(status=f"{len(found)} pairs")
    return found


def leak_summary(
    test: ImageListing,
    copies: Sequence[NearCopy],
    *,
    radius: int = sim.DEFAULT_RADIUS,
    max_residual: float = sim.DEFAULT_MAX_RESIDUAL,
    flips: bool = False,
    unreadable: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The JSON section of a leak audit (for `metrics.json` and the HTML report).

    Args:
        test: ImageListing. The test images audited.
        copies: sequence of NearCopy (from `near_copies`).
        radius, max_residual, flips: the settings `near_copies` ran with.
        unreadable: sequence of `(file, reason)` not checked.

    Returns:
        dict: `test_images` (int), `test_images_with_copy` (int; 0 expected), `pairs` (int),
        `by_kind` (dict kind -> pairs), `copies` (up to `MAX_LISTED` pairs as dicts, most
        similar first), `not_checked` (files that could not be decoded), `method`, `radius`,
        `max_residual` (grey levels), `flips`.
    """
    by_kind: dict[str, int] = {}
    for c in copies:
        by_kind[c.kind] = by_kind.get(c.kind, 0) + 1
    listed = sorted(copies, key=lambda c: (c.residual, c.test, c.other))[:MAX_LISTED]
    return {
        "test_images": len(test),
        "test_images_with_copy": len({c.test for c in copies}),
        "pairs": len(copies),
        "by_kind": dict(sorted(by_kind.items())),
        "copies": [{"test": c.test, "other": c.other, "kind": c.kind, "residual": c.residual} for c in listed],
        "not_checked": [{"file": f, "reason": r} for f, r in unreadable],
        "method": METHOD,
        "radius": radius,
        "max_residual": max_residual,
        "flips": flips,
    }


def audit_split(
    split_dir: str | os.PathLike,
    test: str = "test",
    others: Sequence[str] = ("train", "val"),
    *,
    class_names: Sequence[str] | None = None,
    radius: int = sim.DEFAULT_RADIUS,
    max_residual: float = sim.DEFAULT_MAX_RESIDUAL,
    flips: bool = False,
    workers: int | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Leak audit of a split folder (`<split_dir>/{train,val,test}/<class>/`): `leak_summary`
    of `near_copies` of `split_dir/test` against the other subsets present.

    Args:
        split_dir: path. A folder written by `imgclf split` (or of the same layout).
        test: str, default "test". The audited subset.
        others: sequence of str, default ("train", "val"). Subsets it is compared with (a
            missing one is skipped).
        class_names: sequence of str or None. Passed to `imgclf.inputs.list_images`.
        radius, max_residual, flips, workers, executor: see `near_copies`.

    Returns:
        dict, as `leak_summary`, plus `compared_with` (list of the subsets used).

    Raises:
        DataError: `split_dir/test` missing (from `imgclf.inputs.list_images`).
    """
    root = Path(split_dir)
    t = list_images(root / test, class_names=class_names, layout="classes")
    used = [s for s in others if (root / s).is_dir()]
    lists = [list_images(root / s, class_names=class_names, layout="classes") for s in used]
    bad: list[tuple[str, str]] = []
    copies = near_copies(
        t,
        lists,
        radius=radius,
        max_residual=max_residual,
        flips=flips,
        workers=workers,
        unreadable=bad,
        executor=executor,
    )
    return {
        **leak_summary(t, copies, radius=radius, max_residual=max_residual, flips=flips, unreadable=bad),
        "compared_with": used,
    }
