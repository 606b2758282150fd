"""The stages' speed against a previous release, in one run (issue: stages you can read, test and distribute).

Times four commands of this checkout and of an older one, alternately (new, old, new, old, ...)
in fresh processes, so that both see the same machine load, and prints the median wall time of
each and the ratio new / old (goal: every ratio <= 1.1; `imgclf --help` <= 0.5 s):

    help       imgclf --help
    predict    imgclf predict photo.jpg --model RUN        (cold start, best.keras; bench_predict.py's run)
    prepare    imgclf prepare IMAGES --out OUT --size 32   (throughput; OUT removed before each run)
    clean      imgclf clean IMAGES --out OUT                (OUT removed before each run)

The old checkout is given by its `src` folder (`git worktree add /tmp/old <commit>`); both run
with this interpreter, so the libraries are the same and only imgclf's code differs.

Usage:
    .venv/bin/python scripts/bench/bench_release.py --old-src /tmp/old/src \
        --prepare-images /tmp/fm10k --clean-images /tmp/fm [--repeats 5] [--only help,predict]
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

HERE = Path(__file__).resolve().parent
NEW_SRC = HERE.parents[1] / "src"


def _time(src: Path, args: list[str], out: Path | None) -> float:
    """Wall seconds of one `python -m imgclf ARGS` with `src` first on the path (OUT removed first)."""
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(src))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "imgclf", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"imgclf {' '.join(args)} failed ({src}):\n{done.stderr[-2000:]}")
    return seconds


def _commands(work: Path, opts: argparse.Namespace) -> dict[str, tuple[list[str], bool]]:
    """name -> (arguments, whether the command writes `work/<side>-out`)."""
    sys.path.insert(0, str(HERE))
    from bench_predict import build_run  # the same run and photo as the cold-start benchmark

    run = build_run(work, "cnn", 32)
    cmds: dict[str, tuple[list[str], bool]] = {
        "help": (["--help"], False),
        "predict": (["predict", str(work / "photo.jpg"), "--model", str(run)], False),
    }
    if opts.prepare_images:
        cmds["prepare"] = (["prepare", str(opts.prepare_images), "--size", "32", "--out"], True)
    if opts.clean_images:
        cmds["clean"] = (["clean", str(opts.clean_images), "--out"], True)
    return cmds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-src", type=Path, required=True, help="the older checkout's src/ folder")
    parser.add_argument("--prepare-images", type=Path, help="ImageFolder for prepare (skipped when absent)")
    parser.add_argument("--clean-images", type=Path, help="ImageFolder for clean (skipped when absent)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side (median reported)")
    parser.add_argument("--only", default="", help="comma-separated subset of help,predict,prepare,clean")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        work = Path(tmp)
        cmds = _commands(work, opts)
        wanted = [c for c in cmds if not opts.only or c in opts.only.split(",")]
        print(f"{'command':<9} {'new median s':>13} {'old median s':>13} {'new / old':>10}")
        for name in wanted:
            args, writes = cmds[name]
            times: dict[str, list[float]] = {"new": [], "old": []}
            for side, src in [("new", NEW_SRC), ("old", opts.old_src)]:  # one untimed warm-up each
                _time(src, args + ([str(work / f"{side}-out")] if writes else []), work / f"{side}-out")
            for _ in range(opts.repeats):
                for side, src in [("new", NEW_SRC), ("old", opts.old_src)]:
                    out = work / f"{side}-out" if writes else None
                    times[side].append(_time(src, args + ([str(out)] if out else []), out))
            new, old = statistics.median(times["new"]), statistics.median(times["old"])
            print(f"{name:<9} {new:>13.3f} {old:>13.3f} {new / old:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
