"""`clean`'s records as columns: what the driver holds per image, about 100 bytes.

The map (`imgclf.clean.verify.inspect_file`) returns one `ImageRecord` (or `Unreadable`) per
file. The driver does not keep them: each block of records becomes a `RecordBlock` (numpy
columns: sizes, file size, format code, pixel digest, 64-bit hash, quality scores, sha256 when
asked; the rare unreadable files as a dict), made in the Ray worker by `split_block` (the
`imgclf.engine.ray.Kept` split, which leaves the block's signatures in the object store) or on
the driver for the local engine, and is copied into one `RecordTable` at the rows of its
positions (the positions of the files in the listing, `imgclf.inputs.ImageColumns`).

The reduce (`imgclf.clean.plan.plan_clean`) then works on the table's columns: final label
(a code), status (a code), duplicate group, and a `detail` string only for the images set
aside. `RecordTable.record(k)` materialises the `ImageRecord` of one row when an object is
needed (groups, rejects, tests).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgclf.clean.groups import STATUS_KEPT
from imgclf.clean.similarity.held import HeldSignature, SignatureBlock
from imgclf.clean.similarity.signatures import stack
from imgclf.clean.verify import ImageRecord, Unreadable
from imgclf.inputs import ImageColumns

#: Records per block when the driver makes the blocks itself (the local engine).
BLOCK = 4096


_DIGEST = np.dtype([("d", "S16"), ("w", "<i4"), ("h", "<i4")])


def _digest_bytes(r: ImageRecord) -> bytes:
    """16 bytes standing for `r.digest` given its size: the BLAKE2b of the pixels when the
    digest is `<32 hex>-<width>x<height>` (`inspect_file`'s), else a BLAKE2b of the string."""
    d = r.digest
    if len(d) > 32 and d[32:] == f"-{r.width}x{r.height}":
        try:
            return bytes.fromhex(d[:32])
        except ValueError:
            pass
    return hashlib.blake2b(d.encode("utf-8", "surrogateescape"), digest_size=16).digest()


@dataclass(eq=False)
class RecordBlock:
    """The map's records of one block, as columns (k rows, in item order).

    Attributes:
        start: int. Position of the block's first item.
        ok: bool array. Readable image (an `ImageRecord`), else an `Unreadable`.
        width, height: int32 arrays. Size in pixels (0 for an unreadable file).
        nbytes: int64 array. File size in bytes.
        fmt: uint8 array. Format, index into `formats`.
        formats: tuple of str. The block's formats ("PNG", "JPEG"...).
        digest: `S16` array. The pixel digest (`_digest_bytes`).
        phash: uint64 array. The whole-picture 64-bit phash (`ImageRecord.hash_hex`).
        blur, std, entropy: float64 arrays. Quality scores.
        sha256: uint8 array `(k, 32)` or None (no record has one).
        unreadable: dict row -> `(reason, detail)` of the unreadable files.
    """

    start: int
    ok: np.ndarray
    width: np.ndarray
    height: np.ndarray
    nbytes: np.ndarray
    fmt: np.ndarray
    formats: tuple[str, ...]
    digest: np.ndarray
    phash: np.ndarray
    blur: np.ndarray
    std: np.ndarray
    entropy: np.ndarray
    sha256: np.ndarray | None
    unreadable: dict[int, tuple[str, str]]

    def __len__(self) -> int:
        return len(self.ok)


def record_block(records: Sequence[ImageRecord | Unreadable], start: int) -> RecordBlock:
    """The columns of a block of the map's records (their signatures are not kept).

    Args:
        records: sequence of ImageRecord | Unreadable, in item order.
        start: int. Position of the first.

    Returns:
        RecordBlock.
    """
    k = len(records)
    ok = np.array([isinstance(r, ImageRecord) for r in records], bool)
    img: list[Any] = [r if isinstance(r, ImageRecord) else None for r in records]
    formats: dict[str, int] = {}

    def col(get: Any, dtype: Any) -> np.ndarray:
        return np.array([get(r) if r is not None else 0 for r in img], dtype) if k else np.zeros(0, dtype)

    sha = None
    if any(r is not None and r.sha256 for r in img):
        sha = np.zeros((k, 32), np.uint8)
        for i, r in enumerate(img):
            if r is not None and r.sha256:
                sha[i] = np.frombuffer(bytes.fromhex(r.sha256), np.uint8)
    return RecordBlock(
        start=start,
        ok=ok,
        width=col(lambda r: r.width, np.int32),
        height=col(lambda r: r.height, np.int32),
        nbytes=col(lambda r: r.nbytes, np.int64),
        fmt=col(lambda r: formats.setdefault(r.format, len(formats)), np.uint8),
        formats=tuple(formats),
        digest=np.array([_digest_bytes(r) if r is not None else b"" for r in img], "S16"),
        phash=col(lambda r: int(r.hash_hex, 16), np.uint64),
        blur=col(lambda r: r.blur, np.float64),
        std=col(lambda r: r.std, np.float64),
        entropy=col(lambda r: r.entropy, np.float64),
        sha256=sha,
        unreadable={i: (r.reason, r.detail) for i, r in enumerate(records) if isinstance(r, Unreadable)},
    )


def split_block(records: list[Any], start: int) -> tuple[list[RecordBlock], SignatureBlock]:
    """`clean`'s split of a map block on a Ray worker (`imgclf.engine.ray.Kept`): the driver
    receives the block as one `RecordBlock`, the signatures stay in the object store.

    Args:
        records: list of ImageRecord | Unreadable, in item order.
        start: int. Position of the first.

    Returns:
        tuple `([block], signatures)`: the columns for the driver, and the `SignatureBlock`
        of the readable records (positions increasing).
    """
    pos = [start + k for k, r in enumerate(records) if isinstance(r, ImageRecord)]
    sigs = stack([r.signature for r in records if isinstance(r, ImageRecord)])
    return [record_block(records, start)], SignatureBlock(np.asarray(pos, np.int64), sigs)


@dataclass(eq=False)
class RecordTable:
    """Every file of `clean`'s input as one row of columns, by position in the listing.

    Args:
        files: ImageColumns. The listing (paths, classes, subsets), in `path_key` order.
        sha256: bool, default False. Keep the sha256 column (review decisions).
        signatures: bool, default False. Keep the signatures in a side list (the local
            engine; on a Ray cluster they stay in the object store).

    Attributes:
        ok, width, height, nbytes, fmt, digest, phash, blur, std, entropy, sha256: the
            `RecordBlock` columns, `(n,)` (`sha256` `(n, 32)` or None).
        formats: list of str. Names of the format codes.
        label: int32 array. Final class (index into `labels`; a relabel decision changes it).
        labels: list of str. The listing's classes, then the new ones of relabel decisions.
        status: uint8 array. Index into `statuses` (`"kept"` first; unreadable files: their reason).
        statuses: list of str.
        group: int32 array. Duplicate group id, 0 for none.
        detail: dict row -> str. Why a file is set aside, for those that are.
        sigs: list or None. The `Signature` of each row (None for an unreadable file).
    """

    files: ImageColumns
    sha256: np.ndarray | None
    sigs: list[Any] | None
    ok: np.ndarray = field(init=False)
    formats: list[str] = field(default_factory=list, init=False)
    statuses: list[str] = field(default_factory=lambda: [STATUS_KEPT], init=False)
    detail: dict[int, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        n = len(self.files)
        self.ok = np.zeros(n, bool)
        self.width, self.height = np.zeros(n, np.int32), np.zeros(n, np.int32)
        self.nbytes, self.fmt = np.zeros(n, np.int64), np.zeros(n, np.uint8)
        self.digest, self.phash = np.zeros(n, "S16"), np.zeros(n, np.uint64)
        self.blur, self.std, self.entropy = np.zeros(n), np.zeros(n), np.zeros(n)
        self.label = np.array(self.files.label, np.int32)
        self.labels = list(self.files.labels)
        self.status, self.group = np.zeros(n, np.uint8), np.zeros(n, np.int32)

    @classmethod
    def empty(cls, files: ImageColumns, *, sha256: bool = False, signatures: bool = False) -> RecordTable:
        """A table of `files` waiting for its blocks (`put`)."""
        n = len(files)
        return cls(files, np.zeros((n, 32), np.uint8) if sha256 else None, [None] * n if signatures else None)

    def __len__(self) -> int:
        return len(self.ok)

    def put(self, block: RecordBlock, signatures: Sequence[Any] | None = None) -> None:
        """Copies a block's columns into its rows (and its signatures, with a side list)."""
        rows = slice(block.start, block.start + len(block))
        for name in ("ok", "width", "height", "nbytes", "digest", "phash", "blur", "std", "entropy"):
            getattr(self, name)[rows] = getattr(block, name)
        codes = np.array([self._code(self.formats, f) for f in block.formats] or [0], np.uint8)
        self.fmt[rows] = codes[block.fmt]
        if self.sha256 is not None and block.sha256 is not None:
            self.sha256[rows] = block.sha256
        for k, (reason, detail) in block.unreadable.items():
            self.set(block.start + k, reason, detail)
        if self.sigs is not None and signatures is not None:
            self.sigs[rows] = list(signatures)

    @staticmethod
    def _code(names: list[str], name: str) -> int:
        if name not in names:
            names.append(name)
        return names.index(name)

    def status_code(self, status: str) -> int:
        """The code of a status name (added when new)."""
        return self._code(self.statuses, status)

    def label_code(self, label: str) -> int:
        """The code of a class name (added when new: a relabel decision's class)."""
        return self._code(self.labels, label)

    def set(self, k: int, status: str, detail: str) -> None:
        """Sets row `k`'s status and detail."""
        self.status[k] = self.status_code(status)
        if detail or k in self.detail:
            self.detail[k] = detail

    def kept(self) -> np.ndarray:
        """Rows of the readable images with status `"kept"`, increasing (int64)."""
        return np.flatnonzero(self.ok & (self.status == 0))

    def rel(self, k: int) -> str:
        """Path of row `k` relative to the input."""
        return self.files.rel(int(k))

    def label_of(self, k: int) -> str:
        """Final class of row `k` ("" outside a class)."""
        c = int(self.label[k])
        return self.labels[c] if c >= 0 else ""

    def status_of(self, k: int) -> str:
        return self.statuses[int(self.status[k])]

    def sha256_of(self, k: int) -> str:
        """Hex sha256 of row `k`'s bytes ("" when not asked)."""
        if self.sha256 is None or not self.sha256[k].any():
            return ""
        return bytes(self.sha256[k]).hex()

    def digest_keys(self, rows: np.ndarray) -> np.ndarray:
        """The exact-duplicate keys of `rows` (pixel digest and size), `S24`: equal keys, equal
        `ImageRecord.digest`s."""
        key = np.zeros(len(rows), _DIGEST)
        key["d"], key["w"], key["h"] = self.digest[rows], self.width[rows], self.height[rows]
        return key.view("S24")

    def hash_hex(self, k: int) -> str:
        return f"{int(self.phash[k]):016x}"

    def record(self, k: int) -> ImageRecord:
        """The `ImageRecord` of readable row `k` with its final label, group, status and detail
        (its signature from the side list, else a `HeldSignature`; its digest as 16 + 8 bytes hex)."""
        k = int(k)
        group = int(self.group[k])
        return ImageRecord(
            rel=self.rel(k),
            label=self.label_of(k),
            subset=self.files.subset_of(k),
            width=int(self.width[k]),
            height=int(self.height[k]),
            nbytes=int(self.nbytes[k]),
            format=self.formats[int(self.fmt[k])],
            digest=self.digest_keys(np.array([k]))[0].hex(),
            signature=self.sigs[k] if self.sigs is not None else HeldSignature(k),  # type: ignore[arg-type]
            hash_hex=self.hash_hex(k),
            blur=float(self.blur[k]),
            std=float(self.std[k]),
            entropy=float(self.entropy[k]),
            sha256=self.sha256_of(k),
            group=group or None,
            status=self.status_of(k),
            detail=self.detail.get(k, ""),
        )

    @classmethod
    def from_records(cls, records: Iterable[ImageRecord | Unreadable], root: str = "") -> RecordTable:
        """The table of a list of the map's records (in any order: sorted by `path_key`), with
        their signatures in the side list.

        Args:
            records: iterable of ImageRecord | Unreadable.
            root: str, default "". The input folder (for `files.root`).

        Returns:
            RecordTable.
        """
        from imgclf.clean.plan import path_key

        ordered = sorted(records, key=lambda r: path_key(r.rel))
        files = ImageColumns.from_rels(root, ((r.rel, r.label, r.subset) for r in ordered))
        table = cls.empty(files, sha256=any(getattr(r, "sha256", "") for r in ordered), signatures=True)
        for a in range(0, len(ordered), BLOCK):
            part = ordered[a : a + BLOCK]
            table.put(record_block(part, a), [getattr(r, "signature", None) for r in part])
        return table
