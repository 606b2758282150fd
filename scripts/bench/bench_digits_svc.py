"""The digits demo (`make demo`, configs/digits.yaml) against scikit-learn's SVC on the same split.

Trains the demo once per seed (`imgclf run CONFIG --set train.seed=S`, the split fixed by the
config's split seed), then fits `sklearn.svm.SVC(gamma=0.001)` -- scikit-learn's own digits
example -- on the same train + val images and scores it on the same test images, so the two
stand side by side:

- The SVC sees the 8x8 originals (`sklearn.datasets.load_digits().data`, values 0..16): the
  demo's files are named `digits_<index>.png` by `imgclf datasets`, so every file of the split
  maps back to its original row, and the label of its class folder is checked against
  `load_digits().target`.
- "wall s" is the whole `imgclf run` command (Python and TensorFlow start-up included; the
  first seed also runs the data stages), "CPU s" the user + system CPU time it used, "train s"
  `run.json`'s `train_seconds` (all of `imgclf train`).
- Each demo run is tested against the SVC with the exact McNemar test on the same test images
  (`imgclf.stats.mcnemar_exact`), and gets a 95 % percentile-bootstrap interval
  (`metrics.json`).

Prints figures; asserts nothing about time (the machine is shared: the load average at the
start and end is printed with them).

    .venv/bin/python scripts/bench/bench_digits_svc.py --seeds 42 43 44 --work /tmp/bench_digits
    .venv/bin/python scripts/bench/bench_digits_svc.py --runs models/digits   # an existing run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def digits_index(path: Path) -> int:
    """Row of `load_digits()` a demo file comes from (`digits_<index>.png`, `imgclf datasets`)."""
    stem = path.stem
    if not stem.startswith("digits_"):
        raise SystemExit(f"{path}: not a file written by `imgclf datasets digits` (digits_<index>.png)")
    return int(stem.split("_", 1)[1])


def split_rows(split_dir: Path, subset: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(original row indices, labels, relative paths) of one subset of a split folder."""
    from imgclf.inputs import list_images

    listing = list_images(split_dir / subset, layout="classes")
    idx = np.array([digits_index(e.path) for e in listing.entries])
    labels = np.array([int(e.label) for e in listing.entries])
    return idx, labels, [e.rel for e in listing.entries]


