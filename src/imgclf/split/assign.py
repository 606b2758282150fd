"""The splitter: whole groups to train / val / test, stratified by class. Pure: arrays in, an assignment out.

A greedy equivalent of scikit-learn's `StratifiedGroupKFold` for arbitrary ratios: the groups
of a class are shuffled with the seed, then taken largest first, each to the split that still
has no image of this class if any, else to the split furthest below its target count (targets:
the ratios x class size, rounded by largest remainder). With singleton groups it gives each
class exactly its rounded targets.
"""

from __future__ import annotations

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
    its rounded targets. `assign_codes` is the same splitter on integer codes.

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
    if len(groups) != n or (fixed is not None and len(fixed) != n) or len(ratios) != 3:
        raise ValueError(
            f"labels, groups and fixed must have one entry per image and ratios 3, received "
            f"{n}, {len(groups)}, {None if fixed is None else len(fixed)} and {len(ratios)}"
        )
    names = sorted(set(labels))
    index = {c: i for i, c in enumerate(names)}
    outcomes = [*SPLITS, DROPPED]
    outcomes += sorted({f for f in fixed or [] if f is not None} - set(outcomes))
    code_of = {s: i for i, s in enumerate(outcomes)}
    fixed_codes = np.array([-1 if f is None else code_of[f] for f in fixed or [None] * n], np.int16)
    label_codes = np.array([index[c] for c in labels], np.int64)
    codes = assign_codes(label_codes, names, groups, ratios, seed, fixed_codes, require_pool=require_pool)
    return np.array(outcomes, dtype=object)[codes] if n else np.array([], dtype=object)


#: `assign_codes`' code of an image set aside (`DROPPED`); 0, 1, 2 are `SPLITS`.
DROPPED_CODE = 3


def assign_codes(
    labels: np.ndarray,
    names: Sequence[str],
    groups: Sequence[int] | np.ndarray,
    ratios: Sequence[float],
    seed: int = 42,
    fixed: np.ndarray | None = None,
    *,
    require_pool: bool = False,
) -> np.ndarray:
    """`assign_splits` on integer codes: the same assignment, without an object per image.

    Args:
        labels: int array `(n,)`. Class of each image, an index into `names`.
        names: sequence of str, sorted. The class names (`names[c]` for messages).
        groups: int array `(n,)`. Group id of each image (as `assign_splits`).
        ratios: 3 floats >= 0 summing to 1: train, val, test.
        seed: int, default 42. Shuffles the groups of each class.
        fixed: int array `(n,)` or None. The split an image must take (0 train, 1 val, 2 test,
            or any code >= 0 kept as it is), -1 for none; None = no image is fixed.
        require_pool: bool, default False. A class with no image left to assign is an error.

    Returns:
        np.ndarray of n int16: 0, 1, 2 (`SPLITS`), `DROPPED_CODE`, or an image's fixed code.

    Raises:
        DataError: as `assign_splits`.
        ValueError: if the lengths differ or `ratios` is not 3 numbers.
    """
    labels, groups = np.asarray(labels, np.int64), np.asarray(groups)
    n = len(labels)
    fixed = np.full(n, -1, np.int16) if fixed is None else np.asarray(fixed, np.int16)
    if len(groups) != n or len(fixed) != n or len(ratios) != 3:
        raise ValueError(
            f"labels, groups and fixed must have one entry per image and ratios 3, received {n}, "
            f"{len(groups)}, {len(fixed)} and {len(ratios)}"
        )
    g = _by_first_member(groups)
    n_groups = int(g.max()) + 1 if n else 0
    held = np.zeros(n_groups, bool)
    held[g[fixed >= 0]] = True
    code = fixed.copy()
    code[(fixed < 0) & held[g]] = DROPPED_CODE
    free = np.flatnonzero(code < 0)
    size = np.bincount(g[free], minlength=n_groups)
    major = _majority(g[free], labels[free], len(names), n_groups)
    split_of = np.full(n_groups, -1, np.int16)
    rng = np.random.default_rng(seed)
    for cls in np.unique(labels).tolist():
        cls_groups = np.flatnonzero((size > 0) & (major == cls))
        if require_pool and not len(cls_groups):
            raise DataError(
                f"class {names[cls]!r} has no train/val images to split (only test)", "add training images for it"
            )
        if len(cls_groups):
            _assign_class(names[cls], cls_groups, size, ratios, rng, split_of)
    code[free] = split_of[g[free]]
    return code


def _by_first_member(groups: np.ndarray) -> np.ndarray:
    """Group ids renumbered 0, 1, ... in order of each group's smallest index."""
    if not len(groups):
        return np.zeros(0, np.int64)
    _, inv = np.unique(groups, return_inverse=True)
    inv = inv.reshape(-1)
    first = np.full(int(inv.max()) + 1, len(groups), np.int64)
    np.minimum.at(first, inv, np.arange(len(groups)))
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv]


def _majority(g: np.ndarray, labels: np.ndarray, n_labels: int, n_groups: int) -> np.ndarray:
    """The majority label of each group's images `(g, labels)`, ties to the smaller; -1 for a group without images."""
    out = np.full(n_groups, -1, np.int64)
    if not len(g):
        return out
    keys, counts = np.unique(g * max(n_labels, 1) + labels, return_counts=True)
    kg, kl = keys // max(n_labels, 1), keys % max(n_labels, 1)
    order = np.lexsort((kl, -counts, kg))
    first = np.ones(len(order), bool)
    first[1:] = kg[order][1:] != kg[order][:-1]
    out[kg[order][first]] = kl[order][first]
    return out


def _assign_class(
    cls: str,
    cls_groups: np.ndarray,
    size: np.ndarray,
    ratios: Sequence[float],
    rng: np.random.Generator,
    split_of: np.ndarray,
) -> None:
    """Assigns the groups `cls_groups` (of `size[g]` images each) of class `cls` in `split_of`
    (see `assign_splits`); one permutation from `rng`."""
    sizes = size[cls_groups]
    total = int(sizes.sum())
    nonzero = [s for s, r in zip(SPLITS, ratios) if r > 0]
    if total < len(nonzero) or len(cls_groups) < len(nonzero):
        need = ", ".join(f"{s} {r:.2f}" for s, r in zip(SPLITS, ratios) if r > 0)
        grp = f" in {len(cls_groups)} duplicate groups" if len(cls_groups) != total else ""
        raise DataError(
            f"class {cls!r} has {total} images{grp}; ratios ({need}) need at least {len(nonzero)} "
            "so that every split gets one",
            "add images to this class, remove it, or change --ratios",
        )
    targets = dict(zip(SPLITS, largest_remainder(total, tuple(ratios))))
    perm = rng.permutation(len(cls_groups))
    ordered = perm[np.argsort(-sizes[perm], kind="stable")]  # largest first; ties keep the shuffle
    have = dict.fromkeys(SPLITS, 0)
    for p, m in zip(cls_groups[ordered].tolist(), sizes[ordered].tolist()):
        best = max(
            nonzero,
            key=lambda s: (have[s] == 0 and targets[s] > 0, targets[s] - have[s], -SPLITS.index(s)),
        )
        have[best] += m
        split_of[p] = SPLITS.index(best)
