"""The verified near-duplicate detector: exact Hamming candidates, then a pixel test per pair.

`clean` and `split` compute one `Signature` per image when they decode it (`signature(img)`,
the map step; about 3.7 KB), stack them (`stack`) and call `find_duplicate_pairs(signatures)`
once (`find_cross_pairs(a, b)` for a test set against a training set; the reduce step). How it
works and why the defaults are what they are: docs/dedupe.md (`scripts/bench/bench_dedupe.py`).

Modules, one concern each (this package re-exports the names other modules use):

- `params`: every tuned number (signature layout, test constants) with its meaning, unit and
  origin, and `DetectorParams`, the validated user settings with their defaults.
- `signatures`: a decoded picture -> `Signature` (trim box, thumbnails, crop windows,
  `phash_codes`); `stack` -> `Signatures` (the arrays, `imgclf.records.signatures`).
- `hamming`: exact Hamming-radius search by multi-index hashing (`hamming_pairs`,
  `hamming_cross_pairs`, `pack_bits`).
- `candidates`: stage 1, `candidate_pairs`: codes, crop windows and layouts (`layout_pairs`).
- `fit`: the verification maths (censored brightness / contrast fit, block residuals, colour
  fit, layouts); `alignment`: the crop alignment (`align`, ECC) and warps.
- `verify`: stage 2, the tests in order with their thresholds (`colour_check`, `pixel_check`,
  `verify_candidates`): the place to add a check.
- `pairs`: `DuplicatePairs`, the kinds, `union_pairs`, `connected_components`.
- `detect`: `find_duplicate_pairs`, `find_cross_pairs` (exact pairs, candidates, verification).
- `sources`: `needs_source_signature` (which pictures get a source signature), `source_view`.
- `files`: the edge to disk: `file_signature` (decode a file and sign it), `write_source_record`
  (to the record `_reports/source_signatures.npz`, `imgclf.records.signatures`).
- `hashers`: the hash-only perceptual hashes (`Hasher`, `get_hasher`) and `pixel_digest`.

In short -- stage 0, exact duplicates (same decoded pixels and size, kind `"exact"`); stage 1,
candidates: 64-bit phashes within `radius` bits (whole, trimmed, centre), crop windows against
whole / trimmed codes, and layouts of low-structure pictures; stage 2, every candidate verified
(whole / whole, or between large pictures also trimmed / trimmed and whole / trimmed): a layout
screen, one brightness / contrast change shared by R, G and B explains the colours, the
censored fit of the 32 x 32 thumbnails leaves at most `max_residual` grey levels (the worst of
16 blocks left out between large pictures); between large pictures a colour filter (grayscale,
sepia, saturation, hue rotation, white balance) may explain the colours instead, the luma then
passing the same test (`colour_changes`); and for crops the same after an ECC alignment.
Pictures below `SMALL_SIDE` px get only the strict unaligned tests on the whole picture.
`flips=True` adds mirrored copies (kind `"flip"`).
"""

from imgclf.clean.similarity.alignment import align
from imgclf.clean.similarity.candidates import candidate_pairs, layout_pairs
from imgclf.clean.similarity.detect import find_cross_pairs, find_duplicate_pairs
from imgclf.clean.similarity.files import file_signature, write_source_record
from imgclf.clean.similarity.fit import (
    censored_fit_residual,
    chroma_rms,
    colour_change_fit,
    colour_fit,
    pixel_residual,
    pooled,
)
from imgclf.clean.similarity.hamming import hamming_cross_pairs, hamming_pairs, pack_bits
from imgclf.clean.similarity.pairs import (
    KIND_EXACT,
    KIND_FLIP,
    KIND_NEAR,
    DuplicatePairs,
    connected_components,
    union_pairs,
)
from imgclf.clean.similarity.params import (
    BLOCKS,
    CENTRE_CUT,
    CLIP_HIGH,
    CLIP_LOW,
    CODE_NAMES,
    COLOUR,
    COLOUR_CHECK,
    DEFAULT_ALIGN_FLOOR,
    DEFAULT_MAX_COLOUR_RESIDUAL,
    DEFAULT_MAX_CROP,
    DEFAULT_MAX_LUMINANCE_RATIO,
    DEFAULT_MAX_RESIDUAL,
    DEFAULT_RADIUS,
    DROP_BLOCKS,
    FRAME,
    GAIN_RANGE,
    LOW_STRUCTURE,
    MAX_UNEXPLAINED,
    PRESCREEN_FACTOR,
    SMALL_SIDE,
    SOURCE_MIN_ASPECT,
    SOURCE_MIN_SCALE,
    THUMB,
    TRIM_MIN_KEEP,
    TRIM_TOLERANCE,
    WINDOW_KEEP,
    WINDOW_OFFSETS,
    WORK_SIDE,
    DetectorParams,
)
from imgclf.clean.similarity.signatures import Signature, phash_codes, signature, stack, trim_box
from imgclf.clean.similarity.sources import needs_source_signature, source_view
from imgclf.clean.similarity.verify import colour_change_check, colour_check, pixel_check, verify_candidates
from imgclf.records.signatures import SOURCE_RECORD, Signatures, SourceSignatures, read_source_record

__all__ = [
    "BLOCKS",
    "CENTRE_CUT",
    "CLIP_HIGH",
    "CLIP_LOW",
    "CODE_NAMES",
    "COLOUR",
    "COLOUR_CHECK",
    "DEFAULT_ALIGN_FLOOR",
    "DEFAULT_MAX_COLOUR_RESIDUAL",
    "DEFAULT_MAX_CROP",
    "DEFAULT_MAX_LUMINANCE_RATIO",
    "DEFAULT_MAX_RESIDUAL",
    "DEFAULT_RADIUS",
    "DROP_BLOCKS",
    "FRAME",
    "GAIN_RANGE",
    "KIND_EXACT",
    "KIND_FLIP",
    "KIND_NEAR",
    "LOW_STRUCTURE",
    "MAX_UNEXPLAINED",
    "PRESCREEN_FACTOR",
    "SMALL_SIDE",
    "SOURCE_MIN_ASPECT",
    "SOURCE_MIN_SCALE",
    "SOURCE_RECORD",
    "THUMB",
    "TRIM_MIN_KEEP",
    "TRIM_TOLERANCE",
    "WINDOW_KEEP",
    "WINDOW_OFFSETS",
    "WORK_SIDE",
    "DetectorParams",
    "DuplicatePairs",
    "Signature",
    "Signatures",
    "SourceSignatures",
    "align",
    "candidate_pairs",
    "censored_fit_residual",
    "chroma_rms",
    "colour_change_check",
    "colour_change_fit",
    "colour_check",
    "colour_fit",
    "connected_components",
    "file_signature",
    "find_cross_pairs",
    "find_duplicate_pairs",
    "hamming_cross_pairs",
    "hamming_pairs",
    "layout_pairs",
    "needs_source_signature",
    "pack_bits",
    "phash_codes",
    "pixel_check",
    "pixel_residual",
    "pooled",
    "read_source_record",
    "signature",
    "source_view",
    "stack",
    "trim_box",
    "union_pairs",
    "verify_candidates",
    "write_source_record",
]
