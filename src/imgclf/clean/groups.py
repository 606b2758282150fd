"""Pure cores of duplicate handling, shared by `clean` and `split`: no folders, no files.

- `duplicate_groups`: images joined by near-duplicate pairs (from any detector) and by equal
  exact digests form groups -- the connected components of that graph.
- `resolve_groups`: the keeper policy -- which member of each group stays, which are set aside
  as exact / near duplicates, and which groups mix labels (likely label noise).

`clean` keeps one image per group and label; `split` keeps every member and puts a whole group
into one split (`imgclf.split.assign_splits`). Both call `duplicate_groups`, so they agree on
what a group is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from imgclf.clean.similarity.pairs import connected_components

#: The keeper rule in words (reports show it).
KEEP_RULE = "test > val > train, then highest resolution, then largest file, then path"

#: Priority of subsets when choosing the image to keep (lower wins): a published test set stays
#: whole and its copies leave train.
SUBSET_RANK: dict[str | None, int] = {"test": 0, "val": 1, "train": 2, None: 3}

STATUS_KEPT = "kept"
STATUS_DUPLICATE = "duplicate"
STATUS_NEAR_DUPLICATE = "near_duplicate"
STATUS_LABEL_CONFLICT = "label_conflict"


@dataclass(frozen=True)
class Member:
    """What the keeper policy knows about one image.

    Attributes:
        rel: str. Path relative to the input folder (ties are broken by it).
        label: str. Class name.
        subset: str or None. "train" / "val" / "test" in a pre-split input.
        width, height: int. Full size in pixels.
        nbytes: int. File size in bytes.
        digest: str. Exact-duplicate key (decoded pixels); "" when unknown.
    """

    rel: str
    label: str
    subset: str | None = None
    width: int = 0
    height: int = 0
    nbytes: int = 0
    digest: str = ""


def keep_key(m: Member) -> tuple:
    """Sort key of the keeper rule (`KEEP_RULE`): the smallest key is kept."""
    return (SUBSET_RANK.get(m.subset, 3), -(m.width * m.height), -m.nbytes, m.rel)


def duplicate_groups(
    n: int, i: np.ndarray, j: np.ndarray, digests: Sequence[str] | None = None
) -> tuple[np.ndarray, list[list[int]]]:
    """Groups images joined by pairs and by equal exact digests (connected components).

    Args:
        n: int. Number of images.
        i, j: int arrays of equal length. Pairs found by a near-duplicate detector.
        digests: sequence of n str or None. Images with the same non-empty digest always join,
            whatever the detector says.

    Returns:
        tuple `(component, groups)`: `component` int64 `(n,)`, a component id per image
        (numbered in order of each component's smallest index, so the labelling is
        deterministic); `groups` the components of 2+ images, each a sorted list of indices,
        in order of their smallest index.
    """
    ei, ej = [np.asarray(i, np.int64)], [np.asarray(j, np.int64)]
    if digests is not None:
        first: dict[str, int] = {}
        for k, d in enumerate(digests):
            if not d:
                continue
            f = first.setdefault(d, k)
            if f != k:
                ei.append(np.array([f]))
                ej.append(np.array([k]))
    comp = connected_components(n, np.concatenate(ei), np.concatenate(ej))
    members: dict[int, list[int]] = defaultdict(list)
    for k, c in enumerate(comp.tolist()):
        members[c].append(k)
    groups = [ks for _, ks in sorted(members.items()) if len(ks) > 1]
    return comp, groups


@dataclass
class GroupDecision:
    """What the keeper policy decided for one group.

    Attributes:
        group: int. 1-based group id (in order of the groups given).
        members: list of int. Indices, in keeper order (`keep_key`).
        labels: list of str. The distinct labels in the group, sorted.
        kept: list of int. The indices kept (one per label, or none for a rejected conflict).
        status: dict int -> str. Every member's status: `"kept"`, `"duplicate"` (same digest as
            its keeper), `"near_duplicate"`, or `"label_conflict"`.
        keeper: dict int -> int. For each set-aside member, the index kept in its place.
    """

    group: int
    members: list[int]
    labels: list[str]
    kept: list[int] = field(default_factory=list)
    status: dict[int, str] = field(default_factory=dict)
    keeper: dict[int, int] = field(default_factory=dict)

    @property
    def conflict(self) -> bool:
        """True when the group's members carry more than one label."""
        return len(self.labels) > 1


def resolve_groups(
    groups: Sequence[Sequence[int]], members: Sequence[Member], label_conflicts: str = "keep"
) -> list[GroupDecision]:
    """Applies the keeper policy to duplicate groups.

    In each group the members are ordered by `keep_key`. Per label, the first is kept and the
    others are set aside as `"duplicate"` (same digest) or `"near_duplicate"`. A group whose
    members carry different labels is a label conflict: with `label_conflicts="keep"` one image
    per label is kept (and the conflict reported); with `"reject"` every member is set aside.

    Args:
        groups: sequence of index lists (e.g. from `duplicate_groups`).
        members: sequence of Member, indexed by those indices.
        label_conflicts: str, default "keep". `"keep"` or `"reject"`.

    Returns:
        list of GroupDecision, one per group, in order.

    Raises:
        ValueError: if `label_conflicts` is not "keep" or "reject".
    """
    if label_conflicts not in ("keep", "reject"):
        raise ValueError(f"label_conflicts must be 'keep' or 'reject', received label_conflicts={label_conflicts!r}")
    out = []
    for gid, idx in enumerate(groups, start=1):
        order = sorted(idx, key=lambda k: keep_key(members[k]))
        labels = sorted({members[k].label for k in order})
        d = GroupDecision(gid, order, labels)
        if d.conflict and label_conflicts == "reject":
            d.status = {k: STATUS_LABEL_CONFLICT for k in order}
        else:
            by_label: dict[str, list[int]] = defaultdict(list)
            for k in order:
                by_label[members[k].label].append(k)
            for ks in by_label.values():
                keeper = ks[0]
                d.kept.append(keeper)
                d.status[keeper] = STATUS_KEPT
                for k in ks[1:]:
                    same = members[k].digest and members[k].digest == members[keeper].digest
                    d.status[k] = STATUS_DUPLICATE if same else STATUS_NEAR_DUPLICATE
                    d.keeper[k] = keeper
        out.append(d)
    return out
