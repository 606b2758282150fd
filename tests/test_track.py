"""Experiment tracking (`imgclf.track`, `--track mlflow`): a real MLflow on a SQLite store in a
temporary folder, real training of a tiny CNN, a real closed port for the unreachable server.

Checks: the pure mappings (params, metrics, tags, chief worker, URIs); `--help` never imports
MLflow; without MLflow `--track mlflow` is one line naming the install command; train and
evaluate log into one MLflow run whose metrics equal `metrics.json` and `history.csv`; the
logged pyfunc model gives `imgclf predict --json`'s probabilities (to 1e-5), also in a fresh
process that has no imgclf of its own; an unreachable server is one warning line and the run
folder is complete; a resumed `train` logs into the same MLflow run; `imgclf run --track`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers_runs import CLASSES, train_config, write_split
from imgclf.config import TrackConfig
from imgclf.errors import ConfigError
from imgclf.inputs import InputSpec, load_image
from imgclf.records.run import RunInfo, TrackingRef, load_run_info, read_history
from imgclf.track import (
    MAX_PARAM_LENGTH,
    Tracker,
    check_backend,
    epoch_metrics,
    evaluation_metrics,
    evaluation_tags,
    flatten_params,
    is_chief,
    param_value,
)
from imgclf.track.mlflow import absolute_uri, artifact_root, check_reachable, resolve_uri

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "IMGCLF_QUIET": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
SPLITS = {"train": 20, "val": 6, "test": 6}


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_data(root: Path) -> Path:
    """The tiny split of `helpers_runs`: 3 colour classes, 16 px, train / val / test."""
    for seed, (split, n) in enumerate(SPLITS.items(), start=1):
        write_split(root / split, per_class=n, seed=seed)
    return root


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m imgclf ARGS` in a subprocess (this worktree's code) run in `cwd` (a temporary
    folder: whatever MLflow would put in the current folder lands there), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "imgclf", *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600
    )


# ---------------------------------------------------------------------------- pure parts
def test_flatten_params_dots_nested_keys_and_cuts_long_values():
    flat = flatten_params({"epochs": 3, "augment": {"flip": "horizontal", "zoom": 0.1}, "model_options": {}})
    assert flat == {"augment.flip": "horizontal", "augment.zoom": 0.1, "epochs": 3, "model_options": {}}
    assert param_value([2, 2]) == "[2, 2]" and param_value(None) == "None" and param_value({}) == "{}"
    long = param_value("x" * 2000)
    assert len(long) == MAX_PARAM_LENGTH == 500 and long.endswith("...")


def test_epoch_metrics_keep_finite_numbers_only():
    logs = {"epoch": 3, "loss": np.float32(0.5), "accuracy": 1, "note": "x", "val_loss": float("nan"), "flag": True}
    assert epoch_metrics(logs) == {"loss": 0.5, "accuracy": 1.0}
    assert epoch_metrics(None) == {}


def test_evaluation_metrics_and_tags_name_the_split():
    metrics = {
        "split": "val",
        "accuracy": 0.75,
        "loss": 0.5,
        "n_images": 8,
        "confidence_intervals": {"level": 0.95, "metrics": {"accuracy": {"value": 0.75, "low": 0.5, "high": 1.0}}},
        "leaks": {"checked": True, "test_images_with_copy": 2, "pairs": 3},
        "fingerprint": {"sha256": "ab" * 32, "n_files": 9},
        "set_aside": {"count": 1},
        "tta": "none",
    }
    out = evaluation_metrics(metrics)
    assert out["val/accuracy"] == 0.75 and out["val/accuracy_ci_low"] == 0.5 and out["val/accuracy_ci_high"] == 1.0
    assert out["val/leak_images"] == 2 and out["val/leak_pairs"] == 3 and out["val/images"] == 8
    assert "val/f1_macro" not in out  # absent values are left out, never logged as 0
    tags = evaluation_tags(metrics)
    assert tags["data.val_fingerprint"] == "ab" * 32 and tags["data.val_files"] == "9"
    assert tags["val.leak_audit"] == "checked"
    unchecked = evaluation_tags({"leaks": {"checked": False, "reason": "--no-leak-audit"}})
    assert unchecked["test.leak_audit"] == "--no-leak-audit"


@pytest.mark.parametrize(
    ("tf_config", "chief"),
    [
        (None, True),
        ("", True),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}', True),
        ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}', False),
        ('{"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}', False),
        ('{"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', True),
    ],
)
def test_only_the_chief_worker_tracks(tf_config, chief, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief(tf_config if tf_config is not None else None) is chief


def test_uris_are_made_absolute_and_resolved_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path}/mlflow.db"
    assert absolute_uri(f"sqlite:///{tmp_path}/x.db") == f"sqlite:///{tmp_path}/x.db"
    assert absolute_uri("mlruns") == (tmp_path / "mlruns").as_uri()
    assert absolute_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    stored = TrackingRef(backend="mlflow", uri="sqlite:////kept/mlflow.db", run_id="r")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri(None, stored) == "sqlite:////kept/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert resolve_uri(None, stored) == "http://127.0.0.1:9"
    assert resolve_uri("sqlite:///given.db", stored) == f"sqlite:///{tmp_path}/given.db"


def test_a_sqlite_store_keeps_artifacts_beside_its_database(tmp_path):
    expected = (tmp_path / "x" / "mlruns" / "my_runs_v2").as_uri()
    assert artifact_root(f"sqlite:///{tmp_path}/x/mlflow.db", "my runs/v2") == expected
    assert artifact_root("http://127.0.0.1:5000", "imgclf") is None


def test_an_unreachable_server_is_found_in_seconds():
    port = closed_port()
    t = time.monotonic()
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port} cannot be reached"):
        check_reachable(f"http://127.0.0.1:{port}")
    assert time.monotonic() - t < 5


def test_a_failing_backend_is_one_warning_then_off(capsys):
    class Broken:
        ref = TrackingRef(backend="x", uri="x", run_id="r")
        created = True
        calls = 0

        def log_metrics(self, metrics, step):
            Broken.calls += 1
            raise OSError("disk full")

    tracker = Tracker(Broken())  # type: ignore[arg-type]
    for epoch in range(3):
        tracker.log_metrics({"loss": 1.0}, step=epoch)
    assert Broken.calls == 1 and not tracker.active
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "disk full" in err[0] and "tracking is off" in err[0]
    tracker.finish()  # safe when off


def test_track_none_needs_nothing():
    check_backend(None)
    check_backend(TrackConfig())
    assert not Tracker().active


# ----------------------------------------------------------------------------------- CLI
def test_help_never_imports_mlflow():
    """`imgclf --help` and the tracked commands' `--help` import no MLflow (`python -X importtime`)."""
    for args in ([], ["train"], ["evaluate"], ["run"]):
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "imgclf", *args, "--help"],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
        assert "mlflow" not in imported and "tensorflow" not in imported, args
        assert "--track" in r.stdout or not args


