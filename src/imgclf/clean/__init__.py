"""Cleaning: verified images, exact and near-duplicate groups, quality scores.

Public entry point: `clean_folder(src, out, cfg) -> CleanSummary` (see `pipeline`), which wires
the stage's map -> reduce -> apply:

- `verify`: the map, `inspect_file` (one file -> `ImageRecord` or `Unreadable`);
- `plan`: the reduce, `plan_clean` (records -> `CleanPlan`, pure), with `replay` (the review
  decisions' replay rule), `groups` (duplicate groups, keeper policy) and `provenance` (scrape
  provenance groups);
- `apply`: copies, tables, records, report; `report`: contact sheets.

Building blocks: `similarity` (the verified near-duplicate detector: signatures, candidates,
verification), `search` (exact Hamming-radius pair search by multi-index hashing), `hashing`
(phash / dhash / ahash / whash behind one `Hasher` base; the exact-pixel digest), `quality`
(blur, near-uniform). The files clean writes for later stages are typed records:
`imgclf.records.clean`, `imgclf.records.provenance`, `imgclf.records.decisions`.
"""

from imgclf.clean.pipeline import CleanSummary, clean_folder

__all__ = ["CleanSummary", "clean_folder"]
