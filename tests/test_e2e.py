"""The whole pipeline on a small real digits subset: nothing -> run directory -> metrics -> prediction."""

import json

import pytest
from typer.testing import CliRunner

from imgclf.cli.main import app

runner = CliRunner()


def _config(tmp_path, **train):
    recipe = {
        "model": "cnn",
        "model_options": "{width: 16}",
        "epochs": 8,
        "batch_size": 16,
        "optimizer": "adamw",
        "learning_rate": 0.003,
        "schedule": "cosine",
        **train,
    }
    train_yaml = "\n".join(f"  {k}: {v}" for k, v in recipe.items())
    cfg = tmp_path / "e2e.yaml"
    cfg.write_text(
        f"""
name: e2e
data_dir: {tmp_path / "data"}
models_dir: {tmp_path / "models"}
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
    # 210 training images of 8x8 digits at 16 px: this recipe scores 0.975 on the 40 test
    # images (2026-12-01); a floor well below that still catches a broken pipeline (chance: 0.1)
    assert metrics["accuracy"] >= 0.85, metrics["accuracy"]
    assert metrics["n_images"] == 40 and metrics["set_aside"]["count"] == 0
    # the fair-test record: which 40 files, and how far the accuracy could move on another 40
    assert len(metrics["fingerprint"]["sha256"]) == 64 and metrics["fingerprint"]["n_files"] == 40
    ci = metrics["confidence_intervals"]["metrics"]["accuracy"]
    assert ci["low"] <= metrics["accuracy"] <= ci["high"]
    assert len((run / "predictions.csv").read_text().splitlines()) == 1 + 40
    info = json.loads((run / "run.json").read_text())
    assert info["class_names"] == [str(i) for i in range(10)] and info["image_size"] == 16
    assert list(run.glob("*.png")), "plots written"
    # predict reads size and class names back from the run directory: a known zero is a zero
    img = sorted((data / "split" / "test" / "0").glob("*.png"))[0]
    res = runner.invoke(app, ["predict", str(img), "--model", str(run), "--json", "--top-k", "2"])
    assert res.exit_code == 0, res.output
    [out] = json.loads(res.stdout)
    assert out["label"] == "0" and out["probability"] > 0.5, out
    assert out["top_k"][0]["label"] == "0" and len(out["top_k"]) == 2


@pytest.mark.slow
def test_run_rejects_unknown_model_before_any_work(tmp_path):
    res = runner.invoke(app, ["run", str(_config(tmp_path)), "--model", "xceptoin", "--stages", "train"])
    assert res.exit_code == 1
    assert "xception" in res.output and "Traceback" not in res.output


def test_run_with_too_few_images_per_class_is_a_clear_error(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        f"""
data_dir: {tmp_path / "data"}
models_dir: {tmp_path / "models"}
source: {{dataset: {{name: digits, limit_per_class: 1}}}}
prepare: {{size: 8}}
stages: [scrape, clean, prepare, split]
"""
    )
    res = runner.invoke(app, ["run", str(cfg)])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert "class" in res.output.lower()
