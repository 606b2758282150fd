"""`imgclf train --engine ray --num-workers N`: N training workers placed on the session's
two-node Ray cluster on 127.0.0.1 (`ray_cluster`, tests/conftest.py), each an
`imgclf train --strategy multiworker` process with the TF_CONFIG the launcher built."""

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
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.engine.launch import tf_configs

# the tests that use the cluster share it with tests/test_engine_ray.py: one xdist worker
pytestmark = pytest.mark.xdist_group("ray-cluster")

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
CONFIG = "train:\n  model: cnn\n  model_options: {width: 8}\n  augment: {flip: none}\n"
#: Tiny digits training: 3 epochs, 16 px, deterministic (the same model from the same data).
ARGS = ["--epochs", "3", "--batch-size", "16", "--image-size", "16", "--no-class-weights", "--deterministic"]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": SRC, "IMGCLF_QUIET": "1", "COLUMNS": "200"}
    env.pop("TF_CONFIG", None)
    return env


def _ray_train(cluster, cwd: Path, *args: str, n: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "imgclf", "train", *args, "--engine", "ray", "--ray-address", cluster.address]
    cmd += ["--num-workers", str(n)]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


# ------------------------------------------------------------------------- no cluster
def test_tf_configs_name_every_worker_and_its_index():
    confs = [json.loads(c) for c in tf_configs(["10.0.0.5:2222", "10.0.0.6:2223"])]
    assert [c["task"] for c in confs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    assert all(c["cluster"] == {"worker": ["10.0.0.5:2222", "10.0.0.6:2223"]} for c in confs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-workers", "2"], "--num-workers 2 needs --engine ray"),
        (["--num-workers", "2", "--engine", "local"], "--num-workers 2 needs --engine ray"),
        (["--engine", "ray"], "--engine ray trains with --num-workers N workers, N >= 1 (missing)"),
        (["--engine", "spark", "--num-workers", "2"], "Input should be 'local' or 'ray' (got 'spark')"),
        (["--engine", "ray", "--num-workers", "0"], "--engine ray trains with --num-workers N workers, N >= 1 (got 0)"),
    ],
)
def test_num_workers_and_engine_ray_go_together_or_one_line_says_so(tmp_path, args, message):
    r = CliRunner().invoke(app, ["train", "--data", str(tmp_path), *args], terminal_width=300)
    assert r.exit_code == 1 and "Traceback" not in r.output
    errors = _error_lines(r.output)
    assert len(errors) == 1 and message in errors[0], r.output