def svc_on_split(split_dir: Path) -> dict:
    """SVC(gamma=0.001) fitted on train + val 8x8 originals, scored on the test originals."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    d = load_digits()
    parts = {s: split_rows(split_dir, s) for s in ("train", "val", "test")}
    for s, (idx, y, _) in parts.items():
        if not np.array_equal(d.target[idx], y):
            raise SystemExit(f"{split_dir / s}: class folders disagree with load_digits().target")
    fit_idx = np.concatenate([parts["train"][0], parts["val"][0]])
    t = time.perf_counter()
    clf = SVC(gamma=0.001).fit(d.data[fit_idx], d.target[fit_idx])
    fit_s = time.perf_counter() - t
    test_idx, y_test, rel = parts["test"]
    pred = clf.predict(d.data[test_idx])
    correct = pred == y_test
    return {
        "accuracy": float(correct.mean()),
        "correct": int(correct.sum()),
        "n": int(len(y_test)),
        "fit_images": int(len(fit_idx)),
        "fit_seconds": fit_s,
        "per_image": dict(zip(rel, correct.tolist())),
        "errors": sorted(r for r, c in zip(rel, correct) if not c),
    }


def train_demo(config: Path, work: Path, seed: int, first: bool) -> tuple[Path, float, float]:
    """Runs the demo config for one training seed.

    Returns:
        (run dir, wall seconds of the whole command, CPU seconds (user + system) it used).
    """
    import resource

    name = f"digits-s{seed}"
    stages = "scrape,clean,prepare,split,train,evaluate" if first else "train,evaluate"
    cmd = [
        str(ROOT / ".venv" / "bin" / "imgclf"),
        "run",
        str(config),
        "--data-dir",
        str(work / "data"),
        "--models-dir",
        str(work / "models"),
        "--stages",
        stages,
        "--set",
        f"train.seed={seed}",
        "--set",
        f"train.run_name={name}",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return work / "models" / name, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "digits.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44], help="training seeds (split fixed)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_digits_svc"), help="data and models of the runs")
    ap.add_argument("--runs", type=Path, nargs="+", help="use these evaluated runs instead of training")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from imgclf.records.run import load_metrics, load_predictions, load_run_info
    from imgclf.stats import mcnemar_exact

    load_start = os.getloadavg()
    walls: dict[Path, float] = {}
    cpus: dict[Path, float] = {}
    if args.runs:
        runs = list(args.runs)
    else:
        runs = []
        for i, seed in enumerate(args.seeds):
            run, wall, cpu = train_demo(args.config, args.work, seed, first=i == 0)
            runs.append(run)
            walls[run], cpus[run] = wall, cpu
            print(f"trained {run} ({wall:.1f} s wall, {cpu:.1f} s CPU, load {os.getloadavg()[0]:.2f})", flush=True)
    split_dirs = {Path(load_run_info(r).data_dir) for r in runs}
    if len(split_dirs) != 1:
        raise SystemExit(f"the runs were trained on different splits: {sorted(map(str, split_dirs))}")
    split_dir = split_dirs.pop()
    svc = svc_on_split(split_dir)
    rows = []
    for r in runs:
        info, m, p = load_run_info(r), load_metrics(r), load_predictions(r)
        mine = dict(zip(p.paths, p.correct.tolist()))
        common = [k for k in p.paths if k in svc["per_image"]]
        test = mcnemar_exact([mine[k] for k in common], [svc["per_image"][k] for k in common])
        ci = (m.confidence_intervals or {}).get("metrics", {}).get("accuracy", {})
        rows.append(
            {
                "run": str(r),
                "seed": info.seed,
                "accuracy": m.accuracy,
                "correct": int(round(m.accuracy * m.n_images)),
                "n": m.n_images,
                "ci": [ci.get("low"), ci.get("high")],
                "train_seconds": info.train_seconds,
                "epochs": info.epochs_done,
                "wall_seconds": walls.get(r),
                "cpu_seconds": cpus.get(r),
                "tta": m.tta,
                "mcnemar_vs_svc": {"b": test.b, "c": test.c, "p": test.p_value},
                "errors": sorted(k for k in p.paths if not mine[k]),
            }
        )
    load_end = os.getloadavg()

    print(f"\nsplit: {split_dir} (test {svc['n']} images; SVC fitted on {svc['fit_images']} train + val originals)")
    print(
        f"load average (1, 5, 15 min): start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
        f"end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f} on {os.cpu_count()} CPUs"
    )
    print(
        f"\n{'run':<22} {'seed':>5} {'test accuracy':>15} {'95% CI':>17} {'train s':>8} {'epochs':>6} {'wall s':>7} {'CPU s':>6}  vs SVC (b/c, McNemar p)"
    )
    for row in rows:
        wall = f"{row['wall_seconds']:.1f}" if row["wall_seconds"] is not None else "–"
        cpu = f"{row['cpu_seconds']:.1f}" if row["cpu_seconds"] is not None else "–"
        lo, hi = row["ci"]
        ci = f"[{lo:.4f}, {hi:.4f}]" if lo is not None else "–"
        t = row["mcnemar_vs_svc"]
        print(
            f"{Path(row['run']).name:<22} {row['seed']!s:>5} {row['accuracy']:>8.4f} ({row['correct']}/{row['n']}) {ci:>17} "
            f"{row['train_seconds']:>8.1f} {row['epochs']:>6} {wall:>7} {cpu:>6}  {t['b']}/{t['c']}, p {t['p']:.4f}"
        )
    print(
        f"{'SVC(gamma=0.001), 8x8':<22} {'':>5} {svc['accuracy']:>8.4f} ({svc['correct']}/{svc['n']}) {'':>17} "
        f"{svc['fit_seconds']:>8.2f}"
    )
    acc = np.array([r["accuracy"] for r in rows])
    secs = np.array([r["train_seconds"] for r in rows])
    print(
        f"\ndemo: accuracy mean {acc.mean():.4f}, min {acc.min():.4f}, max {acc.max():.4f} over {len(rows)} run(s); "
        f"training {secs.mean():.1f} s mean, {secs.max():.1f} s max; SVC {svc['accuracy']:.4f}; "
        f"every run >= 0.99: {bool((acc >= 0.99).all())}; every run above SVC: {bool((acc > svc['accuracy']).all())}"
    )
    print(f"SVC errors: {', '.join(svc['errors'])}")
    for row in rows:
        print(f"{Path(row['run']).name} errors: {', '.join(row['errors']) or 'none'}")
    if args.json:
        svc_out = {k: v for k, v in svc.items() if k != "per_image"}
        args.json.write_text(
            json.dumps(
                {"split": str(split_dir), "svc": svc_out, "runs": rows, "load_start": load_start, "load_end": load_end},
                indent=2,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
