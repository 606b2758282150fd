"""`imgclf train --strategy multiworker`: a real cluster of two `imgclf train` processes on
127.0.0.1 (TF_CONFIG, free ports), the custom loop's promises in one process, TF_CONFIG parsing,
sharded pipelines, start-up and lost-worker errors, kill -9 and resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from imgclf.cluster import Cluster, read_cluster  # noqa: E402
from imgclf.errors import ConfigError  # noqa: E402
from imgclf.records.run import load_run_info, read_history  # noqa: E402
from imgclf.train import train  # noqa: E402
from test_train import make_split, tiny_cfg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
DIGITS = ROOT / "configs" / "digits.yaml"


# ---------------------------------------------------------------------------- helpers
def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (bound together, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )


class Worker:
    """One `python -m imgclf train` process of a cluster, with its own empty working folder."""

    def __init__(self, cwd: Path, ports: list[int], index: int, args: list[str]):
        cwd.mkdir(parents=True, exist_ok=True)
        self.cwd, self.index = cwd, index
        self.err_path = cwd.parent / f"{cwd.name}.stderr"
        env = {
            **os.environ,
            "PYTHONPATH": SRC,
            "IMGCLF_QUIET": "1",
            "TF_CONFIG": tf_config(ports, index),
        }
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI's own choice for multiworker
        cmd = [sys.executable, "-m", "imgclf", "train", "--strategy", "multiworker", *args]
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)

    def stop(self) -> None:
        """Kills the process if it is still running (a failed test leaves none behind)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"worker {self.index} still running after {timeout:.0f} s:\n{self.stderr[-2000:]}")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def cluster(root: Path, name: str, args: list[str], n: int = 2) -> list[Worker]:
    ports = free_ports(n)
    return [Worker(root / f"{name}-w{i}", ports, i, args) for i in range(n)]


def backup_epoch(run: Path) -> int:
    meta = run / "backup" / "phase1" / "training_metadata.json"
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


# ---------------------------------------------------------------------------- pure parts
def test_read_cluster_from_tf_config():
    assert read_cluster({}) is None
    one = json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}})
    assert read_cluster({"TF_CONFIG": one}) is None  # one task: plain single-process training
    c = read_cluster({"TF_CONFIG": tf_config([1, 2, 3], 2)})
    assert c == Cluster(("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"), 2)
    assert c.num_workers == 3 and not c.is_chief and c.leader == "/job:worker/replica:0/task:0"
    assert c.describe() == "worker 2 (127.0.0.1:3)"
    with_chief = {"cluster": {"chief": ["c:0"], "worker": ["w:1", "w:2"]}, "task": {"type": "worker", "index": 1}}
    c = read_cluster({"TF_CONFIG": json.dumps(with_chief)})
    assert c.workers == ("c:0", "w:1", "w:2") and c.index == 2 and c.tasks == ["chief:0", "worker:0", "worker:1"]
    assert c.leader == "/job:chief/replica:0/task:0"


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        json.dumps({"cluster": {"worker": ["a:1", "b:2"]}}),
        json.dumps({"cluster": {"worker": ["a:1", "b:2"], "ps": ["p:3"]}, "task": {"type": "worker", "index": 0}}),
        json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}),
    ],
)
def test_a_bad_tf_config_is_a_config_error(raw):
    with pytest.raises(ConfigError) as caught:
        read_cluster({"TF_CONFIG": raw})
    assert "TF_CONFIG" in str(caught.value) and "\n" not in caught.value.message


def test_shards_partition_the_training_files(tmp_path):
    """Each worker's pipeline loads its own shard; together the shards are the split, once."""
    from imgclf.data import image_dataset
    from imgclf.inputs import InputSpec, list_images

    data = make_split(tmp_path / "split", n_train=(5, 4, 4), size=8)
    listing = list_images(data / "train", layout="classes")
    rejects: dict = {}
    seen = []
    for index in range(3):
        ds = image_dataset(listing, InputSpec(size=8), 2, shuffle=True, shard=(3, index), rejects=rejects)
        seen.append(sorted(int(y) for _, labels in ds.as_numpy_iterator() for y in labels))
    assert sum(len(s) for s in seen) == len(listing) == 13
    assert sorted(y for s in seen for y in s) == sorted(listing.labels.tolist())
    # repeated with full batches only: any number of steps, every batch of the same size
    ds = image_dataset(listing, InputSpec(size=8), 4, shuffle=True, shard=(3, 1), repeat=True, drop_remainder=True)
    assert [len(y) for _, y in ds.take(7).as_numpy_iterator()] == [4] * 7


