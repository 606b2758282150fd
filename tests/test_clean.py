"""`clean`: real tiny images with copies, broken files and label noise (see tests/data)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from imgclf.clean import clean_folder
from imgclf.config import CleanConfig
from imgclf.errors import DataError

DATA = Path(__file__).parent / "data"


def _crop(name: str, x: int, y: int, size: int = 64) -> Image.Image:
    from sklearn.datasets import load_sample_image

    arr = load_sample_image(name)[y : y + 160, x : x + 160]
    return Image.fromarray(arr).resize((size, size), Image.Resampling.LANCZOS)


def _snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    (root / "cat").mkdir()
    (root / "dog").mkdir()
    cats = [_crop("china.jpg", x, y) for x, y in [(0, 0), (200, 0), (400, 200), (0, 260)]]
    dogs = [_crop("flower.jpg", x, y) for x, y in [(0, 0), (250, 0), (450, 250), (100, 260)]]
    for k, im in enumerate(cats):
        im.save(root / "cat" / f"p{k}.png")
    for k, im in enumerate(dogs):
        im.save(root / "dog" / f"d{k}.png")
    p0 = cats[0]
    p0.resize((32, 32), Image.Resampling.LANCZOS).save(root / "cat" / "p0_small.png")
    p0.save(root / "cat" / "p0_q60.jpg", quality=60)
    exif = Image.Exif()
    exif[0x0112] = 6
    p0.transpose(Image.Transpose.ROTATE_90).save(root / "cat" / "p0_exif.jpg", quality=95, exif=exif)
    shutil.copyfile(root / "cat" / "p0.png", root / "cat" / "p0_copy.png")
    cats[1].save(root / "dog" / "p1_mislabeled.png")  # same picture under another label
    shutil.copyfile(DATA / "truncated.jpg", root / "cat" / "broken.jpg")
    shutil.copyfile(DATA / "not_an_image.jpg", root / "cat" / "page.jpg")
    shutil.copyfile(DATA / "bomb.png", root / "dog" / "bomb.png")
    shutil.copyfile(DATA / "unsupported.pcx", root / "dog" / "pic.pcx")
    shutil.copyfile(DATA / "blank.png", root / "dog" / "blank.png")
    (root / "readme.txt").write_text("not in a class folder")
    return root


@pytest.fixture(scope="module")
def cleaned(raw, tmp_path_factory):
    before = _snapshot(raw)
    out = tmp_path_factory.mktemp("clean") / "out"
    summary = clean_folder(raw, out, CleanConfig(workers=2))
    assert _snapshot(raw) == before, "clean modified its input folder"
    return raw, out, summary


def _rejects(out: Path) -> dict[str, str]:
    with open(out / "_reports" / "rejects.csv", newline="") as f:
        return {row["file"]: row["reason"] for row in csv.DictReader(f)}


def test_each_broken_file_rejected_with_its_reason(cleaned):
    _raw, out, _s = cleaned
    rej = _rejects(out)
    assert rej["cat/broken.jpg"] == "truncated"
    assert rej["cat/page.jpg"] == "not_an_image"
    assert rej["dog/bomb.png"] == "decompression_bomb"
    assert rej["dog/pic.pcx"] == "unsupported_format"
    assert rej["dog/blank.png"] == "near_uniform"
    assert rej["readme.txt"] == "not_in_class_folder"
    for rel, reason in rej.items():
        assert (out / "_rejected" / reason / rel).is_file(), rel
        assert not (out / rel).exists()


def test_copies_grouped_and_best_kept(cleaned):
    raw, out, _s = cleaned
    rej = _rejects(out)
    assert rej["cat/p0_copy.png"] == "duplicate"
    for rel in ("cat/p0_small.png", "cat/p0_q60.jpg", "cat/p0_exif.jpg"):
        assert rej[rel] == "near_duplicate", rel
    assert (out / "cat" / "p0.png").read_bytes() == (raw / "cat" / "p0.png").read_bytes()
    report = json.loads((out / "_reports" / "clean_report.json").read_text())
    group = next(g for g in report["groups"] if "cat/p0.png" in g["kept"])
    assert {m["file"] for m in group["members"]} == {
        "cat/p0.png",
        "cat/p0_copy.png",
        "cat/p0_small.png",
        "cat/p0_q60.jpg",
        "cat/p0_exif.jpg",
    }


def test_distinct_images_not_grouped(cleaned):
    _raw, out, s = cleaned
    for rel in ("cat/p1.png", "cat/p2.png", "cat/p3.png", "dog/d0.png", "dog/d1.png", "dog/d2.png", "dog/d3.png"):
        assert (out / rel).is_file(), rel
    assert s.groups == 2


def test_label_conflict_reported_not_resolved(cleaned):
    _raw, out, s = cleaned
    report = json.loads((out / "_reports" / "clean_report.json").read_text())
    assert s.label_conflicts == 1
    (conflict,) = report["label_conflicts"]
    assert conflict["labels"] == ["cat", "dog"]
    assert (out / "cat" / "p1.png").is_file() and (out / "dog" / "p1_mislabeled.png").is_file()


def test_report_counts_and_sheets(cleaned):
    _raw, out, s = cleaned
    report = json.loads((out / "_reports" / "clean_report.json").read_text())
    assert report["total"] == 19 and report["kept"] == s.kept == 9
    assert sum(report["rejected"].values()) == 10
    assert report["per_class"]["cat"]["near_duplicate"] == 3
    assert report["per_class"]["dog"]["kept"] == 5
    for name in ("duplicate_groups.png", "label_conflicts.png", "blurriest.png"):
        assert Image.open(out / "_reports" / name).size[0] > 100
    with open(out / "_reports" / "images.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 14  # every decodable image has its scores
    assert all(float(r["blur"]) >= 0 for r in rows)


def test_reject_blurry_only_when_asked(raw, tmp_path):
    s = clean_folder(raw, tmp_path / "o", CleanConfig(reject_blurry=True, blur_threshold=1e9, dedupe=False, workers=1))
    assert s.rejected.get("blurry", 0) == 13
    assert s.kept == 0


def test_label_conflict_reject_mode(raw, tmp_path):
    s = clean_folder(raw, tmp_path / "o", CleanConfig(label_conflicts="reject", workers=1))
    assert s.rejected["label_conflict"] == 2


def test_rerun_replaces_previous_output_and_refuses_foreign_folder(raw, tmp_path):
    out = tmp_path / "o"
    clean_folder(raw, out, CleanConfig(workers=1))
    (out / "cat" / "stale.png").write_bytes(b"old")
    clean_folder(raw, out, CleanConfig(workers=1))
    assert not (out / "cat" / "stale.png").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "important.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        clean_folder(raw, foreign, CleanConfig())
    with pytest.raises(DataError, match="inside"):
        clean_folder(raw, raw / "_clean", CleanConfig())


def test_presplit_layout_keeps_test_copy(tmp_path):
    src = tmp_path / "raw"
    im = _crop("china.jpg", 0, 0)
    other = _crop("flower.jpg", 0, 0)
    for sub in ("train", "test"):
        (src / sub / "a").mkdir(parents=True)
    im.save(src / "train" / "a" / "big.png")  # larger, but in train
    im.resize((40, 40)).save(src / "test" / "a" / "small.png")
    other.save(src / "train" / "a" / "other.png")
    out = tmp_path / "out"
    clean_folder(src, out, CleanConfig(workers=1))
    assert (out / "test" / "a" / "small.png").is_file()
    assert (out / "_rejected" / "near_duplicate" / "train" / "a" / "big.png").is_file()
    assert (out / "train" / "a" / "other.png").is_file()


def test_digits_distinct_not_removed(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    for k, (im, y) in enumerate(zip(d.images[:300], d.target[:300])):
        p = tmp_path / "raw" / str(y) / f"{k:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((im * 255 / 16).astype(np.uint8)).save(p)
    s = clean_folder(tmp_path / "raw", tmp_path / "out", CleanConfig(workers=2))
    assert s.kept == 300


def test_missing_and_empty_input(tmp_path):
    with pytest.raises(DataError, match="not found"):
        clean_folder(tmp_path / "missing", tmp_path / "o")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no "):
        clean_folder(tmp_path / "empty", tmp_path / "o2")


def test_cli_clean(raw, tmp_path):
    from imgclf.cli.main import app

    r = CliRunner().invoke(
        app, ["clean", str(raw), "--out", str(tmp_path / "o"), "--max-residual", "0", "--workers", "1"]
    )
    assert r.exit_code == 0, r.output
    assert "clean: kept" in r.output
    assert (tmp_path / "o" / "_reports" / "clean_report.json").is_file()
    r = CliRunner().invoke(app, ["clean", str(tmp_path / "nope"), "--out", str(tmp_path / "o3")])
    assert r.exit_code == 1
    assert "input folder not found" in r.output and "Traceback" not in r.output


# ------------------------------------------------------------ pure core: groups and keepers
def test_duplicate_groups_join_pairs_and_equal_digests():
    from imgclf.clean.groups import duplicate_groups

    comp, groups = duplicate_groups(6, np.array([0, 3]), np.array([1, 4]), ["d1", "", "d2", "", "", "d2"])
    assert groups == [[0, 1], [2, 5], [3, 4]]
    assert comp[0] == comp[1] and comp[2] == comp[5] and len(set(comp.tolist())) == 3


def test_keeper_policy_test_first_then_resolution_and_label_conflicts():
    from imgclf.clean.groups import Member, resolve_groups

    members = [
        Member("train/a/big.png", "a", "train", 100, 100, 10, "x"),
        Member("test/a/small.png", "a", "test", 10, 10, 1, "y"),
        Member("train/a/copy.png", "a", "train", 100, 100, 10, "x"),
        Member("train/b/other.png", "b", "train", 50, 50, 5, "z"),
    ]
    [d] = resolve_groups([[0, 1, 2, 3]], members)
    assert d.conflict and d.labels == ["a", "b"]
    assert sorted(d.kept) == [1, 3]  # the test image wins for label a; b keeps its own
    assert d.status[0] == "near_duplicate" and d.status[2] == "near_duplicate" and d.keeper[0] == 1
    [d] = resolve_groups([[0, 2]], members)
    assert d.kept == [0] and d.status[2] == "duplicate"  # same digest as its keeper
    [d] = resolve_groups([[0, 1, 2, 3]], members, label_conflicts="reject")
    assert d.kept == [] and set(d.status.values()) == {"label_conflict"}


def _gradient(w: int = 320, h: int = 200, dark: bool = False) -> Image.Image:
    """A low-structure flat design (a two-colour gradient, a soft disc, a bar): where a DCT hash
    alone is unstable."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (x / w) * 0.7 + (y / h) * 0.3
    rgb = np.array([70, 130, 200]) * (1 - t[..., None]) + np.array([230, 190, 120]) * t[..., None]
    disc = np.exp(-(((x - 0.3 * w) / (0.12 * w)) ** 2 + ((y - 0.4 * h) / (0.18 * h)) ** 2))
    rgb = rgb * (1 - 0.35 * disc[..., None]) + 255 * 0.35 * disc[..., None]
    rgb[int(0.7 * h) : int(0.78 * h), int(0.55 * w) : int(0.9 * w)] *= 0.6
    return Image.fromarray(np.clip(rgb * (0.35 if dark else 1.0), 0, 255).astype(np.uint8))


