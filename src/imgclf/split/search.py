"""split's near-duplicate search: on the driver, or where a Ray cluster holds the signatures.

The reduce (`imgclf.split.plan.plan_split`) asks a `FindPairs` for the verified pairs among
the records (in listing order), twice when the input recorded source signatures: once for the
files as they are, once with the source signatures in place of the cropped files' own.

- `local_pairs(cfg)`: the records carry their `Signature`s (the local engine); they are
  stacked and searched here (`imgclf.clean.similarity.find_duplicate_pairs`).
- `held_pairs(held, cfg)`: with `--engine ray` the map keeps each block's signatures in the
  object store of the node that made them (`fingerprint_table`, with
  `imgclf.split.table.split_block`: the driver receives columns, not the signatures); the
  search runs there (`HeldSignatures.find_duplicate_pairs`), and the source signatures are put
  in place of the held ones there too (`HeldSignatures.with_rows`). The driver sends the
  positions and receives digests and pairs, never a signature.

Both give the same pairs for the same records (the held detector is the local one, step for
step, on the same rows in the same order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, cast

from imgclf.clean.similarity import DuplicatePairs, Signature, find_duplicate_pairs, source_view, stack
from imgclf.clean.similarity.held import HeldSignatures, hold_signatures
from imgclf.clean.similarity.params import DetectorParams
from imgclf.config import SplitConfig
from imgclf.engine import Executor
from imgclf.inputs import ImageColumns
from imgclf.records.signatures import Signatures
from imgclf.split.fingerprint import SplitFile, SplitItem, fingerprint_file
from imgclf.split.table import Rels, SplitItems, SplitTable, record_block, split_block
from imgclf.ui import progress

#: Records the driver puts into the table at a time (the local engine).
BLOCK = 4096

#: The detector over the files of a table (every one with a signature, in listing order):
#: `find_pairs(table, view)` -> the verified pairs among them, index k = row k. `view` maps an
#: input-relative name to the signature searched in place of that file's own (the input's
#: source signatures, only names of the table); empty = the files as they are.
FindPairs = Callable[[SplitTable, Mapping[str, Signatures]], DuplicatePairs]


def _settings(cfg: SplitConfig) -> DetectorParams:
    """The detector's settings of `cfg`."""
    return DetectorParams(radius=cfg.radius, max_residual=cfg.max_residual, flips=cfg.flips)


def local_pairs(cfg: SplitConfig) -> FindPairs:
    """The search over signatures the records carry, in this process.

    Args:
        cfg: SplitConfig. `radius`, `max_residual`, `flips`.

    Returns:
        FindPairs. `find_duplicate_pairs` of the records' stacked signatures (`source_view`
        of them for a view).
    """

    def find(table: SplitTable, view: Mapping[str, Signatures]) -> DuplicatePairs:
        sigs = stack([cast(Signature, s) for s in table.sigs or []])
        if view:
            sigs = cast(Signatures, source_view(Rels(table), sigs, view))
        return find_duplicate_pairs(sigs, radius=cfg.radius, max_residual=cfg.max_residual, flips=cfg.flips)

    return find


def held_pairs(held: HeldSignatures, cfg: SplitConfig) -> FindPairs:
    """The search where a Ray cluster holds the records' signatures.

    Args:
        held: HeldSignatures. Where the map kept the signatures (`fingerprint_files`).
        cfg: SplitConfig. `radius`, `max_residual`, `flips`.

    Returns:
        FindPairs over records carrying `HeldSignature`s: `HeldSignatures.find_duplicate_pairs`
        of their positions, with the view's signatures put in place on the cluster
        (`HeldSignatures.with_rows`).
    """
    params = _settings(cfg)

    def find(table: SplitTable, view: Mapping[str, Signatures]) -> DuplicatePairs:
        positions = table.positions()
        rows = {int(positions[k]): view[rel] for k, rel in enumerate(Rels(table)) if rel in view} if view else {}
        return held.with_rows(rows).find_duplicate_pairs(cast(Any, positions), params)

    return find


def fingerprint_files(items: list[SplitItem], executor: Executor) -> tuple[list[SplitFile], HeldSignatures | None]:
    """split's map (`fingerprint_file`) over `items` on `executor`, with a progress bar.

    On a Ray executor the signatures stay where they are made
    (`imgclf.engine.ray.Kept(hold_signatures)`): the records carry `HeldSignature`s.

    Args:
        items: list of SplitItem, `items[k].index == k`.
        executor: Executor (`imgclf.engine`).

    Returns:
        tuple `(records, held)`: one SplitFile per item, in item order; where the cluster holds
        their signatures (None on any other engine: the records carry them).
    """
    keep = None
    if executor.name == "ray":
        from imgclf.engine.ray import Kept

        keep = Kept(hold_signatures)
    results = (
        cast(Any, executor).map(fingerprint_file, items, keep=keep) if keep else executor.map(fingerprint_file, items)
    )
    records = []
    with progress("split: fingerprint", total=len(items)) as advance:
        for rec in results:
            # the driver's own item in place of the copy that came back with the record (from a
            # Ray cluster each record carries a copy of its item: twice the memory)
            records.append(rec if rec.item is items[rec.item.index] else replace(rec, item=items[rec.item.index]))
            advance()
    return records, HeldSignatures(keep.refs, keep.starts) if keep else None


def fingerprint_table(files: ImageColumns, executor: Executor) -> tuple[SplitTable, HeldSignatures | None]:
    """split's map (`fingerprint_file`) over the files of a listing on `executor`, with a
    progress bar, into a `SplitTable`.

    The items are made a block at a time from the columns (`SplitItems`). On a Ray executor
    each block is split in the worker (`imgclf.split.table.split_block`): the driver receives
    its columns, the signatures stay where they are made. On any other engine the signatures
    go into the table's side list.

    Args:
        files: ImageColumns. The listing (`imgclf.inputs.list_image_columns`).
        executor: Executor (`imgclf.engine`).

    Returns:
        tuple `(table, held)`: the table (row k = file k); where the cluster holds the
        signatures (None on any other engine: the table's side list holds them).
    """
    items = SplitItems(files)
    ray = executor.name == "ray"
    table = SplitTable(files, sigs=None if ray else [None] * len(files))
    with progress("split: fingerprint", total=len(files)) as advance:
        if ray:
            from imgclf.engine.ray import Kept

            keep = Kept(split_block)
            for block in cast(Any, executor).map(fingerprint_file, items, keep=keep):
                table.put(block)
                advance(len(block))
            return table, HeldSignatures(keep.refs, keep.starts)
        buf: list[SplitFile] = []
        for rec in executor.map(fingerprint_file, items):
            buf.append(rec)
            if len(buf) == BLOCK:
                _put_local(table, buf)
            advance()
        _put_local(table, buf)
    return table, None


def _put_local(table: SplitTable, buf: list[SplitFile]) -> None:
    """The local engine's records of `buf` (the next rows) into `table`, signatures included; empties `buf`."""
    if buf:
        table.put(record_block(buf, buf[0].item.index), [r.signature for r in buf])
        buf.clear()
