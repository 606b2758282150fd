"""prepare's list and reduce: the tasks of the map, and the plan made of its records.

`prepare_tasks` names each output file (`output_names`) and hands each task the source
signatures the input and a previous run recorded. `plan_prepare` is pure: from the records of
`imgclf.prepare.resize.prepare_file` (in any order) it counts what was written, kept and set
aside, lists the rejects, gathers the source signatures and renames the provenance record --
everything `imgclf.prepare.write.write_prepare` writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imgclf.clean import similarity as sim
from imgclf.prepare.resize import KEPT, REJECTED, PreparedFile, PrepareTask
from imgclf.records.prepare import PrepareReject
from imgclf.records.provenance import ProvenanceEntry

#: `PrepareReject.reason` of a file of a class tree that is not in a class folder.
NOT_IN_CLASS_FOLDER = "not_in_class_folder"


def output_names(src: Path, files: Sequence[Path], ext: str) -> dict[Path, Path]:
    """Maps each input to its output path relative to `src`, with extension `ext`.

    `a.jpg` and `a.png` in one folder would both become `a.png`; such names keep their old
    extension in the stem (`a_jpg.png`, `a_png.png`) so no image overwrites another.

    Args:
        src: Path. The input folder.
        files: sequence of Path inside `src`.
        ext: str. The output extension with its dot (`".png"`, `".jpg"`).

    Returns:
        dict input Path -> output Path relative to the output folder.
    """
    rels = {f: f.relative_to(src) for f in files}
    counts: dict[Path, int] = {}
    for rel in rels.values():
        counts[rel.with_suffix(ext)] = counts.get(rel.with_suffix(ext), 0) + 1
    out = {}
    for f, rel in rels.items():
        dest = rel.with_suffix(ext)
        if counts[dest] > 1:
            dest = rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.').lower()}{ext}")
        out[f] = dest
    return out


def prepare_tasks(
    src: Path,
    out: Path,
    files: Sequence[Path],
    ext: str,
    given: Mapping[str, sim.Signatures],
    known: Mapping[str, sim.Signatures],
) -> list[PrepareTask]:
    """The map's items: one `PrepareTask` per file of `files`, in listing order.

    Args:
        src, out: Path. Input and output folders.
        files: sequence of Path. The input's images (`imgclf.inputs.list_images` order).
        ext: str. Output extension (`".png"`, `".jpg"`).
        given: mapping input-relative path -> Signatures. The input's source signatures.
        known: mapping output-relative path -> Signatures. The output's, from an earlier run.

    Returns:
        list of PrepareTask.
    """
    dests = output_names(src, files, ext)
    tasks = []
    for k, f in enumerate(files):
        rel, dest_rel = f.relative_to(src).as_posix(), dests[f].as_posix()
        tasks.append(PrepareTask(k, f, rel, out / dests[f], dest_rel, given.get(rel), known.get(dest_rel)))
    return tasks


@dataclass
class PreparePlan:
    """What `prepare` did and what it writes into its output's `_reports/`.

    Attributes:
        kept: int. Files in the output (written now or kept from before).
        skipped_existing: int. Of those, kept from an earlier run.
        rejected: dict reason -> files set aside (strays first, then in listing order).
        rejects: list of PrepareReject. One per file set aside, strays first.
        sources: dict output-relative path -> source signature (Signature or one-row Signatures).
        provenance: list of ProvenanceEntry under the output names, or None when the input has
            no provenance record (then none is written).
    """

    kept: int = 0
    skipped_existing: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    rejects: list[PrepareReject] = field(default_factory=list)
    sources: dict[str, sim.Signature | sim.Signatures] = field(default_factory=dict)
    provenance: list[ProvenanceEntry] | None = None


def plan_prepare(
    records: Iterable[PreparedFile],
    strays: Sequence[Path] = (),
    provenance: Mapping[str, ProvenanceEntry] | None = None,
) -> PreparePlan:
    """prepare's reduce: the plan made of the map's records, whatever order they come in.

    Args:
        records: iterable of PreparedFile (`imgclf.prepare.resize.prepare_file`), any order.
        strays: sequence of Path. Input files outside any class folder (set aside).
        provenance: mapping input-relative path -> ProvenanceEntry, or None. The input's
            provenance (`imgclf.clean.provenance.stage_provenance`).

    Returns:
        PreparePlan. Provenance entries are renamed to the output names and kept for the files
        the output holds.
    """
    plan = PreparePlan(
        rejects=[PrepareReject(str(f), NOT_IN_CLASS_FOLDER, "file is not inside a class folder") for f in strays]
    )
    if strays:
        plan.rejected[NOT_IN_CLASS_FOLDER] = len(strays)
    renamed: dict[str, str] = {}
    for r in sorted(records, key=lambda r: r.index):
        if r.in_output:
            renamed[r.source_rel] = r.dest_rel
        if r.status == REJECTED:
            plan.rejected[r.reason] = plan.rejected.get(r.reason, 0) + 1
            plan.rejects.append(PrepareReject(r.source, r.reason, r.detail))
            continue
        plan.kept += 1
        plan.skipped_existing += r.status == KEPT
        if r.signature is not None:
            plan.sources[r.dest_rel] = r.signature
    if provenance is not None:
        plan.provenance = [
            ProvenanceEntry(renamed[e.file], e.group, e.links) for e in provenance.values() if e.file in renamed
        ]
    return plan
