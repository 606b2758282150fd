"""Multi-worker training on one machine: samples/s, bytes all-reduced per step, and accuracy.

Two parts (docs/scale.md, "Training on several machines"):

`throughput`: global training samples per second of the digits demo's model (configs/digits.yaml:
`cnn` width 32 at 8x8 px, global batch 64) on in-memory random batches (no input pipeline:
the model's and the all-reduce's own cost), each worker a fresh process pinned to its own CPU
core (`os.sched_setaffinity`, before TensorFlow starts). Variants:

- `fit 1`: one process on 1 core, Keras `model.fit` (the single-worker path of `imgclf train`);
- `loop 1`: one process on 1 core, the custom loop of `--strategy multiworker` (`imgclf.train_loop`);
- `loop 2`: two processes on cores 0 and 1, a TF_CONFIG cluster on 127.0.0.1, the same loop;
- `fit 2cpu`: one process on both cores, `model.fit` (what one machine gives without a cluster).

Each process runs `--warmup` steps, then `--steps` timed steps; a cluster's rate is the global
batch times the steps over the slowest worker's time. The variants run in rounds (each one
once per round, `--repeats` rounds), so a change of the machine's load hits them alike; the
figure is the median over the rounds. The bytes all-reduced per step are the
trainable parameters times 4 (one float32 gradient each), counted on the built model; a ring
all-reduce sends and receives `2 (k - 1) / k` of that per worker and step.

`accuracy`: the digits demo trained end to end with the real CLI (`imgclf train --config
configs/digits.yaml` on a split made by `imgclf run --stages scrape,clean,prepare,split`), by
`model.fit` in one process, by the custom loop in one process, and by two workers, for each
`--seeds`, then `imgclf evaluate`: test accuracy and training seconds per run.

    .venv/bin/python scripts/bench/bench_multiworker.py throughput --steps 200
    .venv/bin/python scripts/bench/bench_multiworker.py accuracy --work /tmp/bmw --seeds 42 43 44
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "digits.yaml"
GLOBAL_BATCH = 64


def free_ports(n: int) -> list[int]:
    """`n` free TCP ports on 127.0.0.1."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG of worker `index` of a cluster on 127.0.0.1."""
    return json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )


