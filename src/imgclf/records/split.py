"""What `split` writes into its output folder for later stages: its report and its table.

    <split>/_reports/
      split_report.json   SplitReport: where the images came from (`src`, which the audit
                          follows to the scrape manifest), the ratios asked for, used and got,
                          the seed, the detector's settings, counts per split and class, groups,
                          provenance, train/val copies of kept test images, cross-split pairs
      split.csv           SplitRow per input image: file (relative to the input), class, split
                          (`train` | `val` | `test` | `dropped`), group id (images joined by
                          duplicates or provenance; empty for an image alone), dest (relative to
                          the split folder; empty when dropped), note (why it was dropped)
      prepare.json        copied from the input (`imgclf.records.prepare.PrepareRecord`)

Readers: the audit (`imgclf.audit.sources`: `SplitReport.src` to find the scrape manifest,
`load_split_table` for duplicate groups), `split` itself (a folder holding a report is a
previous split output it may replace).

Files of older imgclf versions load: a report without `schema_version` (version 1), without
the detector, provenance or test-copy sections (None), and a table without the `note` column.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from imgclf.errors import DataError
from imgclf.records.base import JsonRecord, read_csv, write_csv


class SourceSignatureCounts(BaseModel):
    """How the source signatures of the input were used (`SplitReport.detector`).

    Attributes:
        files: int. Input files with a source signature (`_reports/source_signatures.npz`).
        more_pairs: int. Duplicate pairs found only between the sources (before the crop).
    """

    model_config = ConfigDict(extra="ignore")

    files: int = 0
    more_pairs: int = 0


class DetectorSettings(BaseModel):
    """The near-duplicate detector `split` ran (`imgclf.clean.similarity.find_duplicate_pairs`).

    Attributes:
        method: str. The detector, in words.
        radius: int in [0, 32]. Candidate radius in bits.
        max_residual: float >= 0. Largest residual of a near duplicate, in grey levels [0, 255].
        flips: bool. Mirrored copies count.
        source_signatures: SourceSignatureCounts or None (None in reports of older versions).
    """

    model_config = ConfigDict(extra="ignore")

    method: str
    radius: int
    max_residual: float
    flips: bool
    source_signatures: SourceSignatureCounts | None = None


class ProvenanceUse(BaseModel):
    """Whether `split` kept provenance groups whole, and from which record.

    Attributes:
        enabled: bool. `--provenance`.
        source: str or None. The record read (`_reports/provenance.csv` or the scrape manifest),
            None when the input has none or provenance is off.
        groups: int. Provenance groups of 2+ images.
    """

    model_config = ConfigDict(extra="ignore")

    enabled: bool
    source: str | None = None
    groups: int = 0


class TrainCopyOfTest(BaseModel):
    """A train/val image set aside because it is linked to a kept test image (`--keep-test`).

    Attributes:
        file: str. The image set aside, relative to the input folder.
        test: str. The test image it is linked to, relative to the input folder.
        link: str. `exact`, `near`, `flip`, `provenance`, or `group` (linked through others).
        residual: float or None. Residual of the pair in grey levels [0, 255]; None without one.
    """

    model_config = ConfigDict(extra="ignore")

    file: str
    test: str
    link: str
    residual: float | None = None


class TrainCopiesOfTest(BaseModel):
    """`SplitReport.train_copies_of_test`: the count and the files."""

    model_config = ConfigDict(extra="ignore")

    count: int = 0
    files: list[TrainCopyOfTest] = Field(default_factory=list)


class SplitReport(JsonRecord):
    """`_reports/split_report.json`: what `split` did (fields in the order of the file).

    Attributes:
        src, out: str. The input and output folders as given.
        layout: str. `"flat"` or `"pre-split"`.
        keep_test: bool.
        ratios_requested: list of 3 float. train, val, test as asked (`--ratios`).
        ratios_used: list of 3 float. As used (with `keep_test`, train and val renormalized).
        ratios_actual: dict split -> fraction of the placed images (4 decimals).
        seed: int.
        detector: DetectorSettings or None (None in reports of older versions).
        counts: dict split -> class -> images.
        totals: dict split -> images.
        groups: int or None. Groups of 2+ images kept whole (duplicates and provenance).
        duplicate_groups: int. Groups of 2+ images joined by duplicate pairs alone.
        duplicate_pairs: dict kind -> pairs (`exact`, `near`, `flip`).
        largest_group: int.
        provenance: ProvenanceUse or None (None in reports of older versions).
        train_copies_of_test: TrainCopiesOfTest or None (None in reports of older versions).
        dropped_near_test: list of str. Images set aside (relative to the input folder).
        cross_split_pairs: list of `[file, file, kind]` (`[file, file]` in older versions):
            links that cross splits (empty unless `--no-check-leaks`).
        link: str. `"hardlink"` or `"copy"`.
        hardlinked: int. Files hard-linked (the others were copied).
    """

    FILE: ClassVar[str] = "_reports/split_report.json"
    WRITER: ClassVar[str] = "imgclf split"
    SCHEMA: ClassVar[int] = 1

    src: str
    out: str
    layout: str
    keep_test: bool
    ratios_requested: list[float]
    ratios_used: list[float]
    ratios_actual: dict[str, float]
    seed: int
    detector: DetectorSettings | None = None
    counts: dict[str, dict[str, int]]
    totals: dict[str, int]
    groups: int | None = None
    duplicate_groups: int
    duplicate_pairs: dict[str, int] = Field(default_factory=dict)
    largest_group: int
    provenance: ProvenanceUse | None = None
    train_copies_of_test: TrainCopiesOfTest | None = None
    dropped_near_test: list[str] = Field(default_factory=list)
    cross_split_pairs: list[list[str]] = Field(default_factory=list)
    link: str
    hardlinked: int = 0


#: Where `split` lists every input image, relative to its output folder.
SPLIT_TABLE = "_reports/split.csv"
#: Columns of `SPLIT_TABLE`, in order (`note` is missing in tables of older versions).
SPLIT_COLUMNS: tuple[str, ...] = ("file", "class", "split", "group", "dest", "note")


@dataclass(frozen=True)
class SplitRow:
    """One input image of a split (a row of `split.csv`).

    Attributes:
        file: str. Path relative to the input folder, "/"-separated.
        label: str. Its class (column `class`).
        split: str. `"train"`, `"val"`, `"test"` or `"dropped"`.
        group: int or None. Group id shared by the images kept together; None for an image alone.
        dest: str. Path relative to the split folder; `""` when dropped.
        note: str. Why it was dropped (`linked to test image ...`), else `""`.
    """

    file: str
    label: str
    split: str
    group: int | None = None
    dest: str = ""
    note: str = ""

    def cells(self) -> tuple[str, str, str, int | str, str, str]:
        """The CSV cells, in `SPLIT_COLUMNS` order (an empty cell for no group)."""
        return (self.file, self.label, self.split, "" if self.group is None else self.group, self.dest, self.note)


def save_split_table(folder: str | os.PathLike, rows: Iterable[SplitRow]) -> Path:
    """Writes `folder/_reports/split.csv` (`SPLIT_COLUMNS`), rows in the given order, atomically.

    Args:
        folder: path. The split folder.
        rows: iterable of SplitRow.

    Returns:
        Path written.
    """
    return write_csv(Path(folder) / SPLIT_TABLE, SPLIT_COLUMNS, (r.cells() for r in rows))


def load_split_table(folder: str | os.PathLike) -> list[SplitRow]:
    """Reads `folder/_reports/split.csv`.

    Args:
        folder: path. A split folder.

    Returns:
        list of SplitRow, in file order.

    Raises:
        DataError: if the file is missing, unreadable, lacks a column (`note` may be missing)
            or holds a group id that is not an integer.
    """
    path = Path(folder) / SPLIT_TABLE
    rows = read_csv(path, SPLIT_COLUMNS[:-1], SplitReport.WRITER)
    out = []
    for k, r in enumerate(rows):
        group = (r["group"] or "").strip()
        if group and not group.lstrip("-").isdigit():
            raise DataError(f"{path} row {k + 2}: group {group!r} is not an integer", "run `imgclf split` again")
        out.append(
            SplitRow(
                r["file"] or "",
                r["class"] or "",
                r["split"] or "",
                int(group) if group else None,
                r["dest"] or "",
                r.get("note") or "",
            )
        )
    return out