def test_low_structure_copy_grouped_hard_negative_and_mirror_kept(tmp_path):
    src = tmp_path / "raw"
    (src / "a").mkdir(parents=True)
    orig = _gradient()
    orig.save(src / "a" / "design.png")
    orig.resize((160, 100), Image.Resampling.LANCZOS).save(src / "a" / "design_half_q60.jpg", quality=60)
    _gradient(dark=True).save(src / "a" / "design_dark.png")  # the dark variant: another picture
    photo = _crop("china.jpg", 0, 0, size=128)
    photo.save(src / "a" / "photo.png")
    photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(src / "a" / "photo_mirror.png")
    s = clean_folder(src, tmp_path / "out", CleanConfig(workers=1))
    rej = _rejects(tmp_path / "out")
    assert rej == {"a/design_half_q60.jpg": "near_duplicate"}
    assert s.pairs == {"near": 1}
    report = json.loads((tmp_path / "out" / "_reports" / "clean_report.json").read_text())
    (group,) = report["groups"]
    assert group["kept"] == ["a/design.png"] and group["pairs"][0][:3] == [
        "a/design.png",
        "a/design_half_q60.jpg",
        "near",
    ]
    assert report["flip_pairs"] == [] and report["provenance"] == {"source": None, "groups": []}
    # with flips on, the mirrored copy is found, listed separately and grouped
    s = clean_folder(src, tmp_path / "out2", CleanConfig(workers=1, flips=True))
    report = json.loads((tmp_path / "out2" / "_reports" / "clean_report.json").read_text())
    assert [p["files"] for p in report["flip_pairs"]] == [["a/photo.png", "a/photo_mirror.png"]]
    rej2 = _rejects(tmp_path / "out2")
    assert len(rej2) == 2 and rej2["a/design_half_q60.jpg"] == "near_duplicate"
    (one_of_the_two,) = {"a/photo.png", "a/photo_mirror.png"} & set(rej2)
    assert rej2[one_of_the_two] == "near_duplicate"
    assert not (tmp_path / "out" / "_reports" / "provenance.csv").exists()


