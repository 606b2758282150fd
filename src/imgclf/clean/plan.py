"""`clean`'s reduce: every decision about the input, from the map's records, without I/O.

`plan_clean(listing, records, cfg, decisions, provenance)` takes what the listing found
(`CleanInput`), one record per file from the map (`imgclf.clean.verify.inspect_file`), the review
decisions and the input's provenance entries (both read by the driver), and returns a
`CleanPlan`: every image with its final label, group, status and detail, the files set aside
and why, where each kept image goes, the provenance and source-signature records to write, and
the typed report (`imgclf.records.clean.CleanReport`). It is pure and deterministic whatever the
order the records arrive in: they are sorted first by `path_key`, the order
`imgclf.inputs.list_images` lists a folder in. In order:

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
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

import numpy as np

from imgclf.clean.groups import (
    KEEP_RULE,
    STATUS_DUPLICATE,
    STATUS_KEPT,
    STATUS_LABEL_CONFLICT,
    Member,
    duplicate_groups,
    resolve_groups,
)
from imgclf.clean.provenance import groups_report
from imgclf.clean.replay import ReplayItem, ReplayPlan, plan_replay
from imgclf.clean.similarity import (
    KIND_FLIP,
    DuplicatePairs,
    Signature,
    find_duplicate_pairs,
    needs_source_signature,
    stack,
)
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
        images: list of ImageRecord. Every readable image, in `path_key` order, with its final
            label, group, status and detail.
        set_aside: list of SetAside. Strays and unreadable files, then the images set aside.
        dest: dict rel -> output path of a kept image (its own path, or its new class
            folder's after a relabel decision).
        provenance: list of ProvenanceEntry or None. The provenance record of the kept images,
            under their output paths; None without provenance.
        sources: dict output path -> Signature. Source signatures to keep for `prepare`.
        pairs: dict kind -> count of duplicate pairs (`exact`, `near`, `flip`).
        report: CleanReport. Everything but `seconds`.
    """

    images: list[ImageRecord]
    set_aside: list[SetAside]
    dest: dict[str, str]
    provenance: list[ProvenanceEntry] | None
    sources: dict[str, Signature]
    pairs: dict[str, int]
    report: CleanReport

    @property
    def kept(self) -> list[ImageRecord]:
        """The images written to the output, in `path_key` order."""
        return [r for r in self.images if r.status == STATUS_KEPT]

    def copies(self) -> list[tuple[str, str]]:
        """Every file to copy: `(path relative to the input, path relative to the output)`."""
        kept = [(r.rel, self.dest[r.rel]) for r in self.kept]
        return kept + [(s.file, f"_rejected/{s.reason}/{s.file}") for s in self.set_aside]


@dataclass
class _Duplicates:
    """What the duplicate search found among the images still kept."""

    updates: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # rel -> group, status, detail
    groups: list[DuplicateGroup] = field(default_factory=list)
    conflicts: list[DuplicateGroup] = field(default_factory=list)
    flips: list[FlipPair] = field(default_factory=list)
    pairs: dict[str, int] = field(default_factory=dict)


#: A duplicate search over the images still kept: `find_pairs(live) -> DuplicatePairs`, index k
#: of the answer being `live[k]` (the default stacks their signatures: `find_duplicate_pairs`).
FindPairs = Callable[[list[ImageRecord]], DuplicatePairs]


