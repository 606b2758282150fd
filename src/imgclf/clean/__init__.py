"""Cleaning: verified images, exact and near-duplicate groups, quality scores.

Public entry point: `clean_folder(src, out, cfg) -> CleanSummary` (see `pipeline`), which wires
the stage's map -> reduce -> apply:

- `verify`: the map, `inspect_file` (one file -> `ImageRecord` or `Unreadable`);
- `table`: the map's records as columns (`RecordTable`, blocks made by `split_block` in a Ray
  worker or `record_block` on the driver), what the driver holds per image;
- `plan`: the reduce, `plan_clean` (records -> `CleanPlan`, pure), with `replay` (the review
  decisions' replay rule), `groups` (duplicate groups, keeper policy) and `provenance` (scrape
  provenance groups);
- `apply`: copies, tables, records, report; `report`: contact sheets.

Building blocks: `similarity` (the verified near-duplicate detector, a package: signatures,
exact Hamming search by multi-index hashing, candidates, verification; the hash-only baseline
and the exact-pixel digest), `quality` (blur, near-uniform). The files clean writes for later stages are typed records:
`imgclf.records.clean`, `imgclf.records.provenance`, `imgclf.records.decisions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imgclf.clean.pipeline import CleanSummary, clean_folder

__all__ = ["CleanSummary", "clean_folder"]


def __getattr__(name: str) -> Any:
    """Loads the stage on first use, so `prepare`, `split` and the leak audit can import the
    detector (`imgclf.clean.similarity`) without loading the whole clean stage."""
    if name in __all__:
        from imgclf.clean import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'imgclf.clean' has no attribute {name!r}")