def test_provenance_from_the_manifest_reported_and_recorded(tmp_path):
    from imgclf.records.manifest import Manifest, PostRecord
    from imgclf.records.provenance import read_provenance

    raw = tmp_path / "raw"
    (raw / "cat").mkdir(parents=True)
    pics = [_crop("china.jpg", x, y) for x, y in [(0, 0), (200, 0), (400, 200)]]
    base = "https://img.example"
    with Manifest(raw) as m:
        for k, im in enumerate(pics):
            im.save(raw / "cat" / f"c{k}.png")
            m.record_url(url=f"{base}/{k}.png", label="cat", kind="image", status="kept", path=f"cat/c{k}.png")
        shutil.copyfile(raw / "cat" / "c0.png", raw / "cat" / "c0_again.png")  # same picture, another file
        m.record_url(url=f"{base}/again.png", label="cat", kind="image", status="kept", path="cat/c0_again.png")
        m.record_post(PostRecord(post_id="p1", label="cat"), [f"{base}/0.png", f"{base}/1.png", f"{base}/again.png"])
        m.record_post(PostRecord(post_id="p2", label="cat"), [f"{base}/2.png"])
    s = clean_folder(raw, tmp_path / "out", CleanConfig(workers=1))
    report = json.loads((tmp_path / "out" / "_reports" / "clean_report.json").read_text())
    assert report["provenance"]["source"] == "_manifest.sqlite" and s.provenance_groups == 1
    (g,) = report["provenance"]["groups"]
    assert {f["file"]: f["status"] for f in g["files"]} == {
        "cat/c0.png": "kept",
        "cat/c0_again.png": "duplicate",
        "cat/c1.png": "kept",
    }
    assert g["links"] == ["post:p1"]
    rec = read_provenance(tmp_path / "out")
    assert set(rec) == {"cat/c0.png", "cat/c1.png", "cat/c2.png"}  # kept files only, under their output paths
    assert rec["cat/c0.png"].group == rec["cat/c1.png"].group != rec["cat/c2.png"].group