# ----------------------------------------------------------------------------- throughput
def child(loop: str, warmup: int, steps: int, spe: int = 1) -> dict[str, float]:
    """Times `steps` training steps in this process (`spe` per compiled call); returns seconds,
    parameters, replicas."""
    import keras
    import numpy as np
    import tensorflow as tf

    from imgclf.cluster import read_cluster
    from imgclf.models import create_model
    from imgclf.train import make_strategy

    strategy = make_strategy("multiworker" if loop == "loop" else "default", cluster=read_cluster())
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        model = create_model("cnn", num_classes=10, input_shape=(8, 8, 3), width=32)
        model.compile(  # as imgclf.train compiles: no XLA unless --jit (Keras' "auto" would use it)
            optimizer=keras.optimizers.AdamW(1e-3),
            loss="sparse_categorical_crossentropy",
            steps_per_execution=spe,
            jit_compile=False,
        )
    rng = np.random.default_rng(0)
    per_replica = GLOBAL_BATCH // replicas
    x = rng.integers(0, 256, (per_replica * 16, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 10, per_replica * 16)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(per_replica, drop_remainder=True).prefetch(4)
    params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    if loop == "fit":
        model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0)
        t = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        return {"seconds": time.perf_counter() - t, "params": params, "replicas": replicas}
    from imgclf.train_loop import LoopPlan, make_train_function

    plan = LoopPlan(0, 1, steps, spe, GLOBAL_BATCH, None, 0.0)
    fn = make_train_function(model, strategy, plan)
    it = iter(strategy.distribute_datasets_from_function(lambda ctx: ds))
    n = tf.constant(spe)
    for _ in range(warmup // spe):
        fn(it, n).numpy()
    t = time.perf_counter()
    for _ in range(steps // spe):
        fn(it, n).numpy()
    return {"seconds": time.perf_counter() - t, "params": params, "replicas": replicas}


def spawn(loop: str, cpus: set[int], args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen:
    """One child process pinned to `cpus`."""
    here = str(Path(__file__).parent)
    call = f"b.child({loop!r}, {args.warmup}, {args.steps}, {args.steps_per_execution})"
    code = (
        f"import os, sys, json; os.sched_setaffinity(0, {sorted(cpus)}); sys.path.insert(0, {here!r});"
        f"import bench_multiworker as b; print('RESULT' + json.dumps({call}))"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)


def variant(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Runs one variant; returns global samples/s and the model's trainable parameters."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("TF_CONFIG", None)
    if name == "loop 2":
        ports = free_ports(2)
        procs = [spawn("loop", {i}, args, {**env, "TF_CONFIG": tf_config(ports, i)}) for i in range(2)]
    else:
        loop, cpus = name.split()
        procs = [spawn(loop, {0, 1} if cpus == "2cpu" else {0}, args, env)]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode:
            raise SystemExit(f"{name}: a child failed (exit {p.returncode})")
        results.append(json.loads(out.split("RESULT", 1)[1]))
    seconds = max(r["seconds"] for r in results)
    return {"samples_per_s": args.steps * GLOBAL_BATCH / seconds, "params": results[0]["params"]}


def throughput(args: argparse.Namespace) -> None:
    """Prints samples/s per variant (median of `--repeats`) and the all-reduced bytes."""
    print(
        f"digits demo model (cnn width 32, 8x8 px), global batch {GLOBAL_BATCH}, {args.steps} timed steps, "
        f"{args.steps_per_execution} per compiled call"
    )
    # Rounds of every variant in turn, so a change in the machine's load hits every variant alike.
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in args.variants}
    for r in range(args.repeats):
        for name in args.variants:
            runs[name].append(variant(name, args))
        print(
            f"  round {r + 1}: " + ", ".join(f"{n} {v[-1]['samples_per_s']:.0f}" for n, v in runs.items()), flush=True
        )
    base = None
    for name, got in runs.items():
        rate = statistics.median(r["samples_per_s"] for r in got)
        base = base or rate
        spread = ", ".join(f"{r['samples_per_s']:.0f}" for r in got)
        print(f"  {name:9s} {rate:8.0f} samples/s ({spread})  x{rate / base:.2f}", flush=True)
    params = runs[args.variants[0]][0]["params"]
    mb = params * 4 / 1e6
    print(f"  all-reduced per step: {params:,} trainable parameters x 4 B = {mb:.3f} MB of float32 gradients;")
    print(f"  a ring all-reduce over k workers sends and receives 2 (k - 1) / k of it per worker: {mb:.3f} MB at k = 2")


# ------------------------------------------------------------------------------- accuracy
def train_digits(split: Path, run: Path, seed: int, arm: str) -> float:
    """Trains the digits demo recipe once with the CLI; returns the wall time in seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "IMGCLF_QUIET": "1"}
    env.pop("TF_CONFIG", None)
    args = ["-m", "imgclf", "train", "--data", str(split), "--config", str(DIGITS), "--seed", str(seed)]
    args += ["--run-dir", str(run)]
    t = time.monotonic()
    if arm == "2 workers":
        ports = free_ports(2)
        cmd = [sys.executable, *args, "--strategy", "multiworker"]
        procs = [
            subprocess.Popen(cmd, env={**env, "TF_CONFIG": tf_config(ports, i)}, stdout=subprocess.DEVNULL)
            for i in range(2)
        ]
        codes = [p.wait() for p in procs]
    else:
        extra = ["--strategy", "multiworker"] if arm == "loop 1" else []
        codes = [subprocess.run([sys.executable, *args, *extra], env=env, stdout=subprocess.DEVNULL).returncode]
    if any(codes):
        raise SystemExit(f"training {run} failed: exit codes {codes}")
    return time.monotonic() - t


def accuracy(args: argparse.Namespace) -> None:
    """Trains and evaluates the digits demo per arm and seed; prints the table."""
    work = Path(args.work)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "IMGCLF_QUIET": "1"}
    split = work / "digits" / "split"
    if not split.is_dir():
        stages = ["run", str(DIGITS), "--stages", "scrape,clean,prepare,split", "--data-dir", str(work / "digits")]
        subprocess.run([sys.executable, "-m", "imgclf", *stages], env=env, check=True, stdout=subprocess.DEVNULL)
    print("digits demo (configs/digits.yaml, 40 epochs): test accuracy (268 images), training wall time")
    for arm in args.arms:
        accs, secs = [], []
        for seed in args.seeds:
            run = work / f"{arm.replace(' ', '-')}-s{seed}"
            secs.append(train_digits(split, run, seed, arm))
            subprocess.run(
                [sys.executable, "-m", "imgclf", "evaluate", str(run), "--data", str(split)],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            accs.append(json.loads((run / "metrics.json").read_text())["accuracy"])
            print(f"  {arm:9s} seed {seed}: accuracy {accs[-1]:.4f}, {secs[-1]:.0f} s", flush=True)
        print(
            f"  {arm:9s} mean {statistics.mean(accs):.4f} (min {min(accs):.4f}, max {max(accs):.4f}); "
            f"{statistics.mean(secs):.0f} s per run",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="part", required=True)
    t = sub.add_parser("throughput", help="samples/s of 1 and 2 workers")
    t.add_argument("--variants", nargs="+", default=["fit 1", "loop 1", "loop 2", "fit 2cpu"])
    t.add_argument("--warmup", type=int, default=24)
    t.add_argument("--steps", type=int, default=200)  # a multiple of 8
    t.add_argument("--repeats", type=int, default=3)
    t.add_argument("--steps-per-execution", type=int, default=1, help="steps per compiled call (the demo: 8)")
    a = sub.add_parser("accuracy", help="digits demo accuracy by 1 and 2 workers")
    a.add_argument("--work", required=True, help="scratch folder (the split and the runs)")
    a.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    a.add_argument("--arms", nargs="+", default=["fit 1", "loop 1", "2 workers"])
    args = ap.parse_args()
    if args.part == "throughput" and (args.steps % args.steps_per_execution or args.warmup % args.steps_per_execution):
        ap.error("--steps and --warmup must be multiples of --steps-per-execution")
    throughput(args) if args.part == "throughput" else accuracy(args)


if __name__ == "__main__":
    main()
