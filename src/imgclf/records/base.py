"""The machinery every stage record shares: versioned JSON records and CSV tables.

A `JsonRecord` subclass declares where it lives (`FILE`, relative to the stage folder), which
command writes it (`WRITER`, for messages) and its schema version (`SCHEMA`). `save` writes it
atomically with `schema_version`; `load` reads it back and turns a missing, newer or corrupt
file into a `DataError` naming the file and what to run.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from imgclf.errors import DataError
from imgclf.fsutil import atomic_text_file, atomic_write_text

#: The key every JSON record carries its schema version under.
SCHEMA_KEY = "schema_version"


def first_error(exc: Exception) -> str:
    """The first problem of a pydantic `ValidationError` (or any exception) as one short line.

    Args:
        exc: Exception.

    Returns:
        str: e.g. `"groups.0.kept: Input should be a valid list"`.
    """
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))
    return (str(exc).splitlines() or [type(exc).__name__])[0]


class JsonRecord(BaseModel):
    """Base class of a JSON file a stage writes into its folder for later stages.

    Class attributes (set by each subclass):
        FILE: str. Path relative to the stage folder, e.g. `"_reports/clean_report.json"`.
        WRITER: str. The command that writes it, e.g. `"imgclf clean"` (used in messages).
        SCHEMA: int, default 1. The schema version this code writes. A file without
            `schema_version` was written before versions existed and is read as version 1;
            a newer version is refused (written by a newer imgclf).

    Attributes:
        schema_version: int. Set to `SCHEMA` by `save`.
    """

    model_config = ConfigDict(extra="ignore")

    FILE: ClassVar[str] = ""
    WRITER: ClassVar[str] = ""
    SCHEMA: ClassVar[int] = 1

    schema_version: int = 1

    @classmethod
    def path(cls, folder: str | os.PathLike) -> Path:
        """The record's file inside `folder`."""
        return Path(folder) / cls.FILE

    def save(self, folder: str | os.PathLike) -> Path:
        """Writes the record into `folder` atomically (created if missing); returns its path."""
        self.schema_version = type(self).SCHEMA
        return atomic_write_text(self.path(folder), self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Self:
        """Reads the record of `folder`.

        Raises:
            DataError: if the file is missing, not JSON, of a newer schema or invalid; the
                message names the file and the command that writes it.
        """
        rec = cls.load_optional(folder)
        if rec is None:
            raise DataError(f"{cls.path(folder)} not found", f"run `{cls.WRITER}` to write it")
        return rec

    @classmethod
    def load_optional(cls, folder: str | os.PathLike) -> Self | None:
        """Like `load`, but None when the file does not exist (a corrupt file still raises)."""
        path = cls.path(folder)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path} is unreadable ({first_error(exc)})", f"run `{cls.WRITER}` again") from None
        return cls.from_data(data, path)

    @classmethod
    def from_data(cls, data: Any, path: str | os.PathLike) -> Self:
        """Validates parsed JSON `data` read from `path` (for messages) against the schema.

        Raises:
            DataError: a newer schema version or a value that does not fit.
        """
        if not isinstance(data, dict):
            raise DataError(f"{path} is not a JSON object", f"run `{cls.WRITER}` again")
        version = data.get(SCHEMA_KEY, 1)
        if not isinstance(version, int) or version > cls.SCHEMA:
            raise DataError(
                f"{path} has schema version {version!r}; this imgclf reads up to {cls.SCHEMA}",
                "upgrade imgclf, or run `" + cls.WRITER + "` again with this version",
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise DataError(f"{path} is invalid ({first_error(exc)})", f"run `{cls.WRITER}` again") from None


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Writes a CSV table with a header row, atomically, a row at a time (`rows` may be a
    generator: the table is never whole in memory).

    Args:
        path: path. Destination; its folder is created if missing.
        columns: sequence of str. Header.
        rows: iterable of sequences, each `len(columns)` long.

    Returns:
        Path: `path`.
    """
    with atomic_text_file(path) as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)
    return Path(path)


def read_csv(path: str | os.PathLike, required: Sequence[str], writer: str) -> list[dict[str, str]]:
    """Reads a CSV table written by `write_csv` as one dict per row.

    Args:
        path: path. The file.
        required: sequence of str. Columns that must be in the header.
        writer: str. The command that writes it, for the message (e.g. `"imgclf clean"`).

    Returns:
        list of dict column -> value (str).

    Raises:
        DataError: if the file is missing, unreadable or lacks a required column.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path} lacks column(s) {', '.join(missing)}", f"run `{writer}` again")
            return list(reader)
    except FileNotFoundError:
        raise DataError(f"{path} not found", f"run `{writer}` to write it") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is unreadable ({first_error(exc)})", f"run `{writer}` again") from None