# ------------------------------------------------- map -> reduce -> apply, called one by one
def _entry(root: Path, rel: str):
    from imgclf.inputs import ImageEntry

    parts = rel.split("/")
    return ImageEntry(root / rel, rel, parts[0] if len(parts) > 1 else None)


def test_map_reads_a_real_png_and_names_what_is_wrong_with_the_others(tmp_path):
    from imgclf.clean.verify import ImageRecord, Unreadable, inspect_file

    (tmp_path / "a").mkdir()
    img = _crop("china.jpg", 0, 0, size=80)
    img.save(tmp_path / "a" / "photo.png")
    shutil.copyfile(DATA / "truncated.jpg", tmp_path / "a" / "cut.jpg")
    shutil.copyfile(DATA / "not_an_image.jpg", tmp_path / "a" / "page.jpg")
    cfg = CleanConfig()
    rec = inspect_file(_entry(tmp_path, "a/photo.png"), cfg, sha256=True)
    assert isinstance(rec, ImageRecord)
    assert (rec.rel, rec.label, rec.subset, rec.width, rec.height, rec.format) == (
        "a/photo.png",
        "a",
        None,
        80,
        80,
        "PNG",
    )
    assert rec.nbytes == (tmp_path / "a" / "photo.png").stat().st_size
    assert rec.sha256 == hashlib.sha256((tmp_path / "a" / "photo.png").read_bytes()).hexdigest()
    assert rec.status == "kept" and rec.group is None and rec.blur > 0 and 0 < rec.entropy <= 8
    assert len(rec.hash_hex) == 16 and rec.signature.size == (80, 80)
    assert inspect_file(_entry(tmp_path, "a/photo.png"), cfg).sha256 == ""  # only hashed when asked
    cut = inspect_file(_entry(tmp_path, "a/cut.jpg"), cfg)
    page = inspect_file(_entry(tmp_path, "a/page.jpg"), cfg)
    gone = inspect_file(_entry(tmp_path, "a/missing.png"), cfg)
    assert cut == Unreadable("a/cut.jpg", "a", None, "truncated", cut.detail) and cut.detail
    assert (page.reason, gone.reason) == ("not_an_image", "unreadable")


