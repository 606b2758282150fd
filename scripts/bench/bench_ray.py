"""`--engine ray` against `--engine local` on this machine: stages, the distributed search, memory.

Every Ray run here is on a two-node cluster started by this script on 127.0.0.1
(`ray.cluster_utils.Cluster`: a head and a second node, 1 CPU each, Ray's files in a private
temporary folder), the numbers docs/scale.md turns into a cost model. Parts:

- `stages`: `imgclf clean` then `imgclf prepare` (`--size 32`) of the first 7 k, 21 k and 70 k
  images of Fashion-MNIST (`imgclf datasets fashion-mnist --out DIR`), each with
  `--engine local` (threads on this machine) and `--engine ray` (the cluster), as separate
  commands, one after the other: wall time, per-image cost, Ray's overhead ratio, and that both
  engines wrote the same files.
- `memory`: the peak bytes per image of the whole `clean_folder` in the driver, in-process
  (`tracemalloc`): on the cluster (the signatures held by it) after a warm-up clean, and with
  the local engine (the signatures on the driver).
- `hashes`: the exact Hamming search (radius 8) of n synthetic 64-bit hashes (random, 1 % planted
  near copies of 0-10 flipped bits, a counter-based generator so that workers make their own
  blocks): `imgclf.clean.similarity.distributed.ray_hamming_pairs` on the cluster against
  `hamming.hamming_pairs` in one process (same pairs, both times), or the distributed search
  alone (`--no-local`): wall time, the driver's peak memory, the workers' peak memory.

- `split-memory`: the bytes per image `split`'s driver holds (`tracemalloc`): the listing as
  objects (`SplitItem`s) and as columns (`list_image_columns`), the map's records on the cluster
  with their signatures (what `split --engine ray` received before it kept them on the
  cluster), with the signatures held (`Kept(hold_signatures)`) and as a columnar table
  (`fingerprint_table`, what it receives now), and the peak of a whole `split --engine ray` of
  the code on PYTHONPATH.

Each measurement runs in a process of its own, so one's memory is not another's.

    .venv/bin/python scripts/bench/bench_ray.py stages --data /tmp/fmnist --work /tmp/bench
    .venv/bin/python scripts/bench/bench_ray.py hashes --n 2000000
    .venv/bin/python scripts/bench/bench_ray.py hashes --n 10000000 --no-local
    .venv/bin/python scripts/bench/bench_ray.py memory --data /tmp/fmnist --work /tmp/bench --n 7000 21000
    .venv/bin/python scripts/bench/bench_ray.py split-memory --data /tmp/fmnist --work /tmp/bench --n 7000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# every Ray process on loopback: read by Ray when it is imported
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1"}
BLOCK = 262_144  # codes per block of the synthetic hashes
PLANTED_EVERY = 100  # one code in this many is a near copy of an earlier one


# ------------------------------------------------------------------------- the cluster
@contextmanager
def two_nodes(object_store_mb: int = 400):
    """A head and a second node (1 CPU each) on 127.0.0.1; yields the Cluster, this process connected."""
    tmp = tempfile.mkdtemp(prefix="imgclf-bench-ray-", dir="/tmp")
    os.environ["RAY_TMPDIR"] = tmp
    import ray
    from ray.cluster_utils import Cluster

    node: dict[str, Any] = {**NODE, "object_store_memory": object_store_mb * 2**20}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level=logging.WARNING)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _peak_kb(pid: int) -> int:
    """The peak resident memory (VmHWM) of a process, in KiB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_peaks(cluster) -> list[int]:
    """Peak memory (KiB) of each Ray worker process of the cluster's nodes (children of raylets)."""
    peaks = []
    for node in cluster.list_all_nodes():
        for info in node.all_processes.get("raylet", []):
            peaks += [_peak_kb(p) for p in _children(info.process.pid)]
    return sorted(peaks, reverse=True)


def driver_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ synthetic hashes
def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 of uint64 values (a counter-based generator)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def synthetic_codes(start: int, stop: int, seed: int = 0) -> np.ndarray:
    """Codes `start..stop-1` of the synthetic collection: random, and every `PLANTED_EVERY`-th
    a copy of an earlier random code (up to 1 M before it) with 0-10 random bits flipped."""
    i = np.arange(start, stop, dtype=np.uint64)
    salt = np.uint64(seed) * np.uint64(0x100000001B3)
    codes = _mix(i ^ salt)
    planted = (i % np.uint64(PLANTED_EVERY)) == np.uint64(PLANTED_EVERY - 1)
    if planted.any():
        k = i[planted]
        back = _mix(k ^ salt ^ np.uint64(0xA5A5A5A5)) % np.minimum(k, np.uint64(1_000_000)) + np.uint64(1)
        src = k - back
        src -= ((src % np.uint64(PLANTED_EVERY)) == np.uint64(PLANTED_EVERY - 1)).astype(np.uint64)
        flips = np.zeros(len(k), np.uint64)
        weight = _mix(k ^ salt ^ np.uint64(0x5A5A5A5A)) % np.uint64(11)
        for b in range(10):
            bit = _mix(k ^ salt ^ np.uint64(b + 1) * np.uint64(0x1234567)) % np.uint64(64)
            flips ^= np.where(np.uint64(b) < weight, np.uint64(1) << bit, np.uint64(0))
        codes[planted] = _mix(src ^ salt) ^ flips
    return codes


