"""The whole pipeline on a small real digits subset: nothing -> run directory -> metrics -> prediction."""

import json

import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app

runner = CliRunner()


def _config(tmp_path, **train):
    train_yaml = "\n".join(f"  {k}: {v}" for k, v in {"model": "cnn", "epochs": 2, "batch_size": 32, **train}.items())
    cfg = tmp_path / "e2e.yaml"
    cfg.write_text(
        f"""
name: e2e
data_dir: {tmp_path / 'data'}
models_dir: {tmp_path / 'models'}
seed: 1
source:
  dataset: {{name: digits, limit_per_class: 30}}
prepare: {{size: 16}}
train:
{train_yaml}
  augment: {{flip: none}}
"""
    )
    return cfg


@pytest.mark.slow
def test_run_digits_end_to_end(tmp_path):
    res = runner.invoke(app, ["run", str(_config(tmp_path))])
    assert res.exit_code == 0, res.output + repr(res.exception)
    data = tmp_path / "data"
    assert len(list((data / "raw").glob("*/*.png"))) == 300
    for split in ("train", "val", "test"):
        classes = sorted(p.name for p in (data / "split" / split).iterdir() if p.is_dir())
        assert classes == [str(i) for i in range(10)], split
    n_split = sum(len(list((data / "split" / s).glob("*/*.png"))) for s in ("train", "val", "test"))
    n_clean = len([p for p in (data / "clean").glob("*/*.png") if not p.parent.name.startswith("_")])
    assert n_split == n_clean  # nothing lost between clean and split
    run = tmp_path / "models" / "e2e"
    for name in ("best.keras", "run.json", "history.csv", "metrics.json"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("accuracy", "loss", "precision_macro", "recall_macro", "f1_macro", "per_class"):
        assert key in metrics
    assert 0.0 <= metrics["accuracy"] <= 1.0
    info = json.loads((run / "run.json").read_text())
    assert info["class_names"] == [str(i) for i in range(10)] and info["image_size"] == 16
    assert list(run.glob("*.png")), "plots written"
    # predict reads size and class names back from the run directory
    img = next((data / "split" / "test" / "3").glob("*.png"))
    res = runner.invoke(app, ["predict", str(img), "--model", str(run), "--json", "--top-k", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("[") :] if res.stdout.lstrip().startswith("[") else res.stdout)
    assert out, out


@pytest.mark.slow
def test_run_rejects_unknown_model_before_any_work(tmp_path):
    res = runner.invoke(app, ["run", str(_config(tmp_path)), "--model", "xceptoin", "--stages", "train"])
    assert res.exit_code == 1
    assert "xception" in res.output and "Traceback" not in res.output


def test_run_with_too_few_images_per_class_is_a_clear_error(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        f"""
data_dir: {tmp_path / 'data'}
models_dir: {tmp_path / 'models'}
source: {{dataset: {{name: digits, limit_per_class: 1}}}}
prepare: {{size: 8}}
stages: [scrape, clean, prepare, split]
"""
    )
    res = runner.invoke(app, ["run", str(cfg)])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert "class" in res.output.lower()
