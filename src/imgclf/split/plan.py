"""split's reduce: from the map's records to a plan -- groups, assignment, leak check, destinations.

`plan_split(records, cfg, sources=..., provenance=..., find_pairs=...)` is pure (no I/O) and
deterministic: the records are put in listing order (`SplitItem.index`) whatever order they
arrive in. It joins the verified duplicate pairs (`imgclf.clean.similarity.find_duplicate_pairs`,
through a `imgclf.split.search.FindPairs`: on the signatures the records carry, or where a Ray
cluster holds them; again between the pictures before `prepare`'s center crop where the input
recorded them) and the provenance links into groups, assigns whole groups
(`imgclf.split.assign.assign_splits`), checks the assignment again against every pair and link
(`imgclf.split.check.cross_split_pairs`; a leak is a `DataError` with `check_leaks`), and names
every placed file's destination.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.clean.groups import duplicate_groups
from imgclf.clean.provenance import group_ids
from imgclf.clean.similarity import DuplicatePairs, Signatures, union_pairs
from imgclf.config import SplitConfig
from imgclf.errors import ConfigError, DataError
from imgclf.records.provenance import ProvenanceEntry
from imgclf.records.split import SplitRow
from imgclf.split.assign import DROPPED, SPLITS, assign_splits
from imgclf.split.check import cross_split_pairs, links_to_test, raise_on_leaks
from imgclf.split.fingerprint import SplitFile, SplitItem
from imgclf.split.search import FindPairs, local_pairs


def split_ratios(cfg: SplitConfig) -> tuple[float, float, float]:
    """The ratios `split` uses: `cfg.ratios`, or with `keep_test` train and val renormalized to sum to 1.

    Raises:
        ConfigError: `keep_test` with zero train + val ratios.
    """
    if not cfg.keep_test:
        return (cfg.ratios[0], cfg.ratios[1], cfg.ratios[2])
    tv = cfg.ratios[0] + cfg.ratios[1]
    if tv <= 0:
        raise ConfigError(f"ratios {list(cfg.ratios)}: with keep_test the train and val ratios must not both be 0")
    return (cfg.ratios[0] / tv, cfg.ratios[1] / tv, 0.0)


@dataclass
class SplitPlan:
    """Everything `split` writes, decided before anything is written.

    Attributes:
        items: list of SplitItem, in listing order (index k below = `items[k]`).
        ratios: tuple of 3 float. The ratios used (`split_ratios`).
        assign: list of str. Split of each image: `"train"`, `"val"`, `"test"` or `"dropped"`.
        pairs: DuplicatePairs. Verified pairs among the images (both searches).
        source_pairs: int. Pairs found only between the pictures before the crop.
        source_files: int. Images with a source signature in the input's record.
        comp: int array `(n,)`. Group of each image (pairs and provenance links).
        groups, duplicate_groups, provenance_groups: int. Groups of 2+ images: all, joined by
            pairs alone, provenance groups.
        provenance_source: str or None. The provenance record read, None without one.
        dropped: list of int. Images set aside (group mates of kept test images).
        test_copies: list of dict. One per dropped image (`imgclf.split.check.links_to_test`).
        leaks: list of `(file, file, kind)` crossing splits (empty unless `check_leaks=False`).
        dests: dict index -> destination relative to the output folder, for placed images, in
            the order of their input names.
        counts: dict split -> class -> placed images.
        sources: dict destination -> source signature (carried to the output's record).
        rows: list of SplitRow. The `split.csv` table, sorted by input name.
    """

    items: list[SplitItem]
    ratios: tuple[float, float, float]
    assign: list[str]
    pairs: DuplicatePairs
    source_pairs: int = 0
    source_files: int = 0
    comp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    groups: int = 0
    duplicate_groups: int = 0
    provenance_groups: int = 0
    provenance_source: str | None = None
    dropped: list[int] = field(default_factory=list)
    test_copies: list[dict[str, Any]] = field(default_factory=list)
    leaks: list[tuple[str, str, str]] = field(default_factory=list)
    dests: dict[int, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: dict[str, Signatures] = field(default_factory=dict)
    rows: list[SplitRow] = field(default_factory=list)

    @property
    def rels(self) -> list[str]:
        """Input-relative name of each image."""
        return [it.rel for it in self.items]

    @property
    def totals(self) -> dict[str, int]:
        """Placed images per split."""
        return {s: sum(self.counts[s].values()) for s in SPLITS}

    @property
    def largest_group(self) -> int:
        """Images in the largest group (0 without images)."""
        return int(np.bincount(self.comp).max()) if len(self.comp) else 0

    @property
    def pair_kinds(self) -> dict[str, int]:
        """Verified pairs by kind (`exact`, `near`, `flip`), sorted by kind."""
        return dict(sorted(Counter(self.pairs.kind.tolist()).items()))


def _ordered(records: Iterable[SplitFile]) -> list[SplitFile]:
    """The records in listing order; `DataError` for an unreadable file."""
    recs = sorted(records, key=lambda r: r.item.index)
    for r in recs:
        if r.signature is None:
            raise DataError(
                f"cannot read {r.item.path}: {r.reason} ({r.detail})", "run `imgclf clean` on the raw data first"
            )
    return recs


def _search(
    records: list[SplitFile], sources: Mapping[str, Signatures], find_pairs: FindPairs
) -> tuple[DuplicatePairs, int]:
    """Verified pairs of the files, and of their sources before the crop; how many the second search added."""
    pairs = find_pairs(records, {})
    # the pictures before `prepare`'s center crop (its source signatures): a photo and its
    # letterboxed copy are one picture there, two different squares here
    view = {r.item.rel: sources[r.item.rel] for r in records if r.item.rel in sources}
    if not view:
        return pairs, 0
    both = union_pairs(pairs, find_pairs(records, view))
    return both, len(both) - len(pairs)


def _group(plan: SplitPlan, prov_ids: np.ndarray | None) -> None:
    """Sets the groups of `plan`: components of its pairs and of the provenance links."""
    n, pairs = len(plan.items), plan.pairs
    _, dup_groups = duplicate_groups(n, pairs.i, pairs.j)
    ei, ej = [pairs.i], [pairs.j]
    if prov_ids is not None:
        first: dict[int, int] = {}
        plan.provenance_groups = sum(1 for c in Counter(prov_ids.tolist()).values() if c > 1)
        for k, g in enumerate(prov_ids.tolist()):
            f = first.setdefault(g, k)
            if f != k:
                ei.append(np.array([f]))
                ej.append(np.array([k]))
    plan.comp, all_groups = duplicate_groups(n, np.concatenate(ei), np.concatenate(ej))
    plan.groups, plan.duplicate_groups = len(all_groups), len(dup_groups)


def _destinations(plan: SplitPlan) -> None:
    """Sets each placed image's destination `<split>/<class>/<name>` (a second file of that name
    gets its input folders in front, `a__b__<name>`), the counts and the carried source signatures."""
    taken: set[str] = set()
    classes = sorted({it.label for it in plan.items})
    plan.counts = {s: dict.fromkeys(classes, 0) for s in SPLITS}
    for k in sorted(range(len(plan.items)), key=lambda k: plan.items[k].rel):
        s, it = plan.assign[k], plan.items[k]
        if s not in SPLITS:
            continue
        *folders, name = it.rel.split("/")
        dest = f"{s}/{it.label}/{name}"
        if dest in taken:  # same name from another subset / sub-folder
            dest = f"{s}/{it.label}/{'__'.join(folders)}__{name}"
        taken.add(dest)
        plan.dests[k] = dest
        plan.counts[s][it.label] += 1


def _rows(plan: SplitPlan) -> list[SplitRow]:
    """The `split.csv` rows, sorted by input name."""
    size = np.bincount(plan.comp, minlength=len(plan.items))
    note = {c["file"]: f"linked to test image {c['test']} ({c['link']})" for c in plan.test_copies}
    return [
        SplitRow(
            it.rel,
            it.label,
            plan.assign[k],
            int(plan.comp[k]) if size[plan.comp[k]] > 1 else None,
            plan.dests.get(k, ""),
            note.get(it.rel, ""),
        )
        for k, it in sorted(enumerate(plan.items), key=lambda e: e[1].rel)
    ]


def plan_split(
    records: Iterable[SplitFile],
    cfg: SplitConfig,
    *,
    sources: Mapping[str, Signatures] | None = None,
    provenance: tuple[Mapping[str, ProvenanceEntry], str] | None = None,
    find_pairs: FindPairs | None = None,
) -> SplitPlan:
    """split's reduce: groups, assignment, leak check and destinations from the map's records.

    Args:
        records: iterable of SplitFile (`imgclf.split.fingerprint.fingerprint_file`), any order.
        cfg: SplitConfig. `ratios`, `seed`, `keep_test`, `check_leaks`, `radius`,
            `max_residual`, `flips`, `provenance`.
        sources: mapping input-relative path -> Signatures, or None. The input's source
            signatures (`imgclf.clean.similarity.read_source_record`).
        provenance: `(entries, origin)` or None. The input's provenance
            (`imgclf.clean.provenance.stage_provenance`); ignored when `cfg.provenance` is False.
        find_pairs: FindPairs or None, default None. The near-duplicate search
            (`imgclf.split.search`); None = `local_pairs(cfg)`, over the signatures the records
            carry. `held_pairs` searches where a Ray cluster holds them (records carrying
            `HeldSignature`s); both give the same pairs.

    Returns:
        SplitPlan. The same records (in any order) and config give the same plan.

    Raises:
        DataError: an unreadable file, a class too small for the ratios, a class without
            train/val images with `keep_test`, or (with `cfg.check_leaks`) a duplicate pair or
            provenance group across splits.
        ConfigError: `keep_test` with zero train + val ratios.
    """
    recs = _ordered(records)
    sources = sources or {}
    pairs, source_pairs = _search(recs, sources, find_pairs or local_pairs(cfg))
    items = [r.item for r in recs]
    rels = [it.rel for it in items]
    plan = SplitPlan(items, split_ratios(cfg), [], pairs, source_pairs, sum(1 for r in rels if r in sources))
    prov = provenance if cfg.provenance else None
    prov_ids = group_ids(rels, prov[0]) if prov is not None else None
    plan.provenance_source = prov[1] if prov is not None else None
    _group(plan, prov_ids)
    fixed = ["test" if cfg.keep_test and it.subset == "test" else None for it in items]
    labels = [it.label for it in items]
    plan.assign = assign_splits(labels, plan.comp, plan.ratios, cfg.seed, fixed, require_pool=cfg.keep_test).tolist()
    plan.dropped = [k for k, s in enumerate(plan.assign) if s == DROPPED]
    plan.test_copies = links_to_test(plan.comp, plan.dropped, fixed, pairs, prov_ids, rels)
    plan.leaks = cross_split_pairs(rels, plan.assign, pairs, provenance=prov_ids)
    if cfg.check_leaks:
        raise_on_leaks(plan.leaks)
    _destinations(plan)
    plan.sources = {plan.dests[k]: sources[rels[k]] for k in plan.dests if rels[k] in sources}
    plan.rows = _rows(plan)
    return plan
