"""Copies of one picture across train / val / test when `split` runs on `prepare`'s output.

The dedupe benchmark's wallpapers (`dedupe_set.py`: 68 pictures, each with 12 copies -- resized,
re-encoded, cropped, letterboxed, bordered, watermarked, brightened; mirrored copies left out)
are sorted into three classes by package (gnome / mate / plasma) and taken the way a user who
skips `clean` does: `prepare --size S` (center crop), then `split`. Counted: duplicate sets whose
files land in more than one split (each one a copy of a test picture the model trained on).

Baseline, in the same run: the same `split` with the source signatures that `prepare` writes
(`_reports/source_signatures.npz`) removed -- what `split` did before 2026-12-02: it compared
the center-cropped files only, where a 16:9 picture and its letterboxed copy are two different
squares.

Run: .venv/bin/python scripts/bench/bench_split_after_crop.py --work /tmp/w12/set --sizes 64,224 --seeds 7,8
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedupe_set import build

from imgclf.config import PrepareConfig, SplitConfig
from imgclf.prepare import prepare_folder
from imgclf.records.signatures import SOURCE_RECORD
from imgclf.split import split_folder


def spread(out: Path, info: dict[str, tuple[str, str]]) -> tuple[int, int]:
    where: dict[str, set] = defaultdict(set)
    for s in ("train", "val", "test"):
        for f in (out / s).rglob("*.png"):
            set_, kind = info[f.stem]
            if kind != "flip":
                where[set_].add(s)
    return sum(len(v) > 1 for v in where.values()), len(where)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/dedupe-bench", help="dedupe_set.py's folder (built if missing)")
    ap.add_argument("--sizes", default="64,224")
    ap.add_argument("--seeds", default="7")
    args = ap.parse_args()
    items = [
        it for it in build(Path(args.work), log=lambda m: None) if not it.set.startswith("icon-") and it.kind != "flip"
    ]
    info = {Path(it.file).stem: (it.set, it.kind) for it in items}
    tmp = Path(tempfile.mkdtemp(prefix="bench-crop-"))
    try:
        raw = tmp / "raw"
        for it in items:
            label = it.file.split("-", 1)[0]  # gnome / mate / plasma
            (raw / label).mkdir(parents=True, exist_ok=True)
            (raw / label / it.file).symlink_to(Path(args.work) / "images" / it.file)
        print(f"{len(items)} files of {len({it.set for it in items})} wallpaper duplicate sets, 3 classes\n")
        print(
            "| prepare size | split seed | sets across splits: files only (before) | with source signatures | split time before / with |"
        )
        print("|---|---|---|---|---|")
        for size in map(int, args.sizes.split(",")):
            prep = tmp / f"prep{size}"
            prepare_folder(raw, prep, PrepareConfig(size=size))
            record = (prep / SOURCE_RECORD).read_bytes()
            for seed in map(int, args.seeds.split(",")):
                t = time.perf_counter()
                split_folder(prep, tmp / "with", SplitConfig(seed=seed))
                t_with = time.perf_counter() - t
                (prep / SOURCE_RECORD).unlink()
                t = time.perf_counter()
                split_folder(prep, tmp / "before", SplitConfig(seed=seed))
                t_before = time.perf_counter() - t
                (prep / SOURCE_RECORD).write_bytes(record)  # same bytes: its stamps name the files
                a, n = spread(tmp / "before", info)
                b, _ = spread(tmp / "with", info)
                print(f"| {size} | {seed} | {a} of {n} | {b} of {n} | {t_before:.1f} s / {t_with:.1f} s |", flush=True)
                shutil.rmtree(tmp / "with")
                shutil.rmtree(tmp / "before")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
