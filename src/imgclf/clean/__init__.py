"""Cleaning: verified images, exact and near-duplicate groups, quality scores.

Public entry point: `clean_folder(src, out, cfg) -> CleanSummary` (see `pipeline`).
Building blocks: `hashing` (phash / dhash / ahash / whash behind one `Hasher` base),
`search` (exact Hamming-radius pair search by multi-index hashing), `quality` (blur,
near-uniform), `report` (contact sheets), `verify` (one file).
"""

from imgclf.clean.pipeline import CleanSummary, clean_folder

__all__ = ["CleanSummary", "clean_folder"]