def test_map_runs_in_a_process_pool(tmp_path):
    """The map and its records pickle: a process pool (and so a cluster) can run it."""
    import functools

    from imgclf.clean.verify import inspect_file
    from imgclf.engine import make_executor

    (tmp_path / "a").mkdir()
    for k in range(3):
        _crop("flower.jpg", 60 * k, 0).save(tmp_path / "a" / f"{k}.png")
    entries = [_entry(tmp_path, f"a/{k}.png") for k in range(3)]
    fn = functools.partial(inspect_file, cfg=CleanConfig(), sha256=True)
    here = [fn(e) for e in entries]
    there = list(make_executor("local", 2, kind="process").map(fn, entries))
    assert [(r.rel, r.digest, r.sha256, r.hash_hex) for r in there] == [
        (r.rel, r.digest, r.sha256, r.hash_hex) for r in here
    ]
    assert all(np.array_equal(a.signature.gray, b.signature.gray) for a, b in zip(here, there))


def _records(root: Path, cfg: CleanConfig, sha256: bool = False) -> list:
    import functools

    from imgclf.clean.verify import inspect_file
    from imgclf.inputs import list_images

    return list(
        map(functools.partial(inspect_file, cfg=cfg, sha256=sha256), list_images(root, layout="classes").entries)
    )


def _listing(root: Path, out: str = "out"):
    from imgclf.clean.plan import CleanInput
    from imgclf.inputs import list_images

    listing = list_images(root, layout="classes")
    return CleanInput(
        src=str(root),
        out=out,
        classes=tuple(sorted({e.label for e in listing.entries})),
        strays=tuple(f.relative_to(root).as_posix() for f in listing.strays),
        files=len(listing.entries),
    )


def _plan_facts(plan) -> dict:
    return {
        "images": [(r.rel, r.label, r.status, r.detail, r.group) for r in plan.images],
        "set_aside": plan.set_aside,
        "dest": plan.dest,
        "copies": plan.copies(),
        "sources": sorted(plan.sources),
        "pairs": plan.pairs,
        "report": plan.report.model_dump(mode="json"),
    }


