"""The files `imgclf audit` writes for a person, `imgclf review` and scripts to read back.

The writer is the reader: every audit file has its name, its typed model and its save / load
pair here, and every reader goes through them (the review page's issue and outlier views, the
benchmark scripts, tests). A missing or corrupt file, or one of a newer schema, is a
`DataError` naming the file and the command that writes it.

    OUT/label_issues.csv  `LabelIssue`, one row per flagged image, worst first (lowest
                          label_quality):
                          path             relative to the audited folder, "/"-separated
                          given_label      its class folder
                          suggested_label  the out-of-fold predicted class (argmax)
                          label_quality    self-confidence p(given label) in [0, 1], lower = more likely wrong
                          suggested_probability  p(suggested label) in [0, 1]
                          split            train | val | test in a pre-split folder, else empty
                          sources          scrape sources of the image, "; "-separated (may be empty)
                          decided          what `imgclf review` already decided (`reject`,
                                           `keep`, `relabel:<class>`), else empty
    OUT/outliers.csv      `Outlier`, one row per image with score >= outlier_threshold, highest
                          first: path, score (>= 0; 1 = the median image, higher = farther from
                          every class), given_label, split
    OUT/scores.csv        `ImageScore`, every audited image (the columns of label_issues.csv,
                          then is_issue 0/1, outlier_score, is_outlier 0/1, fold), in path order
    OUT/audit.json        `AuditReport`: counts, method, folds, seed, out-of-fold accuracy,
                          estimated noise rate per class and per source, the confident joint,
                          the estimated joint and the noise matrix, unreadable / skipped files
                          with their reason
    OUT/oof.npz           `OutOfFoldRecord`: paths (n,), labels (n,) int, class_names (m,),
                          pred_probs (n, m) float32, fold (n,) int, schema_version: the
                          out-of-fold probabilities, to re-run or cross-check
    OUT/audit.html        the page (`imgclf/templates/audit.html`); no program reads it back

Schema versions: `AuditReport` and `OutOfFoldRecord` carry `schema_version` (`SCHEMA`); a file
without one was written before versions existed and reads as version 1. The CSV tables carry no
version: a reader needs only the columns it names (`ISSUE_REQUIRED`, `OUTLIER_REQUIRED`,
`SCORE_REQUIRED`), so files of earlier imgclf versions, which had fewer columns, still load.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from imgclf.errors import DataError
from imgclf.fsutil import atomic_write_bytes, atomic_write_text
from imgclf.records.base import SCHEMA_KEY, JsonRecord, first_error, read_csv

LABEL_ISSUES = "label_issues.csv"
OUTLIERS = "outliers.csv"
SCORES = "scores.csv"
AUDIT_JSON = "audit.json"
AUDIT_HTML = "audit.html"
OOF_NPZ = "oof.npz"

#: The command that writes every file here (for messages).
WRITER = "imgclf audit"

#: Columns of `label_issues.csv`, in order (the first four are the documented contract).
ISSUE_COLUMNS: tuple[str, ...] = (
    "path",
    "given_label",
    "suggested_label",
    "label_quality",
    "suggested_probability",
    "split",
    "sources",
    "decided",
)
#: Columns a reader of `label_issues.csv` needs (files of every imgclf version have them).
ISSUE_REQUIRED: tuple[str, ...] = ISSUE_COLUMNS[:4]
#: Columns of `outliers.csv`, in order.
OUTLIER_COLUMNS: tuple[str, ...] = ("path", "score", "given_label", "split")
OUTLIER_REQUIRED: tuple[str, ...] = OUTLIER_COLUMNS[:2]
#: Columns of `scores.csv`, in order.
SCORE_COLUMNS: tuple[str, ...] = ISSUE_COLUMNS + ("is_issue", "outlier_score", "is_outlier", "fold")
SCORE_REQUIRED: tuple[str, ...] = ISSUE_REQUIRED + ("is_issue", "outlier_score", "is_outlier", "fold")

#: Separator of the `sources` column.
SOURCES_SEPARATOR = "; "

#: What the report says the method is based on.
PAPER = "Northcutt, Jiang & Chuang, Confident Learning: Estimating Uncertainty in Dataset Labels, JAIR 70 (2021)"

#: The axes of the matrices in `audit.json`.
MATRIX_AXES = "rows: given label, columns: true label (estimated), in the order of `classes`"


# ------------------------------------------------------------------------------ CSV tables
@dataclass(frozen=True)
class LabelIssue:
    """One row of `label_issues.csv` (see the module docstring for the columns).

    Attributes:
        path: str. Relative to the audited folder, "/"-separated.
        given_label: str. Its class folder.
        suggested_label: str. The out-of-fold predicted class.
        label_quality: float in [0, 1]. Self-confidence; lower = more likely wrong.
        suggested_probability: float in [0, 1]. Probability of `suggested_label`.
        split: str. `train`, `val`, `test` in a pre-split folder, else "".
        sources: tuple of str. Scrape sources of the image (may be empty).
        decided: str. What `imgclf review` already decided, else "".
    """

    path: str
    given_label: str
    suggested_label: str
    label_quality: float
    suggested_probability: float = math.nan
    split: str = ""
    sources: tuple[str, ...] = ()
    decided: str = ""

    def cells(self) -> list[str]:
        """The row as written (probabilities with 6 decimals)."""
        return [
            self.path,
            self.given_label,
            self.suggested_label,
            f"{self.label_quality:.6f}",
            f"{self.suggested_probability:.6f}",
            self.split,
            SOURCES_SEPARATOR.join(self.sources),
            self.decided,
        ]


@dataclass(frozen=True)
class Outlier:
    """One row of `outliers.csv`.

    Attributes:
        path: str. Relative to the audited folder.
        score: float >= 0. Mean distance to the nearest images of the other folds, divided by
            the median image's (1 = typical).
        given_label: str. Its class folder ("" in files of early versions).
        split: str. `train`, `val`, `test` in a pre-split folder, else "".
    """

    path: str
    score: float
    given_label: str = ""
    split: str = ""

    def cells(self) -> list[str]:
        """The row as written."""
        return [self.path, f"{self.score:.6f}", self.given_label, self.split]


@dataclass(frozen=True)
class ImageScore:
    """One row of `scores.csv`: every audited image.

    Attributes:
        row: LabelIssue. The columns shared with `label_issues.csv`.
        is_issue: bool. Flagged as a label issue.
        outlier_score: float >= 0. See `Outlier.score`.
        is_outlier: bool. `outlier_score` at or above the threshold.
        fold: int. The cross-validation fold of the image.
    """

    row: LabelIssue
    is_issue: bool
    outlier_score: float
    is_outlier: bool
    fold: int

    def cells(self) -> list[str]:
        """The row as written (booleans as 0 / 1)."""
        return self.row.cells() + [
            str(int(self.is_issue)),
            f"{self.outlier_score:.6f}",
            str(int(self.is_outlier)),
            str(self.fold),
        ]


def _write_table(path: Path, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Path:
    """Writes a CSV table atomically, "\\n" line ends (as every imgclf version wrote them)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


