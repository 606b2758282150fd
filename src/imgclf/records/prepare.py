"""What `prepare` writes into its output folder for later stages: the record and the rejects.

    <prepared>/_reports/
      prepare.json          PrepareRecord: the `InputSpec` the images were made with (size,
                            resize policy, interpolation, pad colour, how EXIF / alpha /
                            16-bit / CMYK are handled); `split` copies it into its output and
                            `train` stores it in the run folder, so `predict` applies the same
                            policy to a new photo
      prepare_rejects.csv   PrepareReject rows: files that were not prepared (file, reason,
                            detail); written only when there is one

`source_signatures.npz` and `provenance.csv`, which `prepare` carries forward too, have their
own records (`imgclf.clean.similarity`, `imgclf.clean.provenance`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import ClassVar

from imgclf.inputs import InputSpec
from imgclf.records.base import JsonRecord, read_csv, write_csv


class PrepareRecord(JsonRecord):
    """`_reports/prepare.json`: how the images of a `prepare` output (or of a `split` made
    from one) were made.

    Attributes:
        input_spec: InputSpec. The size, resize policy and interpolation `prepare` applied.
    """

    FILE: ClassVar[str] = "_reports/prepare.json"
    WRITER: ClassVar[str] = "imgclf prepare"
    SCHEMA: ClassVar[int] = 1

    input_spec: InputSpec


#: Where `prepare` lists the files it did not prepare, relative to its output folder.
PREPARE_REJECTS = "_reports/prepare_rejects.csv"
#: Columns of `PREPARE_REJECTS`, in order.
REJECT_COLUMNS: tuple[str, ...] = ("file", "reason", "detail")


@dataclass(frozen=True)
class PrepareReject:
    """One file `prepare` did not prepare (a row of `prepare_rejects.csv`).

    Attributes:
        file: str. The input file, as `prepare` was given it (input folder + relative path).
        reason: str. `imgclf.errors.ImageError.reason` (`"truncated"`, `"not_an_image"`...) or
            `"not_in_class_folder"`.
        detail: str. What went wrong, for people.
    """

    file: str
    reason: str
    detail: str = ""


def save_prepare_rejects(folder: str | os.PathLike, rejects: Iterable[PrepareReject]) -> Path:
    """Writes `folder/_reports/prepare_rejects.csv` (`REJECT_COLUMNS`), rows in the given order, atomically.

    Args:
        folder: path. The `prepare` output folder.
        rejects: iterable of PrepareReject.

    Returns:
        Path written.
    """
    return write_csv(Path(folder) / PREPARE_REJECTS, REJECT_COLUMNS, (astuple(r) for r in rejects))


def load_prepare_rejects(folder: str | os.PathLike) -> list[PrepareReject]:
    """Reads `folder/_reports/prepare_rejects.csv`.

    Args:
        folder: path. A `prepare` output folder.

    Returns:
        list of PrepareReject, in file order; empty when the file does not exist (`prepare`
        writes it only when it set a file aside).

    Raises:
        DataError: if the file exists but is unreadable or lacks a column of `REJECT_COLUMNS`.
    """
    path = Path(folder) / PREPARE_REJECTS
    if not path.is_file():
        return []
    rows = read_csv(path, REJECT_COLUMNS, PrepareRecord.WRITER)
    return [PrepareReject(r["file"] or "", r["reason"] or "", r["detail"] or "") for r in rows]