def test_without_mlflow_track_mlflow_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    """A process where `import mlflow` fails (as without the package): one error line, exit 1,
    before any work (no run folder)."""
    data = write_data(tmp_path / "data")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"data_dir: {tmp_path}\nsource: {{folder: {data}}}\nstages: [train]\ntrack: {{backend: mlflow}}\n"
    )
    run = tmp_path / "run"
    for args in (
        ["train", "--data", str(data), "--run-dir", str(run), "--track", "mlflow"],
        ["evaluate", str(run), "--track", "mlflow"],
        ["run", str(config)],
    ):
        code = (
            "import sys; sys.modules['mlflow'] = None\n"
            f"sys.argv = ['imgclf', *{args!r}]\n"
            "from imgclf.cli.main import main; main()\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120
        )
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 1, r.stderr
        assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
        assert "pip install 'imgclf[mlflow]'" in lines[0]
        assert not run.exists()
    monkeypatch.setitem(sys.modules, "mlflow", None)  # the library call, in this process
    with pytest.raises(ConfigError, match=r"pip install 'imgclf\[mlflow\]'"):
        check_backend(TrackConfig(backend="mlflow"))


# ------------------------------------------------------------------------- real MLflow
@pytest.fixture(scope="module")
def mlflow_module():
    """The `mlflow` module (tests needing it are skipped without it)."""
    return pytest.importorskip("mlflow")