def make_block(start: int, stop: int, seed: int = 0):
    """The `CodeBlock` of ids `start..stop-1` (made on a worker)."""
    from imgclf.clean.similarity.distributed import CodeBlock

    return CodeBlock(np.arange(start, stop, dtype=np.int64), synthetic_codes(start, stop, seed))


def bench_hashes_ray(n: int, radius: int) -> dict:
    """The distributed search of n synthetic codes on the two-node cluster (this process drives)."""
    import ray

    from imgclf.clean.similarity.distributed import plan_join, ray_hamming_pairs

    with two_nodes() as cluster:
        gen = ray.remote(make_block)
        t0 = time.perf_counter()
        blocks = [gen.remote(s, min(s + BLOCK, n)) for s in range(0, n, BLOCK)]
        i, j, d = ray_hamming_pairs(blocks, None, n, radius, cpus=2)
        seconds = time.perf_counter() - t0
        peaks = worker_peaks(cluster)
        plan = plan_join(n, radius, 2)
    np.savez(f"/tmp/imgclf-bench-pairs-ray-{n}.npz", i=i, j=j, d=d)
    return {
        "n": n,
        "engine": "ray",
        "seconds": round(seconds, 1),
        "pairs": len(i),
        "parts": len(plan.parts),
        "prefix_bits": plan.prefix_bits,
        "driver_peak_mb": round(driver_peak_mb()),
        "worker_peak_mb": [round(p / 1024) for p in peaks[:4]],
    }


def bench_hashes_local(n: int, radius: int) -> dict:
    """The local search of the same codes in this process."""
    from imgclf.clean.similarity.hamming import hamming_pairs

    codes = synthetic_codes(0, n)
    t0 = time.perf_counter()
    i, j, d = hamming_pairs(codes, radius, bits=64)
    seconds = time.perf_counter() - t0
    np.savez(f"/tmp/imgclf-bench-pairs-local-{n}.npz", i=i, j=j, d=d)
    return {
        "n": n,
        "engine": "local",
        "seconds": round(seconds, 1),
        "pairs": len(i),
        "peak_mb": round(driver_peak_mb()),
    }


def _same_pairs(n: int) -> bool:
    a, b = np.load(f"/tmp/imgclf-bench-pairs-ray-{n}.npz"), np.load(f"/tmp/imgclf-bench-pairs-local-{n}.npz")
    return all(np.array_equal(a[k], b[k]) for k in ("i", "j", "d"))


def _self(*args: str) -> dict:
    """Runs this script with `args` in a new process; its last line of output is a JSON result."""
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def hashes(args: argparse.Namespace) -> None:
    for n in args.n:
        ray_ = _self("_hashes", "--engine", "ray", "--n", str(n), "--radius", str(args.radius))
        print(json.dumps(ray_), flush=True)
        if args.local:
            local = _self("_hashes", "--engine", "local", "--n", str(n), "--radius", str(args.radius))
            print(json.dumps(local), flush=True)
            print(json.dumps({"n": n, "same_pairs": _same_pairs(n)}), flush=True)


# ------------------------------------------------------------------------- the stages
def subset(src: Path, dst: Path, per_class: int) -> Path:
    """`dst/<class>/`: hard links to the first `per_class` files (by name) of each class of `src`."""
    if dst.is_dir():
        return dst
    for c in sorted(p for p in src.iterdir() if p.is_dir()):
        (dst / c.name).mkdir(parents=True)
        for f in sorted(c.iterdir())[:per_class]:
            os.link(f, dst / c.name / f.name)
    return dst


