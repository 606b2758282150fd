"""The record `_reports/source_signatures.npz` (`imgclf.records.signatures`) on real pictures."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from imgclf.clean.similarity import signature, stack
from imgclf.errors import DataError
from imgclf.records.signatures import (
    ROW_LAYOUT,
    SOURCE_RECORD,
    Signatures,
    SourceSignatures,
    file_stamp,
    read_source_record,
    write_source_record,
)


def _photo(name: str = "china.jpg") -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name))


@pytest.fixture
def folder(tmp_path):
    """A prepared-like folder: two 64 px center crops of real photos, with their sources' signatures."""
    entries = {}
    for name in ("china.jpg", "flower.jpg"):
        src = _photo(name)
        rel = f"photo/{name[:-4]}.png"
        (tmp_path / "photo").mkdir(exist_ok=True)
        src.crop((106, 0, 533, 427)).resize((64, 64)).save(tmp_path / rel)
        entries[rel] = stack([signature(src)])
    return tmp_path, entries


def _assert_same(a: Signatures, b: Signatures) -> None:
    for name in ROW_LAYOUT:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


def test_round_trip(folder):
    root, entries = folder
    path = write_source_record(root, entries)
    assert path is not None and path == root / SOURCE_RECORD and path.is_file()
    got = read_source_record(root)
    assert sorted(got) == sorted(entries)
    for name, sig in entries.items():
        _assert_same(got[name], sig)
    rec = SourceSignatures.load(root)
    assert rec.names == ("photo/china.png", "photo/flower.png")
    assert rec.stamps.dtype == np.int64 and rec.stamps[0].tolist() == list(file_stamp(root / "photo/china.png"))
    with np.load(path) as z:
        assert int(z["schema_version"]) == SourceSignatures.SCHEMA


def test_changed_or_removed_files_are_dropped(folder):
    root, entries = folder
    write_source_record(root, entries)
    _photo().resize((64, 64)).save(root / "photo/china.png")  # replaced: another size / mtime
    os.utime(root / "photo/china.png", ns=(1, 1))
    assert list(read_source_record(root)) == ["photo/flower.png"]
    (root / "photo/flower.png").unlink()
    assert read_source_record(root) == {}
    assert SourceSignatures.load(root).names == ("photo/china.png", "photo/flower.png")  # the file itself is intact


def test_no_entries_removes_the_record_and_a_missing_record_is_empty(folder):
    root, entries = folder
    write_source_record(root, entries)
    assert write_source_record(root, {}) is None
    assert not (root / SOURCE_RECORD).exists()
    assert read_source_record(root) == {}
    assert SourceSignatures.load_optional(root) is None
    with pytest.raises(DataError, match="not found"):
        SourceSignatures.load(root)


def test_an_entry_must_be_one_row_and_a_file(folder):
    root, entries = folder
    two = Signatures.concat(list(entries.values()))
    with pytest.raises(ValueError, match="one row"):
        write_source_record(root, {"photo/china.png": two})
    with pytest.raises(OSError):
        write_source_record(root, {"photo/gone.png": entries["photo/china.png"]})


def test_old_file_without_version_loads(folder):
    # what imgclf wrote before the record had a schema version (same arrays, no schema_version)
    root, entries = folder
    names = sorted(entries)
    sigs = Signatures.concat([entries[n] for n in names])
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        names=np.array(names),
        stamps=np.array([file_stamp(root / n) for n in names], np.int64),
        **{k: getattr(sigs, k) for k in ROW_LAYOUT},
    )
    (root / "_reports").mkdir()
    (root / SOURCE_RECORD).write_bytes(buf.getvalue())
    got = read_source_record(root)
    assert sorted(got) == names
    _assert_same(got[names[1]], entries[names[1]])


def _rewrite(root, **changes) -> None:
    """Rewrites the record with some arrays replaced (or removed when None)."""
    path = root / SOURCE_RECORD
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path.write_bytes(buf.getvalue())


def test_newer_schema_is_refused(folder):
    root, entries = folder
    write_source_record(root, entries)
    _rewrite(root, schema_version=np.array(SourceSignatures.SCHEMA + 1))
    with pytest.raises(DataError, match="schema version 2; this imgclf reads up to 1") as e:
        read_source_record(root)
    assert SOURCE_RECORD in str(e.value) and "upgrade imgclf" in str(e.value)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("garbage", "unreadable"),
        ("truncated", "unreadable"),
        ("no_gray", "no gray"),
        ("short_codes", "codes: uint64"),
        ("names_mismatch", "digests"),
    ],
)
def test_corrupt_record_is_a_data_error(folder, damage, message):
    root, entries = folder
    path = write_source_record(root, entries)
    assert path is not None
    if damage == "garbage":
        path.write_bytes(b"not a numpy archive")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "no_gray":
        _rewrite(root, gray=None)
    elif damage == "short_codes":
        _rewrite(root, codes=np.zeros((2, 2), np.uint64))
    else:
        _rewrite(root, names=np.array(["photo/china.png", "photo/flower.png", "photo/other.png"]))
    with pytest.raises(DataError, match=message) as e:
        read_source_record(root)
    assert str(path) in str(e.value) and "delete the file" in str(e.value)


def test_record_is_a_zip_of_named_arrays(folder):
    # the file stays a plain NumPy archive other tools can open
    root, entries = folder
    path = write_source_record(root, entries)
    assert path is not None
    with zipfile.ZipFile(path) as z:
        assert {n[:-4] for n in z.namelist()} == {"names", "stamps", "schema_version", *ROW_LAYOUT}