@pytest.fixture
def mlflow(mlflow_module, monkeypatch):
    """`mlflow`, its global tracking URI (and `MLFLOW_TRACKING_URI`, which setting it sets)
    put back after the test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield mlflow_module
    mlflow_module.set_tracking_uri(None)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, mlflow_module):
    """A tiny run trained for 2 epochs and evaluated, both with `--track mlflow` on a SQLite
    store in a temporary folder (the library calls the CLI makes)."""
    from imgclf.evaluate import evaluate_run
    from imgclf.train import train

    root = tmp_path_factory.mktemp("tracked")
    data = write_data(root / "data")
    track = TrackConfig(backend="mlflow", uri=f"sqlite:///{root}/mlflow.db", experiment="tests")
    run = train(data, train_config(epochs=2), run_dir=root / "run", track=track)
    metrics = evaluate_run(run, track=track, bootstrap_resamples=200)
    return {"root": root, "data": data, "run": run, "track": track, "metrics": metrics}


def _runs(mlflow, track: TrackConfig):
    mlflow.set_tracking_uri(track.uri)
    return mlflow.search_runs(experiment_names=[track.experiment], output_format="list")


def test_train_and_evaluate_log_one_mlflow_run_equal_to_the_run_folder(tracked, mlflow):
    run_dir, track = tracked["run"], tracked["track"]
    mlflow.set_tracking_uri(track.uri)
    info = load_run_info(run_dir)
    assert info.tracking is not None and info.tracking.backend == "mlflow"
    runs = _runs(mlflow, track)
    assert [r.info.run_id for r in runs] == [info.tracking.run_id]
    run = runs[0]
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.info.artifact_uri.startswith((tracked["root"] / "mlruns" / "tests").as_uri())  # beside mlflow.db

    # the test metrics and their 95 % intervals are metrics.json's (search_runs' frame too)
    saved = json.loads((run_dir / "metrics.json").read_text())
    frame = mlflow.search_runs(experiment_names=[track.experiment])
    for name in ("accuracy", "loss", "f1_macro", "precision_macro", "recall_macro", "top_k_accuracy", "ece"):
        assert frame.loc[0, f"metrics.test/{name}"] == pytest.approx(saved[name], rel=1e-12, abs=1e-12)
        interval = saved["confidence_intervals"]["metrics"][name]
        assert run.data.metrics[f"test/{name}_ci_low"] == pytest.approx(interval["low"], abs=1e-12)
        assert run.data.metrics[f"test/{name}_ci_high"] == pytest.approx(interval["high"], abs=1e-12)
    assert saved["leaks"]["checked"] and run.data.metrics["test/leak_images"] == saved["leaks"]["test_images_with_copy"]
    assert run.data.metrics["test/images"] == saved["n_images"] == 3 * SPLITS["test"]

    # per-epoch metrics, the epoch as step, are history.csv's rows
    client = mlflow.MlflowClient(track.uri)
    history = read_history(run_dir)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        assert logged == [(int(row["epoch"]), pytest.approx(row[key], rel=1e-6)) for row in history], key
    assert run.data.metrics["best_epoch"] == info.best_epoch

    # params: the resolved config, flattened; tags: the split's fingerprint and sizes
    assert run.data.params["train.epochs"] == "2" and run.data.params["train.model"] == "cnn"
    assert run.data.params["train.augment.flip"] == "horizontal" and run.data.params["input.size"] == "16"
    assert run.data.params["train.model_options.depth"] == "[1, 1]"
    tags = run.data.tags
    assert tags["data.test_fingerprint"] == saved["fingerprint"]["sha256"]
    assert tags["data.test_files"] == str(saved["fingerprint"]["n_files"])
    assert tags["data.train_images"] == str(3 * SPLITS["train"]) and tags["data.val_images"] == str(3 * SPLITS["val"])
    assert tags["data.classes"] == ",".join(CLASSES) and tags["imgclf.run_dir"] == str(run_dir.resolve())

    # the run folder's report, plots, run.json and history.csv are artifacts
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    expected = {"report.html", "run.json", "history.csv", "metrics.json", "training_curves.png"}
    expected |= {"confusion_matrix.png", "confusion_matrix_normalized.png", "reliability_diagram.png"}
    assert expected <= artifacts, artifacts
    logged_json = json.loads(
        Path(client.download_artifacts(run.info.run_id, "run.json", str(tracked["root"]))).read_text()
    )
    assert logged_json["tracking"]["run_id"] == run.info.run_id


def test_the_logged_model_predicts_what_imgclf_predict_does(tracked, mlflow):
    """`mlflow.pyfunc.load_model(uri).predict(images)` == `imgclf predict --json` on the same
    files (to 1e-5); the model declares its input (raw RGB uint8, the run's size) and output."""
    run_dir = tracked["run"]
    info = load_run_info(run_dir)
    assert info.tracking is not None and info.tracking.model_uri
    mlflow.set_tracking_uri(tracked["track"].uri)
    model = mlflow.pyfunc.load_model(info.tracking.model_uri)
    inputs, outputs = model.metadata.signature.inputs.inputs[0], model.metadata.signature.outputs.inputs[0]
    assert inputs.type == np.dtype("uint8") and inputs.shape == (-1, 16, 16, 3)
    assert outputs.type == np.dtype("float32") and outputs.shape == (-1, len(CLASSES))
    assert model.metadata.metadata["class_names"] == list(CLASSES)
    assert model.metadata.get_input_schema() is not None and model.metadata.saved_input_example_info is not None
    logged = mlflow.MlflowClient(tracked["track"].uri).get_logged_model(info.tracking.model_uri.split("/")[-1])
    assert logged.experiment_id == info.tracking.experiment_id and logged.source_run_id == info.tracking.run_id
    assert str(logged.status) == "READY"

    files = sorted(str(p) for p in (tracked["data"] / "test").rglob("*.png"))
    spec = InputSpec.model_validate(model.metadata.metadata["input_spec"])
    got = np.asarray(model.predict(np.stack([load_image(f, spec) for f in files])))

    r = cli("predict", *files, "--model", str(run_dir), "--json", "--top-k", str(len(CLASSES)), cwd=tracked["root"])
    assert r.returncode == 0, r.stderr[-2000:]
    order = {name: i for i, name in enumerate(info.class_names)}
    want = np.zeros((len(files), len(CLASSES)))
    for i, record in enumerate(json.loads(r.stdout)):
        assert record["input"] == files[i]
        for entry in record["top_k"]:
            want[i, order[entry["label"]]] = entry["probability"]
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5


def test_the_logged_model_loads_in_a_process_without_imgclf(tracked, tmp_path):
    """The model carries imgclf's code: a fresh process with no imgclf on its path loads it
    (imgclf comes from the model's own code folder) and gets the same probabilities."""
    info = load_run_info(tracked["run"])
    assert info.tracking is not None and info.tracking.model_uri
    files = sorted(str(p) for p in (tracked["data"] / "test").rglob("*.png"))[:4]
    spec = info.input_spec
    images = np.stack([load_image(f, spec) for f in files])
    np.save(tmp_path / "x.npy", images)
    code = (
        "import sys, numpy as np, mlflow\n"
        "sys.path = [p for p in sys.path if 'site-packages' in p or 'lib/python' in p]\n"
        "sys.meta_path = [f for f in sys.meta_path if 'editable' not in type(f).__module__.lower()]\n"
        f"mlflow.set_tracking_uri({tracked['track'].uri!r})\n"
        f"m = mlflow.pyfunc.load_model({info.tracking.model_uri!r})\n"
        "import imgclf\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r})))\n"
        "print(imgclf.__file__)\n"
    )
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "/code/imgclf/" in r.stdout.strip().splitlines()[-1], r.stdout  # the model's own copy
    from imgclf.runtime import load_model

    want = load_model(tracked["run"]).predict_arrays(images)
    assert np.abs(np.load(tmp_path / "y.npy") - want).max() < 1e-5


def test_an_unreachable_tracking_server_is_one_warning_and_nothing_is_lost(tmp_path):
    data = write_data(tmp_path / "data")
    uri = f"http://127.0.0.1:{closed_port()}"
    run = tmp_path / "run"
    common = ["--track", "mlflow", "--track-uri", uri]
    t = time.monotonic()
    r = cli(
        "train",
        "--data",
        str(data),
        "--model",
        "cnn",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--run-dir",
        str(run),
        *common,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    warnings = [line for line in r.stderr.splitlines() if line.startswith(("warning:", "tracking:"))]
    assert len(warnings) == 1 and uri in warnings[0] and "cannot be reached" in warnings[0], r.stderr
    for name in ("best.keras", "last.keras", "history.csv", "run.json", "training_curves.png", "train_state.json"):
        assert (run / name).is_file(), name
    info = load_run_info(run)
    assert info.status == "finished" and info.tracking is None and len(read_history(run)) == 2

    r = cli("evaluate", str(run), "--resamples", "50", *common, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    warnings = [line for line in r.stderr.splitlines() if line.startswith(("warning:", "tracking:"))]
    assert len(warnings) == 1 and "cannot be reached" in warnings[0], r.stderr
    assert (run / "metrics.json").is_file() and (run / "report.html").is_file()
    assert time.monotonic() - t < 300  # no minutes of HTTP retries (two commands, TensorFlow start-up included)


def test_a_run_trained_without_tracking_gets_its_mlflow_run_at_evaluate(tmp_path, mlflow):
    """`evaluate --track mlflow` on an untracked run makes its MLflow run with everything the
    run folder has: params, the history with epochs as steps, the model, the test metrics."""
    from helpers_runs import make_run

    run = make_run(tmp_path)
    store = f"sqlite:///{tmp_path}/mlflow.db"
    r = cli("evaluate", str(run), "--resamples", "50", "--track", "mlflow", "--track-uri", store, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    info = load_run_info(run)
    assert info.tracking is not None and info.tracking.model_uri
    client = mlflow.MlflowClient(store)
    logged = client.get_run(info.tracking.run_id)
    assert logged.data.params["train.epochs"] == str(info.config["epochs"])
    steps = [m.step for m in client.get_metric_history(info.tracking.run_id, "val_loss")]
    assert sorted(steps) == [int(row["epoch"]) for row in read_history(run)]
    saved = json.loads((run / "metrics.json").read_text())
    assert logged.data.metrics["test/accuracy"] == saved["accuracy"]


@pytest.mark.slow
def test_imgclf_run_tracks_each_training_run_with_the_pipeline_params(tmp_path, mlflow):
    data_dir = tmp_path / "d"
    write_data(data_dir / "split")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"name: tiny\ndata_dir: {data_dir}\nmodels_dir: {tmp_path / 'models'}\n"
        f"source: {{folder: {data_dir / 'split'}}}\n"
        "stages: [train, evaluate]\nprepare: {size: 16}\n"
        "train: {model: cnn, model_options: {width: 8, depth: [1, 1]}, epochs: 1, batch_size: 16}\n"
        "evaluate: {bootstrap_resamples: 50}\n"
    )
    store = f"sqlite:///{tmp_path}/mlflow.db"
    tracking = ["--track", "mlflow", "--track-uri", store, "--track-experiment", "pipeline"]
    r = cli("run", str(config), *tracking, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["pipeline"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["prepare.size"] == "16" and run.data.params["name"] == "tiny"
    assert run.data.params["train.epochs"] == "1" and "test/accuracy" in run.data.metrics
    assert load_run_info(tmp_path / "models" / "tiny").tracking.run_id == run.info.run_id  # type: ignore[union-attr]


def test_a_resumed_train_logs_into_the_same_mlflow_run(tracked, mlflow):
    """Last in this module: continues the shared run to 3 epochs (a resumed `train`)."""
    from imgclf.train import train

    run_dir, track = tracked["run"], tracked["track"]
    before = load_run_info(run_dir).tracking
    assert before is not None
    train(tracked["data"], train_config(epochs=3), run_dir=run_dir, track=track)
    after = load_run_info(run_dir).tracking
    assert after is not None and after.run_id == before.run_id and after.model_uri != before.model_uri
    runs = _runs(mlflow, track)
    assert [r.info.run_id for r in runs] == [before.run_id] and runs[0].info.status == "FINISHED"
    client = mlflow.MlflowClient(track.uri)
    steps = sorted(m.step for m in client.get_metric_history(before.run_id, "val_loss"))
    assert steps == [0, 1, 2] == [int(row["epoch"]) for row in read_history(run_dir)]
    # the raised epochs is kept beside the first value (params are write-once in MLflow)
    assert runs[0].data.params["train.epochs"] == "2" and runs[0].data.tags["param.train.epochs"] == "3"
    assert isinstance(load_run_info(run_dir), RunInfo)