def _imgclf(*args: str) -> float:
    """Runs one imgclf command; returns its wall time in seconds."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "imgclf", *args], capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"imgclf {' '.join(args)} failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def _same_tree(a: Path, b: Path) -> bool:
    """The same image files (byte for byte) under `a` and `b` (the reports hold times)."""
    fa = {p.relative_to(a): p for p in a.rglob("*.png")}
    fb = {p.relative_to(b): p for p in b.rglob("*.png") if "_reports" not in p.parts}
    fa = {k: v for k, v in fa.items() if "_reports" not in k.parts}
    return fa.keys() == fb.keys() and all(fa[k].read_bytes() == fb[k].read_bytes() for k in fa)


def stages(args: argparse.Namespace) -> None:
    work = Path(args.work)
    with two_nodes() as cluster:
        for n in args.sizes:
            src = subset(Path(args.data), work / f"fm{n}", n // 10)
            row: dict = {"images": n}
            for engine in ("local", "ray"):
                out = work / f"{engine}{n}"
                shutil.rmtree(out, ignore_errors=True)
                eng = ["--engine", engine, "--ray-address", cluster.address]
                row[f"clean_{engine}_s"] = round(_imgclf("clean", str(src), "--out", str(out / "clean"), *eng), 1)
                prep = ["prepare", str(out / "clean"), "--out", str(out / "prep"), "--size", "32", *eng]
                row[f"prepare_{engine}_s"] = round(_imgclf(*prep), 1)
            for stage in ("clean", "prepare"):
                row[f"{stage}_ratio"] = round(row[f"{stage}_ray_s"] / row[f"{stage}_local_s"], 2)
            total = {e: row[f"clean_{e}_s"] + row[f"prepare_{e}_s"] for e in ("local", "ray")}
            row["ratio"] = round(total["ray"] / total["local"], 2)
            row["ms_per_image"] = {e: round(1000 * total[e] / n, 3) for e in total}
            row["same_files"] = all(_same_tree(work / f"local{n}" / s, work / f"ray{n}" / s) for s in ("clean", "prep"))
            print(json.dumps(row), flush=True)


def _traced(fn):
    """`fn()`'s result and the bytes it left allocated (`tracemalloc`, after a collection)."""
    import gc
    import tracemalloc

    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    out = fn()
    gc.collect()
    return out, tracemalloc.get_traced_memory()[0] - before


