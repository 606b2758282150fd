"""Source signatures: which pictures need one, and the signatures seen through a record.

`prepare` center-crops a 16:9 photo to its middle square, and a letterboxed or bordered copy
of it to a different square; the two prepared files are then not the same picture any more,
while their sources are. So the signature of each picture *before* `prepare` travels with the
files (the record `_reports/source_signatures.npz`, `imgclf.records.signatures`), and `split`
and the leak audit search the sources too (docs/dedupe.md, "Duplicates after the center crop").

`needs_source_signature` is the detector's rule for which pictures get a record entry;
`source_view` puts the recorded source signatures in place of the files' own. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields

from imgclf.clean.similarity.params import SOURCE_MIN_ASPECT, SOURCE_MIN_SCALE
from imgclf.records.signatures import Signatures


def needs_source_signature(width: int, height: int, size: int, center_crop: bool = True) -> bool:
    """Whether a `size`-px prepared version of a `width x height` picture shows the detector
    less than the picture: the center crop cuts it (`SOURCE_MIN_ASPECT`) or it keeps less than
    half the resolution (`SOURCE_MIN_SCALE`).

    Args:
        width, height: int. The source's full size in pixels.
        size: int. The prepared side in pixels (`prepare --size`; `clean` asks for 32, the
            smallest size it expects, and `prepare` takes what its own size needs).
        center_crop: bool, default True. The resize policy is `center_crop` (`pad` and
            `squish` keep the whole picture).

    Returns:
        bool.
    """
    cut = center_crop and max(width, height) > SOURCE_MIN_ASPECT * min(width, height)
    return cut or min(width, height) >= SOURCE_MIN_SCALE * size


def source_view(names: Sequence[str], sigs: Signatures, record: Mapping[str, Signatures]) -> Signatures | None:
    """`sigs` with each row whose name has a source signature in `record` replaced by it.

    Args:
        names: sequence of n str. The relative path of each row of `sigs`.
        sigs: Signatures of length n (of the files as they are).
        record: from `read_source_record` (relative path -> Signatures of length 1).

    Returns:
        Signatures of length n, or None when no name is in `record` (nothing to compare again).
    """
    rows = [k for k, n in enumerate(names) if n in record]
    if not rows:
        return None
    arrays = {f.name: getattr(sigs, f.name).copy() for f in fields(sigs)}
    for k in rows:
        rec = record[names[k]]
        for f in fields(sigs):
            arrays[f.name][k] = getattr(rec, f.name)[0]
    return Signatures(**arrays)
