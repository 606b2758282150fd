"""split's leak check: an assignment against the evidence it was built from. Pure, no I/O.

`cross_split_pairs` forms the connected components of every verified duplicate pair and every
provenance link again (through images set aside too) and names the links whose placed images
sit in different splits; `raise_on_leaks` turns them into a `DataError`; `links_to_test` says, for
each train/val image set aside with `keep_test`, which test image it is linked to and how.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from imgclf.clean.similarity import DuplicatePairs
from imgclf.clean.similarity.pairs import connected_components
from imgclf.errors import DataError
from imgclf.split.assign import SPLITS


def cross_split_pairs(
    names: Sequence[str],
    splits: Sequence[str | None],
    pairs: DuplicatePairs,
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
    codes = np.array([SPLITS.index(s) if s in SPLITS else -1 for s in splits], np.int16)
    return cross_split_codes(names, codes, pairs, provenance=provenance)


def cross_split_codes(
    names: Sequence[str],
    codes: np.ndarray,
    pairs: DuplicatePairs,
    *,
    provenance: Sequence[int] | np.ndarray | None = None,
) -> list[tuple[str, str, str]]:
    """`cross_split_pairs` with the splits as codes, without an object per image.

    Args:
        names: sequence of n str. One name per image (only the leaking ones are read).
        codes: int array `(n,)`. 0, 1, 2 for `"train"`, `"val"`, `"test"`; anything else for an
            image that is not placed.
        pairs: `imgclf.clean.similarity.DuplicatePairs` among the n images.
        provenance: sequence of n int or None. Provenance group id of each image.

    Returns:
        list of `(name, name, kind)` sorted, as `cross_split_pairs`.
    """
    n = len(codes)
    link: dict[tuple[int, int], str] = {}
    for a, b, k in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.kind.tolist()):
        link.setdefault((min(a, b), max(a, b)), str(k))
    ei, ej = [pairs.i.astype(np.int64)], [pairs.j.astype(np.int64)]
    head = None
    if provenance is not None:
        _, first, inv = np.unique(np.asarray(provenance), return_index=True, return_inverse=True)
        head = first[inv.reshape(-1)]
        linked = np.flatnonzero(head != np.arange(n))
        ei.append(head[linked])
        ej.append(linked)
    comp = connected_components(n, np.concatenate(ei), np.concatenate(ej))
    placed = np.flatnonzero((codes >= 0) & (codes < len(SPLITS)))
    _, at, inv = np.unique(comp[placed], return_index=True, return_inverse=True)
    f = placed[at][inv.reshape(-1)]  # the first placed image of each placed image's component
    out = set()
    for a, b in zip(f[codes[f] != codes[placed]].tolist(), placed[codes[f] != codes[placed]].tolist()):
        kind = link.get((a, b)) or ("provenance" if head is not None and head[b] == a else "group")
        out.add((names[a], names[b], kind))
    return sorted(out)


def raise_on_leaks(leaks: Sequence[tuple[str, str, str]]) -> None:
    """Raises `DataError` naming up to 5 cross-split pairs (see `cross_split_pairs`)."""
    if leaks:
        shown = "; ".join(f"{a} <-> {b} ({k})" for a, b, k in leaks[:5])
        raise DataError(
            f"{len(leaks)} duplicate pair(s) or provenance link(s) would cross splits: {shown}",
            "run `imgclf clean` first, or pass --no-check-leaks to accept them",
        )


def links_to_test(
    comp: np.ndarray,
    dropped: Sequence[int],
    fixed: Sequence[str | None],
    pairs: DuplicatePairs,
    prov: np.ndarray | None,
    rels: Sequence[str],
) -> list[dict[str, Any]]:
    """For each dropped pool image, the test image it is linked to and how.

    Args:
        comp: int array `(n,)`. Group of each image (duplicate pairs and provenance).
        dropped: sequence of int. The images set aside (`imgclf.split.assign.DROPPED`).
        fixed: sequence of n (str or None). The split an image had to take (test images).
        pairs: DuplicatePairs among the n images.
        prov: int array `(n,)` or None. Provenance group of each image.
        rels: sequence of n str. Names, relative to the input folder.

    Returns:
        list of dict, one per dropped image: `file`, `test` (the test image it is linked to),
        `link` (`exact`, `near`, `flip`, `provenance`, or `group` when linked only through other
        images) and `residual` (grey levels rounded to 2 decimals, or None).
    """
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
