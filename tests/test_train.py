"""`imgclf train`: run directory, best weights, resume / continue, class weights, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras")

from helpers_loader_bug import BUG_MESSAGE, planted_loader_bug, write_planted_bug  # noqa: E402
from imgclf.config import TrainConfig  # noqa: E402
from imgclf.errors import ImgclfError  # noqa: E402
from imgclf.records.run import load_run_info, read_history  # noqa: E402
from imgclf.train import build_optimizer, compute_class_weights, train  # noqa: E402

SRC = str(Path(__file__).resolve().parents[1] / "src")


def make_split(root: Path, n_train=(10, 10, 10), n_val=4, size=16) -> Path:
    """Writes scikit-learn digits 0, 1, 2 as RGB PNGs into `root/{train,val}/<digit>/`."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * 255 / 16).astype(np.uint8)
    for c, n in enumerate(n_train):
        idx = np.flatnonzero(d.target == c)
        for split, ix in (("train", idx[:n]), ("val", idx[n : n + n_val])):
            folder = root / split / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in ix:
                img = Image.fromarray(images[i]).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
                img.save(folder / f"{i}.png")
    return root


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(model="cnn", model_options={"width": 8}, epochs=2, batch_size=8, augment={"flip": "none"})
    base.update(kw)
    return TrainConfig.model_validate(base)


def test_compute_class_weights_balanced():
    labels = np.array([0] * 30 + [1] * 10 + [2] * 20)
    w = compute_class_weights(labels, 3)
    assert w == pytest.approx({0: 60 / (3 * 30), 1: 60 / (3 * 10), 2: 60 / (3 * 20)})
    # weighted counts are equal: every class weighs the same in the loss
    assert 30 * w[0] == pytest.approx(10 * w[1]) == pytest.approx(20 * w[2])


@pytest.mark.parametrize(
    ("optimizer", "weight_decay", "expected"),
    [
        ("sgd", 0.5, 1 - 0.1 * 0.5),  # SGDW: w -= lr * wd * w, whatever the gradient
        ("sgd", 0.0, 1.0),
        ("adamw", 0.5, 1 - 0.1 * 0.5),
        ("adam", 0.5, 1.0),  # Adam takes no weight decay
    ],
)
def test_build_optimizer_applies_decoupled_weight_decay(optimizer, weight_decay, expected):
    opt = build_optimizer(tiny_cfg(optimizer=optimizer, weight_decay=weight_decay), 0.1)
    w = keras.Variable(np.ones(4, dtype="float32"))
    opt.apply_gradients([(keras.ops.zeros(4), w)])  # a zero gradient: only weight decay moves w
    assert keras.ops.convert_to_numpy(w) == pytest.approx(np.full(4, expected))
    if optimizer == "sgd":
        assert opt.nesterov and opt.momentum == 0.9


def test_train_writes_the_run_and_best_keras_is_the_best_epoch(tmp_path, capsys):
    data = make_split(tmp_path / "split", n_train=(24, 6, 12))
    run = train(data, tiny_cfg(epochs=3, learning_rate=0.01), run_dir=tmp_path / "run")
    err = capsys.readouterr().err
    assert "imbalanced" in err and "'0' has 24" in err and "class weights are on" in err
    for name in ("run.json", "best.keras", "last.keras", "history.csv", "training_curves.png"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("events.out.tfevents.*"))
    info = load_run_info(run)
    assert info.model == "cnn" and info.class_names == ["0", "1", "2"] and info.image_size == 16
    assert info.status == "finished" and info.input_spec.resize == "center_crop" and info.seed == 42
    assert info.config["epochs"] == 3 and "tensorflow" in info.versions
    hist = read_history(run)
    assert [int(r["epoch"]) for r in hist] == [0, 1, 2]
    best_i = int(np.argmin([r["val_loss"] for r in hist]))
    assert info.best_epoch == best_i + 1

    # best.keras is the epoch with the lowest val_loss, whether or not early stopping fired
    from imgclf.data import image_dataset
    from imgclf.inputs import list_images

    best = keras.models.load_model(run / "best.keras", compile=False)
    best.compile(loss="sparse_categorical_crossentropy")
    val = image_dataset(list_images(data / "val", class_names=info.class_names), info.input_spec, 8, shuffle=False)
    assert best.evaluate(val, verbose=0) == pytest.approx(hist[best_i]["val_loss"], rel=1e-4)