def test_a_missing_split_is_one_line_before_any_cluster_starts(tmp_path):
    code = (
        "import sys; from typer.testing import CliRunner; from imgclf.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['train', '--data', {str(tmp_path / 'nope')!r}, '--engine', 'ray',"
        " '--num-workers', '2'], terminal_width=300)\n"
        "print(r.exit_code, 'ray' in sys.modules); print(r.output)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    first, _, output = res.stdout.partition("\n")
    assert first == "1 False", res.stdout + res.stderr
    errors = _error_lines(output)
    assert len(errors) == 1 and f"{tmp_path / 'nope' / 'train'} not found" in errors[0], output
    assert "Traceback" not in output


def test_train_help_does_not_import_ray():
    code = (
        "import sys; from typer.testing import CliRunner; from imgclf.cli.main import app\n"
        "assert CliRunner().invoke(app, ['train', '--help']).exit_code == 0\n"
        "print('ray' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    assert res.stdout.strip() == "False", res.stderr


# ------------------------------------------------------------------- on the cluster
@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, Path]:
    """Digits 0, 1, 2 (30 training, 10 validation images each, 16 px) and a config of a tiny cnn."""
    from test_train import make_split

    root = tmp_path_factory.mktemp("digits")
    split = make_split(root / "split", n_train=(30, 30, 30), n_val=10, size=16)
    config = root / "tiny.yaml"
    config.write_text(CONFIG)
    return split, config


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return [np.asarray(v) for v in keras.models.load_model(path, compile=False).get_weights()]


@pytest.mark.slow
def test_two_ray_workers_train_the_run_two_tf_config_workers_train(ray_cluster, digits, tmp_path):
    """Two workers placed by Ray: one run folder, trained by 2 workers, which evaluates; its
    weights are those of the same training launched by hand with TF_CONFIG."""
    from imgclf.records.run import load_run_info, read_history
    from test_multiworker import cluster as tf_config_cluster

    split, config = digits
    run = tmp_path / "models" / "ray"
    res = _ray_train(ray_cluster, tmp_path, "--data", str(split), "--config", str(config), "--run-dir", str(run), *ARGS)
    print(res.stderr[-2500:])
    assert res.returncode == 0, res.stderr[-4000:]
    assert "Traceback" not in res.stderr and _error_lines(res.stderr) == []
    assert res.stdout.strip().splitlines()[-1] == str(run)  # the chief's answer, as `imgclf train` prints it
    assert "[worker 0] epoch 3/3" in " ".join(res.stderr.split()) and "[worker 1]" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"] and [p.name for p in run.parent.iterdir()] == [
        "ray"
    ]
    info = load_run_info(run)
    assert info.status == "finished" and info.epochs_done == 3 and len(read_history(run)) == 3
    assert (info.distribution.workers, info.distribution.loop, info.distribution.strategy) == (
        2,
        "custom",
        "multiworker",
    )
    r = CliRunner().invoke(app, ["evaluate", str(run), "--data", str(split), "--split", "val"])
    assert r.exit_code == 0, r.output
    assert 0 <= json.loads((run / "metrics_val.json").read_text())["accuracy"] <= 1

    # the same training, its two workers started by hand with TF_CONFIG
    by_hand = tmp_path / "by-hand"
    workers = tf_config_cluster(
        tmp_path / "hand", "w", ["--data", str(split), "--config", str(config), "--run-dir", str(by_hand), *ARGS]
    )
    try:
        for w in workers:
            assert w.wait(600) == 0, w.stderr[-3000:]
    finally:
        for w in workers:
            w.stop()
    assert load_run_info(by_hand).distribution.workers == 2
    for a, b in zip(_weights(run / "last.keras"), _weights(by_hand / "last.keras"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_worker_that_fails_stops_the_others_and_the_launcher_says_so_in_one_line(ray_cluster, digits, tmp_path):
    _, config = digits
    missing = tmp_path / "one-class"  # train/ and val/ exist (the driver's check passes); the workers refuse it
    for part in ("train", "val"):
        (missing / part / "a").mkdir(parents=True)
        Image.new("RGB", (16, 16), (200, 30, 30)).save(missing / part / "a" / "x.png")
    run = tmp_path / "run"
    res = _ray_train(
        ray_cluster, tmp_path, "--data", str(missing), "--config", str(config), "--run-dir", str(run), *ARGS
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr + res.stdout
    errors = _error_lines(res.stderr)
    assert len(errors) == 1, res.stderr[-3000:]
    assert "worker" in errors[0] and "exited with code 1" in errors[0] and str(missing) in errors[0], errors
    assert "the other workers were stopped" in errors[0]
    assert f"rerun the same command: training resumes from the last completed epoch saved in {run}" in res.stderr
    assert not run.exists()


def _training_processes(run: Path) -> dict[int, int]:
    """`{worker index: pid}` of the `imgclf train` processes training `run` (from /proc)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(run).encode() in cmd and b"train" in cmd:
            conf = next((e[len(b"TF_CONFIG=") :] for e in env if e.startswith(b"TF_CONFIG=")), None)
            if conf:
                found[json.loads(conf)["task"]["index"]] = int(proc.name)
    return found


@pytest.mark.slow
def test_kill_9_a_worker_then_the_same_command_resumes(ray_cluster, digits, tmp_path):
    """Worker 1's process killed mid-training: the launcher stops worker 0 and says so in one
    line; the same command again resumes and ends with one history row per epoch."""
    from imgclf.records.run import load_run_info, read_history
    from test_multiworker import backup_epoch

    split, config = digits
    run, epochs = tmp_path / "run", 24
    args = ["--data", str(split), "--config", str(config), "--run-dir", str(run), *ARGS, "--epochs", str(epochs)]
    cmd = [sys.executable, "-m", "imgclf", "train", *args, "--engine", "ray", "--ray-address", ray_cluster.address]
    driver = subprocess.Popen(
        [*cmd, "--num-workers", "2"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while backup_epoch(run) < 2:
            assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()[1][-3000:]
            time.sleep(0.05)
        pids = _training_processes(run)
        assert sorted(pids) == [0, 1], pids
        os.kill(pids[1], signal.SIGKILL)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 1 and "Traceback" not in err
    errors = _error_lines(err)
    assert len(errors) == 1 and "worker 1 (127.0.0.1:" in errors[0] and "was killed by signal 9" in errors[0], err[
        -3000:
    ]
    assert "training resumes from the last completed epoch" in err
    assert _training_processes(run) == {}  # worker 0 was stopped
    assert load_run_info(run).status != "finished"
    res = _ray_train(ray_cluster, tmp_path, *args)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [int(r["epoch"]) for r in read_history(run)] == list(range(epochs))
    assert load_run_info(run).status == "finished"
