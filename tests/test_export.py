"""`imgclf export`: ONNX / TFLite / SavedModel round trips with the parity check, and
`predict --model FILE` on the exported file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers_runs import make_run
from imgclf.cli.main import app
from imgclf.errors import ModelError
from imgclf.export import MIN_AGREEMENT, export_run
from imgclf.predict import predict_inputs
from imgclf.runtime import load_model

pytestmark = pytest.mark.slow


@pytest.fixture()
def run(tmp_path):
    return make_run(tmp_path)


@pytest.mark.parametrize("fmt, name", [("onnx", "model.onnx"), ("tflite", "model.tflite")])
def test_export_round_trip_with_parity(run, fmt, name):
    result = export_run(run, fmt)
    assert result.path == run / "export" / name and result.path.is_file()
    assert result.parity_source.endswith("test") and result.n_images == 18
    assert result.agreement >= MIN_AGREEMENT
    assert result.max_prob_diff < 1e-4
    meta = json.loads((run / "export" / f"{name}.json").read_text())
    assert meta["class_names"] == ["blue", "green", "red"] and meta["image_size"] == 16
    assert meta["parity"]["top1_agreement"] >= MIN_AGREEMENT
    # predict with the exported file gives the same answers as the run
    test_dir = run.parent / "data" / "test"
    ref = predict_inputs([test_dir], model=run)
    exp = predict_inputs([test_dir], model=result.path)
    assert [p.label for p in exp] == [p.label for p in ref]
    for a, b in zip(exp, ref):
        assert a.probability == pytest.approx(b.probability, abs=1e-4)


def test_export_saved_model_and_cli(run, tmp_path):
    out = tmp_path / "sm"
    res = CliRunner().invoke(app, ["export", str(run), "--format", "saved_model", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "saved_model.pb").is_file()
    assert "top-1 agreement 100.00%" in res.stderr
    img = run.parent / "data" / "test" / "red" / "red_000.png"
    res = CliRunner().invoke(app, ["predict", str(img), "--model", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["label"] == "red"


def test_unknown_format_is_one_line_error(run):
    res = CliRunner().invoke(app, ["export", str(run), "--format", "onx"])
    assert res.exit_code == 1
    assert "unknown export format 'onx'" in res.output and "onnx" in res.output
    with pytest.raises(ModelError):
        export_run(run, "coreml")


def test_parity_falls_back_to_random_images_without_test_split(run, tmp_path):
    import shutil

    shutil.rmtree(run.parent / "data")
    result = export_run(run, "onnx", out=tmp_path / "m.onnx")
    assert result.parity_source == "random" and result.n_images == 64
    assert result.agreement >= MIN_AGREEMENT


def test_exported_model_predicts_without_tensorflow(run):
    """The fast path: an .onnx / .tflite model never imports TensorFlow (cold start)."""
    onnx = export_run(run, "onnx").path
    tfl = export_run(run, "tflite").path
    img = run.parent / "data" / "test" / "green" / "green_002.png"
    code = (
        "import sys\n"
        "from imgclf.predict import predict_inputs\n"
        f"for m in ({str(onnx)!r}, {str(tfl)!r}):\n"
        f"    [p] = predict_inputs([{str(img)!r}], model=m)\n"
        "    print(p.label)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["green", "green", "False", "False"]


def test_exported_file_without_metadata_is_refused(run, tmp_path):
    path = export_run(run, "onnx").path
    moved = tmp_path / "lonely.onnx"
    moved.write_bytes(Path(path).read_bytes())
    with pytest.raises(ModelError, match="class names unknown"):
        load_model(moved)


def test_failed_parity_fails_loudly_and_keeps_the_previous_export(run):
    good = export_run(run, "tflite").path
    before = good.read_bytes()
    with pytest.raises(ModelError, match="FAILED the parity check") as err:
        export_run(run, "tflite", min_agreement=1.01)  # unreachable: agreement is at most 1
    assert "largest probability difference" in str(err.value)
    assert good.read_bytes() == before and (run / "export" / "model.tflite.json").is_file()
    # no temporary file left behind
    assert sorted(p.name for p in (run / "export").iterdir()) == ["model.tflite", "model.tflite.json"]
    with pytest.raises(ModelError, match="FAILED the parity check"):
        export_run(run, "onnx", min_agreement=1.01)
    assert not (run / "export" / "model.onnx").exists()


def test_predict_accepts_the_keras_file_of_a_run(run):
    img = run.parent / "data" / "test" / "blue" / "blue_003.png"
    [p] = predict_inputs([img], model=run / "best.keras")
    assert p.label == "blue"