T = TypeVar("T")


def _parse_rows(path: Path, rows: list[dict[str, str]], parse: Callable[[dict[str, str]], T]) -> list[T]:
    """Applies `parse` to every row; a value that does not parse is a `DataError` naming the row."""
    out = []
    for k, r in enumerate(rows, start=2):  # line 1 is the header
        try:
            out.append(parse(r))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path} line {k} is invalid ({first_error(exc)})", f"run `{WRITER}` again") from None
    return out


def _csv_path(folder: str | os.PathLike, name: str) -> Path:
    """`folder/name`, or `folder` itself when it is the file."""
    p = Path(folder)
    return p if p.name == name and not p.is_dir() else p / name


def _issue(r: dict[str, str]) -> LabelIssue:
    sources = r.get("sources") or ""
    return LabelIssue(
        path=r["path"],
        given_label=r["given_label"],
        suggested_label=r["suggested_label"],
        label_quality=float(r["label_quality"]),
        suggested_probability=float(r.get("suggested_probability") or "nan"),
        split=r.get("split") or "",
        sources=tuple(s for s in sources.split(SOURCES_SEPARATOR) if s),
        decided=r.get("decided") or "",
    )


def _outlier(r: dict[str, str]) -> Outlier:
    return Outlier(r["path"], float(r["score"]), r.get("given_label") or "", r.get("split") or "")


