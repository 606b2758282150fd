"""Load test of `imgclf serve` (issue 14): micro-batching on / off against the usual baseline.

Three servers on 127.0.0.1, each in its own process, all serving the same run:

    batching   imgclf serve RUN                     (--max-batch 32 --max-delay-ms 10, the defaults)
    no-batch   imgclf serve RUN --max-batch 1       (micro-batching off: one model call per image)
    baseline   the endpoint people write: a minimal FastAPI app whose `def predict(file)` decodes
               the upload with the same `imgclf.inputs.load_image` and calls `model.predict(x)`
               once per request (FastAPI runs a sync endpoint in its thread pool), on uvicorn

A bounded client (asyncio + httpx, `--requests` requests per measurement, each one JPEG upload,
after `--warmup` unmeasured ones) runs at each concurrency of `--concurrency` (default 1, 8, 32)
against each server, interleaved (for each concurrency: batching, no-batch, baseline) so drifts
of the machine's load hit all three alike. Reported per cell: images/s (requests / wall time),
p50 and p99 latency in milliseconds (request sent -> answer read), and, for imgclf servers, the
mean batch size (from `/v1/metrics`). Then the ratios to the baseline, and the goal of issue 14
at concurrency 32: >= 3x the baseline's throughput with a p99 latency no worse.

The run is built here unless `--run` is given: the registry's `--model` (default `cnn`) at
`--size` px (default 64), 10 classes, random weights (speed does not depend on them), saved as
`imgclf train` would. The image is a 640x480 JPEG.

Nothing leaves the machine: every request goes to 127.0.0.1, the request count is fixed, each
request has a 120 s timeout, and the servers are stopped at the end (SIGTERM).

Usage:
    .venv/bin/python scripts/bench/bench_serve.py [--requests 200] [--concurrency 1,8,32]
        [--model cnn] [--size 64] [--run RUN]
"""

import argparse
import asyncio
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))