def plan_clean(
    listing: CleanInput,
    records: Iterable[ImageRecord | Unreadable],
    cfg: CleanConfig,
    decisions: Sequence[Decision] = (),
    provenance: tuple[Mapping[str, ProvenanceEntry], str] | None = None,
    *,
    find_pairs: FindPairs | None = None,
) -> CleanPlan:
    """Decides what `clean` does with every file (pure; see the module docs).

    Args:
        listing: CleanInput. What the listing found.
        records: iterable of ImageRecord | Unreadable, one per file in a class folder, in any
            order (from `imgclf.clean.verify.inspect_file`, with `sha256=True` when there are
            decisions).
        cfg: CleanConfig. `dedupe`, `radius`, `max_residual`, `flips`, `label_conflicts`,
            `reject_uniform` + `uniform_std`, `reject_blurry` + `blur_threshold`.
        decisions: sequence of Decision, default (). Review decisions to replay
            (`imgclf.records.decisions.read_decisions`).
        provenance: tuple `(entries by input path, origin file)` or None
            (`imgclf.clean.provenance.stage_provenance`).
        find_pairs: callable or None, default None. The duplicate search over the images still
            kept (`FindPairs`); None = `find_duplicate_pairs` of their stacked signatures. The
            Ray engine passes the search of `imgclf.clean.similarity.held`, which gives the same
            pairs where the signatures are held.

    Returns:
        CleanPlan. The same for the same inputs in any order.
    """
    ordered = sorted(records, key=lambda r: path_key(r.rel))
    images = [_quality(r, cfg) for r in ordered if isinstance(r, ImageRecord)]
    set_aside = [SetAside(f, REASON_NOT_IN_CLASS, "file is not inside a class folder") for f in listing.strays]
    set_aside.sort(key=lambda s: path_key(s.file))
    set_aside += [SetAside(u.rel, u.reason, u.detail, u.label) for u in ordered if isinstance(u, Unreadable)]
    images, replay, moved = _replay(images, decisions)
    dup = _duplicates([r for r in images if r.status == STATUS_KEPT], cfg, find_pairs or _find_pairs(cfg))
    images = [_grouped(r, dup.updates.get(r.rel)) for r in images]
    prov_report = _provenance_report(images, set_aside, provenance)
    set_aside += [SetAside(r.rel, r.status, r.detail, r.label) for r in images if r.status != STATUS_KEPT]
    kept = [r for r in images if r.status == STATUS_KEPT]
    dest = {r.rel: moved.get(r.rel, r.rel) for r in kept}
    prov_entries = None
    if provenance is not None:
        entries = provenance[0]
        prov_entries = [
            ProvenanceEntry(dest[r.rel], entries[r.rel].group, entries[r.rel].links) for r in kept if r.rel in entries
        ]
    sources = {
        dest[r.rel]: r.signature
        for r in kept
        if r.signature is not None and needs_source_signature(r.width, r.height, CLEAN_SOURCE_SIZE)
    }
    report = _report(listing, cfg, images, set_aside, dup, replay, prov_report)
    return CleanPlan(images, set_aside, dest, prov_entries, sources, dup.pairs, report)


def _grouped(r: ImageRecord, update: tuple[int, str, str] | None) -> ImageRecord:
    """The record with its duplicate group, status and detail (unchanged outside any group)."""
    return r if update is None else replace(r, group=update[0], status=update[1], detail=update[2])


def _quality(r: ImageRecord, cfg: CleanConfig) -> ImageRecord:
    """The near-uniform and blurry rules."""
    if cfg.reject_uniform and r.std < cfg.uniform_std:
        return replace(r, status=REASON_NEAR_UNIFORM, detail=f"grayscale std {r.std:.2f} < {cfg.uniform_std}")
    if cfg.reject_blurry and r.blur < cfg.blur_threshold:
        return replace(r, status=REASON_BLURRY, detail=f"variance of Laplacian {r.blur:.1f} < {cfg.blur_threshold}")
    return r


def _replay(
    images: list[ImageRecord], decisions: Sequence[Decision]
) -> tuple[list[ImageRecord], ReplayPlan | None, dict[str, str]]:
    """Applies the review decisions: rejected -> `manual`, relabelled -> new label (and path)."""
    if not decisions:
        return images, None, {}
    plan = plan_replay(decisions, [ReplayItem(r.rel, r.sha256, r.label, r.subset) for r in images])
    out, moved = [], {}
    for r in images:
        act = plan.actions.get(r.rel)
        if act is None or act.action == "keep":
            out.append(r)
        elif act.action == "reject":
            out.append(replace(r, status=REASON_MANUAL, detail=act.detail))
        else:  # relabel: a member of the new class from here on (groups, conflicts, folders)
            out.append(replace(r, label=str(act.new_label)))
            moved[r.rel] = act.dest
    return out, plan, moved


def _find_pairs(cfg: CleanConfig) -> FindPairs:
    """The local search: `find_duplicate_pairs` of the stacked signatures."""

    def search(live: list[ImageRecord]) -> DuplicatePairs:
        sigs = stack([r.signature for r in live])
        return find_duplicate_pairs(sigs, radius=cfg.radius, max_residual=cfg.max_residual, flips=cfg.flips)

    return search


