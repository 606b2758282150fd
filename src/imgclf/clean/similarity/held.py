"""The detector over signatures a Ray cluster holds: the pairs `find_duplicate_pairs` returns,
found where the signatures are, with only ids and pairs on the driver.

With `--engine ray`, the map of `clean` and of `split` keeps each block's signatures (about
3.7 KB an image) in the object store of the node that computed them (the split of
`imgclf.engine.ray.Kept`: `imgclf.clean.table.split_block` for `clean`, whose driver receives
columns of the block's records; `imgclf.split.table.split_block` for `split`, likewise;
`hold_signatures` for a map whose records are objects, each then carrying a `HeldSignature`,
its position, instead). `HeldSignatures.find_duplicate_pairs(positions)` then runs the detector of
`detect.find_duplicate_pairs` on the images at those positions, step for step:

1. per block (a task): the live rows in live order, their digests (to the driver: 24 bytes an
   image), their codes as `distributed.CodeBlock`s (whole, trimmed, centre of large pictures,
   crop windows, mirrored codes) and the rows a layout search can pair (low structure);
2. stage 0 on the driver: exact pairs from the digests (`detect._exact_within`);
3. stage 1, candidates, as tasks: the Hamming joins of `candidates._code_candidates` and
   `_window_candidates` by parts (`distributed.join_part`), the layout search of
   `_layout_candidates` on the low-structure rows; every task sends its pairs, as `(min, max)`,
   to the verification group of the smaller id (`G` ranges of ids);
4. stage 2, one task per group: its candidates de-duplicated, the exact pairs left out, the
   signatures of their members fetched from the blocks that hold them, `verify.verify_candidates`;
   the driver receives the verified pairs only;
5. with `flips`, stages 1 and 2 again with the mirrored codes and thumbnails, leaving out the
   pairs found so far; `pairs.join_pairs` puts the parts together.

`HeldSignatures.with_rows(rows)` puts other signatures in place of some held ones, on the
cluster (`split`'s second search, with the input's source signatures in place of the cropped
files' own: `imgclf.split.search`).

Every step is the local step on the same rows in the same order, so the answer is the local
answer (tested on a two-node cluster). When the live positions are not increasing, the rows are
fetched to the driver and searched there (never the case for `clean`: its reduce sorts by path).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgclf.clean.similarity.candidates import _layout_candidates
from imgclf.clean.similarity.detect import _exact_part, _exact_within, _keys, find_duplicate_pairs
from imgclf.clean.similarity.distributed import CodeBlock, JoinPlan, join_part, plan_join, shard_block
from imgclf.clean.similarity.fit import pooled
from imgclf.clean.similarity.pairs import KIND_FLIP, KIND_NEAR, DuplicatePairs, Part, join_pairs
from imgclf.clean.similarity.params import LOW_STRUCTURE, NWINDOWS, DetectorParams
from imgclf.clean.similarity.signatures import Signature, stack
from imgclf.clean.similarity.verify import verify_candidates
from imgclf.records.signatures import Signatures

#: Live ids per verification group, about (fewer groups for few images).
GROUP_SIZE = 16_384
#: Code blocks each live block is cut into for the joins (by kind), in `_live_parts`' returns.
_CODES = ("v0", "v1", "v2", "win", "f0", "f1", "f2")
_Ids = np.ndarray
#: Strings of a record up to this length are interned before they travel (labels, formats...).
_INTERNED = 32


@dataclass(frozen=True, slots=True)
class HeldSignature:
    """Stands in a record for a signature the cluster holds.

    Attributes:
        position: int. Position of the record's item in the map (its row in `HeldSignatures`).
    """

    position: int


@dataclass(frozen=True)
class SignatureBlock:
    """The signatures one map block made (a part `imgclf.engine.ray.Kept` keeps).

    Attributes:
        positions: np.ndarray of int64, shape `(k,)`. Positions of the block's records that have
            a signature, increasing.
        signatures: Signatures, length k.
    """

    positions: np.ndarray
    signatures: Signatures


def hold_signatures(records: list[Any], start: int) -> tuple[list[Any], SignatureBlock]:
    """Takes the `Signature` out of each record of a map block (runs in the worker).

    Args:
        records: list of dataclass records with a `signature` field (`Signature` or None),
            e.g. `clean`'s `ImageRecord`.
        start: int. Position of the block's first record.

    Returns:
        tuple `(records, block)`: the records with `HeldSignature(position)` in place of their
        signature, and the block of signatures that stays where it was made. Their short
        strings are interned, so equal ones (a label, a format, a status) travel to the driver
        once per block, not once per record.
    """
    light, pos, sigs = [], [], []
    for k, r in enumerate(records):
        sig = getattr(r, "signature", None)
        if isinstance(sig, Signature):
            shared = {
                f.name: sys.intern(v)
                for f in dataclasses.fields(r)
                if isinstance(v := getattr(r, f.name), str) and len(v) <= _INTERNED
            }
            light.append(dataclasses.replace(r, signature=HeldSignature(start + k), **shared))
            pos.append(start + k)
            sigs.append(sig)
        else:
            light.append(r)
    return light, SignatureBlock(np.asarray(pos, np.int64), stack(sigs))


def _replace_rows(block: SignatureBlock, positions: np.ndarray, rows: Signatures) -> SignatureBlock:
    """`block` with the signatures at `positions` (increasing, held in it) replaced by `rows`, in order."""
    if not np.isin(positions, block.positions).all():
        raise ValueError(
            f"positions {positions[~np.isin(positions, block.positions)][:5].tolist()} have no held signature"
        )
    at = np.searchsorted(block.positions, positions)
    arrays = {f.name: getattr(block.signatures, f.name).copy() for f in dataclasses.fields(block.signatures)}
    for name, values in arrays.items():
        values[at] = getattr(rows, name)
    return SignatureBlock(block.positions, Signatures(**arrays))


def _pairs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Pairs as a `(2, k)` int64 array, `(min, max)`, without self pairs."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keep = lo != hi
    return np.stack([lo[keep], hi[keep]]).astype(np.int64)


def _route(pairs: np.ndarray, n: int, groups: int) -> Any:
    """`(2, k)` pairs split by the group of their first id (`i * groups // n`): a tuple of
    `groups` arrays (the task's returns), or the one array when there is one group."""
    if groups == 1:
        return pairs
    g = pairs[0] * groups // max(n, 1)
    return tuple(pairs[:, g == k] for k in range(groups))


def _live_parts(block: SignatureBlock, positions: np.ndarray, first: int, max_residual: float) -> tuple[Any, ...]:
    """One block's live rows (those at `positions`, ids from `first`): `(ids, digests)`, their
    Signatures, the code blocks of `_CODES`, and the low-structure rows a layout search may pair."""
    rows = np.searchsorted(block.positions, positions)
    sig = block.signatures.take(rows)
    ids = np.arange(first, first + len(rows), dtype=np.int64)
    big = np.flatnonzero(sig.large)
    codes = {
        "v0": CodeBlock(ids, sig.codes[:, 0]),
        "v1": CodeBlock(ids, sig.codes[:, 1]),
        "v2": CodeBlock(ids[big], sig.codes[big, 2]),
        "win": CodeBlock(
            (np.repeat(ids[big], NWINDOWS) * NWINDOWS + np.tile(np.arange(NWINDOWS), len(big))).astype(np.int64),
            sig.window_codes[big].reshape(-1),
        ),
        "f0": CodeBlock(ids, sig.flip_codes[:, 0]),
        "f1": CodeBlock(ids, sig.flip_codes[:, 1]),
        "f2": CodeBlock(ids[big], sig.flip_codes[big, 2]),
    }
    norm = np.sqrt((pooled(sig.gray) ** 2).mean(-1))  # (k, 2); the mirror image's: the same values
    mirror = np.sqrt((pooled(sig.gray[:, :, :, ::-1]) ** 2).mean(-1))
    low = np.flatnonzero(((norm < LOW_STRUCTURE + max_residual) | (mirror < LOW_STRUCTURE + max_residual)).any(1))
    return (ids, sig.digests), sig, *(codes[k] for k in _CODES), (ids[low], sig.take(low))


def _route_join(plan: JoinPlan, c: int, p: int, n_a: int, window: bool, n: int, groups: int, *shards: Any) -> Any:
    """A part of a Hamming join (`distributed.join_part`), its pairs sent to their groups (a
    window join's second ids are turned into the window's owner)."""
    i, j, _ = join_part(plan, c, p, n_a, *shards)
    if window:
        i, j = j // NWINDOWS, i
    return _route(_pairs(i, j), n, groups)


def _route_layouts(flip: bool, radius: float, n: int, groups: int, *parts: tuple[_Ids, Signatures]) -> Any:
    """`candidates._layout_candidates` on the low-structure rows (in id order), pairs to their groups."""
    ids = np.concatenate([p[0] for p in parts])
    out: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    if len(ids):
        _layout_candidates(Signatures.concat([p[1] for p in parts]), None, flip, radius, out)
    i = ids[np.concatenate(out[0])] if out[0] else ids[:0]
    j = ids[np.concatenate(out[1])] if out[1] else ids[:0]
    return _route(_pairs(i, j), n, groups)


def _verify_group(
    mirror: bool,
    params: DetectorParams,
    n: int,
    taken: np.ndarray,
    firsts: np.ndarray,
    blocks: list[Any],
    *candidates: np.ndarray,
) -> Part:
    """One verification group: its candidates, minus the pair keys `taken`, verified on the
    signatures of their members (fetched from the live blocks `blocks`, ids from `firsts`)."""
    import ray

    pairs = np.concatenate(candidates, axis=1) if candidates else np.zeros((2, 0), np.int64)
    key = np.unique(pairs[0] * n + pairs[1])
    key = key[~np.isin(key, taken)]
    ci, cj = key // n, key % n
    kind = KIND_FLIP if mirror else KIND_NEAR
    if not len(ci):
        z = np.zeros(0, np.int64)
        return z, z.copy(), kind, np.zeros(0), np.zeros(0, bool)
    need = np.unique(np.concatenate([ci, cj]))
    owner = np.searchsorted(firsts, need, side="right") - 1
    held = dict(zip(np.unique(owner).tolist(), ray.get([blocks[b] for b in np.unique(owner)])))
    sub = Signatures.concat([held[b].take(need[owner == b] - firsts[b]) for b in held])
    ok, res, al = verify_candidates(sub, sub, np.searchsorted(need, ci), np.searchsorted(need, cj), mirror, params)
    return ci[ok], cj[ok], kind, res[ok], al[ok]


def _get(ray: Any, refs: Any) -> Any:
    """`ray.get(refs)`, with a task's own exception raised as it is and a lost task as an
    `EngineError` (one line)."""
    from imgclf.errors import EngineError

    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise EngineError(f"a near-duplicate search task failed: {' '.join(str(exc).split())[:300]}") from None
    except ray.exceptions.RayError as exc:
        raise EngineError(
            f"a near-duplicate search task was lost ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
            "check the cluster's nodes (`ray status`), then run the same command again",
        ) from None


@dataclass
class HeldSignatures:
    """Signatures a Ray cluster holds, in blocks by position (what `clean`'s map kept).

    Args:
        refs: list of ObjectRef of SignatureBlock, in position order (`Kept.refs`).
        starts: list of int. Position of each block's first item (`Kept.starts`).
        max_retries: int, default 3. Extra runs of a search task whose worker or node died.
    """

    refs: list[Any]
    starts: list[int]
    max_retries: int = 3

    def _owner(self, positions: np.ndarray) -> np.ndarray:
        """The block of each position."""
        return np.searchsorted(np.asarray(self.starts, np.int64), positions, side="right") - 1

    def gather(self, positions: Sequence[int] | np.ndarray) -> list[Signatures]:
        """The signatures at `positions`, fetched to the driver (for a record that stores them).

        Args:
            positions: sequence of int. Positions that have a signature.

        Returns:
            list of one-row Signatures, in the order of `positions`.
        """
        from imgclf.engine.ray import import_ray

        ray = import_ray()
        want = np.asarray(positions, np.int64)
        owner = self._owner(want)
        out: list[Signatures] = [None] * len(want)  # type: ignore[list-item]
        for b in np.unique(owner).tolist():
            block: SignatureBlock = _get(ray, self.refs[b])
            for k in np.flatnonzero(owner == b).tolist():
                out[k] = block.signatures.take([int(np.searchsorted(block.positions, want[k]))])
        return out

    def with_rows(self, rows: Mapping[int, Signatures]) -> HeldSignatures:
        """These signatures with the ones at some positions replaced, still held by the cluster.

        `split` searches a second time with the input's source signatures (the pictures before
        `prepare`'s center crop) in place of the cropped files' own
        (`imgclf.clean.similarity.source_view`, here on the held rows): each block holding a
        replaced position becomes a task's block with those rows replaced, the others stay.

        Args:
            rows: mapping position -> Signatures of length 1. Positions that have a signature.

        Returns:
            HeldSignatures with the same positions; the replaced blocks are made from their
            task's lineage again if their node is lost.

        Raises:
            ValueError (from the task, when the new blocks are used): a position without a
                held signature.
        """
        if not rows:
            return self
        from imgclf.engine.ray import import_ray

        task = import_ray().remote(_replace_rows).options(max_retries=self.max_retries)
        pos = np.asarray(sorted(rows), np.int64)
        owner = self._owner(pos)
        refs = list(self.refs)
        for b in np.unique(owner).tolist():
            at = pos[owner == b]
            refs[b] = task.remote(self.refs[b], at, Signatures.concat([rows[int(p)] for p in at]))
        return HeldSignatures(refs, list(self.starts), self.max_retries)

    def find_duplicate_pairs(self, positions: Sequence[int], params: DetectorParams) -> DuplicatePairs:
        """`detect.find_duplicate_pairs` of the signatures at `positions`, on the cluster.

        Args:
            positions: sequence of int, increasing. The images searched; index k of the answer is
                `positions[k]`.
            params: DetectorParams. The detector's settings.

        Returns:
            DuplicatePairs, as the local search of the same signatures in the same order.
        """
        pos = np.asarray(positions, np.int64)
        if len(pos) < 2:
            return DuplicatePairs.empty()
        if np.any(np.diff(pos) <= 0):  # not the order of the blocks: search on the driver
            sig = Signatures.concat(self.gather(pos))
            return find_duplicate_pairs(sig, **_settings(params))
        return _ClusterSearch(self, pos, params).run()


def _settings(params: DetectorParams) -> dict[str, Any]:
    """`params` as the keyword arguments of `find_duplicate_pairs`."""
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


@dataclass
class _ClusterSearch:
    """One `HeldSignatures.find_duplicate_pairs` call: the live blocks, then the stages."""

    held: HeldSignatures
    pos: np.ndarray
    params: DetectorParams

    def run(self) -> DuplicatePairs:
        """Stage 0 on the driver, stages 1 and 2 (and the mirrored ones) on the cluster."""
        from imgclf.engine.ray import import_ray

        self.ray = import_ray()
        n = self.n = len(self.pos)
        cpus = max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        self.groups = max(1, min(-(-n // GROUP_SIZE), 4 * cpus))
        self.cpus = cpus
        self._live_blocks()
        digests = np.concatenate([d for _, d in _get(self.ray, [b[0] for b in self.live])])
        parts: list[Part] = [_exact_part(*_exact_within(digests))]
        parts.append(self._stage(False, _keys(parts[0], n)))
        if self.params.flips:
            parts.append(self._stage(True, np.concatenate([_keys(p, n) for p in parts])))
        return join_pairs(parts)

    def _task(self, fn: Any, returns: int = 1) -> Any:
        return self.ray.remote(fn).options(num_returns=returns, max_retries=self.held.max_retries)

    def _live_blocks(self) -> None:
        """Per held block with live rows: a task making its live parts (`_live_parts`)."""
        owner = self.held._owner(self.pos)
        blocks, first = np.unique(owner, return_index=True)
        task = self._task(_live_parts, 3 + len(_CODES))
        self.live = [
            task.remote(self.held.refs[b], self.pos[owner == b], int(f), self.params.max_residual)
            for b, f in zip(blocks.tolist(), first.tolist())
        ]
        self.firsts = first.astype(np.int64)

    def _codes(self, kind: str) -> list[Any]:
        return [b[2 + _CODES.index(kind)] for b in self.live]

    def _join(self, a: str, b: str | None, window: bool = False) -> list[Any]:
        """The routed parts of one Hamming join (code blocks of kinds `a` and `b`)."""
        n_ids = self.n * (NWINDOWS if window else 1)
        plan = plan_join(n_ids, self.params.radius, self.cpus)
        m = len(plan.chunks)
        shard = self._task(shard_block, m)
        sa = [shard.remote(x, plan) for x in self._codes(a)]
        sb = [shard.remote(x, plan) for x in self._codes(b)] if b is not None else []
        sa, sb = [s if m > 1 else [s] for s in sa], [s if m > 1 else [s] for s in sb]
        join = self._task(_route_join, self.groups)
        return [
            join.remote(plan, c, p, len(sa), window, self.n, self.groups, *[s[c] for s in sa], *[s[c] for s in sb])
            for c, p in plan.parts
        ]

    def _stage(self, mirror: bool, taken: np.ndarray) -> Part:
        """Candidates (Hamming joins and layouts), routed to groups, verified there."""
        if mirror:
            producers = self._join("v0", "f0") + self._join("v1", "f1") + self._join("v2", "f2")
        else:
            producers = self._join("v0", None) + self._join("v1", None) + self._join("v2", None)
            producers += self._join("v0", "win", window=True) + self._join("v1", "win", window=True)
        layouts = self._task(_route_layouts, self.groups)
        producers.append(
            layouts.remote(mirror, self.params.max_residual, self.n, self.groups, *[b[-1] for b in self.live])
        )
        routed = [r if self.groups > 1 else [r] for r in producers]
        group_of = (taken // self.n) * self.groups // self.n
        verify = self._task(_verify_group)
        sigs = [b[1] for b in self.live]
        found = _get(
            self.ray,
            [
                verify.remote(
                    mirror, self.params, self.n, taken[group_of == g], self.firsts, sigs, *[r[g] for r in routed]
                )
                for g in range(self.groups)
            ],
        )
        kind = KIND_FLIP if mirror else KIND_NEAR
        return (
            np.concatenate([f[0] for f in found]),
            np.concatenate([f[1] for f in found]),
            kind,
            np.concatenate([f[3] for f in found]),
            np.concatenate([f[4] for f in found]),
        )
