"""`--engine ray` without a cluster (a laptop): imgclf starts a Ray on this machine for the
command, gives the local engine's answer, and prints only its own lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from test_engine_ray import _same_output, make_dataset

pytestmark = pytest.mark.slow
#: A line of Ray's Python or C++ log (`2026-12-07 01:33:58,995 WARNING ...`, `[2026-12-07 ... W ...]`).
RAY_LOG = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


def test_engine_ray_without_an_address_starts_a_ray_here_and_prints_only_imgclf_lines(tmp_path):
    pytest.importorskip("ray", reason="pip install 'imgclf[ray]' runs the Ray engine's tests")
    from imgclf.clean import clean_folder
    from imgclf.config import CleanConfig

    raw = make_dataset(tmp_path / "raw", per_class=5, seed=7)
    clean_folder(raw, tmp_path / "local", CleanConfig())
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    ray_tmp = tempfile.mkdtemp(prefix="imgclf-rl-", dir="/tmp")  # Ray's socket paths must stay short
    env |= {"HOME": str(tmp_path), "RAY_TMPDIR": ray_tmp, "COLUMNS": "200"}
    try:
        cmd = [sys.executable, "-m", "imgclf", "clean", str(raw), "--out", str(tmp_path / "ray"), "--engine", "ray"]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [line for line in res.stderr.splitlines() if RAY_LOG.match(line)] == [], res.stderr
    assert "clean: kept" in res.stdout + res.stderr
    _same_output(tmp_path / "local", tmp_path / "ray", ("clean_report.json",))
