"""split's map: one file -> the near-duplicate detector's signature of it, in a small record.

`fingerprint_file(item)` decodes the file once (a JPEG drafted at 256 px) and signs it
(`imgclf.clean.similarity.file_signature`); it depends only on its argument, so any executor
(`imgclf.engine`) can run it. The record carries what the reduce needs about the file (its
position in the listing, name, class, subset), so the reduce can take the records in any order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgclf.clean.similarity import Signature, file_signature
from imgclf.clean.similarity.held import HeldSignature
from imgclf.errors import ImageError


@dataclass(frozen=True, slots=True)
class SplitItem:
    """One input file of `split` (an item of the map).

    Attributes:
        index: int. Position in the input's listing (`imgclf.inputs.list_images`): the order
            the reduce puts the files in.
        path: str or Path. The file (`split_folder` gives a str: lighter in memory, for
            millions of files).
        rel: str. Path relative to the input folder, "/"-separated.
        label: str. Its class.
        subset: str or None. `"train"`, `"val"` or `"test"` in a pre-split input, else None.
    """

    index: int
    path: str | Path
    rel: str
    label: str
    subset: str | None = None


@dataclass(frozen=True, slots=True)
class SplitFile:
    """The map's record of one file.

    Attributes:
        item: SplitItem. The file.
        signature: Signature, HeldSignature or None. The detector's signature; None when the
            file cannot be decoded (`reason`, `detail` say why). On a Ray cluster the driver
            receives a `HeldSignature` in its place: the signature stays in the object store of
            the node that made it (`imgclf.split.search.fingerprint_files`).
        reason, detail: str. `imgclf.errors.ImageError`'s, else "".
    """

    item: SplitItem
    signature: Signature | HeldSignature | None
    reason: str = ""
    detail: str = ""


def fingerprint_file(item: SplitItem) -> SplitFile:
    """The detector's signature of one file (decoded once, a JPEG drafted at 256 px).

    Args:
        item: SplitItem.

    Returns:
        SplitFile. An unreadable file is a record without signature, never an exception.
    """
    try:
        return SplitFile(item, file_signature(item.path))
    except ImageError as exc:
        return SplitFile(item, None, exc.reason, exc.detail)
