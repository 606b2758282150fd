"""Cold-start benchmark of `imgclf predict photo.jpg` (issue: fast predict).

Measures, in fresh processes and interleaved so that every command sees the same machine load:

    baseline   python -c "import tensorflow"
    keras      imgclf predict photo.jpg --model RUN            (best.keras, TensorFlow)
    onnx       imgclf predict photo.jpg --model model.onnx     (ONNX Runtime, no TensorFlow)
    tflite     imgclf predict photo.jpg --model model.tflite   (LiteRT, no TensorFlow)

and prints the median wall time of each over `--repeats` runs and its ratio to the baseline
(goals: keras <= 1.6 x baseline; onnx / tflite clearly below the baseline).

The run is built here: the registry's `cnn` at 32x32 pixels, 10 classes, random weights (speed
does not depend on the weights), saved with `run.json` like `imgclf train` does; the photo is a
640x480 JPEG. Exports go through `imgclf.export.export_run` (parity-checked).

Usage:
    .venv/bin/python scripts/bench/bench_predict.py [--repeats 5] [--model cnn] [--size 32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_run(root: Path, model_name: str, size: int) -> Path:
    """Writes `root/run/` (best.keras + run.json) and `root/photo.jpg`; returns the run folder."""
    import numpy as np
    from PIL import Image

    from imgclf.inputs import InputSpec
    from imgclf.models.registry import create_model
    from imgclf.records.run import RunInfo, save_run_info

    run = root / "run"
    run.mkdir(parents=True)
    model = create_model(model_name, num_classes=10, input_shape=(size, size, 3))
    model.save(run / "best.keras")
    save_run_info(
        run,
        RunInfo(
            model=model_name,
            class_names=[f"class_{i}" for i in range(10)],
            input_spec=InputSpec(size=size),
            status="finished",
        ),
    )
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    photo = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1) + rng.integers(0, 30, (480, 640, 3))
    Image.fromarray(np.clip(photo, 0, 255).astype("uint8")).save(root / "photo.jpg", quality=90)
    return run


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall time of one command in seconds; raises if it fails."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (median reported)")
    parser.add_argument("--model", default="cnn", help="registry model name")
    parser.add_argument("--size", type=int, default=32, help="input side in pixels")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    exe = Path(sys.executable)
    imgclf = exe.with_name("imgclf")
    base_cmd = [str(imgclf)] if imgclf.is_file() else [sys.executable, "-m", "imgclf"]
    root = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    try:
        print(f"building a {args.model} run at {args.size}x{args.size} px in {root} ...", flush=True)
        run = build_run(root, args.model, args.size)
        from imgclf.export import export_run

        onnx = export_run(run, "onnx").path
        tfl = export_run(run, "tflite").path
        photo = str(root / "photo.jpg")
        env = dict(os.environ, IMGCLF_QUIET="1")
        commands = {
            "import tensorflow": [sys.executable, "-c", "import tensorflow"],
            "predict (best.keras)": [*base_cmd, "predict", photo, "--model", str(run)],
            "predict (model.onnx)": [*base_cmd, "predict", photo, "--model", str(onnx)],
            "predict (model.tflite)": [*base_cmd, "predict", photo, "--model", str(tfl)],
        }
        for cmd in commands.values():  # warm the OS file cache once; not timed
            timed(cmd, env)
        times: dict[str, list[float]] = {k: [] for k in commands}
        for r in range(args.repeats):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, env))
            print(
                f"  repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                flush=True,
            )
        base = statistics.median(times["import tensorflow"])
        print(f"\ncold start, median of {args.repeats} runs (model {args.model} {args.size}px, photo 640x480 JPEG):")
        for name, vals in times.items():
            med = statistics.median(vals)
            print(
                f"  {name:<24} {med:6.2f} s   min {min(vals):5.2f}  max {max(vals):5.2f}   "
                f"ratio to import tensorflow {med / base:4.2f}"
            )
        ratio = statistics.median(times["predict (best.keras)"]) / base
        print(
            f"\nkeras predict / import tensorflow = {ratio:.2f} (goal <= 1.6: {'met' if ratio <= 1.6 else 'NOT met'})"
        )
        for name in ("predict (model.onnx)", "predict (model.tflite)"):
            print(f"{name} / import tensorflow = {statistics.median(times[name]) / base:.2f} (goal: clearly below 1)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
