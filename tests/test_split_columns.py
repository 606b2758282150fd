"""`split`'s driver as columns: the same answers as the per-image objects it replaced.

The columnar pieces (`imgclf.split.table`, `assign_codes`, `cross_split_codes`, the streamed
destinations and `split.csv`) are checked against the object versions they replaced, kept here
as references, on random inputs and on folders made to collide.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.config import SplitConfig
from imgclf.errors import DataError

DATA = Path(__file__).parent / "data"
SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------ references (the object code)
def _reference_assign(labels, groups, ratios, seed, fixed, require_pool):
    """The splitter as it was before `assign_codes` (lists and dicts of every image)."""
    from imgclf.split import largest_remainder

    n = len(labels)
    fixed = list(fixed) if fixed is not None else [None] * n
    assign = np.array(fixed, dtype=object)
    members = defaultdict(list)
    for k, g in enumerate(np.asarray(groups).tolist()):
        members[g].append(k)
    ordered_groups = sorted(members.values(), key=min)
    for ks in ordered_groups:
        if any(fixed[k] is not None for k in ks):
            for k in ks:
                if fixed[k] is None:
                    assign[k] = "dropped"
    pool = defaultdict(list)
    for ks in ordered_groups:
        free = [k for k in ks if assign[k] is None]
        if free:
            counts = Counter(labels[k] for k in free)
            pool[sorted(counts, key=lambda lab: (-counts[lab], lab))[0]].append(free)
    rng = np.random.default_rng(seed)
    for cls in sorted(set(labels)):
        cls_groups = pool.get(cls, [])
        if require_pool and not cls_groups:
            raise DataError(f"class {cls!r} has no train/val images to split (only test)")
        if not cls_groups:
            continue
        size = sum(len(g) for g in cls_groups)
        nonzero = [s for s, r in zip(SPLITS, ratios) if r > 0]
        if size < len(nonzero) or len(cls_groups) < len(nonzero):
            raise DataError(f"class {cls!r} has {size} images")
        targets = dict(zip(SPLITS, largest_remainder(size, tuple(ratios))))
        perm = rng.permutation(len(cls_groups))
        have = dict.fromkeys(SPLITS, 0)
        for g in sorted((cls_groups[p] for p in perm), key=len, reverse=True):
            best = max(nonzero, key=lambda s: (have[s] == 0 and targets[s] > 0, targets[s] - have[s], -SPLITS.index(s)))
            have[best] += len(g)
            for k in g:
                assign[k] = best
    return assign


def _reference_destinations(rels, labels, assign):
    """Destinations as they were made before `SplitPlan.destinations` (a set of every one)."""
    taken, dests = set(), {}
    for k in sorted(range(len(rels)), key=lambda k: rels[k]):
        if assign[k] not in SPLITS:
            continue
        *folders, name = rels[k].split("/")
        dest = f"{assign[k]}/{labels[k]}/{name}"
        if dest in taken:
            dest = f"{assign[k]}/{labels[k]}/{'__'.join(folders)}__{name}"
        taken.add(dest)
        dests[k] = dest
    return dests


# ------------------------------------------------------------------ the splitter on codes
def test_assign_codes_assigns_what_the_object_splitter_assigned():
    from imgclf.split import assign_codes, assign_splits

    rng = np.random.default_rng(0)
    compared = 0
    for t in range(300):
        n = int(rng.integers(6, 80))
        labels = [f"c{int(x)}" for x in rng.integers(0, int(rng.integers(1, 4)), n)]
        groups = rng.integers(0, max(1, n // int(rng.integers(1, 4))), n)
        ratios = [(0.7, 0.15, 0.15), (0.8, 0.2, 0.0), (1 / 3, 1 / 3, 1 / 3)][t % 3]
        fixed = ["test" if x < 0.3 else None for x in rng.random(n)] if t % 2 else None
        try:
            want = _reference_assign(labels, groups, ratios, t, fixed, t % 4 == 1).tolist()
        except DataError:
            with pytest.raises(DataError):
                assign_splits(labels, groups, ratios, t, fixed, require_pool=t % 4 == 1)
            continue
        assert assign_splits(labels, groups, ratios, t, fixed, require_pool=t % 4 == 1).tolist() == want
        names = sorted(set(labels))
        codes = assign_codes(
            np.array([names.index(c) for c in labels]),
            names,
            groups,
            ratios,
            t,
            np.array([-1 if f is None else 2 for f in fixed or [None] * n]),
        )
        assert [(*SPLITS, "dropped")[c] for c in codes] == want
        compared += 1
    assert compared > 100


def test_cross_split_codes_finds_the_leaks_cross_split_pairs_finds():
    from imgclf.clean.similarity import DuplicatePairs
    from imgclf.split import cross_split_codes, cross_split_pairs

    rng = np.random.default_rng(1)
    for _ in range(50):
        n = 40
        i = rng.integers(0, n, 12)
        j = (i + rng.integers(1, n, 12)) % n
        pairs = DuplicatePairs(
            i=i, j=j, kind=rng.choice(["exact", "near", "flip"], 12), residual=np.zeros(12), aligned=np.zeros(12, bool)
        )
        prov = rng.integers(0, 30, n)
        splits = list(rng.choice(["train", "val", "test", "dropped"], n))
        names = [f"f{k:02d}" for k in range(n)]
        codes = np.array([SPLITS.index(s) if s in SPLITS else 3 for s in splits])
        leaks = cross_split_pairs(names, splits, pairs, provenance=prov)
        assert leaks and cross_split_codes(names, codes, pairs, provenance=prov) == leaks
        assert {k for _, _, k in leaks} <= {"exact", "near", "flip", "provenance", "group"}


# ------------------------------------------------------------------ the table, the order, the names
def _tree(root: Path, rels: list[str], seed: int = 0) -> None:
    """A distinct smooth picture at each of `rels` under `root`."""
    rng = np.random.default_rng(seed)
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((40, 40), Image.Resampling.BICUBIC).save(p)


def test_rel_order_sorts_the_rows_as_python_sorts_their_names(tmp_path):
    from imgclf.inputs import list_image_columns
    from imgclf.split import SplitTable, rel_order

    rels = ["a/b.png", "a/b/x.png", "a/b0.png", "a-c/x.png", "a/z.png", "a/Z.png", "b/0.png"]
    _tree(tmp_path / "ascii", rels)
    _tree(tmp_path / "utf8", [*rels, "a/é.png", "a/ß/y.png", "a/日本.png"])
    for root in (tmp_path / "ascii", tmp_path / "utf8"):
        table = SplitTable(list_image_columns(root))
        got = [table.rel(k) for k in rel_order(table).tolist()]
        assert got == sorted(table.rel(k) for k in range(len(table))) and len(got) > 6
        some = np.array([5, 0, 3], np.int64)
        assert [table.rel(k) for k in rel_order(table, some)] == sorted(table.rel(k) for k in some)


def test_destinations_of_files_with_one_name_are_the_object_code_s_and_none_is_lost(tmp_path):
    """Same names in train / val / test and in sub-folders of a class, and a file whose name is
    another's prefixed destination: the streamed destinations are the old ones, file for file,
    but for the one the old code gave a destination already taken (it replaced a file)."""
    from imgclf.split import split_folder
    from imgclf.split.plan import plan_split
    from imgclf.split.search import fingerprint_table

    src = tmp_path / "pre"
    rels = [f"{s}/{c}/{k:02d}.png" for s in SPLITS for c in ("a", "b") for k in range(6)]
    rels += ["train/a/sub/00.png", "train/a/val__a__00.png", "val/a/test__a__01.png", "test/b/x__y.png"]
    _tree(src, rels)
    from imgclf.engine import make_executor
    from imgclf.inputs import list_image_columns

    table, held = fingerprint_table(list_image_columns(src), make_executor("local", 2))
    assert held is None and table.ok.all() and len(table) == len(rels)
    cfg = SplitConfig(ratios=(0.9, 0.05, 0.05), seed=3)
    plan = plan_split(table, cfg)
    want = _reference_destinations(plan.rels, [table.label_of(k) for k in range(len(table))], plan.assign)
    assert sum("__" in d for d in want.values()) >= 4  # the collisions happened
    # the prefixed destination of val/a/00.png is the plain one of train/a/val__a__00.png: the
    # object code gave both the same destination (the second file replaced the first); now the
    # second gets a number, and every placed file has a destination of its own
    dests = dict(plan.dests)
    assert len(set(dests.values())) == len(dests) == len(want)
    clash = [k for k in want if want[k] != dests[k]]
    assert len(clash) == 1 and dests[clash[0]].endswith("__2.png"), [dests[k] for k in clash]
    assert sum(v == want[clash[0]] for v in want.values()) == 2  # the one the object code lost
    summary = split_folder(src, tmp_path / "out", cfg)
    placed = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert placed == sorted(dests.values()) and summary.total("train") == sum(a == "train" for a in plan.assign)


def test_the_table_of_the_map_plans_what_the_records_plan(tmp_path):
    from imgclf.engine import make_executor
    from imgclf.inputs import list_image_columns, list_images
    from imgclf.split import SplitItem, fingerprint_file, plan_split
    from imgclf.split.search import fingerprint_table

    src = tmp_path / "src"
    _tree(src, [f"{c}/{k:02d}.png" for c in ("a", "b", "c") for k in range(12)], seed=4)
    Image.open(src / "a" / "00.png").save(src / "b" / "copy.png")  # one group across classes
    entries = list_images(src, layout="classes").entries
    records = [fingerprint_file(SplitItem(k, e.path, e.rel, str(e.label), e.subset)) for k, e in enumerate(entries)]
    table, _ = fingerprint_table(list_image_columns(src), make_executor("local", 2))
    cfg = SplitConfig(seed=9)
    a, b = plan_split(table, cfg), plan_split(records[::-1], cfg)
    assert a.rows == b.rows and a.groups == b.groups == 1 and a.counts == b.counts
    assert [table.path(k) for k in range(3)] == [str(e.path) for e in entries[:3]]


def test_split_block_sends_the_driver_columns_and_keeps_the_signatures(tmp_path):
    from imgclf.split import SplitItem, fingerprint_file
    from imgclf.split.table import SplitTable, split_block

    items = [
        SplitItem(10, DATA / "rgb.jpg", "c/rgb.jpg", "c"),
        SplitItem(11, DATA / "truncated.jpg", "c/truncated.jpg", "c"),
        SplitItem(12, DATA / "gray.png", "c/gray.png", "c"),
    ]
    [block], sigs = split_block([fingerprint_file(it) for it in items], 10)
    assert block.start == 10 and block.ok.tolist() == [True, False, True]
    assert list(block.unreadable) == [1] and block.unreadable[1][0] == "truncated"
    assert sigs.positions.tolist() == [10, 12] and len(sigs.signatures.digests) == 2
    table = SplitTable.from_records([fingerprint_file(it) for it in items])
    assert table.ok.tolist() == [True, False, True] and table.path(1) == str(DATA / "truncated.jpg")


def test_split_csv_streamed_is_the_bytes_of_a_table_made_whole_and_a_failure_leaves_no_file(tmp_path):
    import csv
    import io

    from imgclf.records.split import SPLIT_COLUMNS, SplitRow, save_split_table

    rows = [
        SplitRow("a/x,1.png", "a", "train", 3, "train/a/x,1.png", ""),
        SplitRow('a/"q".png', "a", "dropped", None, "", "linked to test image t (near)"),
        SplitRow("b/é.png", "b", "test", None, "test/b/é.png", ""),
    ]
    whole = io.StringIO()  # the table as `write_csv` made it before it streamed
    w = csv.writer(whole)
    w.writerow(SPLIT_COLUMNS)
    w.writerows(r.cells() for r in rows)
    path = save_split_table(tmp_path, iter(rows))
    assert path.read_bytes() == whole.getvalue().encode() and b'"a/x,1.png"' in path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()

    def broken():
        yield rows[0]
        raise RuntimeError("a row could not be made")

    with pytest.raises(RuntimeError):
        save_split_table(tmp_path / "b", broken())
    assert list((tmp_path / "b").rglob("*.csv")) == [] and list((tmp_path / "b").rglob("*.tmp")) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
