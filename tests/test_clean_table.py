"""`clean`'s columns: the listing (`imgclf.inputs.ImageColumns`) and the records
(`imgclf.clean.table.RecordTable`) against the objects they replace, on real tiny images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.clean import clean_folder
from imgclf.clean.plan import CleanInput, plan_clean
from imgclf.clean.table import RecordTable, record_block, split_block
from imgclf.clean.verify import ImageRecord, Unreadable, inspect_file
from imgclf.config import CleanConfig
from imgclf.inputs import list_image_columns, list_images
from test_clean import _plan_facts as _facts

DATA = Path(__file__).parent / "data"


def _picture(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)
    return Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """Classes `cat`, `cat-2` and `dog` (a sub-folder, a non-ASCII name, copies across labels,
    a near copy, a blank, broken files, hidden files and a stray)."""
    root = tmp_path_factory.mktemp("tree")
    for d in ("cat/sub", "cat-2", "dog", "_hidden", ".git"):
        (root / d).mkdir(parents=True)
    for k in range(4):
        _picture(k).save(root / "cat" / f"c{k}.png")
        _picture(10 + k).save(root / "dog" / f"d{k}.png")
    _picture(0).save(root / "cat" / "z.png")  # same pixels as c0
    _picture(0, 64).save(root / "cat" / "sub" / "a.png")  # a larger copy: kept in its group
    _picture(1).save(root / "cat-2" / "a.png")  # a copy under another label
    _picture(2).save(root / "dog" / "é.jpg", quality=70)  # a near copy of cat/c2, not ASCII
    _picture(20).save(root / "cat-2" / "b.png")
    shutil.copyfile(root / "dog" / "d3.png", root / "dog" / "d3_copy.png")
    Image.new("RGB", (40, 40), (90, 90, 90)).save(root / "dog" / "blank.png")
    shutil.copyfile(DATA / "truncated.jpg", root / "dog" / "broken.jpg")
    shutil.copyfile(DATA / "not_an_image.jpg", root / "cat" / "page.jpg")
    (root / "dog" / ".DS_Store").write_text("x")
    (root / "_hidden" / "x.png").write_text("x")
    (root / "readme.txt").write_text("a stray")
    return root


def _listing(root: Path) -> CleanInput:
    files = list_image_columns(root)
    return CleanInput(
        src=str(root),
        out="out",
        classes=tuple(sorted(files.labels)),
        strays=tuple(f.relative_to(root).as_posix() for f in files.strays),
        files=len(files),
    )


def _records(root: Path, cfg: CleanConfig) -> list:
    return [inspect_file(e, cfg) for e in list_images(root, layout="classes").entries]


def test_columns_list_what_list_images_lists(tree, tmp_path):
    presplit = tmp_path / "presplit"
    for sub, cls in [("train", "cat"), ("train", "dog"), ("test", "cat")]:
        (presplit / sub / cls).mkdir(parents=True)
        _picture(len(sub) + len(cls)).save(presplit / sub / cls / "x.png")
    (presplit / "train" / "loose.png").write_text("a stray in a subset")
    for root in (tree, presplit):
        listing, files = list_images(root, layout="classes"), list_image_columns(root)
        assert len(files) == len(listing.entries) > 0
        assert list(files) == listing.entries  # path, rel, label, subset, in the same order
        assert files.strays == listing.strays
        assert files.rel_lengths().tolist() == [len(e.rel) for e in listing.entries]
    assert {e.subset for e in list_image_columns(presplit)} == {"train", "test"}
    assert "dog/é.jpg" in [e.rel for e in list_image_columns(tree)]


def test_table_round_trips_the_map_records(tree):
    records = _records(tree, CleanConfig())
    table = RecordTable.from_records(records[::-1], str(tree))  # any order: sorted by path
    assert [table.rel(k) for k in range(len(table))] == [r.rel for r in records]
    readable = [r for r in records if isinstance(r, ImageRecord)]
    for k, r in enumerate(records):
        if isinstance(r, Unreadable):
            assert not table.ok[k] and (table.status_of(k), table.detail[k]) == (r.reason, r.detail)
            continue
        back = table.record(k)
        assert back.signature is r.signature
        for name in ("rel", "label", "subset", "width", "height", "nbytes", "format", "hash_hex", "blur", "std"):
            assert getattr(back, name) == getattr(r, name), name
        assert (back.entropy, back.sha256, back.status, back.group) == (r.entropy, "", "kept", None)
    # equal digest keys exactly for equal digests
    rows = np.flatnonzero(table.ok)
    keys = table.digest_keys(rows)
    same = keys[:, None] == keys[None, :]
    assert np.array_equal(same, np.array([[a.digest == b.digest for b in readable] for a in readable]))
    assert same.sum() > len(readable)  # the copies are there


def test_blocks_made_as_in_a_worker_give_the_plan_of_the_records(tree):
    cfg = CleanConfig(flips=True)
    files = list_image_columns(tree)
    records = [inspect_file(e, cfg, sha256=True) for e in files]
    table = RecordTable.empty(files, sha256=True, signatures=True)
    for start in range(0, len(records), 3):  # small blocks: formats coded per block
        part = records[start : start + 3]
        (block,), held = split_block(part, start)
        assert held.positions.tolist() == [start + k for k, r in enumerate(part) if isinstance(r, ImageRecord)]
        sigs = [r.signature for r in part if isinstance(r, ImageRecord)]
        assert np.array_equal(held.signatures.codes, np.stack([s.codes for s in sigs]))
        table.put(block, [getattr(r, "signature", None) for r in part])
    assert table.sha256_of(0) == records[0].sha256 != ""
    plan = plan_clean(_listing(tree), table, cfg)
    assert _facts(plan) == _facts(plan_clean(_listing(tree), records, cfg))
    status = {r.rel: r.status for r in plan.images}
    assert status["cat/z.png"] == status["cat/c0.png"] == "near_duplicate"  # smaller than the kept copy
    assert status["dog/d3_copy.png"] == "duplicate"
    assert status["cat/sub/a.png"] == "kept" and status["dog/blank.png"] == "near_uniform"
    assert status["dog/é.jpg"] == "kept"  # a near copy under another label: a conflict, one per label
    assert plan.report.label_conflicts and plan.report.kept == len(plan.kept)


def _reference(records: list, cfg: CleanConfig) -> dict[str, tuple[str, int | None]]:
    """The record-by-record reduce (quality rules, then `duplicate_groups` and `resolve_groups`
    of the live records): rel -> (status, group)."""
    from imgclf.clean.groups import Member, duplicate_groups, resolve_groups
    from imgclf.clean.similarity import find_duplicate_pairs, stack

    images = [r for r in records if isinstance(r, ImageRecord)]
    out = {r.rel: ("near_uniform" if r.std < cfg.uniform_std else "kept", None) for r in images}
    live = [r for r in images if out[r.rel][0] == "kept"]
    found = find_duplicate_pairs(stack([r.signature for r in live]), radius=cfg.radius, flips=cfg.flips)
    _, groups = duplicate_groups(len(live), found.i, found.j, [r.digest for r in live])
    members = [Member(r.rel, r.label, r.subset, r.width, r.height, r.nbytes, r.digest) for r in live]
    for d in resolve_groups(groups, members, cfg.label_conflicts):
        for k in d.members:
            out[live[k].rel] = (d.status[k], d.group)
    return out


@pytest.mark.parametrize("conflicts", ["keep", "reject"])
def test_reduce_on_the_columns_equals_the_record_by_record_reduce(tree, conflicts):
    cfg = CleanConfig(label_conflicts=conflicts)
    records = _records(tree, cfg)
    plan = plan_clean(_listing(tree), records, cfg)
    got = {r.rel: (r.status, r.group) for r in plan.images}
    assert got == _reference(records, cfg)
    assert sum(g is not None for _, g in got.values()) >= 5  # groups found, not all kept


def test_images_csv_sorted_as_strings_and_byte_identical_to_the_record_writer(tree, tmp_path):
    from imgclf.records.clean import ImageTable

    out = tmp_path / "out"
    clean_folder(tree, out, CleanConfig(workers=2))
    rows = ImageTable.load(out)
    files = [r.file for r in rows]
    assert files == sorted(files) and "cat-2/a.png" in files and files.index("cat-2/a.png") < files.index("cat/c0.png")
    ImageTable.save(tmp_path / "again", rows[::-1])
    assert ImageTable.path(out).read_bytes() == ImageTable.path(tmp_path / "again").read_bytes()


def test_record_block_of_only_unreadable_files(tree):
    bad = [inspect_file(e) for e in list_images(tree, layout="classes").entries if e.rel.endswith("page.jpg")]
    block = record_block(bad, 7)
    assert (block.start, len(block), block.ok.tolist(), block.sha256) == (7, 1, [False], None)
    assert block.unreadable == {0: (bad[0].reason, bad[0].detail)}
    empty = record_block([], 0)
    assert len(empty) == 0 and empty.formats == () and empty.digest.dtype == np.dtype("S16")