def _peak(fn):
    """`fn()`'s result and the peak of the bytes it allocated at once (`tracemalloc` started
    just before it, after a collection: only what `fn` allocates is counted)."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def driver_memory(args: argparse.Namespace) -> None:
    """Peak bytes per image of the whole `clean_folder` in the driver (`tracemalloc`): on the
    two-node cluster (`--engine ray`: the signatures held by the cluster), after a warm-up clean
    of a small folder so that Ray's one-time allocations are not counted, and with the local
    engine (the signatures on the driver); both outputs compared file by file."""
    from imgclf.clean import clean_folder
    from imgclf.engine import make_executor
    from imgclf.engine.ray import RayExecutor

    work = Path(args.work)
    warm = subset(Path(args.data), work / "fm700", 70)
    with two_nodes() as cluster, RayExecutor(cluster.address) as ex:
        clean_folder(warm, work / "warm", executor=ex)
        for n in args.n:
            src = subset(Path(args.data), work / f"fm{n}", n // 10)
            shutil.rmtree(work / f"ray{n}", ignore_errors=True)
            _, peak = _peak(lambda: clean_folder(src, work / f"ray{n}", executor=ex))  # noqa: B023
            print(
                json.dumps({"images": n, "engine": "ray", "peak_mb": round(peak / 2**20, 1), "peak_b": round(peak / n)})
            )
    for n in args.n:
        src = work / f"fm{n}"
        shutil.rmtree(work / f"local{n}", ignore_errors=True)
        _, peak = _peak(lambda: clean_folder(src, work / f"local{n}", executor=make_executor("local", 2)))  # noqa: B023
        same = _same_tree(work / f"local{n}", work / f"ray{n}") and all(
            (work / f"local{n}" / "_reports" / t).read_bytes() == (work / f"ray{n}" / "_reports" / t).read_bytes()
            for t in ("images.csv", "rejects.csv")
        )
        row = {"images": n, "engine": "local", "peak_mb": round(peak / 2**20, 1), "peak_b": round(peak / n)}
        print(json.dumps({**row, "same_files": same}), flush=True)


def _split_stage_peak(src: Path, out: Path, address: str) -> tuple[dict, int]:
    """`split_folder(src, out)` on the cluster: its counts, and the most bytes its driver held
    at once above what it held before (`tracemalloc`'s peak: listing, records, search, plan)."""
    import gc
    import tracemalloc

    from imgclf.config import SplitConfig
    from imgclf.engine.ray import RayExecutor
    from imgclf.split import split_folder

    shutil.rmtree(out, ignore_errors=True)
    with RayExecutor(address) as ex:
        split_folder(src, out.with_name(out.name + "-warm"), SplitConfig(), executor=ex)  # Ray's one-time costs
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        done = split_folder(src, out, SplitConfig(), executor=ex)
        peak = tracemalloc.get_traced_memory()[1] - base
    return done.counts, peak


def _split_columns(src: Path, ex) -> dict[str, int]:
    """Bytes the columnar listing (`list_image_columns`) and the map's table on the cluster
    (`imgclf.split.search.fingerprint_table`: which files were read, the signatures held) leave
    allocated; empty for a checkout without them."""
    try:
        from imgclf.inputs import list_image_columns
        from imgclf.split.search import fingerprint_table
    except ImportError:
        return {}
    files, columns_b = _traced(lambda: list_image_columns(src))
    fingerprint_table(list_image_columns(src), ex)  # a first map: Ray's one-time allocations
    table, table_b = _traced(lambda: fingerprint_table(files, ex))
    assert table[0].ok.all() and table[0].sigs is None
    return {"listing_columns_b": columns_b, "table_held_b": table_b}


def split_memory(args: argparse.Namespace) -> None:
    """Bytes per image `split`'s driver holds: the listing (entries and the map's items), the
    map's records on the cluster -- with their signatures (what `split --engine ray` received
    before the signatures were held) and with the signatures held (`Kept(hold_signatures)`,
    what it receives now) -- and the peak of a whole `split --engine ray` (the code on
    PYTHONPATH: run it on two checkouts to compare them). Each Ray map after a first small one,
    so that Ray's one-time allocations are not counted per image."""
    import tracemalloc

    from imgclf.clean.similarity.held import hold_signatures
    from imgclf.engine.ray import Kept, RayExecutor
    from imgclf.inputs import list_images
    from imgclf.split import SplitItem, fingerprint_file

    work = Path(args.work)
    src = subset(Path(args.data), work / f"fm{args.n}", args.n // 10)

    def listing() -> list:
        entries = list(list_images(src, layout="classes").entries)
        return [SplitItem(k, str(e.path), e.rel, str(e.label), e.subset) for k, e in enumerate(entries)]

    tracemalloc.start()
    items, listing_b = _traced(listing)
    with two_nodes() as cluster, RayExecutor(cluster.address) as ex:
        list(ex.map(fingerprint_file, items[:512]))
        signed, signed_b = _traced(lambda: list(ex.map(fingerprint_file, items)))
        assert all(r.signature is not None and not hasattr(r.signature, "position") for r in signed)
        del signed
        list(ex.map(fingerprint_file, items[:512], keep=Kept(hold_signatures)))
        held, held_b = _traced(lambda: list(ex.map(fingerprint_file, items, keep=Kept(hold_signatures))))
        assert all(hasattr(r.signature, "position") for r in held)
        del held
        columns = _split_columns(src, ex)
        counts, peak = _split_stage_peak(src, work / f"split{args.n}", cluster.address)
    n = len(items)
    print(
        json.dumps(
            {
                "images": n,
                "listing_b": round(listing_b / n),
                "records_signatures_b": round(signed_b / n),
                "records_held_b": round(held_b / n),
                **{k: round(v / n) for k, v in columns.items()},
                "split_peak_b": round(peak / n),
                "split_totals": {s: sum(c.values()) for s, c in counts.items()},
            }
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    h = sub.add_parser("hashes")
    h.add_argument("--n", type=int, nargs="+", default=[2_000_000])
    h.add_argument("--radius", type=int, default=8)
    h.add_argument("--no-local", dest="local", action="store_false")
    hh = sub.add_parser("_hashes")
    hh.add_argument("--engine", choices=("local", "ray"), required=True)
    hh.add_argument("--n", type=int, required=True)
    hh.add_argument("--radius", type=int, default=8)
    s = sub.add_parser("stages")
    s.add_argument("--data", required=True, help="imgclf datasets fashion-mnist --out DATA")
    s.add_argument("--work", required=True)
    s.add_argument("--sizes", type=int, nargs="+", default=[7_000, 21_000, 70_000])
    m = sub.add_parser("memory")
    m.add_argument("--data", required=True)
    m.add_argument("--work", required=True)
    m.add_argument("--n", type=int, nargs="+", default=[7_000, 21_000], help="images (the first n / 10 of each class)")
    sm = sub.add_parser("split-memory")
    sm.add_argument("--data", required=True)
    sm.add_argument("--work", required=True, help="the subset and the split outputs go here")
    sm.add_argument("--n", type=int, default=7_000, help="images (the first n / 10 of each class)")
    args = ap.parse_args()
    if args.part == "hashes":
        hashes(args)
    elif args.part == "_hashes":
        run = bench_hashes_ray if args.engine == "ray" else bench_hashes_local
        print(json.dumps(run(args.n, args.radius)))
    elif args.part == "stages":
        stages(args)
    elif args.part == "split-memory":
        split_memory(args)
    else:
        driver_memory(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