# ------------------------------------------------------------- the loop, in one process
def _val_loss_of_best(run: Path, data: Path, smoothing: float = 0.0) -> float:
    import tensorflow as tf

    from imgclf.data import image_dataset
    from imgclf.inputs import list_images

    info = load_run_info(run)
    best = keras.models.load_model(run / "best.keras", compile=False)
    best.compile(
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        if smoothing
        else "sparse_categorical_crossentropy"
    )
    val = image_dataset(list_images(data / "val", class_names=info.class_names), info.input_spec, 8, shuffle=False)
    if smoothing:
        val = val.map(lambda x, y: (x, tf.one_hot(y, info.num_classes)))
    return best.evaluate(val, verbose=0)


def _expected_plateau(val_losses: list[float], lr: float, patience: int, factor: float) -> list[float]:
    """The learning rate of each epoch under Keras' ReduceLROnPlateau (min_delta 1e-4, mode min)."""
    out, best, wait = [], float("inf"), 0
    for v in val_losses:
        out.append(lr)
        if v < best - 1e-4:
            best, wait = v, 0
        else:
            wait += 1
            if wait >= patience:
                lr, wait = lr * factor, 0
    return out


def test_custom_loop_plateau_early_stopping_class_weights(tmp_path):
    """`--strategy multiworker` without TF_CONFIG: one worker through the custom loop, with the
    callbacks of `model.fit`: ReduceLROnPlateau halves the rate, early stopping fires and
    restores the best weights, and best.keras is the epoch logged with the lowest val_loss."""
    data = make_split(tmp_path / "split", n_train=(24, 6, 12))
    cfg = tiny_cfg(
        strategy="multiworker",
        epochs=12,
        learning_rate=0.2,
        lr_patience=1,
        early_stopping_patience=2,
        deterministic=True,
    )
    run = train(data, cfg, run_dir=tmp_path / "run")
    hist = read_history(run)
    info = load_run_info(run)
    assert info.distribution.loop == "custom" and info.distribution.workers == 1
    assert info.distribution.steps_per_epoch == 6 and info.distribution.global_batch_size == 8  # ceil(42 / 8)
    val_losses = [r["val_loss"] for r in hist]
    lrs = [r["learning_rate"] for r in hist]
    assert lrs == pytest.approx(_expected_plateau(val_losses, 0.2, 1, cfg.lr_factor))
    assert min(lrs) < 0.2  # ReduceLROnPlateau fired
    best_i = int(np.argmin(val_losses))
    assert len(hist) < 12 and len(hist) - 1 - best_i == 2  # early stopping after 2 epochs without gain
    assert info.best_epoch == best_i + 1
    assert _val_loss_of_best(run, data) == pytest.approx(val_losses[best_i], rel=1e-4)
    assert any((run / "logs").rglob("events.out.tfevents.*"))


def test_custom_loop_ema_label_smoothing_cosine_mixed_precision(tmp_path):
    data = make_split(tmp_path / "split")
    cfg = tiny_cfg(
        strategy="multiworker",
        epochs=3,
        ema_momentum=0.9,
        label_smoothing=0.1,
        schedule="cosine",
        warmup_epochs=1,
        mixed_precision=True,
        steps_per_execution=2,
    )
    run = train(data, cfg, run_dir=tmp_path / "run")
    info = load_run_info(run)
    hist = read_history(run)
    assert info.precision_policy == "mixed_bfloat16"
    # the learning rate per global step: warmup to 1e-3 over epoch 1, cosine to 0 at the end
    assert [r["learning_rate"] for r in hist] == pytest.approx([1e-3, 5e-4, 0.0], abs=1e-6)
    # the saved model is the moving average that was validated
    assert _val_loss_of_best(run, data, 0.1) == pytest.approx(hist[info.best_epoch - 1]["val_loss"], rel=1e-4)


