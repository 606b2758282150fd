"""`imgclf prepare`: folders through the one input function, rejects, resume, the record."""

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.config import PrepareConfig
from imgclf.errors import DataError
from imgclf.prepare import prepare_folder


def _stripes(w, h):
    """An image whose left third is red, middle green, right blue (so the crop is checkable)."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 3, 0] = 255
    a[:, w // 3 : 2 * w // 3, 1] = 255
    a[:, 2 * w // 3 :, 2] = 255
    return Image.fromarray(a)


def test_prepare_folder_modes_rejects_and_no_input_change(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    Image.new("L", (40, 30), 100).save(src / "a" / "gray.png")
    Image.new("RGBA", (30, 40), (0, 0, 0, 0)).save(src / "a" / "clear.png")
    Image.new("P", (64, 64)).save(src / "b" / "pal.gif")
    (src / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    res = prepare_folder(src, tmp_path / "out", PrepareConfig(size=16))
    assert res.kept == 3
    assert sum(res.rejected.values()) == 1 and set(res.rejected) <= {"truncated", "not_an_image"}
    outs = sorted((tmp_path / "out").glob("*/*.png"))
    assert [p.name for p in outs] == ["clear.png", "gray.png", "pal.png"]
    for p in outs:
        im = Image.open(p)
        assert im.size == (16, 16) and im.mode == "RGB"
    # transparent pixels composited on white, not black
    assert np.asarray(Image.open(tmp_path / "out" / "a" / "clear.png")).min() == 255
    assert "broken.jpg" in (tmp_path / "out" / "_reports" / "prepare_rejects.csv").read_text()
    assert before == {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    # rerun resumes: nothing rewritten
    res2 = prepare_folder(src, tmp_path / "out", PrepareConfig(size=16))
    assert res2.skipped_existing == 3
    assert not list((tmp_path / "out").rglob(".*tmp*"))


def test_prepare_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        prepare_folder(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        prepare_folder(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(DataError, match="inside"):
        prepare_folder(tmp_path / "empty", tmp_path / "empty" / "out")


def test_same_stem_different_extension_do_not_overwrite(tmp_path):
    src = tmp_path / "src" / "c"
    src.mkdir(parents=True)
    Image.new("RGB", (20, 20), (255, 0, 0)).save(src / "a.jpg")
    Image.new("RGB", (20, 20), (0, 0, 255)).save(src / "a.png")
    res = prepare_folder(tmp_path / "src", tmp_path / "out", PrepareConfig(size=8))
    assert res.kept == 2
    names = sorted(p.name for p in (tmp_path / "out" / "c").iterdir())
    assert names == ["a_jpg.png", "a_png.png"]


def test_provenance_record_is_carried_over_under_the_new_names(tmp_path):
    from imgclf.records.provenance import ProvenanceEntry, read_provenance, write_provenance

    src = tmp_path / "clean"
    (src / "a").mkdir(parents=True)
    _stripes(60, 40).save(src / "a" / "x.jpg", quality=95)
    _stripes(40, 60).save(src / "a" / "y.png")
    _stripes(50, 50).save(src / "a" / "z.png")
    write_provenance(
        src,
        [
            ProvenanceEntry("a/x.jpg", "post:p1", ("post:p1",)),
            ProvenanceEntry("a/y.png", "post:p1", ("post:p1", "url:https://e.x/y.png")),
            ProvenanceEntry("a/gone.png", "post:p9", ("post:p9",)),
        ],
    )  # not in the folder any more
    prepare_folder(src, tmp_path / "out", PrepareConfig(size=32, format="png"))
    rec = read_provenance(tmp_path / "out")
    assert set(rec) == {"a/x.png", "a/y.png"}
    assert rec["a/x.png"].group == rec["a/y.png"].group == "post:p1"
    assert rec["a/y.png"].links == ("post:p1", "url:https://e.x/y.png")
    prepare_folder(tmp_path / "out", tmp_path / "again", PrepareConfig(size=16))  # and on from there
    assert set(read_provenance(tmp_path / "again")) == {"a/x.png", "a/y.png"}
    plain = tmp_path / "plain"
    (plain / "a").mkdir(parents=True)
    _stripes(30, 30).save(plain / "a" / "p.png")
    prepare_folder(plain, tmp_path / "plain_out", PrepareConfig(size=16))
    assert read_provenance(tmp_path / "plain_out") is None  # no record when the input had none


# ------------------------------------------------------------------ map, reduce, records
DATA = Path(__file__).parent / "data"


def _task(tmp_path, name, k=0, **kw):
    from imgclf.prepare import PrepareTask

    src = tmp_path / "src" / "c"
    src.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / name, src / name)
    dest_rel = f"c/{Path(name).stem}.png"
    return PrepareTask(k, src / name, f"c/{name}", tmp_path / "out" / dest_rel, dest_rel, **kw)


def test_prepare_map_writes_one_file_and_returns_its_record(tmp_path):
    from imgclf.prepare import prepare_file
    from imgclf.prepare.resize import KEPT, WRITTEN

    task = _task(tmp_path, "rgb.jpg")
    cfg = PrepareConfig(size=32)
    rec = prepare_file(task, cfg=cfg)
    assert (rec.status, rec.dest_rel, rec.source_rel, rec.in_output) == (WRITTEN, "c/rgb.png", "c/rgb.jpg", True)
    assert rec.signature is None  # a 48 px square source: the 32 px file shows the detector the same picture
    with Image.open(task.dest) as im:
        assert im.size == (32, 32) and im.format == "PNG"
    assert [p.name for p in task.dest.parent.iterdir()] == ["rgb.png"]  # no temporary file left
    again = prepare_file(task, cfg=cfg)  # newer than its source: kept, not rewritten
    assert again.status == KEPT and again.in_output
    pickle.loads(pickle.dumps((task, rec)))  # items and records travel to other processes


def test_prepare_map_turns_a_truncated_file_into_a_record(tmp_path):
    from imgclf.prepare import prepare_file
    from imgclf.prepare.resize import REJECTED

    for name in ("truncated.jpg", "truncated.png", "not_an_image.jpg"):
        task = _task(tmp_path, name)
        rec = prepare_file(task, cfg=PrepareConfig(size=16))
        assert rec.status == REJECTED and rec.reason in {"truncated", "not_an_image"} and rec.detail, rec
        assert not rec.in_output and not task.dest.exists()


def test_prepare_map_signs_a_source_the_crop_cuts(tmp_path):
    from imgclf.prepare import prepare_file

    src = tmp_path / "src" / "c"
    src.mkdir(parents=True)
    _stripes(90, 40).save(src / "wide.png")
    from imgclf.prepare import PrepareTask

    task = PrepareTask(0, src / "wide.png", "c/wide.png", tmp_path / "out" / "c" / "wide.png", "c/wide.png")
    rec = prepare_file(task, cfg=PrepareConfig(size=16))
    assert rec.signature is not None and rec.signature.size == (90, 40)


def test_prepare_reduce_is_the_same_whatever_order_the_records_arrive_in(tmp_path):
    from imgclf.prepare import plan_prepare, prepare_file
    from imgclf.records.provenance import ProvenanceEntry

    cfg = PrepareConfig(size=16)
    tasks = [_task(tmp_path, n, k) for k, n in enumerate(["rgb.jpg", "truncated.png", "gray.png", "not_an_image.jpg"])]
    records = [prepare_file(t, cfg=cfg) for t in tasks]
    prov = {
        "c/rgb.jpg": ProvenanceEntry("c/rgb.jpg", "post:1", ("post:1",)),
        "c/gone.png": ProvenanceEntry("c/gone.png", "post:2"),
    }
    strays = [tmp_path / "src" / "loose.png"]
    plan = plan_prepare(records, strays, prov)
    assert (plan.kept, plan.skipped_existing) == (2, 0)
    assert (plan.rejects[0].file, plan.rejects[0].reason) == (str(strays[0]), "not_in_class_folder")
    assert [Path(r.file).name for r in plan.rejects[1:]] == ["truncated.png", "not_an_image.jpg"]  # listing order
    assert plan.provenance == [ProvenanceEntry("c/rgb.png", "post:1", ("post:1",))]  # renamed, gone left out
    shuffled = plan_prepare(list(reversed(records)), strays, prov)
    assert (shuffled.rejected, shuffled.rejects, shuffled.provenance) == (plan.rejected, plan.rejects, plan.provenance)
    assert list(shuffled.rejected) == list(plan.rejected)


def test_prepare_runs_on_a_process_pool(tmp_path):
    # the map and its items pickle: an executor of processes gives the files a thread pool gives
    from imgclf.engine import make_executor

    src = tmp_path / "src"
    for k, (w, h) in enumerate([(30, 20), (20, 30), (25, 25), (64, 40)]):
        (src / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        _stripes(w, h).save(src / f"c{k % 2}" / f"{k}.png")
    (src / "c0" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    threads = prepare_folder(src, tmp_path / "t", PrepareConfig(size=16))
    procs = prepare_folder(
        src, tmp_path / "p", PrepareConfig(size=16), executor=make_executor("local", 2, kind="process")
    )
    assert (procs.kept, procs.rejected) == (threads.kept, threads.rejected)
    assert procs.kept == 4 and sum(procs.rejected.values()) == 1
    for f in (tmp_path / "t").rglob("*.png"):
        assert f.read_bytes() == (tmp_path / "p" / f.relative_to(tmp_path / "t")).read_bytes()


def test_prepare_records_round_trip_and_refuse_corrupt_or_newer_files(tmp_path):
    import json

    from imgclf.inputs import InputSpec
    from imgclf.prepare import read_prepare_record, write_prepare_record
    from imgclf.records.prepare import PrepareRecord, PrepareReject, load_prepare_rejects, save_prepare_rejects

    spec = InputSpec(size=12, resize="pad", pad_color=(1, 2, 3))
    path = write_prepare_record(tmp_path, spec)
    assert read_prepare_record(tmp_path) == spec
    assert json.loads(path.read_text())["schema_version"] == PrepareRecord.SCHEMA
    old = {"input_spec": spec.model_dump(mode="json")}  # written before schema versions
    path.write_text(json.dumps(old, indent=2) + "\n")
    assert read_prepare_record(tmp_path) == spec
    assert read_prepare_record(tmp_path / "nowhere") is None
    path.write_text(json.dumps({**old, "schema_version": PrepareRecord.SCHEMA + 1}))
    with pytest.raises(DataError, match="schema version"):
        read_prepare_record(tmp_path)
    path.write_text('{"input_spec": {"size": 0}}')
    with pytest.raises(DataError, match="invalid"):
        read_prepare_record(tmp_path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        PrepareRecord.load(tmp_path)
    rows = [
        PrepareReject("src/a/x.jpg", "truncated", "image file is truncated"),
        PrepareReject("src/y.png", "not_in_class_folder", 'x, "y"'),
    ]
    assert load_prepare_rejects(tmp_path) == []
    save_prepare_rejects(tmp_path, rows)
    assert load_prepare_rejects(tmp_path) == rows
    (tmp_path / "_reports" / "prepare_rejects.csv").write_text("name,why\na,b\n")
    with pytest.raises(DataError, match="lacks column"):
        load_prepare_rejects(tmp_path)
