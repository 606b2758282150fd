"""`<stage folder>/_reports/provenance.csv`: the provenance group of every image of a folder.

Scraped pictures that came from one post, gallery, crosspost family or URL are one provenance
group: they must never sit on both sides of a train / test split, even when their pixels differ.
`clean` writes this record from its input's scrape manifest (`imgclf.clean.provenance`) for the
images it keeps, under their output paths; `prepare` copies it under its new file names;
`split` reads its input's record.

One row per image (`COLUMNS`, sorted by file): `file` (path relative to the folder, "/"-separated),
`group` (the group key: files with the same key are one provenance group) and `links` (what
joined it, space-separated: `post:<id>`, `url:<url>`). Written by `write_provenance`, read by
`read_provenance` -- the writer is the reader. A CSV record's version is its header (a later
version may add columns).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from imgclf.errors import DataError
from imgclf.records.base import read_csv, write_csv

#: Where a stage folder records the provenance of its images.
PROVENANCE_RECORD = "_reports/provenance.csv"
#: Columns of the record, in order.
COLUMNS: tuple[str, ...] = ("file", "group", "links")

_AGAIN = "delete it and run the stage that wrote it again"


@dataclass(frozen=True)
class ProvenanceEntry:
    """The provenance of one image of a stage folder.

    Attributes:
        file: str. Path relative to the folder, "/"-separated.
        group: str. Group key; files with the same key are one provenance group.
        links: tuple of str. The links that joined it: `post:<post id>` (its posts and their
            crosspost parents) and `url:<url>` (every URL whose content it is, and their final
            URLs after redirects).
    """

    file: str
    group: str
    links: tuple[str, ...] = ()


def write_provenance(folder: str | os.PathLike, entries: Iterable[ProvenanceEntry]) -> Path:
    """Writes `folder/_reports/provenance.csv` (`COLUMNS`), sorted by file, atomically.

    Args:
        folder: path. The stage folder the files are in.
        entries: iterable of ProvenanceEntry (paths relative to `folder`).

    Returns:
        Path of the record.
    """
    rows = ([e.file, e.group, " ".join(e.links)] for e in sorted(entries, key=lambda e: e.file))
    return write_csv(Path(folder) / PROVENANCE_RECORD, COLUMNS, rows)


def read_provenance(folder: str | os.PathLike) -> dict[str, ProvenanceEntry] | None:
    """Reads `folder/_reports/provenance.csv`.

    Args:
        folder: path. A stage folder (`clean`, `prepare` output).

    Returns:
        dict file -> ProvenanceEntry, or None when the folder has no record.

    Raises:
        DataError: the record exists but cannot be read or is not a provenance record (a
            column missing, a row without a file or group), naming the file.
    """
    path = Path(folder) / PROVENANCE_RECORD
    if not path.is_file():
        return None
    try:
        rows = read_csv(path, COLUMNS, "the stage that wrote it")
    except DataError as exc:
        raise DataError(f"{exc.message} (not a provenance record)", _AGAIN) from None
    out: dict[str, ProvenanceEntry] = {}
    for line, r in enumerate(rows, start=2):
        if not r["file"] or not r["group"]:
            raise DataError(f"{path} line {line} has no file or group", _AGAIN)
        out[r["file"]] = ProvenanceEntry(r["file"], r["group"], tuple((r["links"] or "").split()))
    return out