def test_class_weights_can_be_switched_off(tmp_path, capsys):
    data = make_split(tmp_path / "split", n_train=(20, 4, 8))
    train(data, tiny_cfg(epochs=1, class_weights=False, model="mlp", model_options={}), run_dir=tmp_path / "run")
    assert "class weights are OFF" in capsys.readouterr().err


def test_cli_raising_epochs_continues_a_finished_run(tmp_path):
    from typer.testing import CliRunner

    from imgclf.cli.main import app

    data = make_split(tmp_path / "split")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  model: cnn\n  model_options: {width: 8}\n  batch_size: 8\n  augment: {flip: none}\n")
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--config", str(cfg), "--run-dir", str(run)]
    r1 = CliRunner().invoke(app, [*args, "--epochs", "1"])
    assert r1.exit_code == 0, r1.output
    assert r1.stdout.strip().endswith(str(run))
    r2 = CliRunner().invoke(app, [*args, "--epochs", "2"])
    assert r2.exit_code == 0, r2.output
    assert [int(r["epoch"]) for r in read_history(run)] == [0, 1]
    r3 = CliRunner().invoke(app, [*args, "--epochs", "2"])  # nothing left to do
    assert r3.exit_code == 0, r3.output
    assert len(read_history(run)) == 2
    assert load_run_info(run).epochs_done == 2
    # a different model in the same run dir is refused, in one line
    r4 = CliRunner().invoke(app, [*args, "--epochs", "3", "--model", "mlp"])
    assert r4.exit_code == 1 and "different model 'cnn'" in r4.output and "Traceback" not in r4.output


def test_cli_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from imgclf.cli.main import app

    r = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--model", "xceptoin"])
    assert r.exit_code == 1 and "Did you mean 'xception'" in r.output and "Traceback" not in r.output
    data = make_split(tmp_path / "split")
    r = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "not found" in r.output
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--strategy", "ring"])
    assert r.exit_code == 1 and "strategy" in r.output


def test_a_loader_bug_stops_training_naming_the_file_and_keeps_the_traceback(tmp_path):
    """A bug in the per-image loader (here a Pillow plugin's, through the real opener) is not an
    unreadable image: training stops, naming the file and the exception, and does not quietly
    train on the other images."""
    data = make_split(tmp_path / "split")
    planted = write_planted_bug(data / "train" / "1" / "planted.bmp")
    run = tmp_path / "run"
    with planted_loader_bug(), pytest.raises(ImgclfError) as caught:
        train(data, tiny_cfg(epochs=1), run_dir=run)
    message = str(caught.value)
    assert str(planted) in message and "ValueError" in message and BUG_MESSAGE in message
    assert "\n" not in caught.value.message  # one line
    log = run / "errors.log"
    assert str(log) in message  # the hint says where the traceback is
    kept = log.read_text()
    assert "Traceback (most recent call last)" in kept and BUG_MESSAGE in kept and "to_rgb" in kept
    assert not (run / "train_rejects.csv").exists()  # a bug is not a reject
    assert load_run_info(run).status == "running"  # not "finished"


