"""What `imgclf clean` writes into `OUT/_reports/` for people and later commands to read.

- `clean_report.json` (`CleanReport`): counts, per-class counts, settings, the duplicate groups
  (members, pairs), label conflicts, mirrored pairs, provenance groups, quality figures and the
  review decisions replayed. Read by `imgclf review` (groups, conflicts, where decided images
  went) and by `imgclf audit` (a folder is a clean output).
- `images.csv` (`ImageTable`, one `ImageRow` per readable image): size, 64-bit phash, quality
  scores, duplicate group and status. Read by `imgclf review` (the blurriest images) and
  `imgclf audit` (duplicate groups).
- `rejects.csv` (`RejectTable`, one `RejectRow` per file set aside): file, reason, detail.

`provenance.csv` is `imgclf.records.provenance`, `decisions.sqlite` is
`imgclf.records.decisions`, `source_signatures.npz` is the near-duplicate detector's record.

Versions: `CleanReport` carries `schema_version` (a report written before versions existed
reads as version 1; a newer one is refused with a `DataError`). A CSV table's version is its
header: a later version may add columns (ignored by this reader); a table lacking a column this
version needs, or holding a value that does not parse, is a `DataError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from imgclf.errors import DataError
from imgclf.fsutil import atomic_write_json
from imgclf.records.base import JsonRecord, read_csv, write_csv

#: Writer of every file here (for messages).
WRITER = "imgclf clean"

T = TypeVar("T")


# ------------------------------------------------------------------------ clean_report.json
class GroupMember(BaseModel):
    """One image of a duplicate group.

    Attributes:
        file: str. Path relative to `clean`'s input, "/"-separated.
        label: str. Its class (after a relabel decision).
        status: str. `"kept"` or why it was set aside (`"duplicate"`, `"near_duplicate"`,
            `"label_conflict"`, `"manual"`...).
        width, height: int. Size in pixels.
        bytes: int. File size.
    """

    file: str
    label: str = ""
    status: str = ""
    width: int = 0
    height: int = 0
    bytes: int = 0


class DuplicateGroup(BaseModel):
    """A duplicate group: images joined by equal pixels or verified near-duplicate pairs.

    Attributes:
        group: int. 1-based id (the `group` column of `images.csv`).
        labels: list of str. Distinct labels of the members, sorted (2+ = a label conflict).
        kept: list of str. The files kept (one per label, none for a rejected conflict).
        members: list of GroupMember, in keeper order (the keeper rule, `keep_rule`).
        pairs: list of `[file a, file b, kind, residual]`: the verified pairs inside the group,
            kind `"exact"`, `"near"` or `"flip"`, residual in grey levels [0, 255].
    """

    group: int
    labels: list[str] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)
    members: list[GroupMember] = Field(default_factory=list)
    pairs: list[tuple[str, str, str, float]] = Field(default_factory=list)


class FlipPair(BaseModel):
    """Two images, one a mirrored copy of the other (searched only with `flips`).

    Attributes:
        files: list of 2 str. Paths relative to the input.
        residual: float. Grey levels [0, 255].
    """

    files: list[str]
    residual: float = 0.0


class ProvenanceFile(BaseModel):
    """A member of a provenance group and what `clean` did with it (`"kept"` or a reason)."""

    file: str
    status: str = ""


class ProvenanceGroup(BaseModel):
    """Files from one post, gallery, crosspost family or URL (2+ files).

    Attributes:
        group: str. The group key (the smallest of its links, e.g. `post:abc`).
        links: list of str. Links the members share with another member.
        files: list of ProvenanceFile, sorted by file.
    """

    group: str
    links: list[str] = Field(default_factory=list)
    files: list[ProvenanceFile] = Field(default_factory=list)


class ProvenanceReport(BaseModel):
    """Where provenance came from (`_manifest.sqlite`, `_reports/provenance.csv`, or None) and
    the provenance groups of two or more files."""

    source: str | None = None
    groups: list[ProvenanceGroup] = Field(default_factory=list)


class QualityReport(BaseModel):
    """Quality figures over every readable image.

    Attributes:
        blur_percentiles: dict `p1`, `p10`, `p50`, `p90` -> variance of the Laplacian (empty
            when no image was readable).
        near_uniform: int. Images with grayscale std below `settings.uniform_std`.
        below_blur_threshold: int. Images with a blur score below `settings.blur_threshold`.
    """

    blur_percentiles: dict[str, float] = Field(default_factory=dict)
    near_uniform: int = 0
    below_blur_threshold: int = 0


class DecisionRow(BaseModel):
    """A row of the decisions database, as the report lists it (`imgclf.records.decisions`)."""

    id: int
    time: str = ""
    action: str = ""
    path: str = ""
    label: str = ""
    new_label: str | None = None
    view: str = ""
    sha256: str = ""


class InvalidDecision(DecisionRow):
    """An effective decision `clean` could not apply, and why."""

    why: str = ""


class ReplayedFile(BaseModel):
    """A review decision `clean` applied to one file.

    Attributes:
        file: str. Path relative to the input.
        action: str. `"reject"`, `"relabel"` or `"keep"`.
        label: str. Its class in the input.
        new_label: str or None. `relabel`: the new class.
        to: str. Where it went, relative to the output (`_rejected/manual/...`, the new class
            folder's path, or `file`).
        matched_by: str. `"sha256"` or `"path"`.
        decision: int. The decision's id; `time`, `view`: when and on which page.
    """

    file: str
    action: str
    label: str = ""
    new_label: str | None = None
    to: str
    matched_by: str = ""
    decision: int = 0
    time: str = ""
    view: str = ""


class DecisionsReport(BaseModel):
    """The review decisions `clean` replayed (`imgclf.clean.replay`).

    Without a decisions database only `database` (None) and `rows` (0) are written.

    Attributes:
        database: str or None. The database, relative to the output (`_reports/decisions.sqlite`).
        rows, rejected, relabelled, kept, undone, not_found, invalid: int. Counts.
        rule: str. The replay rule in words.
        files: list of ReplayedFile, sorted by file.
        not_found_files: list of DecisionRow. Effective decisions that matched no input image.
        invalid_decisions: list of InvalidDecision.
    """

    database: str | None = None
    rows: int = 0
    rejected: int = 0
    relabelled: int = 0
    kept: int = 0
    undone: int = 0
    not_found: int = 0
    invalid: int = 0
    rule: str = ""
    files: list[ReplayedFile] = Field(default_factory=list)
    not_found_files: list[DecisionRow] = Field(default_factory=list)
    invalid_decisions: list[InvalidDecision] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _short_without_database(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        return {"database": None, "rows": self.rows} if self.database is None else data

    def counts(self) -> dict[str, int]:
        """`{"rows", "rejected", "relabelled", "kept", "undone", "not_found", "invalid"}`, or {}
        when there was no decisions database."""
        if self.database is None:
            return {}
        keys = ("rows", "rejected", "relabelled", "kept", "undone", "not_found", "invalid")
        return {k: int(getattr(self, k)) for k in keys}


class CleanReport(JsonRecord):
    """`OUT/_reports/clean_report.json`: what `imgclf clean` did (every field has a default, so
    reports of older versions, which lack some, still load).

    Attributes:
        src, out: str. The input and output folders as given.
        layout: str. `"flat"` (`<class>/<file>`) or `"pre-split"` (`<subset>/<class>/<file>`).
        total: int. Files examined. kept: int. Images written to `out`.
        rejected: dict reason -> files set aside, sorted by reason.
        per_class: dict class -> dict (`"kept"` or a reason) -> count.
        empty_class_folders: list of str. Class folders without files (relative to `src`).
        settings: dict. The `CleanConfig` used (`imgclf.config`).
        detector: str. How duplicates were found, in words. keep_rule: str. The keeper rule.
        duplicate_pairs: dict kind -> pairs found (`exact`, `near`, `flip`).
        duplicate_groups: int. images_in_groups: int.
        label_conflicts: list of DuplicateGroup. Groups whose members carry different labels.
        groups: list of DuplicateGroup. Every duplicate group.
        flip_pairs: list of FlipPair.
        provenance: ProvenanceReport.
        quality: QualityReport.
        decisions: DecisionsReport.
        seconds: float. Wall time.
    """

    FILE: ClassVar[str] = "_reports/clean_report.json"
    WRITER: ClassVar[str] = WRITER
    SCHEMA: ClassVar[int] = 1

    src: str = ""
    out: str = ""
    layout: str = "flat"
    total: int = 0
    kept: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    per_class: dict[str, dict[str, int]] = Field(default_factory=dict)
    empty_class_folders: list[str] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    detector: str = ""
    keep_rule: str = ""
    duplicate_pairs: dict[str, int] = Field(default_factory=dict)
    duplicate_groups: int = 0
    images_in_groups: int = 0
    label_conflicts: list[DuplicateGroup] = Field(default_factory=list)
    groups: list[DuplicateGroup] = Field(default_factory=list)
    flip_pairs: list[FlipPair] = Field(default_factory=list)
    provenance: ProvenanceReport = Field(default_factory=ProvenanceReport)
    quality: QualityReport = Field(default_factory=QualityReport)
    decisions: DecisionsReport = Field(default_factory=DecisionsReport)
    seconds: float = 0.0

    def save(self, folder: str | os.PathLike) -> Path:
        """Writes the report into `folder` atomically, as `json.dumps` (indent 2) writes it: the
        bytes earlier versions wrote (non-ASCII escaped), plus `schema_version`."""
        self.schema_version = type(self).SCHEMA
        return atomic_write_json(self.path(folder), self.model_dump(mode="json"))


# --------------------------------------------------------------------------------- tables
def _int(v: str) -> int:
    return int(v)


def _opt_int(v: str) -> int | None:
    return int(v) if v else None


@dataclass(frozen=True)
class ImageRow:
    """A row of `images.csv`: one readable image of `clean`'s input.

    Attributes:
        file: str. Path relative to the input, "/"-separated.
        label: str. Its class (column `class`; the new class after a relabel decision).
        subset: str or None. `"train"` / `"val"` / `"test"` in a pre-split input.
        width, height: int. Size in pixels after EXIF rotation.
        nbytes: int. File size (column `bytes`).
        format: str. `"PNG"`, `"JPEG"`...
        phash64: str. Whole-picture 64-bit phash, 16 hex digits.
        blur: float. Variance of the Laplacian (written with 2 decimals).
        std: float. Grayscale std in [0, 127.5] (2 decimals).
        entropy: float. Grayscale entropy in bits [0, 8] (3 decimals).
        group: int or None. Duplicate group id (`CleanReport.groups`).
        status: str. `"kept"` or why it was set aside.
    """

    file: str
    label: str
    subset: str | None
    width: int
    height: int
    nbytes: int
    format: str
    phash64: str
    blur: float
    std: float
    entropy: float
    group: int | None
    status: str

    def cells(self) -> list[Any]:
        """The row as written, in `ImageTable.COLUMNS` order."""
        return [
            self.file,
            self.label,
            self.subset or "",
            self.width,
            self.height,
            self.nbytes,
            self.format,
            self.phash64,
            f"{self.blur:.2f}",
            f"{self.std:.2f}",
            f"{self.entropy:.3f}",
            self.group or "",
            self.status,
        ]

    @classmethod
    def from_cells(cls, r: dict[str, str]) -> ImageRow:
        """Parses a row read by `csv.DictReader` (raises ValueError on a value that does not parse)."""
        return cls(
            file=r["file"],
            label=r["class"],
            subset=r["subset"] or None,
            width=_int(r["width"]),
            height=_int(r["height"]),
            nbytes=_int(r["bytes"]),
            format=r["format"],
            phash64=r["phash64"],
            blur=float(r["blur"]),
            std=float(r["std"]),
            entropy=float(r["entropy"]),
            group=_opt_int(r["group"]),
            status=r["status"],
        )


@dataclass(frozen=True)
class RejectRow:
    """A row of `rejects.csv`: a file `clean` set aside (`OUT/_rejected/<reason>/<file>`).

    Attributes:
        file: str. Path relative to the input.
        reason: str. An `imgclf.images.OPEN_REASONS` value, `not_in_class_folder`,
            `near_uniform`, `blurry`, `duplicate`, `near_duplicate`, `label_conflict` or `manual`.
        detail: str. Why, in words.
    """

    file: str
    reason: str
    detail: str = ""

    def cells(self) -> list[Any]:
        """The row as written."""
        return [self.file, self.reason, self.detail]

    @classmethod
    def from_cells(cls, r: dict[str, str]) -> RejectRow:
        """Parses a row read by `csv.DictReader`."""
        return cls(r["file"], r["reason"], r["detail"])


class _Table:
    """A CSV table of a stage folder: its file, columns and typed rows (`ROW`)."""

    FILE: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[str, ...]] = ()
    SCHEMA: ClassVar[int] = 1

    @classmethod
    def path(cls, folder: str | os.PathLike) -> Path:
        """The table's file inside `folder`."""
        return Path(folder) / cls.FILE

    @classmethod
    def _write(cls, folder: str | os.PathLike, rows: Iterable[Any]) -> Path:
        return write_csv(cls.path(folder), cls.COLUMNS, (r.cells() for r in rows))

    @classmethod
    def _read(cls, folder: str | os.PathLike, parse: Callable[[dict[str, str]], T]) -> list[T]:
        path = cls.path(folder)
        rows = []
        for line, r in enumerate(read_csv(path, cls.COLUMNS, WRITER), start=2):
            try:
                if None in r.values():
                    raise ValueError("too few fields")
                rows.append(parse(r))
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path} line {line} is invalid ({exc})", f"run `{WRITER}` again") from None
        return rows

    @classmethod
    def count(cls, folder: str | os.PathLike) -> int | None:
        """Rows of the table (its header checked, values not parsed); None without the file.

        Raises:
            DataError: unreadable, or a required column missing.
        """
        path = cls.path(folder)
        return len(read_csv(path, cls.COLUMNS, WRITER)) if path.is_file() else None


