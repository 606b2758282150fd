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

Cross-check: imgclf's rules (`imgclf.audit.confident.find_label_issues`, which calls cleanlab,
a dependency of imgclf since its 2.8.0 release moved to the Apache-2.0 licence) against
cleanlab's `filter.find_label_issues` called directly with the matching `filter_by`, on the SAME
out-of-fold probabilities (`OUT/oof.npz`), as the Jaccard index of the two flagged sets. They
can differ only for `low_self_confidence`, where imgclf never flags an image the model agrees
with nor empties a class (cleanlab's own rule, `exclude_agreeing=False`, is listed too).

`--rescore`: run no audit; score the rules on the `oof.npz` files already in `--work` (e.g. to
compare two imgclf versions on the very same out-of-fold probabilities, with `PYTHONPATH`
pointing at each version's `src`).

Usage:
    .venv/bin/python scripts/bench/bench_audit.py --datasets digits
    .venv/bin/python scripts/bench/bench_audit.py --datasets digits,fashion --methods default,cv-train
    .venv/bin/python scripts/bench/bench_audit.py --datasets digits --embeddings   # + autoencoder
    .venv/bin/python scripts/bench/bench_audit.py --datasets digits --embeddings --rescore  # same oof.npz

Results are printed as markdown tables and written to `WORK/bench_audit.json`.
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
sys.path.insert(0, str(ROOT / "src"))

# cleanlab filter_by value for each imgclf method (as `imgclf.audit.confident.CLEANLAB_FILTER`).
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
    from imgclf.records.audit import AuditReport, load_label_issues

    flagged = {row.path for row in load_label_issues(out)}
    flipped = {p for p, t in truth.items() if t}
    tp = len(flagged & flipped)
    p = tp / len(flagged) if flagged else 0.0
    r = tp / len(flipped) if flipped else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    report = AuditReport.load(out)
    return {
        "flagged": len(flagged),
        "flipped": len(flipped),
        "true_positives": tp,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "out_of_fold_accuracy": report.out_of_fold_accuracy,
        "estimated_noise_rate": report.estimated_noise_rate,
    }


def read_oof(out: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Paths, given labels and out-of-fold probabilities (float64, rows summing to 1) of `out/oof.npz`."""
    from imgclf.records.audit import OutOfFoldRecord

    rec = OutOfFoldRecord.load(out)
    probs = rec.pred_probs.astype(np.float64)
    return rec.paths, rec.labels, probs / probs.sum(axis=1, keepdims=True)


def rule_scores(out: Path, truth: dict[str, bool]) -> dict[str, dict[str, float]]:
    """F1 of every confident-learning rule of `imgclf.audit.confident` on the same probabilities."""
    from imgclf.audit.confident import METHODS, find_label_issues

    paths, labels, probs = read_oof(out)
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


def _jaccard(mine: np.ndarray, theirs: np.ndarray) -> dict[str, object]:
    union = int((mine | theirs).sum())
    return {
        "jaccard": round(float((mine & theirs).sum() / union) if union else 1.0, 4),
        "imgclf": int(mine.sum()),
        "cleanlab": int(theirs.sum()),
        "both": int((mine & theirs).sum()),
    }


def cross_check(out: Path) -> dict[str, object]:
    """Jaccard of imgclf's and cleanlab's own flagged sets on the same out-of-fold probabilities."""
    import cleanlab
    from cleanlab.filter import find_label_issues as cleanlab_find

    from imgclf.audit.confident import find_label_issues

    _, labels, probs = read_oof(out)
    res: dict[str, object] = {"cleanlab": cleanlab.__version__}
    for ours, theirs in CLEANLAB_RULES.items():
        theirs_mask = np.asarray(cleanlab_find(labels, probs, filter_by=theirs, n_jobs=1), dtype=bool)
        res[ours] = _jaccard(find_label_issues(labels, probs, ours), theirs_mask)
        if ours == "low_self_confidence":
            loose = find_label_issues(labels, probs, ours, exclude_agreeing=False)
            res[f"{ours} (exclude_agreeing=False)"] = _jaccard(loose, theirs_mask)
    return res


def prepare_method(imgclf: str, method: str, name: str, data: Path, work: Path) -> tuple[list[str], float]:
    """The `imgclf audit` options of one method, after training what it needs; returns
    `(options, seconds spent training)`."""
    if method == "default":
        return [], 0.0
    if method == "cv-train":
        return ["--cv-train"], 0.0
    if method == "autoencoder":
        ae = work / name / "autoencoder"
        return ["--model", f"autoencoder:{ae}"], run([imgclf, "autoencoder", "train", str(data), "--out", str(ae)])
    if method == "run":
        import shutil

        split, run_dir = work / name / "split", work / name / "run"
        for d in (split, run_dir):
            if d.exists():
                shutil.rmtree(d)
        seconds = run([imgclf, "split", str(data), "--out", str(split), "--seed", "0", "--no-check-leaks"])
        config = str(ROOT / "configs" / "digits.yaml")
        seconds += run([imgclf, "train", "--data", str(split), "--config", config, "--run-dir", str(run_dir)])
        return ["--model", str(run_dir)], seconds
    raise SystemExit(f"unknown method {method!r}")


def rescore(out: Path, truth: dict[str, bool], rules: dict[str, dict[str, float]], method: str) -> dict[str, object]:
    """The summary row of an audit already run, from its `oof.npz` and the current rules."""
    from imgclf.audit.confident import confident_learning
    from imgclf.records.audit import AuditReport

    _, labels, probs = read_oof(out)
    total = AuditReport.load(out).seconds.get("total", float("nan"))
    return {
        **rules[method],
        "flipped": sum(truth.values()),
        "out_of_fold_accuracy": round(float(np.mean(probs.argmax(axis=1) == labels)), 6),
        "estimated_noise_rate": round(confident_learning(labels, probs).estimated_noise_fraction, 6),
        "wall_seconds": total,
        "command": f"rescored {out / 'oof.npz'}",
    }


def print_tables(results: dict[str, dict[str, object]]) -> None:
    """The markdown tables of docs/benchmarks.md."""
    print(
        "\n| data / method | flagged | flipped | precision | recall | F1 | OOF accuracy | est. noise | wall time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key, r in results.items():
        print(
            f"| {key} | {r['flagged']} | {r['flipped']} | {r['precision']:.4f} | {r['recall']:.4f} | "
            f"**{r['f1']:.4f}** | {r['out_of_fold_accuracy']:.4f} | {r['estimated_noise_rate']:.4f} | "
            f"{r['wall_seconds']} |"
        )
    print("\n| data / method | rule | flagged | precision | recall | F1 |")
    print("|---|---|---|---|---|---|")
    for key, r in results.items():
        for rule, v in r["rules"].items():
            print(f"| {key} | {rule} | {v['flagged']} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} |")
    print("\n| data / method | rule | Jaccard imgclf vs cleanlab | imgclf | cleanlab | both |")
    print("|---|---|---|---|---|---|")
    for key, r in results.items():
        for rule, v in r["cross_check"].items():
            if isinstance(v, dict):
                print(f"| {key} | {rule} | {v['jaccard']:.4f} | {v['imgclf']} | {v['cleanlab']} | {v['both']} |")


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
    ap.add_argument("--rescore", action="store_true", help="run no audit: score the oof.npz files already in --work")
    args = ap.parse_args()
    from imgclf.audit.confident import DEFAULT_METHOD

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
            if args.rescore:
                rules = rule_scores(out, truth)
                row = rescore(out, truth, rules, DEFAULT_METHOD)
            else:
                options, extra_seconds = prepare_method(imgclf, method, name, data, args.work)
                cmd = [imgclf, "audit", str(data), "--out", str(out), *args.extra.split(), *options]
                seconds = run(cmd)
                row = {**score(out, truth), "wall_seconds": round(seconds + extra_seconds, 1), "command": " ".join(cmd)}
                if extra_seconds:
                    row["model_training_seconds"] = round(extra_seconds, 1)
                rules = rule_scores(out, truth)
            row["rules"] = rules
            row["cross_check"] = cross_check(out)
            results[f"{name} / {method}"] = row
            print(json.dumps({f"{name} / {method}": row}, indent=2), flush=True)
    dest = args.work / ("bench_audit_rescored.json" if args.rescore else "bench_audit.json")
    dest.write_text(json.dumps(results, indent=2))
    print_tables(results)
    print(f"\nresults -> {dest}")


if __name__ == "__main__":
    main()
