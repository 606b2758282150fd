"""`imgclf prepare`: folders through the one input function, rejects, resume, the record."""

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
    from imgclf.clean.provenance import ProvenanceEntry, read_provenance, write_provenance

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