class ImageTable(_Table):
    """`OUT/_reports/images.csv`: every readable image of `clean`'s input, sorted by file."""

    FILE: ClassVar[str] = "_reports/images.csv"
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "file",
        "class",
        "subset",
        "width",
        "height",
        "bytes",
        "format",
        "phash64",
        "blur",
        "std",
        "entropy",
        "group",
        "status",
    )

    @classmethod
    def save(cls, folder: str | os.PathLike, rows: Sequence[ImageRow]) -> Path:
        """Writes the table into `folder` (rows sorted by file), atomically; returns its path."""
        return cls._write(folder, sorted(rows, key=lambda r: r.file))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> list[ImageRow]:
        """Reads the table of `folder`.

        Raises:
            DataError: missing, unreadable, a column missing or a value that does not parse
                (naming the file and line).
        """
        return cls._read(folder, ImageRow.from_cells)

    @classmethod
    def load_optional(cls, folder: str | os.PathLike) -> list[ImageRow] | None:
        """Like `load`, but None when the file does not exist."""
        return cls.load(folder) if cls.path(folder).is_file() else None


class RejectTable(_Table):
    """`OUT/_reports/rejects.csv`: every file `clean` set aside, sorted by (file, reason, detail)."""

    FILE: ClassVar[str] = "_reports/rejects.csv"
    COLUMNS: ClassVar[tuple[str, ...]] = ("file", "reason", "detail")

    @classmethod
    def save(cls, folder: str | os.PathLike, rows: Sequence[RejectRow]) -> Path:
        """Writes the table into `folder` (sorted), atomically; returns its path."""
        return cls._write(folder, sorted(rows, key=lambda r: (r.file, r.reason, r.detail)))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> list[RejectRow]:
        """Reads the table of `folder`.

        Raises:
            DataError: missing, unreadable or a column missing.
        """
        return cls._read(folder, RejectRow.from_cells)

    @classmethod
    def load_optional(cls, folder: str | os.PathLike) -> list[RejectRow] | None:
        """Like `load`, but None when the file does not exist."""
        return cls.load(folder) if cls.path(folder).is_file() else None