def test_reduce_is_pure_and_ignores_the_order_of_the_records(raw):
    import random

    from imgclf.clean.plan import plan_clean
    from imgclf.clean.verify import ImageRecord

    cfg = CleanConfig(flips=True)
    records = _records(raw, cfg)
    listing = _listing(raw)
    plan = plan_clean(listing, records, cfg)
    shuffled = records[::-1]
    random.Random(0).shuffle(shuffled)
    assert _plan_facts(plan_clean(listing, shuffled, cfg)) == _plan_facts(plan)
    assert {r.status for r in records if isinstance(r, ImageRecord)} == {"kept"}  # the map's records are unchanged
    # the same decisions the whole stage takes (test_copies_grouped_and_best_kept & co.)
    status = {r.rel: r.status for r in plan.images}
    assert status["cat/p0.png"] == "kept" and status["cat/p0_copy.png"] == "duplicate"
    assert status["cat/p0_small.png"] == "near_duplicate" and status["dog/blank.png"] == "near_uniform"
    assert {(s.file, s.reason) for s in plan.set_aside} >= {
        ("readme.txt", "not_in_class_folder"),
        ("cat/broken.jpg", "truncated"),
    }
    assert plan.report.total == 19 and plan.report.kept == len(plan.kept) == 9
    assert plan.report.label_conflicts[0].labels == ["cat", "dog"]


def test_reduce_orders_paths_as_the_lister_walks_them():
    from imgclf.clean.plan import path_key

    walked = ["readme.txt", "cat/a.png", "cat/z.png", "cat/sub/b.png", "cat-2/a.png", "dog/a.png"]
    assert sorted(reversed(walked), key=path_key) == walked


def test_reduce_replays_review_decisions(raw):
    from imgclf.clean.plan import plan_clean
    from imgclf.records.decisions import Decision

    cfg = CleanConfig()
    records = _records(raw, cfg, sha256=True)
    sha = {r.rel: r.sha256 for r in records if hasattr(r, "sha256")}
    t = "2026-01-01T00:00:00+00:00"
    decisions = [
        Decision(1, t, "reject", "cat/p2.png", "cat", None, "class:cat", sha["cat/p2.png"]),
        Decision(2, t, "relabel", "dog/p1_mislabeled.png", "dog", "cat", "conflicts", sha["dog/p1_mislabeled.png"]),
        Decision(3, t, "relabel", "dog/d3.png", "dog", "bird", "issues", sha["dog/d3.png"]),
        Decision(4, t, "undo", "dog/d3.png", "dog", "bird", "issues", sha["dog/d3.png"]),
    ]
    plan = plan_clean(_listing(raw), records, cfg, decisions)
    status = {r.rel: (r.label, r.status) for r in plan.images}
    assert status["cat/p2.png"] == ("cat", "manual")
    assert ("cat/p2.png", "_rejected/manual/cat/p2.png") in plan.copies()
    # relabelled to cat: it joins its twin's class, so the conflict becomes a plain duplicate
    assert status["dog/p1_mislabeled.png"][0] == "cat" and plan.report.label_conflicts == []
    kept = {r.rel for r in plan.kept}
    assert ("cat/p1.png" in kept) != ("dog/p1_mislabeled.png" in kept)
    assert plan.dest.get("dog/p1_mislabeled.png", "cat/p1_mislabeled.png") == "cat/p1_mislabeled.png"
    assert status["dog/d3.png"] == ("dog", "kept")  # undone
    dec = plan.report.decisions
    assert dec.database == "_reports/decisions.sqlite"
    assert dec.counts() == {
        "rows": 4,
        "rejected": 1,
        "relabelled": 1,
        "kept": 0,
        "undone": 1,
        "not_found": 0,
        "invalid": 0,
    }
    assert [(f.file, f.action, f.to) for f in dec.files] == [
        ("cat/p2.png", "reject", "_rejected/manual/cat/p2.png"),
        ("dog/p1_mislabeled.png", "relabel", "cat/p1_mislabeled.png"),
    ]


