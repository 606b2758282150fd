"""Kill -9 in the middle of `imgclf scrape web`, rerun: no duplicates, no partial files, nothing refetched."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

from scrape_servers import slow_site

N = 12


def _run(url: str, out, wait_for_files: int | None = None) -> subprocess.CompletedProcess | None:
    cmd = [
        sys.executable,
        "-m",
        "imgclf",
        "scrape",
        "web",
        url,
        "--label",
        "car",
        "--out",
        str(out),
        "--workers",
        "2",
        "--delay",
        "0",
        "--retries",
        "0",
        "--read-timeout",
        "10",
    ]
    env = {**os.environ, "IMGCLF_QUIET": "1"}
    if wait_for_files is None:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    d = out / "car"
    while time.monotonic() < deadline:
        if d.is_dir() and sum(1 for f in d.iterdir() if not f.name.startswith(".")) >= wait_for_files:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    return None


def test_kill_9_then_rerun_resumes_without_duplicates(tmp_path):
    out = tmp_path / "raw"
    with slow_site(N, delay=0.25) as site:
        url = site.url("/gallery.html")
        _run(url, out, wait_for_files=4)
        files_before = {f.name for f in (out / "car").iterdir() if not f.name.startswith(".")}
        assert 4 <= len(files_before) < N  # really killed mid-run
        db = sqlite3.connect(out / "_manifest.sqlite")
        done_before = {u for (u,) in db.execute("SELECT url FROM attempts WHERE status='kept'")}
        db.close()
        (out / "car" / ".deadbeefdeadbeef.png.x1y2.tmp").write_bytes(b"partial")  # as a killed write leaves

        res = _run(url, out)
        assert res.returncode == 0, res.stderr
        files = sorted((out / "car").iterdir())
        assert len(files) == N and not any(f.name.startswith(".") for f in files)  # no temp / partial files
        digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
        assert len(set(digests)) == N and all(f.name.startswith(h[:16]) for f, h in zip(files, digests))

        db = sqlite3.connect(out / "_manifest.sqlite")
        kept = db.execute("SELECT url, COUNT(*) FROM attempts WHERE kind='image' GROUP BY url").fetchall()
        statuses = db.execute("SELECT status, COUNT(*) FROM attempts WHERE kind='image' GROUP BY status").fetchall()
        db.close()
        assert len(kept) == N and all(n == 1 for _, n in kept)
        assert dict(statuses) == {"kept": N}
        for u in done_before:  # recorded before the kill: never fetched again
            assert site.hits[u.removeprefix(site.base)] == 1
