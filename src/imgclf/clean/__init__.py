"""Cleaning: verified images, exact and near-duplicate groups, quality scores.

Public entry point: `clean_folder(src, out, cfg) -> CleanSummary` (see `pipeline`).
Building blocks: `similarity` (the verified near-duplicate detector: signatures, candidates,
verification), `search` (exact Hamming-radius pair search by multi-index hashing), `groups`
(duplicate groups, keeper policy), `provenance` (scrape provenance groups and their record),
`hashing` (phash / dhash / ahash / whash behind one `Hasher` base; the exact-pixel digest),
`quality` (blur, near-uniform), `report` (contact sheets), `verify` (one file).
"""

from imgclf.clean.pipeline import CleanSummary, clean_folder

__all__ = ["CleanSummary", "clean_folder"]
