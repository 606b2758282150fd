"""What `prepare`'s source signatures cost: `prepare_folder` with them vs without, alternating.

Since 2026-12-02 `prepare` also stores the near-duplicate signature of each source picture that
its center crop cuts or that it reduces to less than half its resolution
(`imgclf.clean.similarity.write_source_record`; docs/dedupe.md, "Duplicates after the center
crop"), from the decode it makes anyway (a JPEG drafted below 256 px is decoded again at 256),
and writes them to one compressed file. The baseline is the same `prepare_folder` with that step
switched off (what it did before), in the same process, alternating, each run into a fresh folder.

Run: .venv/bin/python scripts/bench/bench_prepare_sources.py SRC [SRC ...] --size 64 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import imgclf.prepare as prep
import imgclf.prepare.resize as prep_map
from imgclf.config import PrepareConfig
from imgclf.records.signatures import SOURCE_RECORD


def run(src: Path, size: int, with_sources: bool) -> tuple[float, int, int]:
    saved = prep_map.source_signature  # the map's step (a thread pool runs it in this process)
    if not with_sources:
        prep_map.source_signature = lambda *args: None
    out = Path(tempfile.mkdtemp(prefix="bench-prep-"))
    try:
        t = time.perf_counter()
        res = prep.prepare_folder(src, out / "p", PrepareConfig(size=size))
        dt = time.perf_counter() - t
        rec = out / "p" / SOURCE_RECORD
        return dt, res.kept, rec.stat().st_size if rec.exists() else 0
    finally:
        prep_map.source_signature = saved
        shutil.rmtree(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="+", help="class folders to prepare (e.g. a clean output)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"prepare_folder --size {args.size}, {os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.1f}\n")
    print("| input | run | without source signatures | with | ratio | images | record size |")
    print("|---|---|---|---|---|---|---|")
    for src in map(Path, args.src):
        tot = [0.0, 0.0]
        for r in range(args.repeats):
            a, n, _ = run(src, args.size, False)
            b, _, size = run(src, args.size, True)
            tot[0] += a
            tot[1] += b
            print(
                f"| {src} | {r + 1} | {a:.1f} s | {b:.1f} s | {b / a:.2f}x | {n} | {size / 1e6:.2f} MB "
                f"({size / max(n, 1):.0f} bytes per image) |",
                flush=True,
            )
        print(f"| {src} | total | {tot[0]:.1f} s | {tot[1]:.1f} s | **{tot[1] / tot[0]:.2f}x** | | |", flush=True)


if __name__ == "__main__":
    main()