def test_tf_config_with_several_workers_needs_multiworker(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from imgclf.cli.main import app

    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2], 0))
    r = CliRunner().invoke(app, ["train", "--data", str(tmp_path)])
    assert r.exit_code == 1 and "TF_CONFIG names 2 workers" in r.output and "--strategy multiworker" in r.output
    assert "Traceback" not in r.output


# ------------------------------------------------------------ a real two-worker cluster
@pytest.fixture(scope="module")
def digits_cluster(tmp_path_factory):
    """The digits demo's data, then its training (configs/digits.yaml) by two workers."""
    root = tmp_path_factory.mktemp("mw")
    env = {**os.environ, "PYTHONPATH": SRC, "IMGCLF_QUIET": "1"}
    env.pop("TF_CONFIG", None)
    stages = ["run", str(DIGITS), "--stages", "scrape,clean,prepare,split", "--data-dir", str(root / "digits")]
    subprocess.run([sys.executable, "-m", "imgclf", *stages], env=env, check=True, capture_output=True)
    split = root / "digits" / "split"
    broken = _plant_unreadable_on_worker_1(split)
    run = root / "run"
    t = time.monotonic()
    workers = cluster(root, "digits", ["--data", str(split), "--config", str(DIGITS), "--run-dir", str(run)])
    try:
        codes = [w.wait(1200) for w in workers]
    finally:
        for w in workers:
            w.stop()
    return {
        "root": root,
        "split": split,
        "run": run,
        "workers": workers,
        "codes": codes,
        "broken": broken,
        "seconds": time.monotonic() - t,
    }


def _plant_unreadable_on_worker_1(split: Path) -> str:
    """An unreadable file in train/ whose listing index is odd: worker 1's shard."""
    from imgclf.inputs import list_images

    for k in range(0, 1800, 37):
        path = split / "train" / "3" / f"digits_{k:04d}_broken.png"  # sorts among the digits' own files
        path.write_bytes(b"<html>not an image</html>")
        rels = [e.rel for e in list_images(split / "train", layout="classes").entries]
        rel = next(r for r in rels if str(r).endswith(path.name))
        if rels.index(rel) % 2 == 1:
            return f"train/{rel}"
        path.unlink()
    raise AssertionError("no odd index found")


def _last_epoch_logs(stderr: str) -> str:
    """The logs of a worker's `epoch 40/40 (Ns): ...` line (which the console may wrap), its
    seconds left out."""
    text = " ".join(stderr.split())
    at = text.rfind("epoch 40/40")
    return re.sub(r"\(\d+s\): ", "", text[at : text.find("learning_rate", at)]) if at >= 0 else ""


@pytest.mark.slow
def test_two_workers_train_one_model_into_one_run_folder(digits_cluster):
    c = digits_cluster
    for w, code in zip(c["workers"], c["codes"]):
        assert code == 0, w.stderr[-3000:]
        assert "Traceback" not in w.stderr
    run = c["run"]
    for name in ("run.json", "best.keras", "last.keras", "history.csv", "training_curves.png", "train_state.json"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("events.out.tfevents.*")) and (run / "backup" / "phase1").is_dir()
    info = load_run_info(run)
    assert info.status == "finished" and info.epochs_done == 40
    d = info.distribution
    assert (d.workers, d.replicas, d.global_batch_size, d.per_replica_batch_size, d.loop) == (2, 2, 64, 32, "custom")
    assert d.steps_per_epoch == 20  # ceil(1259 / 64) global steps, what the cosine schedule counts
    assert [int(r["epoch"]) for r in read_history(run)] == list(range(40))
    # only the chief wrote: worker 1's working folder is empty, and nothing else appeared
    assert list((c["root"] / "digits-w1").iterdir()) == []
    assert list((c["root"] / "digits-w0").iterdir()) == []
    assert sorted(p.name for p in c["root"].iterdir() if p.is_dir()) == ["digits", "digits-w0", "digits-w1", "run"]
    # the unreadable file of worker 1's shard is in the chief's train_rejects.csv
    assert f"{c['broken']},not_an_image" in (run / "train_rejects.csv").read_text()
    # both workers ended on the same epochs and logs (the epoch's seconds aside)
    last = [_last_epoch_logs(w.stderr) for w in c["workers"]]
    assert "val_accuracy" in last[0] and last[0] == last[1]
    print(f"two-worker digits training: {c['seconds']:.0f} s")