def _score(r: dict[str, str]) -> ImageScore:
    return ImageScore(
        _issue(r), r["is_issue"] == "1", float(r["outlier_score"]), r["is_outlier"] == "1", int(r["fold"])
    )


def save_label_issues(folder: str | os.PathLike, rows: Iterable[LabelIssue]) -> Path:
    """Writes `folder/label_issues.csv` (rows in the order given: worst first), atomically."""
    return _write_table(Path(folder) / LABEL_ISSUES, ISSUE_COLUMNS, (r.cells() for r in rows))


def load_label_issues(folder: str | os.PathLike) -> list[LabelIssue]:
    """Reads `label_issues.csv` back, in file order (worst first).

    Args:
        folder: path. The audit output folder, or the file itself.

    Returns:
        list of LabelIssue. Files of earlier versions without `suggested_probability`, `split`,
        `sources` or `decided` load with NaN / empty values there.

    Raises:
        DataError: the file is missing, unreadable, lacks a required column, or holds a value
            that is not a number where one is expected.
    """
    path = _csv_path(folder, LABEL_ISSUES)
    return _parse_rows(path, read_csv(path, ISSUE_REQUIRED, WRITER), _issue)


def save_outliers(folder: str | os.PathLike, rows: Iterable[Outlier]) -> Path:
    """Writes `folder/outliers.csv` (rows in the order given: highest score first), atomically."""
    return _write_table(Path(folder) / OUTLIERS, OUTLIER_COLUMNS, (r.cells() for r in rows))


def load_outliers(folder: str | os.PathLike) -> list[Outlier]:
    """Reads `outliers.csv` back, in file order (highest score first).

    Args:
        folder: path. The audit output folder, or the file itself.

    Returns:
        list of Outlier.

    Raises:
        DataError: the file is missing, unreadable, lacks `path` or `score`, or a score is not
            a number.
    """
    path = _csv_path(folder, OUTLIERS)
    return _parse_rows(path, read_csv(path, OUTLIER_REQUIRED, WRITER), _outlier)


def save_scores(folder: str | os.PathLike, rows: Iterable[ImageScore]) -> Path:
    """Writes `folder/scores.csv` (rows in the order given: path order), atomically."""
    return _write_table(Path(folder) / SCORES, SCORE_COLUMNS, (r.cells() for r in rows))


def load_scores(folder: str | os.PathLike) -> list[ImageScore]:
    """Reads `scores.csv` back, in file order.

    Raises:
        DataError: the file is missing, unreadable, lacks a column of `SCORE_REQUIRED`, or
            holds a value that does not parse.
    """
    path = _csv_path(folder, SCORES)
    return _parse_rows(path, read_csv(path, SCORE_REQUIRED, WRITER), _score)


def count_rows(folder: str | os.PathLike, name: str) -> int | None:
    """Rows of one of the audit's CSV tables (`LABEL_ISSUES`, `OUTLIERS`, `SCORES`), without parsing them.

    Args:
        folder: path. The audit output folder.
        name: str. The file name.

    Returns:
        int, or None when the file does not exist.

    Raises:
        DataError: the file exists but cannot be read.
    """
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return max(0, sum(1 for _ in csv.reader(f)) - 1)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is unreadable ({first_error(exc)})", f"run `{WRITER}` again") from None


# ------------------------------------------------------------------------------ audit.json
class NotAudited(BaseModel):
    """A file the audit could not use: its path, the reason (`imgclf.images.OPEN_REASONS` or
    `not_in_class_folder`) and a detail."""

    path: str
    reason: str
    detail: str = ""


