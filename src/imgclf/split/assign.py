"""The splitter: whole groups to train / val / test, stratified by class. Pure: arrays in, an assignment out.

A greedy equivalent of scikit-learn's `StratifiedGroupKFold` for arbitrary ratios: the groups
of a class are shuffled with the seed, then taken largest first, each to the split that still
has no image of this class if any, else to the split furthest below its target count (targets:
the ratios x class size, rounded by largest remainder). With singleton groups it gives each
class exactly its rounded targets.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from imgclf.errors import DataError

SPLITS: tuple[str, ...] = ("train", "val", "test")

#: `assign_splits`' value for an image left out: in a group with a fixed image but not fixed itself.
DROPPED = "dropped"


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
    assign = np.array(fixed, dtype=object)
    pool_groups = _pool_groups(labels, groups, fixed, assign)
    rng = np.random.default_rng(seed)
    for cls in sorted(set(labels)):
        cls_groups = pool_groups.get(cls, [])
        if require_pool and not cls_groups:
            raise DataError(f"class {cls!r} has no train/val images to split (only test)", "add training images for it")
        if cls_groups:
            _assign_class(cls, cls_groups, ratios, rng, assign)
    return assign


def _pool_groups(
    labels: Sequence[str], groups: np.ndarray, fixed: list[str | None], assign: np.ndarray
) -> dict[str, list[list[int]]]:
    """Marks group mates of fixed images `DROPPED` in `assign`; the free groups by majority label."""
    members: dict[int, list[int]] = defaultdict(list)
    for k, g in enumerate(groups.tolist()):
        members[g].append(k)
    ordered_groups = sorted(members.values(), key=min)
    for ks in ordered_groups:
        if any(fixed[k] is not None for k in ks):
            for k in ks:
                if fixed[k] is None:
                    assign[k] = DROPPED
    pool: dict[str, list[list[int]]] = defaultdict(list)
    for ks in ordered_groups:
        free = [k for k in ks if assign[k] is None]
        if free:
            counts = Counter(labels[k] for k in free)
            pool[sorted(counts, key=lambda lab: (-counts[lab], lab))[0]].append(free)
    return pool


def _assign_class(
    cls: str, cls_groups: list[list[int]], ratios: Sequence[float], rng: np.random.Generator, assign: np.ndarray
) -> None:
    """Assigns the groups of class `cls` in `assign` (see `assign_splits`); one permutation from `rng`."""
    size = sum(len(g) for g in cls_groups)
    nonzero = [s for s, r in zip(SPLITS, ratios) if r > 0]
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
