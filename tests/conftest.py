"""Fixtures shared by several test modules."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# every Ray process of the tests on loopback: read by Ray when it is imported, so set first
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

#: Debian's chromium (`.ci/system-packages` installs it); Playwright drives it, no download.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """A headless chromium (Playwright `Browser`), one per test module; skips without one."""
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium (installed by .ci/system-packages)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' installs playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


#: Each node of the test Ray cluster: 1 CPU, every process on loopback, a small object store.
RAY_NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 100 * 2**20}


@pytest.fixture(scope="session")
def ray_cluster():
    """A Ray head node and a second node (1 CPU each) on 127.0.0.1, this process their driver.

    One per session: the modules that use it mark their tests `xdist_group("ray-cluster")`, so
    under `pytest -n 2 --dist loadgroup` they all run in one worker, which starts it once.
    """
    ray = pytest.importorskip("ray", reason="pip install 'imgclf[ray]' runs the Ray engine's tests")
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="imgclf-ray-", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", tmp)
        c = Cluster(initialize_head=True, head_node_args={**RAY_NODE, "include_dashboard": False})
        c.add_node(**RAY_NODE)
        c.wait_for_nodes()
        ray.init(address=c.address, logging_level=logging.WARNING)
        try:
            yield c
        finally:
            ray.shutdown()
            c.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)
