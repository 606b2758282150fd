"""Checks that two versions of imgclf's near-duplicate detector give bit-identical results.

Runs the same steps with each source tree (`--old-src`, `--new-src`; each in its own Python
process, `PYTHONPATH=<src>`) on the same image folders, and compares everything they return:

- the signatures (`stack` of `signature` of every image, decoded with `open_image(path,
  draft=256)` as `clean` does): all seven arrays;
- `find_duplicate_pairs(sigs)` and `find_duplicate_pairs(sigs, flips=True)`;
- `find_cross_pairs(even, odd)` (the images at even positions against those at odd ones) and
  the same with `flips=True`;

arrays `i`, `j`, `kind`, `residual` and `aligned` with `numpy.array_equal` (residuals bit for
bit, `inf` included). Also prints each version's signature and search times (`--repeats`
runs of each, alternating which goes first; the machine's own drift is part of them).

Usage (the benchmark of `dedupe_set.py` and a Fashion-MNIST folder of `imgclf datasets`):

    python scripts/bench/check_detector_identity.py --old-src /path/to/old/src \\
        --set /tmp/dedupe-bench --fashion /tmp/fm --fashion-limit 5000

Exit status 0 when every array is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIG_FIELDS = ("digests", "large", "codes", "flip_codes", "window_codes", "gray", "colour")
PAIR_FIELDS = ("i", "j", "kind", "residual", "aligned")
RUNS = ("pairs", "pairs_flips", "cross", "cross_flips")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def list_images(folder: Path, limit: int | None) -> list[Path]:
    """Image files under `folder` (recursively, sorted by path); at most `limit`, evenly spaced."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return files[:: max(1, len(files) // limit)][:limit] if limit else files


def worker(list_file: Path, out: Path) -> None:
    """Runs the detector of the imgclf on `sys.path` on the files listed in `list_file`."""
    from imgclf.clean import similarity as sim
    from imgclf.images import ORIGINAL_SIZE_KEY, open_image

    files = list_file.read_text().splitlines()
    imgs = [open_image(f, draft=256) for f in files]
    t, c = time.perf_counter(), time.process_time()
    sigs = sim.stack([sim.signature(im, size=im.info[ORIGINAL_SIZE_KEY]) for im in imgs])
    t_sig, c_sig = time.perf_counter() - t, time.process_time() - c
    arrays = {f"sig_{f}": getattr(sigs, f) for f in SIG_FIELDS}
    t, c = time.perf_counter(), time.process_time()
    results = {"pairs": sim.find_duplicate_pairs(sigs)}
    t_find, c_find = time.perf_counter() - t, time.process_time() - c
    results["pairs_flips"] = sim.find_duplicate_pairs(sigs, flips=True)
    even, odd = sigs.take(np.arange(0, len(sigs), 2)), sigs.take(np.arange(1, len(sigs), 2))
    t, c = time.perf_counter(), time.process_time()
    results["cross"] = sim.find_cross_pairs(even, odd)
    t_cross, c_cross = time.perf_counter() - t, time.process_time() - c
    results["cross_flips"] = sim.find_cross_pairs(even, odd, flips=True)
    for run, p in results.items():
        arrays.update({f"{run}_{f}": getattr(p, f) for f in PAIR_FIELDS})
    times = np.array([t_sig, t_find, t_cross, c_sig, c_find, c_cross])
    np.savez(out, times=times, **arrays)


def run_version(src: Path, files: list[Path], work: Path, label: str) -> dict[str, np.ndarray]:
    """Runs `worker` with `PYTHONPATH=src` and returns its arrays."""
    list_file, out = work / f"{label}.txt", work / f"{label}.npz"
    list_file.write_text("\n".join(str(f) for f in files))
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, __file__, "--worker", str(list_file), str(out)]
    subprocess.run(cmd, env=env, check=True)
    with np.load(out, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def compare(name: str, old: dict[str, np.ndarray], new: dict[str, np.ndarray], n: int) -> bool:
    """Prints one line per compared result; True when everything is identical."""
    same_sig = all(np.array_equal(old[f"sig_{f}"], new[f"sig_{f}"]) for f in SIG_FIELDS)
    print(f"{name}: {n} images; signatures (7 arrays) identical: {same_sig}")
    ok = same_sig
    for run in RUNS:
        eq = {f: np.array_equal(old[f"{run}_{f}"], new[f"{run}_{f}"]) for f in PAIR_FIELDS}
        kinds = dict(zip(*np.unique(new[f"{run}_kind"], return_counts=True)))
        counts = ", ".join(f"{k} {int(c)}" for k, c in kinds.items()) or "none"
        same = all(eq.values())
        ok &= same
        print(
            f"  {run:12s} old {len(old[f'{run}_i']):5d} pairs, new {len(new[f'{run}_i']):5d} ({counts}); "
            f"identical: {same} ({', '.join(f'{f} {v}' for f, v in eq.items())})"
        )
    return ok


def print_times(old: list[np.ndarray], new: list[np.ndarray]) -> None:
    """One line per step: each run's time old / new (alternating order), and the medians; wall
    clock, then CPU time of the process (all its threads; less moved by other jobs)."""
    names = ["signatures", "find_duplicate_pairs", "find_cross_pairs"]
    steps = names + [f"{s} (CPU)" for s in names]
    for k, step in enumerate(steps):
        runs = ", ".join(f"{o[k]:.2f} / {n[k]:.2f}" for o, n in zip(old, new))
        mo, mn = float(np.median([o[k] for o in old])), float(np.median([n[k] for n in new]))
        print(f"  {step:27s} old / new per run: {runs} s; median {mo:.2f} / {mn:.2f} s ({mn / mo:.2f}x)")


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]), Path(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-src", required=True, type=Path, help="src folder of the old version (the reference)")
    default_new = Path(__file__).resolve().parents[2] / "src"
    ap.add_argument("--new-src", type=Path, default=default_new, help=f"src folder of the new version ({default_new})")
    ap.add_argument("--set", type=Path, default=None, help="a dedupe_set.py benchmark folder (its images/)")
    ap.add_argument("--fashion", type=Path, default=None, help="a Fashion-MNIST PNG folder (imgclf datasets)")
    ap.add_argument(
        "--fashion-limit", type=int, default=5000, help="N Fashion-MNIST files, evenly spaced in path order"
    )
    ap.add_argument("--repeats", type=int, default=1, help="runs of each version, alternating (for the timing)")
    args = ap.parse_args()
    folders = []
    if args.set is not None:
        folders.append((f"benchmark {args.set}", list_images(args.set / "images", None)))
    if args.fashion is not None:
        folders.append((f"Fashion-MNIST {args.fashion}", list_images(args.fashion, args.fashion_limit)))
    if not folders:
        ap.error("give --set and/or --fashion")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, files) in enumerate(folders):
            olds: list[dict[str, np.ndarray]] = []
            news: list[dict[str, np.ndarray]] = []
            for r in range(args.repeats):  # alternating order: old first, then new first, ...
                for label in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    src = args.old_src if label == "old" else args.new_src
                    (olds if label == "old" else news).append(run_version(src, files, Path(tmp), f"{label}{k}"))
            for old, new in zip(olds, news):
                ok &= compare(name, old, new, len(files))
            print_times([o["times"] for o in olds], [n["times"] for n in news])
    print("ALL IDENTICAL" if ok else "DIFFERENCES FOUND")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
