"""A lost head: the Ray cluster's head node killed while `clean --engine ray` runs.

Its own cluster, not the session's shared one (killing a head ends its cluster): `ray start
--head` in a process group of its own on 127.0.0.1, with token authentication on (`ray start
--head`'s default); the driver is `imgclf clean` in a subprocess with `RAY_AUTH_MODE=token` and
the token, as docs/scale.md tells a user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgclf.engine.head import RECONNECT_VAR
from test_engine_ray import _same_output, make_dataset

pytestmark = pytest.mark.slow
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _head(port: int, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """A Ray head node (2 CPUs) on 127.0.0.1:`port`, in a process group of its own, killed
    (the whole group, SIGKILL) when the block ends if it is still there."""
    tmp = tempfile.mkdtemp(prefix="imgclf-rh-", dir="/tmp")  # Ray's socket paths must stay short
    cmd = [str(RAY), "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
    cmd += ["--node-ip-address=127.0.0.1", f"--temp-dir={tmp}", "--disable-usage-stats"]
    head = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            assert head.poll() is None, "ray start --head exited"
            time.sleep(0.2)
        yield head
    finally:
        _kill(head)
        shutil.rmtree(tmp, ignore_errors=True)


def _kill(head: subprocess.Popen) -> None:
    """Kills the head's whole process group (its control store, raylet, workers) at once."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)
    head.wait()


@pytest.mark.skipif(not RAY.exists(), reason="pip install 'imgclf[ray]' runs the Ray engine's tests")
def test_a_lost_head_is_one_line_leaves_no_partial_file_and_the_same_command_resumes(tmp_path):
    from imgclf.clean import clean_folder
    from imgclf.config import CleanConfig

    raw = make_dataset(tmp_path / "raw", per_class=400, seed=5)
    local, out = tmp_path / "local", tmp_path / "out"
    clean_folder(raw, local, CleanConfig())  # the undisturbed output
    port, token = _free_port(), uuid.uuid4().hex
    base = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    base["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    head_env = {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    # the driver: the mode and the token (docs/scale.md); Ray's wait for a lost head cut from 60 s to 10 s
    driver_env = {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, RECONNECT_VAR: "10"}
    cmd = [sys.executable, "-m", "imgclf", "clean", str(raw), "--out", str(out), "--engine", "ray"]
    cmd += ["--ray-address", f"127.0.0.1:{port}"]
    with _head(port, head_env) as head:
        driver = subprocess.Popen(cmd, env=driver_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while not (out / "_reports" / ".clean-in-progress").exists() and time.monotonic() < deadline:
            assert driver.poll() is None, driver.communicate()
            time.sleep(0.05)
        time.sleep(1.0)  # the map under way
        assert driver.poll() is None, "clean finished before the head could be killed: give it more images"
        _kill(head)
        _, err = driver.communicate(timeout=120)
    assert driver.returncode == 1, err
    assert f"error: lost the Ray cluster's head at 127.0.0.1:{port}" in err, err
    assert "run the same command" in err and "Traceback" not in err, err
    assert not (out / "_reports" / "clean_report.json").exists()
    for f in out.rglob("*"):  # every file under its final name is whole
        if f.is_file() and not f.name.startswith(".") and f.suffix == ".png":
            assert f.read_bytes() == (raw / f.relative_to(out)).read_bytes()

    with _head(port, head_env):  # the head again, then the same command
        res = subprocess.run(cmd, env=driver_env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    _same_output(local, out, ("clean_report.json",))


@pytest.mark.skipif(not RAY.exists(), reason="pip install 'imgclf[ray]' runs the Ray engine's tests")
def test_a_cluster_asking_for_a_token_the_driver_lacks_is_one_line_naming_ray_auth_mode(tmp_path):
    raw = make_dataset(tmp_path / "raw", per_class=3, seed=6)
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    base["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    home = tmp_path / "home"  # no ~/.ray/auth_token: this driver has no token at all
    home.mkdir()
    cmd = [sys.executable, "-m", "imgclf", "clean", str(raw), "--out", str(tmp_path / "out"), "--engine", "ray"]
    cmd += ["--ray-address", f"127.0.0.1:{port}"]
    with _head(port, {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex}):
        res = subprocess.run(cmd, env={**base, "HOME": str(home)}, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    lines = [line for line in res.stderr.splitlines() if line.startswith(("error:", "  hint:"))]
    assert len(lines) == 2 and f"cannot connect to the Ray cluster at 127.0.0.1:{port}" in lines[0], res.stderr
    assert "export RAY_AUTH_MODE=token" in lines[1] and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "out").exists()