@pytest.mark.slow
def test_a_multiworker_run_evaluates_predicts_exports_and_compares_like_any_other(digits_cluster, tmp_path):
    from typer.testing import CliRunner

    from imgclf.cli.main import app

    run, split = digits_cluster["run"], digits_cluster["split"]
    runner = CliRunner()
    r = runner.invoke(app, ["evaluate", str(run), "--data", str(split)])
    assert r.exit_code == 0, r.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.97, metrics["accuracy"]
    image = next((split / "test" / "7").glob("*.png"))
    r = runner.invoke(app, ["predict", str(image), "--model", str(run), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["label"] == "7"
    r = runner.invoke(app, ["export", str(run), "--format", "onnx"])
    assert r.exit_code == 0, r.output
    assert (run / "export" / "model.onnx").is_file()
    twin = tmp_path / "twin"
    shutil.copytree(run, twin)
    r = runner.invoke(app, ["compare", str(run), str(twin), "--out", str(tmp_path / "cmp")], terminal_width=400)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cmp" / "leaderboard.csv").is_file()


_SAME_WEIGHTS = r"""
import hashlib, json
import numpy as np
from imgclf.cluster import Collectives, read_cluster, start_strategy
cluster = read_cluster()
strategy = start_strategy(cluster, start_timeout=120, heartbeat_timeout=30)
import keras, tensorflow as tf
from imgclf.models import create_model
from imgclf.train_loop import LoopPlan, run_loop
def digest(model):
    return hashlib.sha256(b"".join(np.asarray(v.numpy()).tobytes() for v in model.variables)).hexdigest()
keras.utils.set_random_seed(cluster.index)  # another seed on each worker
with strategy.scope():
    model = create_model("cnn", num_classes=3, input_shape=(8, 8, 3), width=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
start = digest(model)
rng = np.random.default_rng(cluster.index)  # and other data
x, y = rng.integers(0, 256, (64, 8, 8, 3)).astype("float32"), rng.integers(0, 3, 64)
def shard(ctx):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
    return ds.batch(ctx.get_per_replica_batch_size(16), drop_remainder=True)
batches = iter(strategy.distribute_datasets_from_function(shard))
val = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(8)
plan = LoopPlan(0, 2, 4, 2, 16, None, 0.0)
callbacks = keras.callbacks.CallbackList([], model=model, epochs=2, steps=4)
logs = run_loop(model, strategy, callbacks, batches, val, plan, Collectives(strategy, cluster))
print("RESULT" + json.dumps({"start": start, "end": digest(model), "loss": logs["loss"]}))
"""


@pytest.mark.slow
def test_every_worker_holds_the_same_weights_after_training(tmp_path):
    """`imgclf.train_loop` on a real two-worker cluster, each worker with other data (and
    another seed): after two epochs every variable (weights, batch-norm statistics) is the
    same, bit for bit, on both workers, and differs from where training started."""
    ports = free_ports(2)
    env = {**os.environ, "PYTHONPATH": SRC, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAME_WEIGHTS],
            env={**env, "TF_CONFIG": tf_config(ports, i)},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    res = [json.loads(out.split("RESULT", 1)[1]) for out, _ in outs]
    # the strategy makes each variable with the chief's initial value
    assert res[0]["start"] == res[1]["start"]
    assert res[0]["end"] == res[1]["end"] != res[0]["start"]
    assert res[0]["loss"] == res[1]["loss"]


# ------------------------------------------------------------------------------- faults
@pytest.mark.slow
def test_a_worker_that_never_starts_stops_the_other_with_one_line(tmp_path):
    data = make_split(tmp_path / "split", size=8)
    ports = free_ports(2)
    alone = Worker(tmp_path / "w0", ports, 0, ["--data", str(data), "--epochs", "1", "--worker-start-timeout", "5"])
    t = time.monotonic()
    assert alone.wait(300) == 1
    errors = alone.error_lines()
    assert len(errors) == 1 and "worker 1 (127.0.0.1:" in errors[0] and "did not join within 5 s" in errors[0]
    assert "Traceback" not in alone.stderr
    assert not (tmp_path / "w0" / "models").exists()
    print(f"alone worker stopped after {time.monotonic() - t:.0f} s (TensorFlow start-up included)")


def _kill_mid_epoch(run: Path, workers: list[Worker], victim: int) -> float:
    """Kills `victim` two epochs into this session; returns how long the survivor took to stop,
    after checking it stopped with one error line."""
    start = backup_epoch(run)
    deadline = time.monotonic() + 600
    while backup_epoch(run) < start + 2:
        assert all(w.proc.poll() is None for w in workers), [w.stderr[-2000:] for w in workers]
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.1)
    time.sleep(0.3)  # into the next epoch
    workers[victim].proc.send_signal(signal.SIGKILL)
    t = time.monotonic()
    survivor = workers[1 - victim]
    assert survivor.wait(120) == 1
    seconds = time.monotonic() - t
    errors = survivor.error_lines()
    assert len(errors) == 1 and "lost contact with the other workers" in errors[0], survivor.stderr[-2000:]
    assert "Traceback" not in survivor.stderr
    assert "rerun the same command on every worker" in survivor.stderr
    workers[victim].wait(30)
    return seconds


@pytest.mark.slow
def test_kill_9_a_worker_mid_epoch_then_rerun_resumes_on_every_worker(tmp_path):
    """Kill -9 worker 1 mid-epoch: worker 0 stops with one line; rerun both: they resume. Then
    kill the chief (the coordination leader): worker 1 stops; rerun both: training finishes
    with one history row per epoch. Tracked with MLflow all along: one MLflow run, logged by
    the chief only, holding every epoch."""
    mlflow = pytest.importorskip("mlflow")
    data = make_split(tmp_path / "split", n_train=(40, 40, 40), n_val=6, size=32)
    run = tmp_path / "run"
    epochs = 12
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  model: cnn\n  model_options: {width: 8}\n  early_stopping_patience: 40\n")
    args = ["--data", str(data), "--config", str(config), "--run-dir", str(run), "--epochs", str(epochs)]
    args += ["--batch-size", "4", "--no-class-weights", "--worker-timeout", "10"]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args += ["--track", "mlflow", "--track-uri", store, "--track-experiment", "mw"]
    timings = []
    started: list[Worker] = []
    try:
        for victim, session in ((1, "a"), (0, "b")):
            workers = cluster(tmp_path, session, args)
            started += workers
            timings.append(_kill_mid_epoch(run, workers, victim))
            assert load_run_info(run).status == "running"
        workers = cluster(tmp_path, "c", args)
        started += workers
        for w in workers:
            assert w.wait(900) == 0, w.stderr[-3000:]
    finally:
        for w in started:
            w.stop()
    assert [int(r["epoch"]) for r in read_history(run)] == list(range(epochs))
    info = load_run_info(run)
    assert info.status == "finished" and info.epochs_done == epochs
    assert max(timings) < 10 + 30, timings  # the heartbeat timeout plus TensorFlow's shutdown
    # one MLflow run, resumed by each session, FINISHED, every epoch logged; worker 1 tracked nothing
    mlflow.set_tracking_uri(store)
    try:
        runs = mlflow.search_runs(experiment_names=["mw"], output_format="list")
        assert [r.info.run_id for r in runs] == [info.tracking.run_id]  # type: ignore[union-attr]
        assert runs[0].info.status == "FINISHED"
        steps = {m.step for m in mlflow.MlflowClient(store).get_metric_history(runs[0].info.run_id, "val_loss")}
    finally:
        mlflow.set_tracking_uri(None)
    assert steps == set(range(epochs))
    for w in started:
        assert list(w.cwd.iterdir()) == [], w.cwd  # nothing written beside any worker
        if w.index == 1:
            assert "tracking:" not in w.stderr + (w.proc.stdout.read() if w.proc.stdout else "")
    print(f"survivor stopped {timings[0]:.1f} s after worker 1 was killed, {timings[1]:.1f} s after the chief")
