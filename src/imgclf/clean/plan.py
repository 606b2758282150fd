"""`clean`'s reduce: every decision about the input, from the map's records, without I/O.

`plan_clean(listing, records, cfg, decisions, provenance)` takes what the listing found
(`CleanInput`), one record per file from the map (`imgclf.clean.verify.inspect_file`), the review
decisions and the input's provenance entries (both read by the driver), and returns a
`CleanPlan`: every image with its final label, group, status and detail, the files set aside
and why, where each kept image goes, the provenance and source-signature records to write, and
the typed report (`imgclf.records.clean.CleanReport`). It is pure and deterministic whatever the
order the records arrive in: they are sorted first by `path_key`, the order
`imgclf.inputs.list_images` lists a folder in (`clean_folder` passes them as a
`imgclf.clean.table.RecordTable` already in that order). It works on the table's columns
(vectorised rules, counts and percentiles; the duplicate search on the rows still kept; groups
over the images that have partners) and makes objects only for the few that need them: the
images in groups, the files set aside, the review decisions. In order:

1. quality: near-uniform images (grayscale std below `uniform_std`, with `reject_uniform`) and,
   with `reject_blurry`, blurry ones (variance of the Laplacian below `blur_threshold`) are set
   aside;
2. review decisions (`imgclf.clean.replay.plan_replay`): a rejected image goes to
   `_rejected/manual/`, a relabelled one joins its new class before grouping;
3. duplicates: one `find_duplicate_pairs` call on the stacked signatures of the images still
   kept (exact candidates from a Hamming search, each verified pixel by pixel; docs/dedupe.md),
   groups = connected components of those pairs and of equal pixel digests
   (`imgclf.clean.groups.duplicate_groups`), one image kept per group and label by the keeper
   rule (`resolve_groups`, `KEEP_RULE`); mirrored copies (`flips`) are listed as flip pairs;
4. provenance groups (`imgclf.clean.provenance.groups_report`), per-class counts, quality
   percentiles and the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from imgclf.clean.groups import (
    KEEP_RULE,
    STATUS_DUPLICATE,
    STATUS_KEPT,
    STATUS_LABEL_CONFLICT,
    GroupDecision,
    Member,
    resolve_groups,
)
from imgclf.clean.provenance import groups_report
from imgclf.clean.replay import ReplayItem, ReplayPlan, plan_replay
from imgclf.clean.similarity import (
    KIND_FLIP,
    DuplicatePairs,
    find_duplicate_pairs,
    needs_source_signature,
    stack,
)
from imgclf.clean.similarity.detect import _exact_within
from imgclf.clean.similarity.held import HeldSignature
from imgclf.clean.similarity.pairs import connected_components
from imgclf.clean.table import RecordTable
from imgclf.clean.verify import ImageRecord, Unreadable
from imgclf.config import CleanConfig
from imgclf.records.clean import (
    CleanReport,
    DecisionsReport,
    DuplicateGroup,
    FlipPair,
    GroupMember,
    ProvenanceReport,
    QualityReport,
)
from imgclf.records.decisions import REASON_MANUAL, Decision, database_path
from imgclf.records.provenance import ProvenanceEntry

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

#: `clean` keeps the signatures of the pictures a `prepare` to this size (pixels) or larger
#: would crop or reduce below half (`imgclf.clean.similarity.needs_source_signature`).
CLEAN_SOURCE_SIZE = 32


def path_key(rel: str) -> tuple[tuple[int, str], ...]:
    """Sort key of a relative path: the order `imgclf.inputs.list_images` walks a folder in.

    A folder's files (sorted by name) come before its sub-folders (sorted by name), so
    `cat/z.png` < `cat/sub/a.png` and `cat/a.png` < `cat-2/a.png`.

    Args:
        rel: str. "/"-separated path relative to the input.

    Returns:
        tuple: compare keys with `<`.
    """
    parts = PurePosixPath(rel).parts
    return (*((1, d) for d in parts[:-1]), (0, parts[-1] if parts else ""))


@dataclass(frozen=True)
class CleanInput:
    """What listing the input found (the driver's I/O before the map).

    Attributes:
        src, out: str. The input and output folders as given (for the report).
        presplit: bool. `src/{train,val,test}/<class>/...`.
        classes: tuple of str. Class folders holding files, sorted.
        empty: tuple of str. Class folders without files, relative to `src`.
        strays: tuple of str. Files outside any class folder, relative to `src`.
        files: int. Files inside class folders (one map record each).
    """

    src: str
    out: str
    presplit: bool = False
    classes: tuple[str, ...] = ()
    empty: tuple[str, ...] = ()
    strays: tuple[str, ...] = ()
    files: int = 0


@dataclass(frozen=True)
class SetAside:
    """A file `clean` sets aside: `OUT/_rejected/<reason>/<file>` and a row of rejects.csv."""

    file: str
    reason: str
    detail: str
    label: str = ""


@dataclass
class CleanPlan:
    """Everything `clean`'s apply step writes (see `plan_clean`).

    Attributes:
        table: RecordTable. Every file, by position in `path_key` order, with its final label,
            group, status and detail (`imgclf.clean.table`).
        set_aside: list of SetAside. Strays and unreadable files, then the images set aside.
        moved: dict rel -> output path of a kept image relabelled into another class folder
            (the others keep their own path).
        provenance: list of ProvenanceEntry or None. The provenance record of the kept images,
            under their output paths; None without provenance.
        sources: dict output path -> Signature (or `HeldSignature` until fetched). Source
            signatures to keep for `prepare`.
        pairs: dict kind -> count of duplicate pairs (`exact`, `near`, `flip`).
        report: CleanReport. Everything but `seconds`.
        kept_rows: np.ndarray of int64. Rows of `table` written to the output, increasing.
    """

    table: RecordTable
    set_aside: list[SetAside]
    moved: dict[str, str]
    provenance: list[ProvenanceEntry] | None
    sources: dict[str, Any]
    pairs: dict[str, int]
    report: CleanReport
    kept_rows: np.ndarray

    @property
    def images(self) -> list[ImageRecord]:
        """Every readable image as an `ImageRecord`, in `path_key` order (one object each: for
        small inputs and tests)."""
        return [self.table.record(k) for k in np.flatnonzero(self.table.ok).tolist()]

    @property
    def kept(self) -> list[ImageRecord]:
        """The images written to the output, in `path_key` order (one object each)."""
        return [self.table.record(k) for k in self.kept_rows.tolist()]

    @property
    def dest(self) -> dict[str, str]:
        """rel -> output path of every kept image (one entry each: for small inputs and tests)."""
        return {r: self.moved.get(r, r) for r in map(self.table.rel, self.kept_rows)}

    def copy_jobs(self) -> Sequence[tuple[str, str]]:
        """Every file to copy, `(path relative to the input, path relative to the output)`, made
        when asked for: the kept images, then the files set aside."""
        return _Copies(self)

    def copies(self) -> list[tuple[str, str]]:
        """`copy_jobs` as a list."""
        return list(self.copy_jobs())


class _Copies(Sequence[tuple[str, str]]):
    """`CleanPlan.copy_jobs`: a sequence of copy jobs made one at a time."""

    def __init__(self, plan: CleanPlan) -> None:
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan.kept_rows) + len(self.plan.set_aside)

    def __getitem__(self, k: int) -> tuple[str, str]:  # type: ignore[override]
        n = len(self.plan.kept_rows)
        if not 0 <= k < len(self):
            raise IndexError(k)
        if k < n:
            rel = self.plan.table.rel(self.plan.kept_rows[k])
            return rel, self.plan.moved.get(rel, rel)
        s = self.plan.set_aside[k - n]
        return s.file, f"_rejected/{s.reason}/{s.file}"


@dataclass
class _Duplicates:
    """What the duplicate search found among the images still kept (their rows in the table
    get their group, status and detail)."""

    groups: list[DuplicateGroup] = field(default_factory=list)
    conflicts: list[DuplicateGroup] = field(default_factory=list)
    flips: list[FlipPair] = field(default_factory=list)
    pairs: dict[str, int] = field(default_factory=dict)


#: A duplicate search over the images still kept: `find_pairs(rows) -> DuplicatePairs`, `rows`
#: their rows in the `RecordTable` (increasing), index k of the answer being `rows[k]` (the
#: default stacks their signatures of the table's side list: `find_duplicate_pairs`).
FindPairs = Callable[[np.ndarray], DuplicatePairs]


def plan_clean(
    listing: CleanInput,
    records: Iterable[ImageRecord | Unreadable] | RecordTable,
    cfg: CleanConfig,
    decisions: Sequence[Decision] = (),
    provenance: tuple[Mapping[str, ProvenanceEntry], str] | None = None,
    *,
    find_pairs: FindPairs | None = None,
) -> CleanPlan:
    """Decides what `clean` does with every file (pure; see the module docs).

    Args:
        listing: CleanInput. What the listing found.
        records: RecordTable (`imgclf.clean.table`, its rows in `path_key` order; the plan
            takes it over and sets its labels, statuses and groups), or an iterable of
            ImageRecord | Unreadable, one per file in a class folder, in any order (from
            `imgclf.clean.verify.inspect_file`, with `sha256=True` when there are decisions).
        cfg: CleanConfig. `dedupe`, `radius`, `max_residual`, `flips`, `label_conflicts`,
            `reject_uniform` + `uniform_std`, `reject_blurry` + `blur_threshold`.
        decisions: sequence of Decision, default (). Review decisions to replay
            (`imgclf.records.decisions.read_decisions`).
        provenance: tuple `(entries by input path, origin file)` or None
            (`imgclf.clean.provenance.stage_provenance`).
        find_pairs: callable or None, default None. The duplicate search over the images still
            kept (`FindPairs`); None = `find_duplicate_pairs` of their stacked signatures (the
            table's side list). The Ray engine passes the search of
            `imgclf.clean.similarity.held`, which gives the same pairs where the signatures are held.

    Returns:
        CleanPlan. The same for the same inputs in any order.
    """
    table = records if isinstance(records, RecordTable) else RecordTable.from_records(records, listing.src)
    _quality(table, cfg)
    set_aside = [SetAside(f, REASON_NOT_IN_CLASS, "file is not inside a class folder") for f in listing.strays]
    set_aside.sort(key=lambda s: path_key(s.file))
    set_aside += [_set_aside(table, k) for k in np.flatnonzero(~table.ok).tolist()]
    replay, moved = _replay(table, decisions)
    dup = _duplicates(table, table.kept(), cfg, find_pairs or _find_pairs(table, cfg))
    prov_report = _provenance_report(table, set_aside, provenance)
    set_aside += [_set_aside(table, k) for k in np.flatnonzero(table.ok & (table.status != 0)).tolist()]
    kept = table.kept()
    prov_entries = None
    if provenance is not None:
        entries = provenance[0]
        prov_entries = [
            ProvenanceEntry(moved.get(rel, rel), entries[rel].group, entries[rel].links)
            for rel in map(table.rel, kept)
            if rel in entries
        ]
    sources = _sources(table, kept, moved)
    report = _report(listing, cfg, table, kept, set_aside, dup, replay, prov_report)
    return CleanPlan(table, set_aside, moved, prov_entries, sources, dup.pairs, report, kept)


def _set_aside(table: RecordTable, k: int) -> SetAside:
    """The `SetAside` of row `k`."""
    return SetAside(table.rel(k), table.status_of(k), table.detail.get(int(k), ""), table.label_of(k))


def _sources(table: RecordTable, kept: np.ndarray, moved: Mapping[str, str]) -> dict[str, Any]:
    """Output path -> signature of the kept pictures `prepare` would crop or reduce below half."""
    out: dict[str, Any] = {}
    for a in range(0, len(kept), 4096):
        rows = kept[a : a + 4096]
        for k, w, h in zip(rows.tolist(), table.width[rows].tolist(), table.height[rows].tolist()):
            if needs_source_signature(w, h, CLEAN_SOURCE_SIZE):
                rel = table.rel(k)
                sig = table.sigs[k] if table.sigs is not None else HeldSignature(k)
                if sig is not None:
                    out[moved.get(rel, rel)] = sig
    return out


def _quality(table: RecordTable, cfg: CleanConfig) -> None:
    """The near-uniform and blurry rules."""
    live = table.ok & (table.status == 0)
    if cfg.reject_uniform:
        for k in np.flatnonzero(live & (table.std < cfg.uniform_std)).tolist():
            table.set(k, REASON_NEAR_UNIFORM, f"grayscale std {float(table.std[k]):.2f} < {cfg.uniform_std}")
        live = table.ok & (table.status == 0)
    if cfg.reject_blurry:
        for k in np.flatnonzero(live & (table.blur < cfg.blur_threshold)).tolist():
            blur = float(table.blur[k])
            table.set(k, REASON_BLURRY, f"variance of Laplacian {blur:.1f} < {cfg.blur_threshold}")


def _replay(table: RecordTable, decisions: Sequence[Decision]) -> tuple[ReplayPlan | None, dict[str, str]]:
    """Applies the review decisions: rejected -> `manual`, relabelled -> new label (and path)."""
    if not decisions:
        return None, {}
    rows = np.flatnonzero(table.ok).tolist()
    items = [ReplayItem(table.rel(k), table.sha256_of(k), table.label_of(k), table.files.subset_of(k)) for k in rows]
    plan = plan_replay(decisions, items)
    moved = {}
    for k, item in zip(rows, items):
        act = plan.actions.get(item.rel)
        if act is None or act.action == "keep":
            continue
        if act.action == "reject":
            table.set(k, REASON_MANUAL, act.detail)
        else:  # relabel: a member of the new class from here on (groups, conflicts, folders)
            table.label[k] = table.label_code(str(act.new_label))
            moved[item.rel] = act.dest
    return plan, moved


def _find_pairs(table: RecordTable, cfg: CleanConfig) -> FindPairs:
    """The local search: `find_duplicate_pairs` of the stacked signatures (the side list)."""

    def search(rows: np.ndarray) -> DuplicatePairs:
        sigs = stack([(table.sigs or [])[k] for k in rows.tolist()])
        return find_duplicate_pairs(sigs, radius=cfg.radius, max_residual=cfg.max_residual, flips=cfg.flips)

    return search


def _groups(table: RecordTable, live: np.ndarray, found: DuplicatePairs) -> tuple[np.ndarray, list[list[int]]]:
    """The images with partners (indices into `live`, increasing) and their groups (lists of
    indices into them): the connected components of the pairs and of equal pixel digests, as
    `imgclf.clean.groups.duplicate_groups` of every live image would give."""
    ex_i, ex_j = _exact_within(table.digest_keys(live))
    i, j = np.concatenate([found.i, ex_i]).astype(np.int64), np.concatenate([found.j, ex_j]).astype(np.int64)
    nodes = np.unique(np.concatenate([i, j]))
    comp = connected_components(len(nodes), np.searchsorted(nodes, i), np.searchsorted(nodes, j))
    order = np.argsort(comp, kind="stable")
    cuts = np.flatnonzero(np.diff(comp[order])) + 1
    return nodes, [g.tolist() for g in np.split(order, cuts) if len(g) > 1]


def _member(table: RecordTable, k: int) -> Member:
    """What the keeper policy knows about row `k`."""
    digest = table.digest_keys(np.array([k]))[0].hex()
    w, h, nbytes = int(table.width[k]), int(table.height[k]), int(table.nbytes[k])
    return Member(table.rel(k), table.label_of(k), table.files.subset_of(k), w, h, nbytes, digest)


def _duplicates(table: RecordTable, live: np.ndarray, cfg: CleanConfig, find_pairs: FindPairs) -> _Duplicates:
    """Duplicate pairs, groups and the keeper policy among the images still kept (rows `live`)."""
    out = _Duplicates()
    if not cfg.dedupe or len(live) < 2:
        return out
    found = find_pairs(live)
    out.pairs = dict(Counter(found.kind.tolist()))
    link = {(int(a), int(b)): (str(k), float(r)) for a, b, k, r in zip(found.i, found.j, found.kind, found.residual)}
    out.flips = [
        FlipPair(files=[table.rel(live[a]), table.rel(live[b])], residual=round(r, 2))
        for (a, b), (k, r) in link.items()
        if k == KIND_FLIP
    ]
    nodes, groups = _groups(table, live, found)
    rows = live[nodes]  # the rows of the images with partners
    members = [_member(table, k) for k in rows.tolist()]
    at = {int(v): x for x, v in enumerate(nodes.tolist())}  # live index -> node index
    links: dict[int, list[tuple[tuple[int, int], tuple[str, float]]]] = {}
    for (a, b), how in sorted(link.items()):
        links.setdefault(a, []).append(((at[a], at[b]), how))
    for d in resolve_groups(groups, members, cfg.label_conflicts):
        entry = _group_entry(table, d, rows, members, links, nodes)
        out.groups.append(entry)
        if d.conflict:
            out.conflicts.append(entry)
    return out


def _group_entry(
    table: RecordTable,
    d: GroupDecision,
    rows: np.ndarray,
    members: Sequence[Member],
    links: Mapping[int, list[tuple[tuple[int, int], tuple[str, float]]]],
    nodes: np.ndarray,
) -> DuplicateGroup:
    """Sets the group, status and detail of one group's rows; returns its report entry."""
    index = set(d.members)
    pairs = [(x, how) for k in sorted(d.members) for x, how in links.get(int(nodes[k]), []) if x[1] in index]
    link = dict(pairs)
    status: dict[int, str] = {}
    for k in d.members:
        st, row = d.status[k], int(rows[k])
        if st == STATUS_LABEL_CONFLICT:
            table.set(row, st, f"group {d.group} mixes labels {d.labels}")
        elif st != STATUS_KEPT:
            keeper = d.keeper[k]
            why = _why(link.get((min(k, keeper), max(k, keeper))))
            reason = REASON_DUPLICATE if st == STATUS_DUPLICATE else REASON_NEAR_DUPLICATE
            table.set(row, reason, f"group {d.group}: kept {members[keeper].rel} ({why})")
        table.group[row] = d.group
        status[k] = table.status_of(row)
    return DuplicateGroup(
        group=d.group,
        labels=d.labels,
        kept=[members[k].rel for k in d.kept],
        members=[
            GroupMember(
                file=members[k].rel,
                label=members[k].label,
                status=status[k],
                width=members[k].width,
                height=members[k].height,
                bytes=members[k].nbytes,
            )
            for k in d.members
        ],
        pairs=[(members[a].rel, members[b].rel, kd, round(r, 2)) for (a, b), (kd, r) in sorted(pairs)],
    )


def _why(how: tuple[str, float] | None) -> str:
    """How a set-aside member is joined to its keeper, in words."""
    if how is None:
        return "joined through other members"
    return f"{how[0]}, residual {how[1]:.1f}" if how[0] != "exact" else "same pixels"


def _provenance_report(
    table: RecordTable,
    set_aside: list[SetAside],
    provenance: tuple[Mapping[str, ProvenanceEntry], str] | None,
) -> ProvenanceReport:
    """Where provenance came from and its groups of 2+ input files, with what `clean` did with each."""
    if provenance is None:
        return ProvenanceReport()
    status_of = {table.rel(k): table.status_of(k) for k in np.flatnonzero(table.ok).tolist()}
    status_of |= {s.file: s.reason for s in set_aside}
    return ProvenanceReport(source=provenance[1], groups=groups_report(sorted(status_of), provenance[0], status_of))


def _per_class(
    classes: Sequence[str], table: RecordTable, kept: np.ndarray, set_aside: list[SetAside]
) -> dict[str, dict[str, int]]:
    """Class -> {"kept": n, reason: n...} (reasons in order of first appearance)."""
    per_class: dict[str, dict[str, int]] = {c: {"kept": 0} for c in classes}
    codes = table.label[kept]
    found, first = np.unique(codes, return_index=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(table.labels))
    for c in found[np.argsort(first)].tolist():  # in order of first appearance
        label = table.labels[c] if c >= 0 else ""
        per_class.setdefault(label, {"kept": 0})["kept"] = int(counts[c]) if c >= 0 else int((codes < 0).sum())
    for s in set_aside:
        if s.label:
            n = per_class.setdefault(s.label, {"kept": 0})
            n[s.reason] = n.get(s.reason, 0) + 1
    return per_class


def _quality_report(table: RecordTable, cfg: CleanConfig) -> QualityReport:
    blur = table.blur[table.ok]
    percentiles = np.percentile(blur, [1, 10, 50, 90]).round(2).tolist() if len(blur) else []
    return QualityReport(
        blur_percentiles=dict(zip(("p1", "p10", "p50", "p90"), percentiles)),
        near_uniform=int((table.std[table.ok] < cfg.uniform_std).sum()),
        below_blur_threshold=int((blur < cfg.blur_threshold).sum()),
    )


def _report(
    listing: CleanInput,
    cfg: CleanConfig,
    table: RecordTable,
    kept: np.ndarray,
    set_aside: list[SetAside],
    dup: _Duplicates,
    replay: ReplayPlan | None,
    provenance: ProvenanceReport,
) -> CleanReport:
    """The typed report, but for `seconds`."""
    database = database_path(listing.out).relative_to(listing.out)
    return CleanReport(
        src=listing.src,
        out=listing.out,
        layout="pre-split" if listing.presplit else "flat",
        total=listing.files + len(listing.strays),
        kept=len(kept),
        rejected=dict(sorted(Counter(s.reason for s in set_aside).items())),
        per_class=_per_class(listing.classes, table, kept, set_aside),
        empty_class_folders=list(listing.empty),
        settings=cfg.model_dump(),
        detector=DETECTOR_METHOD,
        keep_rule=KEEP_RULE,
        duplicate_pairs=dict(sorted(dup.pairs.items())),
        duplicate_groups=len(dup.groups),
        images_in_groups=sum(len(g.members) for g in dup.groups),
        label_conflicts=dup.conflicts,
        groups=dup.groups,
        flip_pairs=dup.flips,
        provenance=provenance,
        quality=_quality_report(table, cfg),
        decisions=replay.report(database=str(database)) if replay is not None else DecisionsReport(),
    )