def _duplicates(live: list[ImageRecord], cfg: CleanConfig, find_pairs: FindPairs) -> _Duplicates:
    """Duplicate pairs, groups and the keeper policy among the images still kept."""
    out = _Duplicates()
    if not cfg.dedupe or len(live) < 2:
        return out
    found = find_pairs(live)
    out.pairs = dict(Counter(found.kind.tolist()))
    link = {(int(a), int(b)): (str(k), float(r)) for a, b, k, r in zip(found.i, found.j, found.kind, found.residual)}
    out.flips = [
        FlipPair(files=[live[a].rel, live[b].rel], residual=round(r, 2))
        for (a, b), (k, r) in link.items()
        if k == KIND_FLIP
    ]
    _, groups = duplicate_groups(len(live), found.i, found.j, [r.digest for r in live])
    members = [Member(r.rel, r.label, r.subset, r.width, r.height, r.nbytes, r.digest) for r in live]
    for d in resolve_groups(groups, members, cfg.label_conflicts):
        status: dict[int, tuple[str, str]] = {}
        for k in d.members:
            st = d.status[k]
            if st == STATUS_LABEL_CONFLICT:
                status[k] = (st, f"group {d.group} mixes labels {d.labels}")
            elif st != STATUS_KEPT:
                keeper = d.keeper[k]
                why = _why(link.get((min(k, keeper), max(k, keeper))))
                reason = REASON_DUPLICATE if st == STATUS_DUPLICATE else REASON_NEAR_DUPLICATE
                status[k] = (reason, f"group {d.group}: kept {live[keeper].rel} ({why})")
            else:
                status[k] = (live[k].status, live[k].detail)
            out.updates[live[k].rel] = (d.group, *status[k])
        index = set(d.members)
        entry = DuplicateGroup(
            group=d.group,
            labels=d.labels,
            kept=[live[k].rel for k in d.kept],
            members=[
                GroupMember(
                    file=live[k].rel,
                    label=live[k].label,
                    status=status[k][0],
                    width=live[k].width,
                    height=live[k].height,
                    bytes=live[k].nbytes,
                )
                for k in d.members
            ],
            pairs=[
                (live[a].rel, live[b].rel, kd, round(r, 2))
                for (a, b), (kd, r) in sorted(link.items())
                if a in index and b in index
            ],
        )
        out.groups.append(entry)
        if d.conflict:
            out.conflicts.append(entry)
    return out


def _why(how: tuple[str, float] | None) -> str:
    """How a set-aside member is joined to its keeper, in words."""
    if how is None:
        return "joined through other members"
    return f"{how[0]}, residual {how[1]:.1f}" if how[0] != "exact" else "same pixels"


def _provenance_report(
    images: list[ImageRecord],
    set_aside: list[SetAside],
    provenance: tuple[Mapping[str, ProvenanceEntry], str] | None,
) -> ProvenanceReport:
    """Where provenance came from and its groups of 2+ input files, with what `clean` did with each."""
    if provenance is None:
        return ProvenanceReport()
    status_of = {r.rel: r.status for r in images} | {s.file: s.reason for s in set_aside}
    return ProvenanceReport(source=provenance[1], groups=groups_report(sorted(status_of), provenance[0], status_of))


def _per_class(classes: Sequence[str], kept: list[ImageRecord], set_aside: list[SetAside]) -> dict[str, dict[str, int]]:
    """Class -> {"kept": n, reason: n...} (reasons in order of first appearance)."""
    per_class: dict[str, dict[str, int]] = {c: {"kept": 0} for c in classes}
    for r in kept:
        per_class.setdefault(r.label, {"kept": 0})["kept"] += 1
    for s in set_aside:
        if s.label:
            counts = per_class.setdefault(s.label, {"kept": 0})
            counts[s.reason] = counts.get(s.reason, 0) + 1
    return per_class


def _quality_report(images: list[ImageRecord], cfg: CleanConfig) -> QualityReport:
    blur = np.array([r.blur for r in images]) if images else np.zeros(0)
    percentiles = np.percentile(blur, [1, 10, 50, 90]).round(2).tolist() if len(blur) else []
    return QualityReport(
        blur_percentiles=dict(zip(("p1", "p10", "p50", "p90"), percentiles)),
        near_uniform=sum(r.std < cfg.uniform_std for r in images),
        below_blur_threshold=int((blur < cfg.blur_threshold).sum()),
    )


def _report(
    listing: CleanInput,
    cfg: CleanConfig,
    images: list[ImageRecord],
    set_aside: list[SetAside],
    dup: _Duplicates,
    replay: ReplayPlan | None,
    provenance: ProvenanceReport,
) -> CleanReport:
    """The typed report, but for `seconds`."""
    kept = [r for r in images if r.status == STATUS_KEPT]
    database = database_path(listing.out).relative_to(listing.out)
    return CleanReport(
        src=listing.src,
        out=listing.out,
        layout="pre-split" if listing.presplit else "flat",
        total=listing.files + len(listing.strays),
        kept=len(kept),
        rejected=dict(sorted(Counter(s.reason for s in set_aside).items())),
        per_class=_per_class(listing.classes, kept, set_aside),
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
        quality=_quality_report(images, cfg),
        decisions=replay.report(database=str(database)) if replay is not None else DecisionsReport(),
    )