# --------------------------------------------------------------------------- typed records
def test_clean_records_round_trip_and_refuse_corrupt_or_newer_files(cleaned, tmp_path):
    from imgclf.records.clean import CleanReport, ImageTable, RejectTable

    _raw, out, s = cleaned
    report = CleanReport.load(out)
    assert report.schema_version == 1 and report.kept == s.kept and len(report.groups) == s.groups
    assert report.decisions.database is None and report.decisions.counts() == {}
    images, rejects = ImageTable.load(out), RejectTable.load(out)
    assert len(images) == 14 and {r.file for r in rejects} == set(_rejects(out))
    report.save(tmp_path)
    ImageTable.save(tmp_path, images)
    RejectTable.save(tmp_path, rejects)
    for name in ("clean_report.json", "images.csv", "rejects.csv"):
        assert (tmp_path / "_reports" / name).read_bytes() == (out / "_reports" / name).read_bytes(), name
    # written before schema versions (and before flip pairs, provenance and decisions): still read
    old = json.loads((out / "_reports" / "clean_report.json").read_text())
    for key in ("schema_version", "flip_pairs", "provenance", "decisions"):
        old.pop(key)
    (tmp_path / "_reports" / "clean_report.json").write_text(json.dumps(old))
    legacy = CleanReport.load(tmp_path)
    assert legacy.groups == report.groups and legacy.flip_pairs == [] and legacy.provenance.source is None
    for text, what in [
        ("{not json", "unreadable"),
        (json.dumps({**old, "schema_version": 99}), "schema version 99"),
        (json.dumps({**old, "groups": [{"group": "first"}]}), "invalid"),
    ]:
        (tmp_path / "_reports" / "clean_report.json").write_text(text)
        with pytest.raises(DataError, match=what) as err:
            CleanReport.load(tmp_path)
        assert "clean_report.json" in str(err.value)
    with open(tmp_path / "_reports" / "images.csv", newline="") as f:
        table = list(csv.DictReader(f))
    table[2]["blur"] = "blurry?"
    with open(tmp_path / "_reports" / "images.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(table[0]))
        w.writeheader()
        w.writerows(table)
    with pytest.raises(DataError, match=r"images\.csv line 4 is invalid"):
        ImageTable.load(tmp_path)
    (tmp_path / "_reports" / "rejects.csv").write_text("file,why\na,b\n")
    with pytest.raises(DataError, match=r"rejects\.csv lacks column\(s\) reason, detail"):
        RejectTable.load(tmp_path)


def test_provenance_record_round_trip(tmp_path):
    from imgclf.records.provenance import ProvenanceEntry, read_provenance, write_provenance

    assert read_provenance(tmp_path) is None
    entries = [ProvenanceEntry("b/2.png", "post:x", ("post:x",)), ProvenanceEntry("a/1.png", "url:u", ())]
    path = write_provenance(tmp_path, entries)
    assert path.read_text().splitlines() == ["file,group,links", "a/1.png,url:u,", "b/2.png,post:x,post:x"]
    assert read_provenance(tmp_path) == {e.file: e for e in entries}
    path.write_text("name,links\nx,y\n")
    with pytest.raises(DataError, match=r"provenance\.csv lacks column\(s\) file, group"):
        read_provenance(tmp_path)


def test_review_reads_the_clean_report_through_its_record(cleaned, tmp_path):
    from imgclf.review.data import ReviewData

    _raw, out, s = cleaned
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    data = ReviewData(folder)
    assert data.nav_counts()["duplicates"] == s.groups and data.nav_counts()["blurry"] == 14
    assert data.view_duplicates().total == s.groups
    assert data.view_blurry().total == 14
    report = folder / "_reports" / "clean_report.json"
    report.write_text(json.dumps({**json.loads(report.read_text()), "schema_version": 7}))
    with pytest.raises(DataError, match=r"clean_report\.json has schema version 7"):
        data.view_duplicates()
    assert data.nav_counts()["duplicates"] is None  # the navigation bar still renders
