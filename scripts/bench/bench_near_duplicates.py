"""Near-duplicate search at scale: imgclf's multi-index hashing vs faiss `IndexBinaryFlat`.

For n random 64-bit hashes (uniform, plus 0.1% planted near copies so that the answer is not
empty), finds every pair within Hamming radius 10 with
- `imgclf.clean.similarity.hamming.hamming_pairs` (exact multi-index hashing, numpy), and
- faiss-cpu `IndexBinaryFlat.range_search` of every code against all codes (all-pairs, exact,
  2 OpenMP threads), in the same run.
Both results are compared pair for pair where faiss ran in full. When faiss all-pairs would
take more than `--faiss-budget` seconds (estimated from a first sample of queries), only a
random sample of queries is timed and the full time is extrapolated linearly in the number of
queries -- clearly labelled "extrapolated" in the output.

    .venv/bin/python scripts/bench/bench_near_duplicates.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from imgclf.clean.similarity.hamming import hamming_pairs, plan_chunks


def make_codes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    codes |= rng.integers(0, 2, size=n).astype(np.uint64)
    k = max(1, n // 1000)
    src = rng.integers(0, n - k, size=k)
    flips = np.zeros(k, dtype=np.uint64)
    for _ in range(6):  # up to 6 flipped bits
        flips ^= np.uint64(1) << rng.integers(0, 64, size=k).astype(np.uint64)
    codes[n - k :] = codes[src] ^ flips
    return codes.reshape(-1, 1)


def faiss_pairs(codes: np.ndarray, radius: int, queries: np.ndarray | None = None):
    import faiss

    x = codes[:, 0].astype(">u8").view(np.uint8).reshape(-1, 8)
    index = faiss.IndexBinaryFlat(64)
    index.add(x)
    q = x if queries is None else x[queries]
    lims, dist, ids = index.range_search(q, radius + 1)  # faiss: distance < radius
    qi = np.repeat(np.arange(len(q)) if queries is None else queries, np.diff(lims.astype(np.int64)))
    keep = qi < ids
    return qi[keep], ids[keep].astype(np.int64), dist[keep].astype(np.int64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--radius", type=int, default=10)
    ap.add_argument("--faiss-budget", type=float, default=600.0, help="seconds; above this faiss runs on a sample")
    args = ap.parse_args()
    import faiss

    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; numpy {np.__version__}; radius {args.radius}"
    )
    print(f"{'n':>9} {'imgclf MIH s':>13} {'pairs':>7} {'faiss all-pairs s':>22} {'speed-up':>9}  plan")
    for n in args.sizes:
        codes = make_codes(n)
        plan = plan_chunks(n, 64, args.radius)
        t = time.perf_counter()
        i, j, d = hamming_pairs(codes, args.radius, method="mih")
        t_mih = time.perf_counter() - t
        # estimate faiss time from a small sample first
        rng = np.random.default_rng(1)
        probe = np.sort(rng.choice(n, size=min(n, 2000), replace=False))
        t = time.perf_counter()
        faiss_pairs(codes, args.radius, probe)
        est = (time.perf_counter() - t) * n / len(probe)
        if est <= args.faiss_budget:
            t = time.perf_counter()
            fi, fj, fd = faiss_pairs(codes, args.radius)
            t_faiss = time.perf_counter() - t
            order = np.lexsort((fj, fi))
            same = np.array_equal(fi[order], i) and np.array_equal(fj[order], j) and np.array_equal(fd[order], d)
            label = f"{t_faiss:10.2f} measured"
            check = "identical pairs" if same else "MISMATCH"
        else:
            sample = np.sort(rng.choice(n, size=max(2000, int(n * 0.02)), replace=False))
            t = time.perf_counter()
            faiss_pairs(codes, args.radius, sample)
            t_faiss = (time.perf_counter() - t) * n / len(sample)
            label = f"{t_faiss:10.0f} extrapolated ({len(sample)} queries)"
            check = "faiss on a sample only"
        radii = ",".join(map(str, plan.radii))
        print(
            f"{n:>9} {t_mih:13.2f} {len(i):>7} {label:>22} {t_faiss / t_mih:8.1f}x  "
            f"{len(plan.bounds)} chunks, radii {radii}; {check}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
