"""`split`: stratified, deterministic, duplicate groups never separated, clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from imgclf.config import SplitConfig
from imgclf.errors import DataError
from imgclf.split import largest_remainder, split_folder


def _digit_images(n: int, offset: int = 0):
    from sklearn.datasets import load_digits

    d = load_digits()
    for k in range(offset, offset + n):
        im = Image.fromarray((d.images[k] * 255 / 16).astype(np.uint8)).resize((32, 32), Image.Resampling.BICUBIC)
        yield k, im, int(d.target[k])


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    """400 digits as 32x32 PNGs in 10 classes, plus 12 groups of near copies (JPEG / shifted gray)."""
    root = tmp_path_factory.mktemp("processed")
    for k, im, y in _digit_images(400):
        p = root / str(y) / f"{k:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p)
        if k < 12:  # near copies that must stay together
            im.save(root / str(y) / f"{k:04d}_copy.jpg", quality=98)
            Image.fromarray(np.clip(np.asarray(im, dtype=int) + 3, 0, 255).astype(np.uint8)).save(
                root / str(y) / f"{k:04d}_bright.png"
            )
    return root


def _read_split(out: Path) -> dict[str, str]:
    with open(out / "_reports" / "split.csv", newline="") as f:
        return {r["file"]: r["split"] for r in csv.DictReader(f)}


def test_groups_never_separated_and_stratified(processed, tmp_path):
    out = tmp_path / "s"
    s = split_folder(processed, out, SplitConfig())
    assign = _read_split(out)
    for k in range(12):
        members = [f for f in assign if Path(f).name.startswith(f"{k:04d}")]
        assert len(members) == 3
        assert len({assign[m] for m in members}) == 1, members
    assert s.groups >= 12 and not s.leaks
    total = sum(s.total(x) for x in ("train", "val", "test"))
    assert total == 424
    assert abs(s.total("train") / total - 0.70) < 0.03
    for cls in map(str, range(10)):
        assert all(s.counts[x][cls] >= 1 for x in ("train", "val", "test")), cls
    # files are in place, hard-linked from the input
    f = next((out / "test").rglob("*.png"))
    assert f.stat().st_nlink >= 2
    report = json.loads((out / "_reports" / "split_report.json").read_text())
    assert report["cross_split_pairs"] == []


def test_same_seed_same_output_other_seed_differs(processed, tmp_path):
    split_folder(processed, tmp_path / "a", SplitConfig(seed=3))
    split_folder(processed, tmp_path / "b", SplitConfig(seed=3))
    split_folder(processed, tmp_path / "c", SplitConfig(seed=4))
    a, b, c = (_read_split(tmp_path / x) for x in "abc")
    assert a == b
    assert a != c

    def listing(root):
        return sorted(
            p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "_reports" not in p.parts
        )

    assert listing(tmp_path / "a") == listing(tmp_path / "b")


def test_copy_mode_and_rerun(processed, tmp_path):
    out = tmp_path / "s"
    split_folder(processed, out, SplitConfig(link="copy"))
    f = next((out / "train").rglob("*.png"))
    assert f.stat().st_nlink == 1
    (out / "train" / "0" / "stale.png").write_bytes(b"x")
    split_folder(processed, out, SplitConfig(link="copy"))
    assert not (out / "train" / "0" / "stale.png").exists()


def _presplit_digits(src, n: int = 120):
    """Writes `src/{train,test}/<digit>/<k>.png` (every fourth image in test); returns the images."""
    imgs = list(_digit_images(n))
    for k, im, y in imgs:
        sub = "test" if k % 4 == 0 else "train"
        p = src / sub / str(y) / f"{k:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p)
    return imgs


def test_keep_test_presplit_drops_train_copies_of_test(tmp_path):
    src = tmp_path / "pre"
    imgs = _presplit_digits(src)
    _, im, y = imgs[0]  # k=0 is in test; put a copy into train
    im.save(src / "train" / str(y) / "leak.jpg", quality=98)
    out = tmp_path / "out"
    s = split_folder(src, out, SplitConfig(keep_test=True, ratios=(0.7, 0.15, 0.15)))
    assert s.total("test") == 30
    assert all(p.suffix == ".png" for p in (out / "test").rglob("*") if p.is_file())
    assert s.dropped == [f"train/{y}/leak.jpg"]
    assert s.total("train") + s.total("val") == 90
    assert abs(s.total("val") / 90 - 0.15 / 0.85) < 0.05
    assert not s.leaks


def test_keep_test_needs_presplit(processed, tmp_path):
    with pytest.raises(DataError, match="keep-test"):
        split_folder(processed, tmp_path / "o", SplitConfig(keep_test=True))


def test_too_small_class_named(tmp_path):
    src = tmp_path / "p"
    for k, im, y in _digit_images(40):
        if y == 3 and k > 3:
            continue
        p = src / str(y) / f"{k:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p)
    with pytest.raises(DataError, match=r"class '3' has 1 images"):
        split_folder(src, tmp_path / "o", SplitConfig())


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match="not found"):
        split_folder(tmp_path / "missing", tmp_path / "o")
    src = tmp_path / "p"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    Image.new("RGB", (8, 8)).save(src / "a" / "x.png")
    with pytest.raises(DataError, match="empty"):
        split_folder(src, tmp_path / "o")


def test_leak_recheck_names_files():
    import io

    from imgclf.clean.similarity import find_duplicate_pairs, signature, stack
    from imgclf.split import cross_split_pairs, raise_on_leaks

    imgs = [im for _, im, _ in _digit_images(6)]
    buf = io.BytesIO()
    imgs[0].convert("RGB").save(buf, format="JPEG", quality=90)  # f6: a re-encoded copy of f0
    copy = Image.open(buf).convert("RGB")
    pairs = find_duplicate_pairs(stack([signature(im) for im in imgs] + [signature(copy)]))
    names = [f"f{k}.png" for k in range(7)]
    ok = ["train", "train", "val", "test", "val", "train", "train"]  # f6 (copy of f0) with f0
    assert cross_split_pairs(names, ok, pairs) == []
    bad = ok[:6] + ["test"]
    leaks = cross_split_pairs(names, bad, pairs)
    assert leaks == [("f0.png", "f6.png", "near")]
    with pytest.raises(DataError, match=r"f0.png <-> f6.png"):
        raise_on_leaks(leaks)
    assert cross_split_pairs(names, ok[:6] + ["dropped"], pairs) == []
    # provenance: f1 and f2 come from one post; in two splits they leak even though they differ
    prov = np.array([0, 1, 1, 2, 3, 4, 5])
    assert cross_split_pairs(names, ok, pairs, provenance=prov) == [("f1.png", "f2.png", "provenance")]


def test_leak_recheck_follows_links_through_images_set_aside():
    from imgclf.clean.similarity import DuplicatePairs, find_duplicate_pairs, signature, stack
    from imgclf.split import cross_split_pairs

    imgs = [im for _, im, _ in _digit_images(4)]
    # three exact copies of image 0: the detector pairs all three, and exact runs are a star
    # around the first copy (f0); keep only the star, as when the other pair was not verified
    found = find_duplicate_pairs(stack([signature(im) for im in imgs + [imgs[0], imgs[0]]]))
    star = np.flatnonzero(found.kind == "exact")
    assert [(found.i[k], found.j[k]) for k in star] == [(0, 4), (0, 5)]
    pairs = DuplicatePairs(found.i[star], found.j[star], found.kind[star], found.residual[star], found.aligned[star])
    names = [f"f{k}.png" for k in range(6)]
    assert cross_split_pairs(names, ["dropped", "train", "val", "test", "train", "train"], pairs) == []
    assert cross_split_pairs(names, ["dropped", "train", "val", "test", "train", "val"], pairs) == [
        ("f4.png", "f5.png", "group")
    ]


def test_presplit_without_keep_test_pools_everything(tmp_path):
    src = tmp_path / "pre"
    for k, im, y in _digit_images(60):
        p = src / ("test" if k < 20 else "train") / str(y) / f"{k:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p)
    s = split_folder(src, tmp_path / "o", SplitConfig(ratios=(0.6, 0.2, 0.2)))
    assert sum(s.total(x) for x in ("train", "val", "test")) == 60
    assert not s.leaks


def test_largest_remainder():
    assert largest_remainder(10, (0.7, 0.15, 0.15)) in ([7, 2, 1], [7, 1, 2])
    assert sum(largest_remainder(1797, (0.7, 0.15, 0.15))) == 1797
    assert largest_remainder(3, (0.7, 0.15, 0.15)) == [1, 1, 1]
    assert largest_remainder(5, (0.9, 0.1, 0.0)) == [4, 1, 0]


def test_cli_split(processed, tmp_path):
    from imgclf.cli.main import app

    r = CliRunner().invoke(
        app, ["split", str(processed), "--out", str(tmp_path / "o"), "--ratios", "0.6,0.2,0.2", "--seed", "1"]
    )
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "o" / "_reports" / "split_report.json").read_text())
    assert rep["ratios_requested"] == [0.6, 0.2, 0.2] and rep["seed"] == 1
    r = CliRunner().invoke(app, ["split", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 1 and "Traceback" not in r.output


# ------------------------------------------------------------------ pure core: assign_splits
def test_assign_splits_is_pure_stratified_and_never_splits_a_group():
    from imgclf.split import DROPPED, assign_splits

    labels = ["a"] * 40 + ["b"] * 20
    groups = np.arange(60)
    groups[[0, 1, 2, 3]] = 0  # one group of 4 in class a
    groups[[40, 41]] = 40  # one group of 2 in class b
    out = assign_splits(labels, groups, (0.7, 0.15, 0.15), seed=3)
    assert len(set(out[[0, 1, 2, 3]])) == 1 and len(set(out[[40, 41]])) == 1
    assert DROPPED not in set(out)
    for cls, n in (("a", 40), ("b", 20)):
        got = {s: int(sum(1 for lab, o in zip(labels, out) if lab == cls and o == s)) for s in ("train", "val", "test")}
        assert sum(got.values()) == n and all(v >= 1 for v in got.values())
    assert (assign_splits(labels, groups, (0.7, 0.15, 0.15), seed=3) == out).all()  # deterministic
    singles = assign_splits(["x"] * 20, np.arange(20), (0.7, 0.15, 0.15), seed=0)
    assert sorted(singles.tolist()).count("train") == 14 and singles.tolist().count("test") == 3


def test_assign_splits_keeps_fixed_images_and_drops_their_group_mates():
    from imgclf.split import DROPPED, assign_splits

    labels = ["a"] * 10
    groups = np.arange(10)
    groups[[0, 5]] = 0  # image 5 (pool) is a copy of fixed test image 0
    fixed = ["test"] + [None] * 9
    out = assign_splits(labels, groups, (0.8, 0.2, 0.0), seed=1, fixed=fixed)
    assert out[0] == "test" and out[5] == DROPPED
    assert set(out[[1, 2, 3, 4, 6, 7, 8, 9]]) <= {"train", "val"}


def test_assign_splits_names_a_class_too_small():
    from imgclf.errors import DataError
    from imgclf.split import assign_splits

    with pytest.raises(DataError, match="class 'b' has 2 images"):
        assign_splits(["a"] * 10 + ["b"] * 2, np.arange(12), (0.7, 0.15, 0.15))


# ------------------------------------------------------------------ provenance groups
def _scrape_folder(root: Path) -> dict[str, list[str]]:
    """A scrape output folder written with the real manifest API: 2 classes x 16 distinct
    64 x 64 crops of scikit-learn's sample photos, with a 3-picture gallery post, a crosspost of
    it, and two URLs that redirect to one final URL. Returns group name -> stored files."""
    from sklearn.datasets import load_sample_image

    from imgclf.records.manifest import Manifest, PostRecord

    base = "https://img.example"
    groups: dict[str, list[str]] = {"gallery": [], "redirect": []}
    with Manifest(root) as m:
        for label, photo in (("cat", "china.jpg"), ("dog", "flower.jpg")):
            arr = load_sample_image(photo)
            (root / label).mkdir(parents=True, exist_ok=True)
            for k in range(16):
                y, x = 40 * (k // 4), 90 * (k % 4) + 20
                rel = f"{label}/{label}{k:02d}.png"
                Image.fromarray(arr[y : y + 120, x : x + 120]).resize((64, 64), Image.Resampling.LANCZOS).save(
                    root / rel
                )
                url = f"{base}/{label}/{k}.png"
                final = f"{base}/final/{label}.png" if label == "dog" and k in (3, 9) else url
                m.record_url(
                    url=url, label=label, kind="image", status="kept", path=rel, final_url=final, width=64, height=64
                )
                if label == "dog" and k in (3, 9):
                    groups["redirect"].append(rel)
                if label == "cat" and k in (1, 6, 11, 14):
                    groups["gallery"].append(rel)
            if label == "cat":  # post g1: a gallery of three; post x2 crossposts it with one more picture
                m.record_post(
                    PostRecord(
                        post_id="g1",
                        label="cat",
                        subreddit="cats",
                        permalink="https://www.reddit.com/r/cats/comments/g1/x/",
                    ),
                    [f"{base}/cat/1.png", f"{base}/cat/6.png", f"{base}/cat/11.png"],
                )
                m.record_post(
                    PostRecord(post_id="x2", label="cat", subreddit="cats", crosspost_parent="g1"),
                    [f"{base}/cat/14.png"],
                )
            for k in range(16):
                if not (label == "cat" and k in (1, 6, 11, 14)):
                    m.record_post(
                        PostRecord(post_id=f"{label}{k}", label=label, subreddit=f"{label}s"),
                        [f"{base}/{label}/{k}.png"],
                    )
    return groups


def test_provenance_groups_never_straddle_splits_through_clean_prepare_split(tmp_path):
    from imgclf.clean import clean_folder
    from imgclf.config import CleanConfig, PrepareConfig
    from imgclf.prepare import prepare_folder
    from imgclf.records.provenance import read_provenance

    raw = tmp_path / "raw"
    groups = _scrape_folder(raw)
    clean_folder(raw, tmp_path / "clean", CleanConfig(workers=2))
    rep = json.loads((tmp_path / "clean" / "_reports" / "clean_report.json").read_text())
    listed = {tuple(f["file"] for f in g["files"]) for g in rep["provenance"]["groups"]}
    assert listed == {tuple(sorted(groups["gallery"])), tuple(sorted(groups["redirect"]))}
    assert rep["kept"] == 32  # reported, and kept: different pictures of one post are not duplicates
    prepare_folder(tmp_path / "clean", tmp_path / "prep", PrepareConfig(size=48, format="jpeg"))
    rec = read_provenance(tmp_path / "prep")
    gallery = [Path(f).with_suffix(".jpg").as_posix() for f in groups["gallery"]]
    assert len({rec[f].group for f in gallery}) == 1 and all((tmp_path / "prep" / f).is_file() for f in gallery)
    for seed in range(5):
        out = tmp_path / f"split{seed}"
        s = split_folder(tmp_path / "prep", out, SplitConfig(seed=seed))
        assign = _read_split(out)
        for members in (gallery, [Path(f).with_suffix(".jpg").as_posix() for f in groups["redirect"]]):
            assert len({assign[m] for m in members}) == 1, (seed, members, [assign[m] for m in members])
        assert s.provenance_groups == 2 and not s.leaks
    report = json.loads((out / "_reports" / "split_report.json").read_text())
    assert report["provenance"] == {"enabled": True, "source": "_reports/provenance.csv", "groups": 2}
    # without provenance the four gallery pictures are free to land apart (and do, for some seed)
    spread = 0
    for seed in range(5):
        out = tmp_path / f"free{seed}"
        split_folder(tmp_path / "prep", out, SplitConfig(seed=seed, provenance=False))
        assign = _read_split(out)
        spread += len({assign[m] for m in gallery}) > 1
    assert spread > 0


def test_keep_test_reports_train_copies_of_test_images(tmp_path):
    src = tmp_path / "pre"
    imgs = _presplit_digits(src)
    for k in (0, 4):  # train copies of two official test images
        _, im, y = imgs[k]
        im.save(src / "train" / str(y) / f"copy_of_{k:04d}.jpg", quality=95)
    out = tmp_path / "out"
    s = split_folder(src, out, SplitConfig(keep_test=True, ratios=(0.8, 0.2, 0.0)))
    assert sorted(c["file"] for c in s.test_copies) == sorted(f"train/{imgs[k][2]}/copy_of_{k:04d}.jpg" for k in (0, 4))
    by_file = {c["file"]: c for c in s.test_copies}
    assert by_file[f"train/{imgs[0][2]}/copy_of_0000.jpg"]["test"] == f"test/{imgs[0][2]}/0000.png"
    assert all(c["link"] == "near" and c["residual"] <= 5.0 for c in s.test_copies)
    report = json.loads((out / "_reports" / "split_report.json").read_text())
    assert report["train_copies_of_test"]["count"] == 2
    with open(out / "_reports" / "split.csv", newline="") as f:
        notes = {r["file"]: r["note"] for r in csv.DictReader(f) if r["split"] == "dropped"}
    assert notes[f"train/{imgs[4][2]}/copy_of_0004.jpg"].startswith(f"linked to test image test/{imgs[4][2]}/0004.png")


def _letterbox(img: Image.Image) -> Image.Image:
    side = max(img.size)
    out = Image.new("RGB", (side, side), (0, 0, 0))
    out.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return out


def _photos_and_letterboxed_copies(root: Path, layout=("photo", "photo")) -> None:
    """Two real 640 x 427 photos and their letterboxed square copies (JPEG q90) under
    `root/<layout[0]>/` (originals) and `root/<layout[1]>/` (copies), plus 12 digits per class
    of two classes."""
    from sklearn.datasets import load_sample_image

    for name in ("china", "flower"):
        img = Image.fromarray(load_sample_image(f"{name}.jpg"))
        for folder, im, stem in ((layout[0], img, name), (layout[1], _letterbox(img), f"{name}_pad")):
            (root / folder).mkdir(parents=True, exist_ok=True)
            im.save(root / folder / f"{stem}.jpg", quality=90)
    for k, im, _ in _digit_images(24, offset=100):
        folder = root / layout[0].replace("photo", "photo" if k % 2 else "other")
        folder.mkdir(parents=True, exist_ok=True)
        im.save(folder / f"d{k}.png")


def test_a_photo_and_its_letterboxed_copy_stay_together_after_the_center_crop(tmp_path):
    # center-cropped to 32 px, a 640 x 427 photo keeps its middle 427 px and its letterboxed copy
    # the whole photo with black bars: two different squares, one picture before the crop
    from imgclf.clean import similarity as sim
    from imgclf.config import PrepareConfig
    from imgclf.prepare import prepare_folder

    raw, prep = tmp_path / "raw", tmp_path / "prep"
    _photos_and_letterboxed_copies(raw)
    prepare_folder(raw, prep, PrepareConfig(size=32))
    record = sim.read_source_record(prep)
    assert set(record) == {"photo/china.png", "photo/china_pad.png", "photo/flower.png", "photo/flower_pad.png"}
    pairs = [("photo/china.png", "photo/china_pad.png"), ("photo/flower.png", "photo/flower_pad.png")]
    for seed in range(5):
        out = tmp_path / f"split{seed}"
        s = split_folder(prep, out, SplitConfig(seed=seed))
        assign = _read_split(out)
        assert all(assign[a] == assign[b] for a, b in pairs), (seed, assign)
        assert not s.leaks
    report = json.loads((out / "_reports" / "split_report.json").read_text())
    assert report["detector"]["source_signatures"] == {"files": 4, "more_pairs": 2}
    carried = sim.read_source_record(out)  # under the split's paths, for the leak audit
    assert sorted(Path(k).name for k in carried) == ["china.png", "china_pad.png", "flower.png", "flower_pad.png"]
    assert all(k.split("/")[0] == assign[f"photo/{Path(k).name}"] for k in carried)
    # the cropped files alone are not duplicates: without the record the copies land apart
    (prep / sim.SOURCE_RECORD).unlink()
    apart = 0
    for seed in range(5):
        out = tmp_path / f"free{seed}"
        split_folder(prep, out, SplitConfig(seed=seed))
        assign = _read_split(out)
        apart += sum(assign[a] != assign[b] for a, b in pairs)
        assert not (out / sim.SOURCE_RECORD).exists()
    assert apart > 0


def test_source_record_is_ignored_for_a_file_changed_after_prepare(tmp_path):
    from imgclf.clean import similarity as sim
    from imgclf.config import PrepareConfig
    from imgclf.prepare import prepare_folder

    raw, prep = tmp_path / "raw", tmp_path / "prep"
    _photos_and_letterboxed_copies(raw)
    prepare_folder(raw, prep, PrepareConfig(size=32))
    Image.new("RGB", (32, 32), (9, 9, 9)).save(prep / "photo" / "china_pad.png")  # replaced by hand
    assert "photo/china_pad.png" not in sim.read_source_record(prep)
    assert "photo/china.png" in sim.read_source_record(prep)
    # a rerun of prepare keeps the record of the files it does not redo
    prepare_folder(raw, prep, PrepareConfig(size=32))
    assert "photo/china.png" in sim.read_source_record(prep)


def test_leak_audit_finds_a_letterboxed_copy_across_a_users_own_split(tmp_path):
    # a user's own train/test folders, prepared: the test photo's letterboxed copy is in train
    from imgclf.clean import similarity as sim
    from imgclf.config import PrepareConfig
    from imgclf.leaks import audit_split
    from imgclf.prepare import prepare_folder

    raw, prep = tmp_path / "raw", tmp_path / "prep"
    _photos_and_letterboxed_copies(raw, layout=("test/photo", "train/photo"))
    for k, im, _ in _digit_images(12, offset=300):
        (raw / "train" / "other").mkdir(parents=True, exist_ok=True)
        im.save(raw / "train" / "other" / f"t{k}.png")
    prepare_folder(raw, prep, PrepareConfig(size=32))
    found = audit_split(prep)
    assert found["test_images_with_copy"] == 2, found
    assert {(c["test"], c["other"]) for c in found["copies"]} == {
        ("test/photo/china.png", "train/photo/china_pad.png"),
        ("test/photo/flower.png", "train/photo/flower_pad.png"),
    }
    (prep / sim.SOURCE_RECORD).unlink()
    assert audit_split(prep)["test_images_with_copy"] == 0  # the cropped files alone do not show it


def test_clean_records_source_signatures_and_prepare_records_the_same(tmp_path):
    # `clean` records the signatures it computed; `prepare` records the same ones under its names
    from imgclf.clean import clean_folder
    from imgclf.clean import similarity as sim
    from imgclf.config import CleanConfig, PrepareConfig
    from imgclf.prepare import prepare_folder

    raw = tmp_path / "raw"
    _photos_and_letterboxed_copies(raw)
    clean_folder(raw, tmp_path / "clean", CleanConfig(workers=2, dedupe=False))
    given = sim.read_source_record(tmp_path / "clean")
    assert set(given) == {"photo/china.jpg", "photo/china_pad.jpg", "photo/flower.jpg", "photo/flower_pad.jpg"}
    prepare_folder(tmp_path / "clean", tmp_path / "prep", PrepareConfig(size=32))
    carried = sim.read_source_record(tmp_path / "prep")
    assert set(carried) == {k.replace(".jpg", ".png") for k in given}
    for k, v in given.items():
        assert carried[k.replace(".jpg", ".png")].digests[0] == v.digests[0]
        assert np.array_equal(carried[k.replace(".jpg", ".png")].gray, v.gray)


# ------------------------------------------------------------------ map, reduce, records
def _items(root: Path):
    from imgclf.inputs import list_images
    from imgclf.split import SplitItem

    entries = list_images(root, layout="classes").entries
    return [SplitItem(k, e.path, e.rel, str(e.label), e.subset) for k, e in enumerate(entries)]


def test_split_map_signs_a_real_file_and_records_an_unreadable_one(tmp_path):
    import pickle

    from imgclf.split import SplitItem, fingerprint_file, plan_split

    data = Path(__file__).parent / "data"
    rec = fingerprint_file(SplitItem(0, data / "rgb.jpg", "c/rgb.jpg", "c"))
    assert rec.signature is not None and rec.signature.size == (48, 48) and rec.reason == ""
    bad = fingerprint_file(SplitItem(1, data / "truncated.jpg", "c/truncated.jpg", "c"))
    assert bad.signature is None and bad.reason == "truncated" and bad.detail
    pickle.loads(pickle.dumps(rec))  # records travel back from other processes
    with pytest.raises(DataError, match=r"cannot read .*truncated.jpg: truncated"):
        plan_split([rec, bad], SplitConfig())


def test_split_reduce_gives_the_same_plan_whatever_order_the_records_arrive_in(processed):
    import random

    from imgclf.split import fingerprint_file, plan_split

    records = [fingerprint_file(it) for it in _items(processed)]
    cfg = SplitConfig(seed=7)
    plan = plan_split(records, cfg)
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    again = plan_split(shuffled, cfg)
    assert again.assign == plan.assign and again.dests == plan.dests and again.rows == plan.rows
    assert plan.groups >= 12 and not plan.leaks
    assign = {r.file: r.split for r in plan.rows}
    for k in range(12):  # each planted near-copy group in one split
        assert len({s for f, s in assign.items() if Path(f).name.startswith(f"{k:04d}")}) == 1
    assert plan_split(records, SplitConfig(seed=8)).assign != plan.assign


def test_split_reduce_keeps_test_and_drops_its_copies(tmp_path):
    from imgclf.split import DROPPED, fingerprint_file, plan_split

    src = tmp_path / "pre"
    imgs = _presplit_digits(src)
    _, im, y = imgs[0]
    im.save(src / "train" / str(y) / "leak.jpg", quality=98)
    records = [fingerprint_file(it) for it in _items(src)]
    plan = plan_split(records[::-1], SplitConfig(keep_test=True, ratios=(0.7, 0.15, 0.15)))
    by_file = {r.file: r for r in plan.rows}
    assert by_file[f"train/{y}/leak.jpg"].split == DROPPED and by_file[f"train/{y}/leak.jpg"].dest == ""
    assert by_file[f"train/{y}/leak.jpg"].note.startswith(f"linked to test image test/{y}/0000.png (near")
    assert all(r.split == "test" for r in plan.rows if r.file.startswith("test/"))
    assert plan.ratios == pytest.approx((0.7 / 0.85, 0.15 / 0.85, 0.0))


def test_split_runs_on_a_process_pool(processed, tmp_path):
    from imgclf.engine import make_executor

    split_folder(processed, tmp_path / "t", SplitConfig(seed=1))
    split_folder(processed, tmp_path / "p", SplitConfig(seed=1), executor=make_executor("local", 2, kind="process"))
    assert _read_split(tmp_path / "t") == _read_split(tmp_path / "p")


def test_split_records_round_trip_old_files_load_and_corrupt_or_newer_files_are_refused(processed, tmp_path):
    from imgclf.records.split import SPLIT_TABLE, SplitReport, SplitRow, load_split_table, save_split_table

    out = tmp_path / "s"
    split_folder(processed, out, SplitConfig())
    rep = SplitReport.load(out)
    raw = json.loads(SplitReport.path(out).read_text())
    assert raw["schema_version"] == 1 and rep.src == str(processed) and rep.totals == raw["totals"]
    assert json.loads(rep.model_dump_json()) == raw
    rows = load_split_table(out)
    assert len(rows) == 424 and {r.file: r.split for r in rows} == _read_split(out)
    save_split_table(tmp_path / "copy", rows)
    assert (tmp_path / "copy" / SPLIT_TABLE).read_bytes() == (out / SPLIT_TABLE).read_bytes()
    # a report and a table of the first imgclf versions (no schema_version, other detector keys, no note)
    old = {
        k: raw[k]
        for k in raw
        if k not in ("schema_version", "detector", "groups", "duplicate_pairs", "provenance", "train_copies_of_test")
    }
    old |= {
        "hash": "phash",
        "hash_bits": 64,
        "threshold": 6,
        "near_duplicate_pairs": 3,
        "cross_split_pairs": [["a.png", "b.png"]],
    }
    SplitReport.path(out).write_text(json.dumps(old))
    rep = SplitReport.load(out)
    assert rep.detector is None and rep.provenance is None and rep.cross_split_pairs == [["a.png", "b.png"]]
    (out / SPLIT_TABLE).write_text(
        "file,class,split,group,dest\nc/a.png,c,train,3,train/c/a.png\nc/b.png,c,val,,val/c/b.png\n"
    )
    assert load_split_table(out) == [
        SplitRow("c/a.png", "c", "train", 3, "train/c/a.png"),
        SplitRow("c/b.png", "c", "val", None, "val/c/b.png"),
    ]
    SplitReport.path(out).write_text(json.dumps({**raw, "schema_version": 2}))
    with pytest.raises(DataError, match="schema version 2"):
        SplitReport.load(out)
    SplitReport.path(out).write_text(json.dumps({**raw, "counts": "many"}))
    with pytest.raises(DataError, match="invalid"):
        SplitReport.load(out)
    (out / SPLIT_TABLE).write_text("file,class,split,group,dest\nc/a.png,c,train,x,train/c/a.png\n")
    with pytest.raises(DataError, match="not an integer"):
        load_split_table(out)
    (out / SPLIT_TABLE).unlink()
    with pytest.raises(DataError, match="not found"):
        load_split_table(out)
