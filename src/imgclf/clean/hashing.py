"""Moved: the perceptual hashers and `pixel_digest` are `imgclf.clean.similarity.hashers`. This
module re-exports them so today's importers keep working; import from there in new code."""

from imgclf.clean.similarity.hashers import (
    DEFAULT_THRESHOLDS,
    HASHERS,
    AHash,
    DHash,
    Hasher,
    PHash,
    WHash,
    get_hasher,
    pixel_digest,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "HASHERS",
    "AHash",
    "DHash",
    "Hasher",
    "PHash",
    "WHash",
    "get_hasher",
    "pixel_digest",
]