class AuditCounts(BaseModel):
    """The counts of `audit.json` (`counts`)."""

    images_listed: int = 0
    images_audited: int = 0
    label_issues: int = 0
    outliers: int = 0
    unreadable: int = 0
    not_in_class_folder: int = 0
    not_audited_reasons: dict[str, int] = Field(default_factory=dict)
    images_per_split: dict[str, int] = Field(default_factory=dict)
    label_issues_per_split: dict[str, int] = Field(default_factory=dict)
    already_decided: int = 0


class AuditMethod(BaseModel):
    """How the probabilities were made and the issues chosen (`method`)."""

    probabilities: str = "linear_probe"  # "linear_probe" or "cv_train"
    embedding: str = ""
    image_size: int = 0
    classifier: str = ""
    confident_learning: str = "low_self_confidence"
    exclude_agreeing: bool = True
    paper: str = PAPER
    outliers: str = ""


class GroupInfo(BaseModel):
    """The fold groups (`groups`): whether used, how many, images sharing one, what from."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    used: bool = False
    groups: int = 0
    images_in_shared_groups: int = 0
    origins: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("from", "origins"), serialization_alias="from"
    )


class ClassNoise(BaseModel):
    """One class of `per_class`."""

    images: int
    label_issues: int
    estimated_noise_rate: float
    threshold: float
    out_of_fold_accuracy: float
    outliers: int = 0


class SourceNoise(BaseModel):
    """One scrape source of `per_source` (`estimated_noise_rate` None: not estimable)."""

    images: int
    label_issues: int
    flagged_rate: float
    estimated_noise_rate: float | None = None
    classes: dict[str, int] = Field(default_factory=dict)


class SourcesInfo(BaseModel):
    """Where the sources came from (`sources`)."""

    manifest: str | None = None
    images_matched: int = 0
    notes: list[str] = Field(default_factory=list)


class AuditReport(JsonRecord):
    """`OUT/audit.json`: what one audit found, and how.

    Attributes:
        data_dir, out: str. The audited folder and the output folder.
        layout: str. `"classes"` or `"presplit"`.
        classes: list of str. The audited classes; matrices and labels index them.
        empty_classes: list of str. Class folders without a readable image (not audited).
        counts: AuditCounts. folds: int. seed: int. groups: GroupInfo.
        method: AuditMethod.
        out_of_fold_accuracy: float in [0, 1]. Share of images whose predicted class is their label.
        estimated_noise_rate: float in [0, 1]. `1 - trace(estimated joint)`.
        per_class: dict class -> ClassNoise. per_source: dict source -> SourceNoise.
        sources: SourcesInfo.
        confident_joint: int matrix; estimated_joint, noise_matrix: float matrices (`MATRIX_AXES`).
        unreadable: list of NotAudited. not_in_class_folder: list of str.
        config: dict. The `AuditConfig` used. seconds: dict of timings. versions: dict of
            library versions. files: dict role -> file name.
    """

    FILE: ClassVar[str] = AUDIT_JSON
    WRITER: ClassVar[str] = WRITER
    SCHEMA: ClassVar[int] = 1

    data_dir: str
    out: str
    layout: str = "classes"
    classes: list[str]
    empty_classes: list[str] = Field(default_factory=list)
    counts: AuditCounts = Field(default_factory=AuditCounts)
    method: AuditMethod = Field(default_factory=AuditMethod)
    folds: int
    seed: int
    groups: GroupInfo = Field(default_factory=GroupInfo)
    out_of_fold_accuracy: float
    estimated_noise_rate: float
    per_class: dict[str, ClassNoise] = Field(default_factory=dict)
    sources: SourcesInfo = Field(default_factory=SourcesInfo)
    per_source: dict[str, SourceNoise] = Field(default_factory=dict)
    confident_joint: list[list[int]] = Field(default_factory=list)
    estimated_joint: list[list[float]] = Field(default_factory=list)
    noise_matrix: list[list[float]] = Field(default_factory=list)
    matrix_axes: str = MATRIX_AXES
    unreadable: list[NotAudited] = Field(default_factory=list)
    not_in_class_folder: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    seconds: dict[str, float | list[float]] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)

    def save(self, folder: str | os.PathLike) -> Path:
        """Writes `folder/audit.json` atomically, with `schema_version` (formatted as earlier
        versions wrote it: `json.dumps`, indent 2)."""
        self.schema_version = type(self).SCHEMA
        text = json.dumps(self.model_dump(mode="json", by_alias=True), indent=2) + "\n"
        return atomic_write_text(self.path(folder), text)


# -------------------------------------------------------------------------------- oof.npz
@dataclass
class OutOfFoldRecord:
    """`OUT/oof.npz`: the out-of-fold probabilities the issues were found from.

    Attributes:
        paths: list of str (n). Images, relative to the audited folder.
        labels: int64 `(n,)`. Given label, index into `class_names`.
        class_names: list of str (m).
        pred_probs: float32 `(n, m)`, rows summing to 1.
        fold: int64 `(n,)`. Cross-validation fold of each image.
        schema_version: int. `SCHEMA` when written by this version; 1 for files without one.
    """

    FILE: ClassVar[str] = OOF_NPZ
    SCHEMA: ClassVar[int] = 1

    paths: list[str]
    labels: np.ndarray
    class_names: list[str]
    pred_probs: np.ndarray
    fold: np.ndarray
    schema_version: int = field(default=1)

    def save(self, folder: str | os.PathLike) -> Path:
        """Writes `folder/oof.npz` (compressed) atomically; returns its path."""
        arrays: dict[str, Any] = {
            "paths": np.asarray(self.paths, dtype=np.str_),
            "labels": np.asarray(self.labels, dtype=np.int64),
            "class_names": np.asarray(self.class_names, dtype=np.str_),
            "pred_probs": np.asarray(self.pred_probs, dtype=np.float32),
            "fold": np.asarray(self.fold, dtype=np.int64),
            SCHEMA_KEY: np.asarray(self.SCHEMA, dtype=np.int64),
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        self.schema_version = self.SCHEMA
        return atomic_write_bytes(Path(folder) / OOF_NPZ, buf.getvalue())

    @classmethod
    def load(cls, folder: str | os.PathLike) -> OutOfFoldRecord:
        """Reads `oof.npz` back.

        Args:
            folder: path. The audit output folder, or the file itself.

        Raises:
            DataError: missing, unreadable, of a newer schema, or arrays that do not fit
                together.
        """
        path = _csv_path(folder, OOF_NPZ)
        if not path.is_file():
            raise DataError(f"{path} not found", f"run `{WRITER}` to write it")
        try:
            with np.load(path, allow_pickle=False) as d:
                arrays = {k: d[k] for k in d.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path} is unreadable ({first_error(exc)})", f"run `{WRITER}` again") from None
        return cls._from_arrays(arrays, path)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray], path: Path) -> OutOfFoldRecord:
        version = int(arrays[SCHEMA_KEY]) if SCHEMA_KEY in arrays else 1
        if version > cls.SCHEMA:
            raise DataError(
                f"{path} has schema version {version}; this imgclf reads up to {cls.SCHEMA}",
                f"upgrade imgclf, or run `{WRITER}` again with this version",
            )
        missing = [k for k in ("paths", "labels", "class_names", "pred_probs", "fold") if k not in arrays]
        if missing:
            raise DataError(f"{path} lacks array(s) {', '.join(missing)}", f"run `{WRITER}` again")
        rec = cls(
            paths=[str(p) for p in arrays["paths"].tolist()],
            labels=arrays["labels"].astype(np.int64),
            class_names=[str(c) for c in arrays["class_names"].tolist()],
            pred_probs=arrays["pred_probs"],
            fold=arrays["fold"].astype(np.int64),
            schema_version=version,
        )
        n, m = len(rec.paths), len(rec.class_names)
        if rec.pred_probs.shape != (n, m) or rec.labels.shape != (n,) or rec.fold.shape != (n,):
            raise DataError(
                f"{path} is invalid (pred_probs {rec.pred_probs.shape}, labels {rec.labels.shape} and fold "
                f"{rec.fold.shape} do not fit {n} paths and {m} classes)",
                f"run `{WRITER}` again",
            )
        return rec