def test_cli_a_loader_bug_is_one_line_and_an_unreadable_image_is_a_reject(tmp_path):
    from typer.testing import CliRunner

    from imgclf.cli.main import app

    data = make_split(tmp_path / "split")
    (data / "train" / "2" / "broken.png").write_bytes(b"<html>not an image</html>")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  model: cnn\n  model_options: {width: 8}\n  batch_size: 8\n  augment: {flip: none}\n")
    args = ["train", "--data", str(data), "--config", str(cfg), "--epochs", "1"]
    ok = CliRunner().invoke(app, [*args, "--run-dir", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert "train/2/broken.png,not_an_image" in (tmp_path / "ok" / "train_rejects.csv").read_text()
    write_planted_bug(data / "val" / "0" / "planted.bmp")
    with planted_loader_bug():
        r = CliRunner().invoke(app, [*args, "--run-dir", str(tmp_path / "bug")])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    error = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "planted.bmp" in error[0] and "ValueError" in error[0], r.output
    assert BUG_MESSAGE in (tmp_path / "bug" / "errors.log").read_text()


def test_help_does_not_import_tensorflow():
    code = (
        "import sys; from typer.testing import CliRunner; from imgclf.cli.main import app\n"
        "for cmd in ('train', 'models', 'augment-preview'):\n"
        "    r = CliRunner().invoke(app, [cmd, '--help']); assert r.exit_code == 0, r.output\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": SRC})


@pytest.mark.slow
def test_models_command_lists_every_model():
    from typer.testing import CliRunner

    from imgclf.cli.main import app

    r = CliRunner().invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["name"] for x in rows] == ["mlp", "cnn", "vgg", "peetznet", "densenet201", "xception"]
    by = {x["name"]: x for x in rows}
    assert by["xception"]["default_size"] == 299 and by["densenet201"]["params"] > 18_000_000
    assert all(x["params"] > 0 and x["preprocessing"] for x in rows)


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_where_it_stopped(tmp_path):
    data = make_split(tmp_path / "split")
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "imgclf",
        "train",
        "--data",
        str(data),
        "--run-dir",
        str(run),
        "--epochs",
        "40",
        "--batch-size",
        "8",
        "--no-class-weights",
    ]
    env = {**os.environ, "PYTHONPATH": SRC, "IMGCLF_QUIET": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = run / "backup" / "phase1" / "training_metadata.json"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if meta.is_file() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 2:
                break
            assert proc.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no epoch finished in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = json.loads(meta.read_text())["epoch"]
    assert load_run_info(run).status == "running"
    # rerun with the same run dir: starts at the saved epoch, not at 0
    train(
        data,
        tiny_cfg(epochs=saved + 1, model_options={}, batch_size=8, class_weights=False, augment={"flip": "horizontal"}),
        run_dir=run,
    )
    epochs = [int(r["epoch"]) for r in read_history(run)]
    assert epochs == list(range(saved + 1))
    assert load_run_info(run).status == "finished"


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["default", "multiworker"])  # model.fit, and imgclf.train_loop
def test_pretrained_two_phase_fine_tuning_from_a_local_weights_file(tmp_path, strategy):
    data = make_split(tmp_path / "split", n_train=(4, 4, 4), n_val=2, size=71)
    ref = keras.applications.Xception(include_top=False, weights=None, input_shape=(71, 71, 3))
    wfile = tmp_path / "xception_notop.weights.h5"
    ref.save_weights(wfile)
    cfg = tiny_cfg(
        model="xception",
        model_options={},
        weights=str(wfile),
        epochs=1,
        fine_tune_epochs=1,
        fine_tune_layers=12,
        batch_size=4,
        strategy=strategy,
    )
    run = train(data, cfg, run_dir=tmp_path / "run")
    assert [int(r["epoch"]) for r in read_history(run)] == [0, 1]
    state = json.loads((run / "train_state.json").read_text())
    assert state["phases"] == {"1": 1, "2": 2}
    last = keras.models.load_model(run / "last.keras", compile=False)  # after phase 2
    trainable = {layer.name for layer in last.layers if layer.trainable and layer.weights}
    assert {"predictions"} <= trainable and "block14_sepconv2" in trainable
    assert "block1_conv1" not in trainable  # below the top 12 layers: still frozen
    assert not any(isinstance(layer, keras.layers.BatchNormalization) and layer.trainable for layer in last.layers)
    # the frozen early layers still hold the weights of the local file
    np.testing.assert_array_equal(
        last.get_layer("block1_conv1").get_weights()[0], ref.get_layer("block1_conv1").get_weights()[0]
    )
    bn = last.get_layer("block14_sepconv2_bn").get_weights()
    for a, b in zip(bn, ref.get_layer("block14_sepconv2_bn").get_weights()):
        np.testing.assert_array_equal(a, b)  # BatchNorm kept in inference mode: statistics untouched


