"""Makes docs/tracking_mlflow.png: the MLflow UI showing an imgclf run (docs/tracking.md).

Starts `mlflow server` on a SQLite store in a temporary folder (127.0.0.1, a free port), runs
`imgclf run` on 600 of scikit-learn's digits (16 px, a small CNN, 8 epochs) with
`--track mlflow`, then drives Debian's chromium headless with Playwright (the launch flags of
tests/conftest.py) over the run's Overview tab (its metrics filtered to "accuracy", tags,
params) and its Artifacts tab (report.html shown), and stacks the two views into one PNG.
The server and everything it started are stopped at the end.

Usage: python scripts/docs/tracking_screenshot.py [--out docs/tracking_mlflow.png]
Needs: pip install 'imgclf[mlflow]' playwright; /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CONFIG = """name: digits
data_dir: {root}/data
models_dir: {root}/models
source:
  dataset: {{name: digits, limit_per_class: 60}}
prepare: {{size: 16}}
train:
  model: cnn
  model_options: {{width: 16}}
  image_size: 8
  epochs: 8
  batch_size: 32
  optimizer: adamw
  learning_rate: 0.005
  schedule: cosine
  augment: {{flip: none}}
  run_name: digits-cnn
evaluate: {{bootstrap_resamples: 1000}}
stages: [scrape, clean, prepare, split, train, evaluate]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, port: int) -> subprocess.Popen:
    """`mlflow server` in its own process group, waited for until /health answers."""
    store = ["--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "mlartifacts")]
    listen = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", *store, *listen],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(180):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            time.sleep(1)
    stop(server)
    raise SystemExit("mlflow server did not start within 3 minutes")


def stop(server: subprocess.Popen) -> None:
    """Stops the server and the workers it started (its process group)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:  # workers that outlived the server
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_imgclf(root: Path, uri: str) -> str:
    """`imgclf run` with `--track mlflow`; returns the MLflow run id from run.json."""
    from imgclf.records.run import load_run_info

    config = root / "digits16.yaml"
    config.write_text(CONFIG.format(root=root))
    env = {**os.environ, "IMGCLF_QUIET": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "imgclf", "run", str(config), "--track", "mlflow", "--track-uri", uri]
    subprocess.run([*cmd, "--track-experiment", "digits"], check=True, env=env)
    tracking = load_run_info(root / "models" / "digits-cnn").tracking
    assert tracking is not None, "the run was not tracked"
    return tracking.run_id


def screenshots(base: str, run_id: str, prefix: Path) -> list[Path]:
    """The run's Overview (metrics filtered to "accuracy") and Artifacts (report.html) views."""
    import mlflow
    from playwright.sync_api import sync_playwright

    experiment = mlflow.MlflowClient(base).get_run(run_id).info.experiment_id
    url = f"{base}/#/experiments/{experiment}/runs/{run_id}"
    shots = [prefix.with_name(prefix.name + "_overview.png"), prefix.with_name(prefix.name + "_artifacts.png")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url, wait_until="load", timeout=120_000)
        page.get_by_text("test/accuracy").first.wait_for(timeout=120_000)
        page.get_by_text("Model training", exact=True).first.click(timeout=10_000)  # not the GenAI view
        page.goto(url, wait_until="load", timeout=120_000)
        page.get_by_text("test/accuracy").first.wait_for(timeout=120_000)
        close = page.locator('[aria-label="Close"]')  # the assistant panel
        if close.count():
            close.first.click(timeout=10_000)
        page.get_by_placeholder("Search metrics").first.fill("accuracy")
        time.sleep(4)
        page.screenshot(path=str(shots[0]))
        page.get_by_role("tab", name="Artifacts").first.click(timeout=20_000)
        page.get_by_text("report.html", exact=True).first.click(timeout=60_000)
        time.sleep(8)
        page.screenshot(path=str(shots[1]))
        browser.close()
    return shots


def stack(images: list[Path], out: Path) -> None:
    """The views one above the other, separated by a grey rule, as a 256-colour PNG."""
    from PIL import Image

    parts = [Image.open(p).convert("RGB") for p in images]
    gap = 12
    canvas = Image.new("RGB", (max(i.width for i in parts), sum(i.height for i in parts) + gap), (200, 200, 200))
    y = 0
    for part in parts:
        canvas.paste(part, (0, y))
        y += part.height + gap
    # 256 colours: a UI screenshot loses nothing visible and the file is a third of the size
    canvas.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/tracking_mlflow.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgclf-mlflow-shot-") as tmp:
        root = Path(tmp)
        port = free_port()
        server = start_server(root, port)
        try:
            base = f"http://127.0.0.1:{port}"
            run_id = run_imgclf(root, base)
            stack(screenshots(base, run_id, root / "shot"), args.out)
        finally:
            stop(server)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
