"""Moved: the exact Hamming search is `imgclf.clean.similarity.hamming` (multi-index hashing),
`connected_components` is `imgclf.clean.similarity.pairs`. This module re-exports them so
today's importers keep working; import from the new modules in new code."""

from imgclf.clean.similarity.hamming import (
    ChunkPlan,
    brute_force_pairs,
    hamming,
    hamming_cross_pairs,
    hamming_pairs,
    pack_bits,
    plan_chunks,
)
from imgclf.clean.similarity.pairs import connected_components

__all__ = [
    "ChunkPlan",
    "brute_force_pairs",
    "connected_components",
    "hamming",
    "hamming_cross_pairs",
    "hamming_pairs",
    "pack_bits",
    "plan_chunks",
]