# ----------------------------------------------------------------------------- the baseline
def run_baseline_server(run: Path, host: str) -> None:
    """The baseline people write (a minimal FastAPI app, `model.predict` per request); blocks."""
    import uvicorn
    from fastapi import FastAPI, File, UploadFile

    from imgclf.inputs import load_image
    from imgclf.records.run import load_run_info
    from imgclf.runtime import load_keras_model
    from imgclf.serve.server import bind_socket

    info = load_run_info(run)
    model = load_keras_model(run / "best.keras")
    app = FastAPI()

    @app.post("/predict")
    def predict(file: UploadFile = File(...)):
        x = load_image(file.file.read(), info.input_spec)[None]
        probs = model.predict(x, verbose=0)[0]
        i = int(np.argmax(probs))
        return {"label": info.class_names[i], "probability": float(probs[i])}

    sock = bind_socket(host, 0)
    print(f"baseline: http://{host}:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


# --------------------------------------------------------------------------------- helpers
def build_run(root: Path, model_name: str, size: int) -> Path:
    """Writes `root/run/` (best.keras + run.json); returns the run folder."""
    from imgclf.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()  # before Keras: TensorFlow's start-up chatter hidden
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
    return run


def photo_jpeg() -> bytes:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    photo = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1) + rng.integers(0, 30, (480, 640, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(photo, 0, 255).astype("uint8")).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def start(cmd: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """Starts a server process; returns it and the URL from its first stdout line."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if "http://" in line:
                return proc, "http://" + line.split("http://", 1)[1].split()[0]
            break
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"server did not start: {' '.join(cmd)}\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def batch_stats(url: str) -> tuple[float, float]:
    """(images, model calls) so far, from an imgclf server's `/v1/metrics`."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    total = calls = 0.0
    for family in text_string_to_metric_families(httpx.get(f"{url}/v1/metrics", timeout=30).text):
        if family.name == "imgclf_batch_size":
            for s in family.samples:
                if s.name.endswith("_sum"):
                    total = s.value
                elif s.name.endswith("_count"):
                    calls = s.value
    return total, calls


async def load(endpoint: str, image: bytes, requests: int, concurrency: int, warmup: int) -> dict[str, float]:
    """`requests` uploads of `image` with `concurrency` in flight; returns throughput and latencies."""
    import httpx

    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one(measure: bool) -> None:
            nonlocal failures
            t = time.perf_counter()
            try:
                res = await client.post(endpoint, files={"file": ("photo.jpg", image, "image/jpeg")})
            except httpx.HTTPError:
                failures += 1
                return
            dt = time.perf_counter() - t
            if res.status_code != 200:
                failures += 1
            elif measure:
                latencies.append(dt)

        async def worker(queue: asyncio.Queue, measure: bool) -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await one(measure)

        async def phase(n: int, measure: bool) -> float:
            queue: asyncio.Queue = asyncio.Queue()
            for i in range(n):
                queue.put_nowait(i)
            t = time.perf_counter()
            await asyncio.gather(*(worker(queue, measure) for _ in range(concurrency)))
            return time.perf_counter() - t

        await phase(warmup, False)
        wall = await phase(requests, True)
    lat = np.asarray(latencies) * 1000
    return {
        "images_s": len(latencies) / wall,
        "p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
        "failures": failures,
        "wall": wall,
    }


def measure(
    servers: dict[str, tuple[list[str], str]],
    urls: dict[str, str],
    concurrencies: list[int],
    requests: int,
    warmup: int,
) -> dict[tuple[str, int], dict[str, float]]:
    """Loads every server at every concurrency, in turn; returns the figures by (server, concurrency)."""
    image = photo_jpeg()
    results: dict[tuple[str, int], dict[str, float]] = {}
    for c in concurrencies:
        for name, (_, path) in servers.items():
            before = batch_stats(urls[name]) if name != "baseline" else None
            r = asyncio.run(load(urls[name] + path, image, requests, c, warmup or 2 * c))
            if before is not None:
                after = batch_stats(urls[name])
                calls = after[1] - before[1]
                r["batch"] = (after[0] - before[0]) / calls if calls else float("nan")
            results[(name, c)] = r
            print(
                f"  c={c:<3} {name:<9} {r['images_s']:8.1f} images/s  p50 {r['p50']:8.1f} ms  p99 {r['p99']:8.1f} ms"
                + (f"  mean batch {r['batch']:.1f}" if "batch" in r else "")
                + (f"  FAILURES {r['failures']}" if r["failures"] else ""),
                flush=True,
            )
    return results


def report(
    results: dict[tuple[str, int], dict[str, float]],
    servers: list[str],
    concurrencies: list[int],
    requests: int,
    warmup: int,
    load_before: tuple[float, float, float],
) -> None:
    """Prints the Markdown table of docs/benchmarks.md and the verdict on the goal."""
    load_after = os.getloadavg()
    print()
    print(
        "| server | concurrency | images/s | p50 latency (ms) | p99 latency (ms) | mean batch "
        "| x baseline images/s | p99 / baseline p99 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in concurrencies:
        base = results[("baseline", c)]
        for name in servers:
            r = results[(name, c)]
            batch = f"{r['batch']:.1f}" if "batch" in r else "-"
            print(
                f"| {name} | {c} | {r['images_s']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | {batch} | "
                f"{r['images_s'] / base['images_s']:.2f} | {r['p99'] / base['p99']:.2f} |"
            )
    print()
    print(
        f"{requests} measured requests per cell (one 640x480 JPEG each), after {warmup or '2 x concurrency'} "
        f"warm-up requests; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"(1-minute; {os.cpu_count()} CPUs, shared)"
    )
    if 32 in concurrencies:
        b, base = results[("batching", 32)], results[("baseline", 32)]
        ratio, p99 = b["images_s"] / base["images_s"], b["p99"] / base["p99"]
        ok = ratio >= 3 and p99 <= 1
        print(
            f"goal at concurrency 32 (>= 3x the baseline's images/s, p99 no worse): {ratio:.2f}x, "
            f"p99 {b['p99']:.1f} ms vs {base['p99']:.1f} ms -> {'met' if ok else 'NOT met'}"
        )
    if any(r["failures"] for r in results.values()):
        print("some requests failed: see the FAILURES lines above")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="measured requests per cell (default 200)")
    parser.add_argument("--warmup", type=int, default=0, help="unmeasured requests first (default: 2 x concurrency)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated requests in flight (default 1,8,32)")
    parser.add_argument("--model", default="cnn", help="registry model name (default cnn)")
    parser.add_argument("--size", type=int, default=64, help="input side in pixels (default 64)")
    parser.add_argument("--run", type=Path, default=None, help="bench this run folder instead of building one")
    parser.add_argument("--baseline-server", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    host = "127.0.0.1"
    if args.baseline_server is not None:
        run_baseline_server(args.baseline_server, host)
        return

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    exe = Path(sys.executable)
    console_script = exe.with_name("imgclf")
    imgclf = [str(console_script)] if console_script.is_file() else [sys.executable, "-m", "imgclf"]
    work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    load_before = os.getloadavg()
    procs: list[subprocess.Popen] = []
    try:
        run = args.run or build_run(work, args.model, args.size)
        what = f"{args.model} at {args.size}x{args.size} px, random weights" if args.run is None else str(run)
        cpus, (l1, l5, l15) = os.cpu_count(), load_before
        print(f"run: {what}; {cpus} CPUs; load average {l1:.2f} {l5:.2f} {l15:.2f}", flush=True)
        servers = {
            "batching": (imgclf + ["serve", str(run), "--port", "0"], "/v1/predict"),
            "no-batch": (imgclf + ["serve", str(run), "--port", "0", "--max-batch", "1"], "/v1/predict"),
            "baseline": ([sys.executable, __file__, "--baseline-server", str(run)], "/predict"),
        }
        urls = {}
        for name, (cmd, _) in servers.items():
            proc, url = start(cmd, work / f"{name}.log")
            procs.append(proc)
            urls[name] = url
            print(f"{name}: {url}", flush=True)
        results = measure(servers, urls, concurrencies, args.requests, args.warmup)
        report(results, list(servers), concurrencies, args.requests, args.warmup, load_before)
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
