"""`split --engine ray`: the signatures stay on the cluster, the search runs there, the answer is local's.

On the session's two-node Ray cluster on 127.0.0.1 (`ray_cluster`, tests/conftest.py). The
input is a real `prepare` output with exact, near and mirrored copies and photos whose
letterboxed copies only the source signatures (before the center crop) pair.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.config import SplitConfig
from imgclf.errors import DataError

# every Ray process of these tests on loopback: read by Ray when it is imported
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

# the session's one cluster: under `pytest -n 2 --dist loadgroup` these tests run in its worker
pytestmark = pytest.mark.xdist_group("ray-cluster")

DATA = Path(__file__).parent / "data"
#: Items per Ray task: several blocks, so held rows and replaced rows spread over blocks.
BLOCK = 16


def _picture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A smooth random RGB picture (upscaled noise), `w` x `h`."""
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)


def _letterbox(img: Image.Image) -> Image.Image:
    side = max(img.size)
    out = Image.new("RGB", (side, side), (0, 0, 0))
    out.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return out


@pytest.fixture(scope="module")
def prep(tmp_path_factory) -> Path:
    """A `prepare --size 32` output of 3 classes x 20 pictures, an exact, a brightened and a
    mirrored copy, and two photos with their letterboxed copies (paired only before the crop)."""
    from sklearn.datasets import load_sample_image

    from imgclf.config import PrepareConfig
    from imgclf.prepare import prepare_folder

    root = tmp_path_factory.mktemp("split_ray")
    raw = root / "raw"
    rng = np.random.default_rng(3)
    for c in ("a", "b", "c"):
        (raw / c).mkdir(parents=True)
        for k in range(20):
            _picture(rng, int(rng.integers(40, 90)), int(rng.integers(40, 90))).save(raw / c / f"{c}{k:02d}.png")
    first = Image.open(raw / "a" / "a00.png").convert("RGB")
    shutil.copyfile(raw / "a" / "a00.png", raw / "a" / "copy.png")
    Image.fromarray(np.clip(np.asarray(first, int) + 10, 0, 255).astype(np.uint8)).save(raw / "a" / "bright.png")
    Image.open(raw / "b" / "b03.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(raw / "b" / "mirror.png")
    for name, c in (("china", "b"), ("flower", "c")):
        img = Image.fromarray(load_sample_image(f"{name}.jpg")).resize((320, 213), Image.Resampling.LANCZOS)
        img.save(raw / c / f"{name}.jpg", quality=90)
        _letterbox(img).save(raw / c / f"{name}_pad.jpg", quality=90)
    prepare_folder(raw, root / "prep", PrepareConfig(size=32))
    return root / "prep"


def _items(root: Path):
    from imgclf.inputs import list_images
    from imgclf.split import SplitItem

    entries = list_images(root, layout="classes").entries
    return [SplitItem(k, e.path, e.rel, str(e.label), e.subset) for k, e in enumerate(entries)]


def _same_pairs(a, b) -> None:
    for f in ("i", "j", "kind", "residual", "aligned"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_split_map_on_ray_sends_the_driver_no_signature_and_the_held_search_finds_local_s_pairs(ray_cluster, prep):
    from imgclf.clean.similarity import Signature, read_source_record
    from imgclf.clean.similarity.held import HeldSignature
    from imgclf.engine import make_executor
    from imgclf.engine.ray import RayExecutor
    from imgclf.split import fingerprint_files, held_pairs, plan_split

    items = _items(prep)
    sources = read_source_record(prep)
    cfg = SplitConfig(seed=5, flips=True)
    local, none = fingerprint_files(items, make_executor("local", 2))
    assert none is None and all(isinstance(r.signature, Signature) for r in local)
    with RayExecutor(ray_cluster.address, block_size=BLOCK) as ex:
        records, held = fingerprint_files(items, ex)
        assert held is not None and len(held.refs) == -(-len(items) // BLOCK)
        # what the reduce gets: handles to signatures the cluster holds, not the signatures
        assert [type(r.signature) for r in records] == [HeldSignature] * len(items)
        assert [r.signature.position for r in records] == [it.index for it in items]
        assert [r.item for r in records] == items
        ray_plan = plan_split(records[::-1], cfg, sources=sources, find_pairs=held_pairs(held, cfg))
    plan = plan_split(local, cfg, sources=sources)
    _same_pairs(ray_plan.pairs, plan.pairs)
    assert ray_plan.pair_kinds == plan.pair_kinds and set(plan.pair_kinds) == {"exact", "near", "flip"}
    assert ray_plan.source_pairs == plan.source_pairs == 2 and ray_plan.source_files == plan.source_files > 4
    assert (
        ray_plan.rows == plan.rows and ray_plan.assign == plan.assign and ray_plan.sources.keys() == plan.sources.keys()
    )


def test_split_table_on_ray_holds_no_signature_and_plans_what_local_plans(ray_cluster, prep):
    from imgclf.clean.similarity import read_source_record
    from imgclf.engine import make_executor
    from imgclf.engine.ray import RayExecutor
    from imgclf.inputs import list_image_columns
    from imgclf.split import held_pairs, plan_split
    from imgclf.split.search import fingerprint_table

    files = list_image_columns(prep)
    sources = read_source_record(prep)
    cfg = SplitConfig(seed=5, flips=True)
    local, none = fingerprint_table(files, make_executor("local", 2))
    assert none is None and local.sigs is not None and all(s is not None for s in local.sigs)
    with RayExecutor(ray_cluster.address, block_size=BLOCK) as ex:
        table, held = fingerprint_table(files, ex)
        # the driver's table: which files were read, no signature, no item
        assert held is not None and table.sigs is None and table.ok.all() and not table.unreadable
        assert len(held.refs) == -(-len(files) // BLOCK) and held.starts == list(range(0, len(files), BLOCK))
        ray_plan = plan_split(table, cfg, sources=sources, find_pairs=held_pairs(held, cfg))
    plan = plan_split(local, cfg, sources=sources)
    _same_pairs(ray_plan.pairs, plan.pairs)
    assert ray_plan.source_pairs == plan.source_pairs == 2
    assert ray_plan.rows == plan.rows and ray_plan.sources.keys() == plan.sources.keys()
    assert np.array_equal(ray_plan.code, plan.code)


def test_split_folder_on_ray_writes_what_local_writes(ray_cluster, prep, tmp_path):
    from imgclf.engine.ray import RayExecutor
    from imgclf.split import split_folder

    cfg = SplitConfig(seed=2, flips=True)
    local = split_folder(prep, tmp_path / "local", cfg)
    with RayExecutor(ray_cluster.address, block_size=BLOCK) as ex:
        ray_ = split_folder(prep, tmp_path / "ray", cfg, executor=ex)
    assert ray_.counts == local.counts and ray_.groups == local.groups == 4
    files = {e: sorted(p.relative_to(tmp_path / e) for p in (tmp_path / e).rglob("*")) for e in ("local", "ray")}
    assert files["ray"] == files["local"]
    report = Path("_reports/split_report.json")
    for f in files["local"]:
        if (tmp_path / "local" / f).is_file() and f != report:
            assert (tmp_path / "ray" / f).read_bytes() == (tmp_path / "local" / f).read_bytes(), f
    reports = {e: json.loads((tmp_path / e / report).read_text().replace(str(tmp_path / e), "OUT")) for e in files}
    assert reports["ray"] == reports["local"]
    assert reports["local"]["detector"]["source_signatures"]["more_pairs"] == 2


def test_an_unreadable_file_on_ray_is_the_same_one_line_error(ray_cluster, tmp_path):
    from imgclf.engine.ray import RayExecutor
    from imgclf.split import SplitItem, fingerprint_files, held_pairs, plan_split

    items = [
        SplitItem(0, DATA / "rgb.jpg", "c/rgb.jpg", "c"),
        SplitItem(1, DATA / "truncated.jpg", "c/truncated.jpg", "c"),
        SplitItem(2, DATA / "gray.png", "c/gray.png", "c"),
    ]
    cfg = SplitConfig()
    with RayExecutor(ray_cluster.address, block_size=2) as ex:
        records, held = fingerprint_files(items, ex)
        assert held is not None and records[1].signature is None and records[1].reason == "truncated"
        with pytest.raises(DataError, match=r"cannot read .*truncated.jpg: truncated"):
            plan_split(records, cfg, find_pairs=held_pairs(held, cfg))


def test_held_signatures_with_rows_replaces_them_where_they_are_held(ray_cluster):
    import ray

    from imgclf.clean.similarity import file_signature, stack
    from imgclf.clean.similarity.held import HeldSignatures, SignatureBlock

    sigs = stack([file_signature(DATA / n) for n in ("rgb.jpg", "gray.png", "rgb.jpg", "gray.png", "rgb.jpg")])
    # two blocks: positions 0, 1, 3 (position 2 had no signature) and 4, 5
    blocks = [
        SignatureBlock(np.array([0, 1, 3]), sigs.take([0, 1, 2])),
        SignatureBlock(np.array([4, 5]), sigs.take([3, 4])),
    ]
    held = HeldSignatures([ray.put(b) for b in blocks], [0, 4])
    other = stack([file_signature(DATA / "gray.png"), file_signature(DATA / "rgb.jpg")])
    moved = held.with_rows({3: other.take([0]), 5: other.take([1])})
    assert moved.refs[0] is not held.refs[0] and held.with_rows({}) is held
    got = moved.gather([0, 1, 3, 4, 5])
    want = [sigs.take([0]), sigs.take([1]), other.take([0]), sigs.take([3]), other.take([1])]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.digests, w.digests)
        np.testing.assert_array_equal(g.gray, w.gray)
    assert [s.digests[0] for s in held.gather([3, 5])] == [sigs.digests[2], sigs.digests[4]]  # the original stays
    with pytest.raises(ValueError, match=r"\[2\] have no held signature"):
        held.with_rows({2: other.take([0])}).gather([0])
