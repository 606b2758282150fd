"""split's reduce: from the map's records to a plan -- groups, assignment, leak check, destinations.

`plan_split(table, cfg, sources=..., provenance=..., find_pairs=...)` is pure (no I/O) and
deterministic: it works on the map's `SplitTable` (row k = file k of the listing), or on
records in any order (put in listing order, `SplitItem.index`). Its per-image data are numpy
columns (a split code, a group id); destinations and `split.csv` rows are made when written.

It joins the verified duplicate pairs (`imgclf.clean.similarity.find_duplicate_pairs`,
through a `imgclf.split.search.FindPairs`: on the signatures the records carry, or where a Ray
cluster holds them; again between the pictures before `prepare`'s center crop where the input
recorded them) and the provenance links into groups, assigns whole groups
(`imgclf.split.assign.assign_splits`), checks the assignment again against every pair and link
(`imgclf.split.check.cross_split_pairs`; a leak is a `DataError` with `check_leaks`), and names
every placed file's destination.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.clean.provenance import group_ids
from imgclf.clean.similarity import DuplicatePairs, Signatures, union_pairs
from imgclf.clean.similarity.pairs import connected_components
from imgclf.config import SplitConfig
from imgclf.errors import ConfigError, DataError
from imgclf.records.provenance import ProvenanceEntry
from imgclf.records.split import SplitRow
from imgclf.split.assign import DROPPED, DROPPED_CODE, SPLITS, assign_codes
from imgclf.split.check import cross_split_codes, links_to_test, raise_on_leaks
from imgclf.split.fingerprint import SplitFile
from imgclf.split.search import FindPairs, local_pairs
from imgclf.split.table import Rels, SplitTable, rel_order


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


@dataclass(eq=False)
class SplitPlan:
    """Everything `split` writes, decided before anything is written, as columns.

    Attributes:
        table: SplitTable. The files, in listing order (index k below = row k).
        ratios: tuple of 3 float. The ratios used (`split_ratios`).
        code: int16 array `(n,)`. Split of each image: 0, 1, 2 (`SPLITS`) or
            `imgclf.split.assign.DROPPED_CODE`.
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
        counts: dict split -> class -> placed images.
        sources: dict destination -> source signature (carried to the output's record).

    The destinations and the `split.csv` rows are made when asked for (`destinations`,
    `iter_rows`), in the order of the input names; `assign`, `dests` and `rows` are them as lists.
    """

    table: SplitTable
    ratios: tuple[float, float, float]
    code: np.ndarray
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
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    sources: dict[str, Signatures] = field(default_factory=dict)

    @property
    def rels(self) -> list[str]:
        """Input-relative name of each image."""
        return list(Rels(self.table))

    @property
    def assign(self) -> list[str]:
        """Split of each image: `"train"`, `"val"`, `"test"` or `"dropped"`."""
        return [_OUTCOMES[c] for c in self.code.tolist()]

    @property
    def dests(self) -> dict[int, str]:
        """Index -> destination relative to the output folder, for placed images, in the order
        of their input names (`destinations`)."""
        return dict(self.destinations())

    @property
    def rows(self) -> list[SplitRow]:
        """The `split.csv` table, sorted by input name (`iter_rows`)."""
        return list(self.iter_rows())

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

    def _walk(self) -> Iterator[tuple[int, str]]:
        """Every image `(k, destination or "")`, in the order of the input names: a placed image
        goes to `<split>/<class>/<name>`; a second file of that destination gets its input
        folders in front, `a__b__<name>`, and when that is taken too (another file's own name),
        a number before the extension, `a__b__<stem>__2<ext>`: no file replaces another."""
        t = self.table
        suspect = _suspects(self)
        taken: set[str] = set()
        for k in rel_order(t).tolist():
            c = int(self.code[k])
            if c >= len(SPLITS):
                yield k, ""
                continue
            folders, _, name = t.rel(k).rpartition("/")
            dest = f"{SPLITS[c]}/{t.label_of(k)}/{name}"
            if suspect[k]:  # the only images whose destination may be taken (`_suspects`)
                if dest in taken:  # same name from another subset / sub-folder
                    dest = _free(f"{SPLITS[c]}/{t.label_of(k)}/{folders.replace('/', '__')}__{name}", taken)
                taken.add(dest)
            yield k, dest

    def destinations(self) -> Iterator[tuple[int, str]]:
        """`(k, destination relative to the output folder)` of each placed image, in the order of
        the input names."""
        return ((k, d) for k, d in self._walk() if d)

    def iter_rows(self) -> Iterator[SplitRow]:
        """The `split.csv` rows, sorted by input name, made one at a time."""
        size = np.bincount(self.comp, minlength=len(self.table))
        note = {c["file"]: f"linked to test image {c['test']} ({c['link']})" for c in self.test_copies}
        for k, dest in self._walk():
            rel, g = self.table.rel(k), int(self.comp[k])
            yield SplitRow(
                rel,
                self.table.label_of(k),
                _OUTCOMES[self.code[k]],
                g if size[g] > 1 else None,
                dest,
                note.get(rel, ""),
            )


def _free(dest: str, taken: set[str]) -> str:
    """`dest`, or with `__2`, `__3`... before its extension, the first not in `taken`."""
    stem, dot, ext = dest.rpartition(".")
    stem, dot, ext = (stem, dot, ext) if dot and "/" not in ext else (dest, "", "")
    n = 2
    while dest in taken:
        dest, n = f"{stem}__{n}{dot}{ext}", n + 1
    return dest


#: The name of each `SplitPlan.code`.
_OUTCOMES: tuple[str, ...] = (*SPLITS, DROPPED)


def _suspects(plan: SplitPlan) -> np.ndarray:
    """bool `(n,)`: the placed images whose destination may already be taken when their turn
    comes -- those sharing `(split, class, name)` with another, and those whose name holds `__`
    (a prefixed destination always holds `__` after the class, so no other image can meet one)."""
    t, n = plan.table, len(plan.table)
    key = np.zeros(n, np.int64)
    odd = np.zeros(n, bool)
    placed = np.flatnonzero(plan.code < len(SPLITS))
    for k in placed.tolist():
        name = t.files.name(k)
        key[k] = hash((int(plan.code[k]), int(t.files.label[k]), name))
        odd[k] = "__" in name
    _, inv, counts = np.unique(key[placed], return_inverse=True, return_counts=True)
    odd[placed[counts[inv.reshape(-1)] > 1]] = True
    return odd


def _check_readable(table: SplitTable) -> None:
    """`DataError` for the first unreadable file."""
    if table.unreadable:
        k = min(table.unreadable)
        reason, detail = table.unreadable[k]
        raise DataError(f"cannot read {table.path(k)}: {reason} ({detail})", "run `imgclf clean` on the raw data first")


def _search(table: SplitTable, sources: Mapping[str, Signatures], find_pairs: FindPairs) -> tuple[DuplicatePairs, int]:
    """Verified pairs of the files, and of their sources before the crop; how many the second search added."""
    pairs = find_pairs(table, {})
    # the pictures before `prepare`'s center crop (its source signatures): a photo and its
    # letterboxed copy are one picture there, two different squares here
    view = {rel: sources[rel] for rel in Rels(table) if rel in sources} if sources else {}
    if not view:
        return pairs, 0
    both = union_pairs(pairs, find_pairs(table, view))
    return both, len(both) - len(pairs)


def _group(plan: SplitPlan, prov_ids: np.ndarray | None) -> None:
    """Sets the groups of `plan`: components of its pairs and of the provenance links."""
    n, pairs = len(plan.table), plan.pairs
    dup_groups = _multiple(connected_components(n, np.asarray(pairs.i, np.int64), np.asarray(pairs.j, np.int64)))
    ei, ej = [np.asarray(pairs.i, np.int64)], [np.asarray(pairs.j, np.int64)]
    if prov_ids is not None:
        _, first, inv, counts = np.unique(prov_ids, return_index=True, return_inverse=True, return_counts=True)
        plan.provenance_groups = int((counts > 1).sum())
        head = first[inv.reshape(-1)]
        linked = np.flatnonzero(head != np.arange(n))
        ei.append(head[linked])
        ej.append(linked)
    plan.comp = connected_components(n, np.concatenate(ei), np.concatenate(ej))
    plan.groups, plan.duplicate_groups = _multiple(plan.comp), dup_groups


def _multiple(comp: np.ndarray) -> int:
    """Components of 2+ members among the component ids `comp`."""
    return int((np.bincount(comp) > 1).sum()) if len(comp) else 0


def _labels(table: SplitTable) -> tuple[np.ndarray, list[str]]:
    """Each file's class as an index into the sorted class names, and the names."""
    names = sorted(table.files.labels)
    rank = np.array([names.index(c) for c in table.files.labels] or [0], np.int64)
    return rank[table.files.label], names


def _counts(plan: SplitPlan, labels: np.ndarray, names: list[str]) -> dict[str, dict[str, int]]:
    """Placed images per split and class (every class listed)."""
    placed = plan.code < len(SPLITS)
    per = np.bincount(plan.code[placed].astype(np.int64) * len(names) + labels[placed], minlength=3 * len(names))
    return {s: {c: int(per[i * len(names) + j]) for j, c in enumerate(names)} for i, s in enumerate(SPLITS)}


def plan_split(
    records: Iterable[SplitFile] | SplitTable,
    cfg: SplitConfig,
    *,
    sources: Mapping[str, Signatures] | None = None,
    provenance: tuple[Mapping[str, ProvenanceEntry], str] | None = None,
    find_pairs: FindPairs | None = None,
) -> SplitPlan:
    """split's reduce: groups, assignment, leak check and destinations from the map's records.

    Args:
        records: SplitTable (`imgclf.split.search.fingerprint_table`), or iterable of SplitFile
            (`imgclf.split.fingerprint.fingerprint_file`) in any order.
        cfg: SplitConfig. `ratios`, `seed`, `keep_test`, `check_leaks`, `radius`,
            `max_residual`, `flips`, `provenance`.
        sources: mapping input-relative path -> Signatures, or None. The input's source
            signatures (`imgclf.clean.similarity.read_source_record`).
        provenance: `(entries, origin)` or None. The input's provenance
            (`imgclf.clean.provenance.stage_provenance`); ignored when `cfg.provenance` is False.
        find_pairs: FindPairs or None, default None. The near-duplicate search
            (`imgclf.split.search`); None = `local_pairs(cfg)`, over the signatures the table
            (or the records) carry. `held_pairs` searches where a Ray cluster holds them; both
            give the same pairs.

    Returns:
        SplitPlan. The same records (in any order) and config give the same plan.

    Raises:
        DataError: an unreadable file, a class too small for the ratios, a class without
            train/val images with `keep_test`, or (with `cfg.check_leaks`) a duplicate pair or
            provenance group across splits.
        ConfigError: `keep_test` with zero train + val ratios.
    """
    table = records if isinstance(records, SplitTable) else SplitTable.from_records(records)
    _check_readable(table)
    sources = sources or {}
    pairs, source_pairs = _search(table, sources, find_pairs or local_pairs(cfg))
    rels = Rels(table)
    n_sources = sum(1 for r in rels if r in sources) if sources else 0
    plan = SplitPlan(table, split_ratios(cfg), np.zeros(len(table), np.int16), pairs, source_pairs, n_sources)
    prov = provenance if cfg.provenance else None
    prov_ids = group_ids(rels, prov[0]) if prov is not None else None
    plan.provenance_source = prov[1] if prov is not None else None
    _group(plan, prov_ids)
    labels, names = _labels(table)
    fixed = np.full(len(table), -1, np.int16)
    if cfg.keep_test and "test" in table.files.subsets:
        fixed[table.files.subset == table.files.subsets.index("test")] = SPLITS.index("test")
    plan.code = assign_codes(labels, names, plan.comp, plan.ratios, cfg.seed, fixed, require_pool=cfg.keep_test)
    plan.dropped = np.flatnonzero(plan.code == DROPPED_CODE).tolist()
    if plan.dropped:
        fixed_names = ["test" if f >= 0 else None for f in fixed.tolist()]
        plan.test_copies = links_to_test(plan.comp, plan.dropped, fixed_names, pairs, prov_ids, rels)
    plan.leaks = cross_split_codes(rels, plan.code, pairs, provenance=prov_ids)
    if cfg.check_leaks:
        raise_on_leaks(plan.leaks)
    plan.counts = _counts(plan, labels, names)
    if sources:
        plan.sources = {d: sources[table.rel(k)] for k, d in plan.destinations() if table.rel(k) in sources}
    return plan
