"""`split`'s files and records as columns: what the driver holds per image, a few bytes.

The listing is `imgclf.inputs.ImageColumns` (about 30 bytes a file). The map's items
(`SplitItem`s) are made from it a block at a time (`SplitItems`), so the driver never holds one
per file. On a Ray cluster each block of the map's records is split in the worker
(`split_block`, the `imgclf.engine.ray.Kept` split): the driver receives a `SplitBlock` (which
files could be read, and why the others could not) and the signatures stay in the object store
of the node that made them. The driver copies each block into one `SplitTable` at the rows of
its positions: the position of a file in the listing is its row, so a record needs not carry
its item.

`rel_order` gives the rows in the order of their paths as strings (`split.csv`'s order and the
order destinations are given in).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.clean.similarity.held import HeldSignature, SignatureBlock
from imgclf.clean.similarity.signatures import stack
from imgclf.inputs import ImageColumns
from imgclf.split.fingerprint import SplitFile, SplitItem

#: Rows turned into Python strings at a time (sort keys).
_CHUNK = 4096


class SplitItems(Sequence[SplitItem]):
    """The map's items of a listing, `SplitItem(k, path, rel, label, subset)` for file k, each
    made when asked for (a block at a time).

    Args:
        files: ImageColumns. The listing of a class tree (every file has a class).
    """

    def __init__(self, files: ImageColumns) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, k: int) -> SplitItem:  # type: ignore[override]
        if not 0 <= k < len(self.files):
            raise IndexError(k)
        e = self.files[k]
        return SplitItem(k, str(e.path), e.rel, str(e.label), e.subset)


@dataclass(eq=False)
class SplitBlock:
    """The map's records of one block, as columns (k rows, in item order).

    Attributes:
        start: int. Position of the block's first item.
        ok: bool array `(k,)`. The file was decoded and signed.
        unreadable: dict row -> `(reason, detail)` of the files that were not.
    """

    start: int
    ok: np.ndarray
    unreadable: dict[int, tuple[str, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ok)


def record_block(records: Sequence[SplitFile], start: int) -> SplitBlock:
    """The columns of a block of the map's records (their items and signatures are not kept).

    Args:
        records: sequence of SplitFile, in item order.
        start: int. Position of the first.

    Returns:
        SplitBlock.
    """
    ok = np.array([r.signature is not None for r in records], bool)
    return SplitBlock(start, ok, {k: (r.reason, r.detail) for k, r in enumerate(records) if r.signature is None})


def split_block(records: list[Any], start: int) -> tuple[list[SplitBlock], SignatureBlock]:
    """`split`'s split of a map block on a Ray worker (`imgclf.engine.ray.Kept`): the driver
    receives the block as one `SplitBlock`, the signatures stay in the object store.

    Args:
        records: list of SplitFile, in item order.
        start: int. Position of the first.

    Returns:
        tuple `([block], signatures)`: the columns for the driver, and the `SignatureBlock` of
        the readable files (positions increasing).
    """
    pos = [start + k for k, r in enumerate(records) if r.signature is not None]
    sigs = stack([r.signature for r in records if r.signature is not None])
    return [record_block(records, start)], SignatureBlock(np.asarray(pos, np.int64), sigs)


@dataclass(eq=False)
class SplitTable:
    """Every file of `split`'s input as one row of columns, by position in the listing.

    Args:
        files: ImageColumns. The listing (names, classes, subsets), in listing order.
        sigs: list or None. The `Signature` of each row (the local engine), None when a Ray
            cluster holds them.
        paths: list of str or None. The file of each row when it is not `files.root / rel`
            (records given by hand, `from_records`); None = under the root.
        held: int64 array `(n,)` or None. Where the cluster holds each row's signature
            (`HeldSignature.position`), None = the row itself.

    Attributes:
        ok: bool array `(n,)`. The file was decoded and signed.
        unreadable: dict row -> `(reason, detail)`.
    """

    files: ImageColumns
    sigs: list[Any] | None = None
    paths: list[str] | None = None
    held: np.ndarray | None = None
    ok: np.ndarray = field(init=False)
    unreadable: dict[int, tuple[str, str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.ok = np.zeros(len(self.files), bool)

    def __len__(self) -> int:
        return len(self.ok)

    def put(self, block: SplitBlock, signatures: Sequence[Any] | None = None) -> None:
        """Copies a block's columns into its rows (and its signatures, with a side list)."""
        self.ok[block.start : block.start + len(block)] = block.ok
        self.unreadable.update({block.start + k: v for k, v in block.unreadable.items()})
        if self.sigs is not None and signatures is not None:
            self.sigs[block.start : block.start + len(block)] = list(signatures)

    def rel(self, k: int) -> str:
        """Path of row `k` relative to the input, "/"-separated."""
        return self.files.rel(int(k))

    def path(self, k: int) -> str:
        """The file of row `k`."""
        return self.paths[int(k)] if self.paths is not None else str(self.files.root / self.files.rel(int(k)))

    def label_of(self, k: int) -> str:
        """Class of row `k`."""
        return str(self.files.label_of(int(k)))

    def positions(self) -> np.ndarray:
        """Where the cluster holds each row's signature (int64 `(n,)`)."""
        return self.held if self.held is not None else np.arange(len(self), dtype=np.int64)

    @classmethod
    def from_records(cls, records: Iterable[SplitFile]) -> SplitTable:
        """The table of a list of the map's records, in any order (put in `SplitItem.index` order).

        Args:
            records: iterable of SplitFile, with `Signature`s or `HeldSignature`s.

        Returns:
            SplitTable.
        """
        recs = sorted(records, key=lambda r: r.item.index)
        files = ImageColumns.from_rels("", ((r.item.rel, r.item.label, r.item.subset) for r in recs))
        held = [r.signature.position if isinstance(r.signature, HeldSignature) else -1 for r in recs]
        table = cls(
            files,
            sigs=[r.signature for r in recs],
            paths=[str(r.item.path) for r in recs],
            held=np.array(held, np.int64) if recs and max(held) >= 0 else None,
        )
        table.put(record_block(recs, 0))
        return table


class Rels(Sequence[str]):
    """The input-relative names of a table's rows, each made when asked for."""

    def __init__(self, table: SplitTable) -> None:
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, k: int) -> str:  # type: ignore[override]
        if not 0 <= k < len(self.table):
            raise IndexError(k)
        return self.table.rel(k)


def rel_order(table: SplitTable, rows: np.ndarray | None = None) -> np.ndarray:
    """`rows` (default: all) in the order of their paths as strings (`sorted(..., key=rel)`),
    sorted as a fixed-width array (bytes when every path is ASCII, else code points).

    Args:
        table: SplitTable.
        rows: int array or None, default None (every row).

    Returns:
        int64 array: the rows, sorted by path (stable).
    """
    files = table.files
    rows = np.arange(len(table), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    lengths = files.rel_lengths()[rows] if len(files) else np.zeros(0, np.int64)
    width = max(1, int(lengths.max())) if len(rows) else 1
    ascii_only = files.names.isascii() and all(d.isascii() for d in files.folders)
    keys = np.empty(len(rows), f"S{width}" if ascii_only else f"U{width}")
    for a in range(0, len(rows), _CHUNK):
        part = [table.rel(k) for k in rows[a : a + _CHUNK].tolist()]
        keys[a : a + len(part)] = part
    return rows[np.argsort(keys, kind="stable")]
