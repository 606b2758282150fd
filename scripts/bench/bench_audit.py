"""Benchmark `imgclf audit`: does it find labels flipped on purpose, and how fast?

For each dataset the script writes a copy whose labels were flipped for `--noise` (default 5 %)
of the images, chosen uniformly at random with `--seed`, each flipped image moved to one of the
other classes uniformly at random, as a class-folder tree (`WORK/<dataset>/data/<class>/<id>.png`,
file names that do not reveal the true class). Then it runs `imgclf audit` on it as a user would
(a subprocess of the `imgclf` next to this Python), and scores the flagged images
(`label_issues.csv`) against the flipped ones: precision, recall, F1, and the wall time of the
command (Python and TensorFlow start-up included).

Datasets: `digits` (scikit-learn's 1,797 8x8 digits; fast) and `fashion` (Fashion-MNIST's 60,000
training images from Debian's `dataset-fashion-mnist`). Methods: `default` (`imgclf audit DIR`),
`cv-train` (`--cv-train`), and for `--embeddings` also `autoencoder` (an autoencoder trained on
the noisy folder by `imgclf autoencoder train`, then `--model autoencoder:RUN`; its training time
is reported separately and added to the wall time), and `run` (the embedding of a model trained
the usual way on the noisy folder: `imgclf split` 70/15/15, `imgclf train --config
configs/digits.yaml`, then `imgclf audit --model RUN`: that run saw 70 % of the noisy labels,
as a user's run would; time of split + train reported separately). `run` is for digits only.

Cross-check: cleanlab's `find_label_issues` on the SAME out-of-fold probabilities
(`OUT/oof.npz`) against `imgclf.audit.confident.find_label_issues`, as the Jaccard index of the
two flagged sets, for each confident-learning rule. cleanlab is AGPL-3.0: it is never a
dependency of imgclf; install it into the benchmark environment yourself
(`.venv/bin/pip install cleanlab`); without it the cross-check is skipped with a message.

Usage:
    .venv/bin/python scripts/bench/bench_audit.py --datasets digits
    .venv/bin/python scripts/bench/bench_audit.py --datasets digits,fashion --methods default,cv-train
    .venv/bin/python scripts/bench/bench_audit.py --datasets digits --embeddings   # + autoencoder

Results are printed as markdown tables and written to `WORK/bench_audit.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

# cleanlab filter_by value for each imgclf method.
CLEANLAB_RULES = {
    "low_self_confidence": "low_self_confidence",
    "prune_by_noise_rate": "prune_by_noise_rate",
    "prune_by_class": "prune_by_class",
    "both": "both",
    "confident_joint": "confident_learning",
    "predicted_neq_given": "predicted_neq_given",
}


def flip_labels(labels: np.ndarray, num_classes: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns `(noisy labels, flipped mask)`: `round(noise * n)` images chosen uniformly at
    random (seeded), each moved to one of the other `num_classes - 1` classes uniformly."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    flipped = rng.choice(n, int(round(noise * n)), replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, num_classes, len(flipped))) % num_classes
    mask = np.zeros(n, dtype=bool)
    mask[flipped] = True
    return noisy, mask


def write_noisy_folder(name: str, work: Path, noise: float, seed: int) -> tuple[Path, dict[str, bool]]:
    """Writes the noisy copy of a dataset; returns its folder and `{relative path: flipped}`."""
    from imgclf.datasets import FASHION_MNIST_CLASSES, load_digits_arrays, load_fashion_mnist_arrays, write_image_folder

    if name == "digits":
        images, labels, classes = load_digits_arrays()
    elif name == "fashion":
        sets, _ = load_fashion_mnist_arrays()
        images, labels = sets["train"]
        classes = list(FASHION_MNIST_CLASSES)
    else:
        raise SystemExit(f"unknown dataset {name!r}: digits or fashion")
    noisy, mask = flip_labels(np.asarray(labels), len(classes), noise, seed)
    data = work / name / "data"
    truth_file = work / name / "truth.json"
    width = len(str(len(images)))
    rels = [f"{classes[noisy[i]]}/img_{i:0{width}d}.png" for i in range(len(images))]
    truth = {rel: bool(mask[i]) for i, rel in enumerate(rels)}
    if (
        truth_file.is_file()
        and json.loads(truth_file.read_text()) == truth
        and all((data / r).is_file() for r in rels[:50])
    ):
        print(f"[{name}] reusing {data}")
        return data, truth
    if data.exists():
        import shutil

        shutil.rmtree(data)
    t0 = time.monotonic()
    write_image_folder(data, np.asarray(images), noisy, classes, "img")
    truth_file.write_text(json.dumps(truth))
    print(
        f"[{name}] wrote {len(images)} images, {int(mask.sum())} flipped ({noise:.0%}, seed {seed}) "
        f"-> {data} in {time.monotonic() - t0:.0f}s"
    )
    return data, truth


def run(cmd: list[str]) -> float:
    """Runs a command, streaming its output; returns its wall time in seconds."""
    print("$", " ".join(cmd), flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env={**os.environ, "IMGCLF_QUIET": "1"})
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed with exit code {proc.returncode}: {' '.join(cmd)}")
    return seconds


def score(out: Path, truth: dict[str, bool]) -> dict[str, float]:
    """Precision, recall and F1 of `out/label_issues.csv` against the flipped images."""
    with (out / "label_issues.csv").open(newline="") as f:
        flagged = {row["path"] for row in csv.DictReader(f)}
    flipped = {p for p, t in truth.items() if t}
    tp = len(flagged & flipped)
    p = tp / len(flagged) if flagged else 0.0
    r = tp / len(flipped) if flipped else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    report = json.loads((out / "audit.json").read_text())
    return {
        "flagged": len(flagged),
        "flipped": len(flipped),
        "true_positives": tp,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "out_of_fold_accuracy": report["out_of_fold_accuracy"],
        "estimated_noise_rate": report["estimated_noise_rate"],
    }


def rule_scores(out: Path, truth: dict[str, bool]) -> dict[str, dict[str, float]]:
    """F1 of every confident-learning rule of `imgclf.audit.confident` on the same probabilities."""
    from imgclf.audit.confident import METHODS, find_label_issues

    with np.load(out / "oof.npz") as d:
        paths, labels, probs = d["paths"].tolist(), d["labels"], d["pred_probs"].astype(np.float64)
    flipped = np.array([truth[p] for p in paths])
    res = {}
    for rule in METHODS:
        flagged = find_label_issues(labels, probs / probs.sum(axis=1, keepdims=True), rule)
        tp = int((flagged & flipped).sum())
        p = tp / flagged.sum() if flagged.sum() else 0.0
        r = tp / flipped.sum()
        res[rule] = {
            "flagged": int(flagged.sum()),
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
        }
    # Diagnostic, not a method: the ranking alone, told the true number of flips. It separates
    # how well label_quality ranks the images from how well confident learning counts them.
    quality = probs[np.arange(len(labels)), labels] / probs.sum(axis=1)
    top = np.zeros(len(labels), dtype=bool)
    top[np.argsort(quality, kind="stable")[: int(flipped.sum())]] = True
    tp = int((top & flipped).sum())
    res["oracle count: lowest label_quality, k = flipped"] = {
        "flagged": int(top.sum()),
        "precision": round(tp / top.sum(), 4),
        "recall": round(tp / flipped.sum(), 4),
        "f1": round(tp / flipped.sum(), 4),
    }
    return res


def cross_check(out: Path) -> dict[str, object]:
    """Jaccard of imgclf's and cleanlab's flagged sets on the same out-of-fold probabilities."""
    from imgclf.audit.confident import find_label_issues

    try:
        import cleanlab
        from cleanlab.count import compute_confident_joint
        from cleanlab.filter import find_label_issues as cleanlab_find
    except ImportError:
        msg = (
            "cleanlab is not installed: cross-check skipped (install it into the benchmark environment only, "
            "`.venv/bin/pip install cleanlab`; it is AGPL-3.0 and never an imgclf dependency)"
        )
        print(msg)
        return {"skipped": msg}
    with np.load(out / "oof.npz") as d:
        labels, probs = d["labels"], d["pred_probs"].astype(np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    res: dict[str, object] = {"cleanlab": cleanlab.__version__}
    # Their calibrated, rounded confident joint: fed to our pruning, it isolates the one
    # difference the paper leaves open (how n * Q is rounded to integers, ties included).
    their_counts = compute_confident_joint(labels, probs, calibrate=True)
    for ours, theirs in CLEANLAB_RULES.items():
        theirs_mask = np.asarray(cleanlab_find(labels, probs, filter_by=theirs), dtype=bool)
        for exclude in (True, False):
            mine = find_label_issues(labels, probs, ours, exclude_agreeing=exclude)
            union = int((mine | theirs_mask).sum())
            jac = float((mine & theirs_mask).sum() / union) if union else 1.0
            res[f"{ours}{'' if exclude else ' (exclude_agreeing=False)'}"] = {
                "jaccard": round(jac, 4),
                "imgclf": int(mine.sum()),
                "cleanlab": int(theirs_mask.sum()),
                "both": int((mine & theirs_mask).sum()),
            }
        if ours in ("prune_by_noise_rate", "both"):
            same = find_label_issues(labels, probs, ours, counts=their_counts)
            union = int((same | theirs_mask).sum())
            res[f"{ours} (cleanlab's integer counts)"] = {
                "jaccard": round(float((same & theirs_mask).sum() / union) if union else 1.0, 4),
                "imgclf": int(same.sum()),
                "cleanlab": int(theirs_mask.sum()),
                "both": int((same & theirs_mask).sum()),
            }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="digits", help="comma-separated: digits, fashion")
    ap.add_argument("--methods", default="default,cv-train", help="comma-separated: default, cv-train")
    ap.add_argument(
        "--embeddings",
        action="store_true",
        help="also audit with an autoencoder trained on the folder, and (digits) with a trained run's embedding",
    )
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0, help="seed of the label flips")
    ap.add_argument("--work", type=Path, default=Path("/tmp/imgclf-bench-audit"))
    ap.add_argument("--extra", default="", help="extra options for every `imgclf audit`, e.g. '--folds 5'")
    args = ap.parse_args()
    imgclf = str(Path(sys.executable).with_name("imgclf"))
    results: dict[str, dict[str, object]] = {}
    args.work.mkdir(parents=True, exist_ok=True)
    for name in [d for d in args.datasets.split(",") if d]:
        data, truth = write_noisy_folder(name, args.work, args.noise, args.seed)
        methods = [m for m in args.methods.split(",") if m]
        if args.embeddings:
            methods += ["autoencoder"] + (["run"] if name == "digits" else [])
        for method in methods:
            out = args.work / name / f"audit-{method}"
            cmd = [imgclf, "audit", str(data), "--out", str(out), *args.extra.split()]
            extra_seconds = 0.0
            if method == "cv-train":
                cmd.append("--cv-train")
            elif method == "autoencoder":
                ae = args.work / name / "autoencoder"
                extra_seconds = run([imgclf, "autoencoder", "train", str(data), "--out", str(ae)])
                cmd += ["--model", f"autoencoder:{ae}"]
            elif method == "run":
                split, run_dir = args.work / name / "split", args.work / name / "run"
                for d in (split, run_dir):
                    if d.exists():
                        import shutil

                        shutil.rmtree(d)
                extra_seconds = run(
                    [imgclf, "split", str(data), "--out", str(split), "--seed", "0", "--no-check-leaks"]
                )
                extra_seconds += run(
                    [
                        imgclf,
                        "train",
                        "--data",
                        str(split),
                        "--config",
                        str(ROOT / "configs" / "digits.yaml"),
                        "--run-dir",
                        str(run_dir),
                    ]
                )
                cmd += ["--model", str(run_dir)]
            elif method != "default":
                raise SystemExit(f"unknown method {method!r}")
            seconds = run(cmd)
            row: dict[str, object] = score(out, truth)
            row["wall_seconds"] = round(seconds + extra_seconds, 1)
            if extra_seconds:
                row["model_training_seconds"] = round(extra_seconds, 1)
            row["command"] = " ".join(cmd)
            row["rules"] = rule_scores(out, truth)
            row["cross_check"] = cross_check(out)
            results[f"{name} / {method}"] = row
            print(json.dumps({f"{name} / {method}": row}, indent=2), flush=True)
    (args.work / "bench_audit.json").write_text(json.dumps(results, indent=2))
    print(
        "\n| data / method | flagged | flipped | precision | recall | F1 | OOF accuracy | est. noise | wall time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key, r in results.items():
        print(
            f"| {key} | {r['flagged']} | {r['flipped']} | {r['precision']:.4f} | {r['recall']:.4f} | **{r['f1']:.4f}** | "
            f"{r['out_of_fold_accuracy']:.4f} | {r['estimated_noise_rate']:.4f} | {r['wall_seconds']} |"
        )
    print("\n| data / method | rule | flagged | precision | recall | F1 |")
    print("|---|---|---|---|---|---|")
    for key, r in results.items():
        for rule, v in r["rules"].items():
            print(f"| {key} | {rule} | {v['flagged']} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} |")
    print("\n| data / method | rule | Jaccard imgclf vs cleanlab | imgclf | cleanlab | both |")
    print("|---|---|---|---|---|---|")
    for key, r in results.items():
        cc = r["cross_check"]
        if "skipped" in cc:
            print(f"| {key} | (skipped: cleanlab not installed) | | | | |")
            continue
        for rule, v in cc.items():
            if isinstance(v, dict):
                print(f"| {key} | {rule} | {v['jaccard']:.4f} | {v['imgclf']} | {v['cleanlab']} | {v['both']} |")
    print(f"\nresults -> {args.work / 'bench_audit.json'}")


if __name__ == "__main__":
    main()
