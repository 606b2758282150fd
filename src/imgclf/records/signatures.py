"""Near-duplicate signatures as arrays, and `_reports/source_signatures.npz`, the record of them.

`Signatures` is the stacked form of the near-duplicate detector's per-image signatures
(`imgclf.clean.similarity`: `signature` makes one, `stack` stacks them, `find_duplicate_pairs`
searches them): seven arrays with one row per image, laid out as `ROW_LAYOUT` says.

`SourceSignatures` is the file a stage folder keeps of the signatures of its pictures *before*
`prepare`'s center crop (docs/dedupe.md, "Duplicates after the center crop"): `clean` writes
it for the pictures it keeps, `prepare` carries it under its new names and adds what its own
size needs, `split` carries it under the split's paths; `split` and the leak audit read it.
Each entry is stamped with its file's size and modification time when written, so an entry
whose file changed (or is gone) is never used (`SourceSignatures.fresh`).

The file is a compressed NumPy archive (`numpy.savez_compressed`): `names` (relative POSIX
paths, str), `stamps` (int64 `(n, 2)`: size in bytes, mtime in ns), the seven arrays of
`Signatures` and `schema_version` (`SCHEMA`; a file written before versions existed has none
and is read as version 1). A missing file is no record; a corrupt, inconsistent or newer one is
a `DataError` naming the file.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np

from imgclf.errors import DataError
from imgclf.fsutil import atomic_write_bytes

#: Where a stage folder keeps its source signatures, relative to the folder.
SOURCE_RECORD = "_reports/source_signatures.npz"

#: Per-image row of each array of `Signatures`: (dtype, shape of one row). The detector's
#: layout: 3 codes (whole, trimmed, centre), 9 crop-window codes, 2 grayscale thumbnails of
#: 32 x 32 and 2 RGB thumbnails of 16 x 16 (`imgclf.clean.similarity.params`). A change here is
#: a change of the file format: raise `SourceSignatures.SCHEMA`.
ROW_LAYOUT: dict[str, tuple[str, tuple[int, ...]]] = {
    "digests": ("S16", ()),
    "large": ("bool", ()),
    "codes": ("uint64", (3,)),
    "flip_codes": ("uint64", (3,)),
    "window_codes": ("uint64", (9,)),
    "gray": ("uint8", (2, 32, 32)),
    "colour": ("uint8", (2, 16, 16, 3)),
}


@dataclass(frozen=True)
class Signatures:
    """Signatures of `n` images as stacked arrays (what `find_duplicate_pairs` works on).

    Attributes:
        digests: np.ndarray of `S16` bytes, shape `(n,)`. BLAKE2b-128 of the decoded pixels.
        large: np.ndarray of bool, shape `(n,)`. The shorter side is at least 64 px.
        codes, flip_codes: np.ndarray of uint64, shape `(n, 3)`. 64-bit phashes of the whole,
            trimmed and centre picture, and of its mirror image.
        window_codes: np.ndarray of uint64, shape `(n, 9)`. Phashes of the crop windows.
        gray: np.ndarray of uint8, shape `(n, 2, 32, 32)`. Grayscale thumbnails (whole,
            trimmed), in [0, 255].
        colour: np.ndarray of uint8, shape `(n, 2, 16, 16, 3)`. RGB thumbnails, same variants.
    """

    digests: np.ndarray
    large: np.ndarray
    codes: np.ndarray
    flip_codes: np.ndarray
    window_codes: np.ndarray
    gray: np.ndarray
    colour: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def nbytes(self) -> int:
        """int: bytes of the stacked arrays."""
        return sum(getattr(self, f.name).nbytes for f in fields(self))

    def take(self, index: np.ndarray | Sequence[int]) -> Signatures:
        """The signatures at `index` (int array), in that order."""
        k = np.asarray(index, dtype=np.int64)
        return Signatures(*(getattr(self, f.name)[k] for f in fields(self)))

    @classmethod
    def concat(cls, parts: Sequence[Signatures]) -> Signatures:
        """The rows of `parts` one after the other (at least one part)."""
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def file_stamp(path: str | os.PathLike) -> tuple[int, int]:
    """`(size in bytes, modification time in ns)` of a file (follows symlinks).

    Raises:
        OSError: the file cannot be stat'ed.
    """
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


@dataclass(frozen=True)
class SourceSignatures:
    """The record `_reports/source_signatures.npz`: a source signature per file of a folder.

    Attributes:
        names: tuple of n str. Relative POSIX paths of the files (e.g. `"train/cat/a.png"`),
            sorted.
        stamps: np.ndarray of int64, shape `(n, 2)`. Each file's size in bytes and
            modification time in ns when the record was written.
        signatures: Signatures of length n. The signature of each file's *source* picture.
    """

    FILE: ClassVar[str] = SOURCE_RECORD
    SCHEMA: ClassVar[int] = 1
    HINT: ClassVar[str] = (
        "run the command that wrote the folder (imgclf clean, prepare or split) again, or delete "
        "the file to compare the pictures as they are"
    )

    names: tuple[str, ...]
    stamps: np.ndarray
    signatures: Signatures

    @classmethod
    def path(cls, folder: str | os.PathLike) -> Path:
        """The record's file inside `folder`."""
        return Path(folder) / cls.FILE

    @classmethod
    def of(cls, folder: str | os.PathLike, entries: Mapping[str, Signatures]) -> SourceSignatures:
        """The record of `entries`, stamped with their files in `folder` as they are now.

        Args:
            folder: path. The folder the keys are relative to.
            entries: mapping of relative POSIX path -> Signatures of length 1.

        Returns:
            SourceSignatures, sorted by name.

        Raises:
            ValueError: an entry is not exactly one row.
            OSError: a key is not a file in `folder`.
        """
        names = tuple(sorted(entries))
        bad = [n for n in names if len(entries[n]) != 1]
        if bad:
            raise ValueError(f"each source signature must be one row, received {len(entries[bad[0]])} for {bad[0]!r}")
        stamps = np.array([file_stamp(Path(folder) / n) for n in names], np.int64).reshape(-1, 2)
        return cls(names, stamps, Signatures.concat([entries[n] for n in names]))

    def save(self, folder: str | os.PathLike) -> Path:
        """Writes the record into `folder` atomically; returns its path."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            names=np.array(self.names),
            stamps=self.stamps,
            **{f.name: getattr(self.signatures, f.name) for f in fields(Signatures)},
            schema_version=np.array(self.SCHEMA, np.int64),
        )
        return atomic_write_bytes(self.path(folder), buf.getvalue())

    @classmethod
    def load_optional(cls, folder: str | os.PathLike) -> SourceSignatures | None:
        """The record of `folder`, or None when the file does not exist.

        Raises:
            DataError: the file is unreadable, inconsistent or of a newer schema version.
        """
        path = cls.path(folder)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path} is unreadable ({type(exc).__name__}: {exc})", cls.HINT) from None
        return cls._from_arrays(arrays, path)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> SourceSignatures:
        """Like `load_optional`, but a missing file is a `DataError` too."""
        rec = cls.load_optional(folder)
        if rec is None:
            raise DataError(f"{cls.path(folder)} not found", cls.HINT)
        return rec

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray], path: Path) -> SourceSignatures:
        """Validates the arrays read from `path` (schema version, names, layout)."""
        version = arrays.get("schema_version", np.array(1))
        if version.shape != () or version.dtype.kind not in "iu" or int(version) > cls.SCHEMA:
            raise DataError(
                f"{path} has schema version {version.tolist()!r}; this imgclf reads up to {cls.SCHEMA}",
                "upgrade imgclf, or " + cls.HINT,
            )
        missing = [k for k in ("names", "stamps", *ROW_LAYOUT) if k not in arrays]
        if missing:
            raise DataError(f"{path} is invalid (no {', '.join(missing)})", cls.HINT)
        names, stamps = arrays["names"], arrays["stamps"]
        n = len(names)
        problem = _layout_problem(arrays, n)
        if names.ndim != 1 or (n and names.dtype.kind != "U"):
            problem = problem or f"names: {names.dtype} {names.shape}, expected str (n,)"
        if stamps.shape != (n, 2) or (n and stamps.dtype.kind not in "iu"):
            problem = problem or f"stamps: {stamps.dtype} {stamps.shape}, expected int64 {(n, 2)}"
        if problem:
            raise DataError(f"{path} is invalid ({problem})", cls.HINT)
        sigs = Signatures(*(arrays[f.name] for f in fields(Signatures)))
        return cls(tuple(str(x) for x in names), stamps.astype(np.int64), sigs)

    def fresh(self, folder: str | os.PathLike) -> dict[str, Signatures]:
        """The entries whose file in `folder` is unchanged since the record was written.

        Args:
            folder: path. The folder the names are relative to.

        Returns:
            dict of relative POSIX path -> Signatures of length 1. A file that changed or is
            gone is left out (it is then compared as it is now, never by a stale source).
        """
        out = {}
        for k, name in enumerate(self.names):
            try:
                ok = file_stamp(Path(folder) / name) == (int(self.stamps[k, 0]), int(self.stamps[k, 1]))
            except OSError:
                ok = False
            if ok:
                out[name] = self.signatures.take([k])
        return out


def _layout_problem(arrays: Mapping[str, np.ndarray], n: int) -> str:
    """The first array of `arrays` that does not have `ROW_LAYOUT`'s dtype and row shape for
    `n` rows, as a short phrase ("" when all fit)."""
    for name, (dtype, row) in ROW_LAYOUT.items():
        a = arrays[name]
        if a.dtype != np.dtype(dtype) or a.shape != (n, *row):
            return f"{name}: {a.dtype} {a.shape}, expected {dtype} {(n, *row)}"
    return ""


def write_source_record(folder: str | os.PathLike, entries: Mapping[str, Signatures]) -> Path | None:
    """Writes `folder/_reports/source_signatures.npz` (`SourceSignatures`) from `entries`.

    Args:
        folder: path. The folder the keys are relative to (a `clean`, `prepare` or `split`
            output).
        entries: mapping of relative POSIX path (e.g. `"cat/a.png"`) -> Signatures of length 1
            of that file's source picture. Every key must be a file in `folder`; each is
            stamped with its size and modification time now.

    Returns:
        Path written, or None when `entries` is empty (an old record is then removed).

    Raises:
        ValueError: an entry is not exactly one row.
        OSError: a key is not a file in `folder`, or the record cannot be written.
    """
    if not entries:
        SourceSignatures.path(folder).unlink(missing_ok=True)
        return None
    return SourceSignatures.of(folder, entries).save(folder)


def read_source_record(folder: str | os.PathLike) -> dict[str, Signatures]:
    """The source signatures of `folder` whose file is unchanged since the record was written.

    Args:
        folder: path. A folder that may hold `_reports/source_signatures.npz`.

    Returns:
        dict of relative POSIX path -> Signatures of length 1. Empty when there is no record
        or every stamped file changed or is gone (`SourceSignatures.fresh`).

    Raises:
        DataError: the record is unreadable, inconsistent or of a newer schema version.
    """
    rec = SourceSignatures.load_optional(folder)
    return {} if rec is None else rec.fresh(folder)
