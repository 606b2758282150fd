"""The detector's edge to disk: an image file -> its signature, signatures -> the source record.

Everything else in the package is pure; these two read or write files. The record's format,
schema version and stamps are `imgclf.records.signatures`' (`SourceSignatures`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from imgclf.clean.similarity.params import WORK_SIDE
from imgclf.clean.similarity.signatures import Signature, signature, stack
from imgclf.images import ORIGINAL_SIZE_KEY, open_image
from imgclf.records import signatures as records


def file_signature(path: str | os.PathLike) -> Signature:
    """Decodes one image file the way the detector expects and computes its signature.

    `imgclf.images.open_image` with a JPEG draft decode at `WORK_SIDE` (256) pixels, then
    `signature` with the picture's full size. Used by `split`, `prepare` and the evaluation's
    leak audit (`clean` computes signatures inside its own verification, `imgclf.clean.verify`).

    Args:
        path: str or Path. An image file.

    Returns:
        Signature.

    Raises:
        imgclf.errors.ImageError: the file cannot be decoded (its `reason` says why).
    """
    img = open_image(path, draft=WORK_SIDE)
    return signature(img, size=img.info.get(ORIGINAL_SIZE_KEY))


def write_source_record(
    folder: str | os.PathLike, entries: Mapping[str, Signature | records.Signatures]
) -> Path | None:
    """Writes `folder/_reports/source_signatures.npz`: each file's *source* picture's signature.

    `clean` writes it for the pictures it keeps (from the signatures it computed anyway;
    `needs_source_signature` with size 32), `prepare` carries it under its new names and
    adds what its own size needs, `split` carries it under the split's paths. Each entry is
    stamped with its file's size and modification time now, so `split` and the evaluation's
    leak audit compare what the pictures were (`source_view`) only while the file is
    unchanged. Written atomically (`imgclf.records.signatures.write_source_record`); with no
    entries, an old record is removed.

    Args:
        folder: path. The folder the keys are relative to (a `clean`, `prepare` or `split`
            output).
        entries: mapping of relative POSIX path (e.g. `"cat/a.png"`, `"train/cat/a.png"`) ->
            Signature of that file's source picture, or a one-row Signatures (from
            `read_source_record`). Every key must be a file in `folder`.

    Returns:
        Path written, or None when `entries` is empty.

    Raises:
        ValueError: a Signatures entry is not exactly one row.
        OSError: a key is not a file in `folder`, or the record cannot be written.
    """
    rows = {k: v if isinstance(v, records.Signatures) else stack([v]) for k, v in entries.items()}
    return records.write_source_record(folder, rows)