_SCALE_OUT = r"""
import sys, json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from imgclf.config import TrainConfig
from imgclf.records.run import read_history
from imgclf.train import make_strategy, train
from imgclf.records.run import load_run_info
data, out = sys.argv[1], sys.argv[2]
res = {"replicas": make_strategy("mirrored").num_replicas_in_sync}
base = dict(model="cnn", model_options={"width": 8}, epochs=1, batch_size=8, augment={"flip": "none"})
for name, extra in [("mirrored", dict(strategy="mirrored", mixed_precision=True)),
                    ("det1", dict(deterministic=True, jit=True, epochs=2)),
                    ("det2", dict(deterministic=True, jit=True, epochs=2))]:
    run = train(data, TrainConfig.model_validate({**base, **extra}), run_dir=f"{out}/{name}")
    info = load_run_info(run)
    res[name] = {"status": info.status, "policy": info.precision_policy,
                 "loss": [r["loss"] for r in read_history(run)]}
print("RESULT" + json.dumps(res))
"""


@pytest.mark.slow
def test_strategies_mixed_precision_jit_and_determinism_on_two_logical_cpus(tmp_path):
    """Logical devices must be configured before TensorFlow initializes: a fresh interpreter.
    (`--strategy multiworker` is tested by tests/test_multiworker.py, on a real cluster.)"""
    data = make_split(tmp_path / "split")
    env = {**os.environ, "PYTHONPATH": SRC, "IMGCLF_QUIET": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    # Two logical CPU replicas running oneDNN kernels at once abort TensorFlow 2.21 with heap
    # corruption ("free(): invalid next size") on some hosts (Xeon family 6 model 207, with or
    # without imgclf's fused batch norm); Eigen's kernels run the same code path cleanly.
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    out = subprocess.run(
        [sys.executable, "-c", _SCALE_OUT, str(data), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.split("RESULT", 1)[1])
    assert res["replicas"] == 2
    assert res["mirrored"]["policy"] == "mixed_bfloat16"
    assert all(res[k]["status"] == "finished" for k in ("mirrored", "det1"))
    assert all(np.isfinite(res[k]["loss"]).all() for k in ("mirrored", "det1"))
    assert res["det1"]["loss"] == res["det2"]["loss"]  # --deterministic (+ --jit) + same seed: same numbers


def test_ema_checkpoints_hold_the_moving_average_that_was_validated(tmp_path):
    """With `ema_momentum` the saved models are the weights' moving average, not the last step's
    weights, and the val_loss logged is that of the saved model."""
    data = make_split(tmp_path / "split")
    plain = train(data, tiny_cfg(epochs=2, learning_rate=0.05, deterministic=True), run_dir=tmp_path / "plain")
    ema = train(
        data, tiny_cfg(epochs=2, learning_rate=0.05, deterministic=True, ema_momentum=0.9), run_dir=tmp_path / "ema"
    )
    assert load_run_info(ema).config["ema_momentum"] == 0.9
    a = keras.models.load_model(plain / "last.keras", compile=False)
    b = keras.models.load_model(ema / "last.keras", compile=False)
    # Same seed, data and steps: the trained weights follow the same path, so only the averaging
    # can make the EMA run's saved kernels differ from the plain run's.
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a.get_weights(), b.get_weights()))
    assert diff > 1e-3

    from imgclf.data import image_dataset
    from imgclf.inputs import list_images

    info = load_run_info(ema)
    hist = read_history(ema)
    best = keras.models.load_model(ema / "best.keras", compile=False)
    best.compile(loss="sparse_categorical_crossentropy")
    val = image_dataset(list_images(data / "val", class_names=info.class_names), info.input_spec, 8, shuffle=False)
    assert best.evaluate(val, verbose=0) == pytest.approx(hist[info.best_epoch - 1]["val_loss"], rel=1e-4)
