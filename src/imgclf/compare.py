"""`imgclf compare RUN...`: evaluated runs side by side, with error bars and paired tests.

Reads what `imgclf evaluate` wrote into each run directory (`imgclf.records.run`: `run.json`,
`metrics.json`, `predictions.csv`) -- it loads no model and imports no TensorFlow -- and writes
into `out`:

    leaderboard.csv   one row per model (runs of one configuration with several seeds grouped):
                      mean, standard deviation over seeds, CI bounds of every metric, parameters,
                      training time, epochs, predict latency, the McNemar test against the best
    leaderboard.md    the same as a Markdown table, with the methods underneath
    runs.csv          one row per run (seed)
    leaderboard.png   bar chart of accuracy, macro precision, recall and F1 with the CIs drawn
    compare.html      all of it in one self-contained page
    compare.json      everything above, machine-readable

Rules:

- **Same test images, checked.** Every run's `metrics.json` records the fingerprint of the split
  it was computed on (`imgclf.records.run.split_fingerprint`). Runs whose fingerprints differ are
  refused with one error naming them; `force=True` compares them anyway with a warning, and
  no paired test is made across different test sets.
- **Grouping.** Runs with the same model, the same training configuration except the seed
  (and run name), the same `label` and the same test fingerprint form one group (the seeds of
  one model); its figures are the mean over its runs, with the sample standard deviation
  (ddof = 1) across seeds.
- **Confidence intervals.** A 95 % percentile-bootstrap interval over the test images for
  every metric (`imgclf.stats.bootstrap_metrics`, 2,000 resamples, seed 0 by default; Efron &
  Tibshirani 1993, ch. 13). For a group, the runs are resampled together and the statistic is
  their mean: the interval is that of the seed-averaged metric.
- **Paired test against the best.** The best group has the highest mean accuracy (ties: higher
  macro F1, then lower loss). Every other group is tested against it with the exact McNemar
  test on the same test images (`imgclf.stats.mcnemar_exact`; McNemar 1947, Dietterich 1998),
  run by run: seeds present in both groups are paired seed with seed, the others in order. With
  one pair the verdict is "yes" (p < alpha) or "no"; with several it is "yes" only when every
  pair is significant, "no" when none is, otherwise "mixed".
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgclf import report
from imgclf.config import CompareConfig
from imgclf.errors import DataError, ModelError
from imgclf.fsutil import atomic_write_json, atomic_write_text
from imgclf.records.run import (
    ImagePredictions,
    MetricsRecord,
    RunInfo,
    is_run_dir,
    load_metrics,
    load_predictions,
    load_run_info,
)
from imgclf.stats import (
    METRICS,
    BootstrapResult,
    McNemarResult,
    bootstrap_metrics,
    mcnemar_exact,
    mean_std,
    point_metrics,
    score_images,
)
from imgclf.ui import summary, warn

#: Output files of `compare_runs`, by kind.
OUTPUT_FILES: dict[str, str] = {
    "csv": "leaderboard.csv",
    "markdown": "leaderboard.md",
    "runs": "runs.csv",
    "chart": "leaderboard.png",
    "html": "compare.html",
    "json": "compare.json",
}

#: How each metric is headed in the tables.
METRIC_TITLES: dict[str, str] = {
    "accuracy": "accuracy",
    "loss": "loss",
    "precision_macro": "precision (macro)",
    "recall_macro": "recall (macro)",
    "f1_macro": "F1 (macro)",
    "top_k_accuracy": "top-k accuracy",
    "ece": "ECE",
}

#: `run.json` config keys that do not make two runs different models.
_NOT_MODEL_KEYS = frozenset({"seed", "run_name", "models", "repeats"})


# ------------------------------------------------------------------------------ reading runs
@dataclass
class RunRecord:
    """One evaluated run, as `compare` reads it.

    Attributes:
        path: Path. The run directory.
        info: RunInfo. Its `run.json`.
        metrics: MetricsRecord. Its `metrics.json` (or `metrics_<split>.json`).
        predictions: ImagePredictions. Its `predictions.csv`.
    """

    path: Path
    info: RunInfo
    metrics: MetricsRecord
    predictions: ImagePredictions

    @property
    def fingerprint(self) -> str:
        fp = self.metrics.fingerprint
        return fp.sha256 if fp is not None else ""

    @property
    def n_files(self) -> int | str:
        """Files of the split it was evaluated on ("?" when not recorded)."""
        fp = self.metrics.fingerprint
        return fp.n_files if fp is not None else "?"

    @property
    def seed(self) -> int | None:
        return self.info.seed


def collect_run_dirs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expands the command line: run directories as given, folders of runs into their runs.

    A folder that is not itself a run but holds runs (`models/`) stands for the runs directly
    inside it, in name order; folders without `run.json` among them (a `compare` output) are
    skipped. Duplicates are dropped, first occurrence kept.

    Args:
        paths: list of paths.

    Returns:
        list of Path, each a run directory.

    Raises:
        ModelError: a path that does not exist, or a folder that neither is nor holds a run.
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if is_run_dir(p):
            found = [p]
        elif p.is_dir():
            found = sorted(c for c in p.iterdir() if c.is_dir() and is_run_dir(c))
            if not found:
                raise ModelError(
                    f"{p} is not a training run (no run.json) and holds none", "pass run folders such as models/<run>"
                )
        else:
            raise ModelError(f"run not found: {p}", "pass run folders such as models/<run>")
        out.extend(f for f in found if f not in out)
    return out


def load_runs(run_dirs: list[Path], split: str = "test") -> list[RunRecord]:
    """Reads `run.json`, the metrics file and the predictions file of every run.

    Raises:
        ModelError: a run that was not evaluated on `split`, or evaluated before fingerprints
            and per-image predictions were recorded (the message says to re-evaluate it).
    """
    records = []
    for d in run_dirs:
        info = load_run_info(d)
        metrics = load_metrics(d, split)
        if metrics.fingerprint is None:
            raise ModelError(
                f"{d}: its metrics were computed before test-split fingerprints were recorded",
                f"re-evaluate it: imgclf evaluate {d}" + ("" if split == "test" else f" --split {split}"),
            )
        records.append(RunRecord(d, info, metrics, load_predictions(d, split)))
    return records


def check_fingerprints(records: list[RunRecord], force: bool = False) -> list[list[RunRecord]]:
    """Checks that every run was evaluated on the same images.

    Args:
        records: list of RunRecord.
        force: bool, default False. When the fingerprints differ: False raises, True warns.

    Returns:
        list of lists of RunRecord: the runs by fingerprint (one list when all agree), the
        largest first.

    Raises:
        DataError: (when not `force`) the runs were evaluated on different splits; the
            message names every run with its fingerprint.
    """
    by_fp: dict[str, list[RunRecord]] = {}
    for r in records:
        by_fp.setdefault(r.fingerprint, []).append(r)
    sets = sorted(by_fp.values(), key=len, reverse=True)
    if len(sets) > 1:
        parts = "; ".join(
            f"{', '.join(str(r.path) for r in rs)} (test split {rs[0].fingerprint[:12]}, {rs[0].n_files} files)"
            for rs in sets
        )
        text = f"the runs were evaluated on {len(sets)} different test splits: {parts}"
        if not force:
            raise DataError(
                text,
                "evaluate every run on the same split folder (imgclf evaluate RUN --data DIR), "
                "or pass --force to show them anyway",
            )
        warn(
            text
            + "; shown anyway (--force): no paired test across different test sets, and the figures are not comparable"
        )
    return sets


# ----------------------------------------------------------------------------------- groups
def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _config_key(r: RunRecord) -> str:
    cfg = {k: v for k, v in (r.info.config or {}).items() if k not in _NOT_MODEL_KEYS}
    return json.dumps(
        {"model": r.info.model, "label": r.info.label, "config": cfg, "fp": r.fingerprint}, sort_keys=True, default=str
    )


@dataclass
class ModelGroup:
    """The runs (seeds) of one model configuration on one test set, with their figures.

    Attributes:
        label: str. Name shown in the tables.
        model: str. Registry name.
        runs: list of RunRecord, by seed.
        scores: ScoredImages of the runs on their common test images.
        bootstrap: BootstrapResult. Intervals of the seed-averaged metrics.
        per_run: dict metric -> list of float, one per run.
        keys: list of (path, sha256) of the common test images, in the order of `scores`.
        vs_best: list of McNemarResult against the best group (empty for the best itself or
            when the test sets differ).
        comparable: bool. Same test fingerprint as the best group.
    """

    label: str
    model: str
    runs: list[RunRecord]
    scores: Any
    bootstrap: BootstrapResult
    per_run: dict[str, list[float]]
    keys: list[tuple[str, str]]
    vs_best: list[McNemarResult] = field(default_factory=list)
    comparable: bool = True

    def mean(self, metric: str) -> float:
        return mean_std(self.per_run[metric])[0]

    def std(self, metric: str) -> float | None:
        return mean_std(self.per_run[metric])[1]

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]

    @property
    def fingerprint(self) -> str:
        return self.runs[0].fingerprint

    def run_values(self, attr: str) -> list[float]:
        """Per-run values of a `RunInfo` / `MetricsRecord` number (None values left out)."""
        vals = []
        for r in self.runs:
            v = getattr(r.info, attr, None) if hasattr(r.info, attr) else getattr(r.metrics, attr, None)
            if v is not None:
                vals.append(float(v))
        return vals

    def verdict(self, alpha: float) -> str:
        """ "best", "yes" / "no" (differs from the best at level alpha), "mixed (k of m)", or "n/a"."""
        if not self.comparable:
            return "n/a"
        if not self.vs_best:
            return "best"
        sig = sum(m.p_value < alpha for m in self.vs_best)
        if sig == len(self.vs_best):
            return "yes"
        if sig == 0:
            return "no"
        return f"mixed ({sig} of {len(self.vs_best)})"


def _aligned(runs: list[RunRecord]) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """Common images of `runs` (by path and sha256), labels, and probabilities `(R, n, K)`."""
    first = runs[0].predictions
    common = set(first.keys())
    for r in runs[1:]:
        common &= set(r.predictions.keys())
    first_keys = first.keys()
    keys = [k for k in first_keys if k in common]
    if len(keys) < len(first) or any(len(r.predictions) != len(keys) for r in runs):
        warn(f"{', '.join(str(r.path) for r in runs)}: scored different images; compared on the {len(keys)} they share")
    if not keys:
        raise DataError(
            f"{', '.join(str(r.path) for r in runs)}: no test image in common", "evaluate them on the same split"
        )
    classes = first.class_names
    probs = []
    for r in runs:
        if r.predictions.class_names != classes:
            raise DataError(
                f"{r.path} has classes {r.predictions.class_names}, {runs[0].path} has {classes}",
                "compare models trained on the same classes",
            )
        index = {k: i for i, k in enumerate(r.predictions.keys())}
        probs.append(r.predictions.probs[[index[k] for k in keys]])
    first_index = {k: i for i, k in enumerate(first.keys())}
    labels = first.labels[[first_index[k] for k in keys]]
    return keys, labels, np.stack(probs)


def _labels(groups: list[list[RunRecord]]) -> list[str]:
    """Names of the groups: the run's label or model, made unique by what differs."""
    base = [g[0].info.label or g[0].info.model for g in groups]
    names = list(base)
    for name in set(base):
        idx = [i for i, b in enumerate(base) if b == name]
        if len(idx) < 2:
            continue
        flats = [
            _flat({k: v for k, v in (groups[i][0].info.config or {}).items() if k not in _NOT_MODEL_KEYS}) for i in idx
        ]
        keys = sorted({k for f in flats for k in f if len({json.dumps(x.get(k), default=str) for x in flats}) > 1})
        for i, f in zip(idx, flats):
            detail = ", ".join(f"{k}={f.get(k)}" for k in keys[:3])
            names[i] = f"{name} ({detail})" if detail else name
    for i, n in enumerate(list(names)):  # still equal: same configuration, other test sets (--force)
        if names.count(n) > 1:
            names[i] = f"{n} [test {groups[i][0].fingerprint[:8]}]"
    return names


def group_runs(records: list[RunRecord], *, n_resamples: int, level: float, seed: int) -> list[ModelGroup]:
    """Groups runs into models (seeds of one configuration) and computes their figures.

    Args:
        records: list of RunRecord.
        n_resamples, level, seed: the bootstrap's settings (`imgclf.stats.bootstrap_metrics`).

    Returns:
        list of ModelGroup, in the order their first run was given (not ranked).
    """
    buckets: dict[str, list[RunRecord]] = {}
    for r in records:
        buckets.setdefault(_config_key(r), []).append(r)
    runs_by_group = [sorted(g, key=lambda r: (r.seed is None, r.seed or 0, str(r.path))) for g in buckets.values()]
    names = _labels(runs_by_group)
    groups = []
    for name, runs in zip(names, runs_by_group):
        keys, labels, probs = _aligned(runs)
        top_k = runs[0].metrics.top_k
        scores = score_images(probs, labels, top_k)
        per_run: dict[str, list[float]] = {m: [] for m in METRICS}
        for i in range(len(runs)):
            one = score_images(probs[i], labels, top_k)
            for m, v in point_metrics(one).items():
                per_run[m].append(v)
        boot = bootstrap_metrics(scores, n_resamples=n_resamples, level=level, seed=seed)
        groups.append(ModelGroup(name, runs[0].info.model, runs, scores, boot, per_run, keys))
    return groups


def rank_groups(groups: list[ModelGroup]) -> list[ModelGroup]:
    """Sorts groups best first: mean accuracy, then macro F1 (both higher is better), then loss."""
    return sorted(groups, key=lambda g: (-g.mean("accuracy"), -g.mean("f1_macro"), g.mean("loss"), g.label))


def _pairs(best: ModelGroup, other: ModelGroup) -> list[tuple[RunRecord, RunRecord]]:
    """Runs of `best` and `other` paired: equal seeds first, then the rest in order."""
    b_left, o_left = list(best.runs), list(other.runs)
    pairs = []
    for rb in list(b_left):
        match = next((ro for ro in o_left if ro.seed is not None and ro.seed == rb.seed), None)
        if match is not None:
            pairs.append((rb, match))
            b_left.remove(rb)
            o_left.remove(match)
    pairs.extend(zip(b_left, o_left))
    return pairs


def mcnemar_against_best(groups: list[ModelGroup]) -> None:
    """Fills `vs_best` and `comparable` of every group (ranked, best first) in place.

    Each pair of runs (`_pairs`) is tested with `imgclf.stats.mcnemar_exact` on the images both
    scored (same path and sha256), the best group's run first (so `b` counts images only the
    best gets right).
    """
    best = groups[0]
    for g in groups[1:]:
        if g.fingerprint != best.fingerprint:
            g.comparable = False
            continue
        results = []
        for rb, ro in _pairs(best, g):
            kb, ko = rb.predictions.keys(), ro.predictions.keys()
            ib, io_ = {k: i for i, k in enumerate(kb)}, {k: i for i, k in enumerate(ko)}
            common = [k for k in kb if k in io_]
            cb = rb.predictions.correct[[ib[k] for k in common]]
            co = ro.predictions.correct[[io_[k] for k in common]]
            results.append(mcnemar_exact(cb, co))
        g.vs_best = results


# ---------------------------------------------------------------------------------- result
@dataclass
class Comparison:
    """What `compare_runs` computed and wrote.

    Attributes:
        groups: list of ModelGroup, ranked (best first).
        split: str. The split compared.
        alpha: float. Level of the McNemar verdicts.
        n_images: int. Test images of the best group.
        fingerprint: str. Test fingerprint of the best group.
        mismatched: bool. Runs were evaluated on different test sets (`force`).
        out: Path or None. Folder written.
        files: dict kind -> Path written.
        notes: list of str. Warnings shown with the table.
    """

    groups: list[ModelGroup]
    split: str
    alpha: float
    n_images: int
    fingerprint: str
    mismatched: bool = False
    out: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> ModelGroup:
        return self.groups[0]

    @property
    def best_run(self) -> Path:
        """The best group's run with the highest accuracy (ties: the first by seed)."""
        g = self.best
        i = int(np.argmax(g.per_run["accuracy"]))
        return g.runs[i].path

    @property
    def level(self) -> float:
        return self.best.bootstrap.level

    @property
    def top_k(self) -> int:
        return self.best.runs[0].metrics.top_k


def _fmt(v: float | None, digits: int = 4) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def _p(p: float) -> str:
    return "<0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.1 else f"{p:.3f}"


def metric_cell(g: ModelGroup, metric: str, digits: int = 4) -> str:
    """`"0.9888 ± 0.0021 [0.9739, 0.9963]"`: mean (± std over seeds) [CI]."""
    iv = g.bootstrap.intervals[metric]
    std = g.std(metric)
    spread = f" ± {std:.{digits}f}" if std is not None else ""
    return f"{g.mean(metric):.{digits}f}{spread} [{iv.low:.{digits}f}, {iv.high:.{digits}f}]"


def _mean_text(vals: list[float], digits: int) -> str:
    if not vals:
        return "–"
    m, s = mean_std(vals)
    return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if s is not None else "")


def mcnemar_cell(g: ModelGroup, alpha: float) -> str:
    """`"b/c 1/6, p 0.1250: no"`, or `"best"`, or several pairs summarized."""
    v = g.verdict(alpha)
    if v in ("best", "n/a"):
        return v if v == "best" else "n/a (other test set)"
    if len(g.vs_best) == 1:
        m = g.vs_best[0]
        return f"{m.b}/{m.c}, p {_p(m.p_value)}: {v}"
    ps = sorted(m.p_value for m in g.vs_best)
    return f"p {_p(ps[0])}–{_p(ps[-1])} over {len(ps)} seed pairs: {v}"


def table_columns(comp: Comparison) -> list[str]:
    """Headers of the leaderboard (Markdown, HTML and the terminal)."""
    pct = f"{comp.level:.0%}"
    return [
        "#",
        "model",
        "runs",
        f"accuracy [{pct} CI]",
        f"loss [{pct} CI]",
        f"precision [{pct} CI]",
        f"recall [{pct} CI]",
        f"macro F1 [{pct} CI]",
        f"top-{comp.top_k} [{pct} CI]",
        f"ECE [{pct} CI]",
        "parameters",
        "train s",
        "epochs",
        "predict ms/img",
        f"McNemar vs best (b/c, p; α={comp.alpha:g})",
    ]


def table_rows(comp: Comparison) -> list[list[str]]:
    """Cells of the leaderboard, one list per group, in `table_columns` order."""
    rows = []
    for i, g in enumerate(comp.groups, start=1):
        params = g.run_values("parameters")
        rows.append(
            [
                str(i),
                g.label,
                str(len(g.runs)),
                *(
                    metric_cell(g, m)
                    for m in (
                        "accuracy",
                        "loss",
                        "precision_macro",
                        "recall_macro",
                        "f1_macro",
                        "top_k_accuracy",
                        "ece",
                    )
                ),
                f"{int(params[0]):,}" if params else "–",
                _mean_text(g.run_values("train_seconds"), 1),
                _mean_text(g.run_values("epochs_done"), 1 if len(g.runs) > 1 else 0),
                _mean_text(g.run_values("predict_ms_per_image"), 3),
                mcnemar_cell(g, comp.alpha),
            ]
        )
    return rows


def method_notes(comp: Comparison) -> list[str]:
    """The sentences under the table: test set, intervals, test, seeds."""
    b = comp.best.bootstrap
    seeds = {g.label: g.seeds for g in comp.groups}
    notes = [
        f"Test set: {comp.n_images} images of the `{comp.split}` split, fingerprint `{comp.fingerprint[:16]}…` "
        "(sha256 over the sorted relative path, label and file sha256 of every file).",
        f"Cells: mean over a model's runs (± sample standard deviation over seeds when there are several) "
        f"[{b.level:.0%} percentile-bootstrap confidence interval over the test images: {b.n_resamples:,} resamples, "
        f"seed {b.seed}; runs of one model resampled together; Efron & Tibshirani 1993, ch. 13].",
        "McNemar vs best: exact two-sided McNemar test (binomial test on the discordant images; McNemar 1947, "
        "Dietterich 1998) of each run against the best model's run of the same seed; b = images only the best gets "
        f'right, c = images only this model gets right; "yes" = significant at α = {comp.alpha:g} for every seed pair.',
        "Macro precision / recall / F1 average over the classes present in the truth or the predictions; ECE with "
        "15 equal-width bins (Guo et al. 2017); train s = training wall time (run.json), predict ms/img = model time "
        "per image in evaluate's batches (decoding excluded) — both depend on how loaded the machine was.",
        "Seeds: " + "; ".join(f"{k}: {', '.join(str(s) for s in v)}" for k, v in seeds.items()) + ".",
    ]
    return notes + comp.notes


# ------------------------------------------------------------------------------ file writers
def leaderboard_markdown(comp: Comparison) -> str:
    """The leaderboard as Markdown: a title, the table, the per-run table and the methods."""
    cols = table_columns(comp)

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [f"# Leaderboard ({comp.split} split, {comp.n_images} images)", ""]
    lines += [row(cols), "|" + "|".join("---" if i < 2 else "--:" for i in range(len(cols))) + "|"]
    lines += [row(r) for r in table_rows(comp)]
    lines += ["", "## Runs", ""]
    rcols, rrows = run_table(comp)
    lines += [row(rcols), "|" + "|".join(["---"] * len(rcols)) + "|"] + [row(r) for r in rrows]
    lines += ["", "## Method", ""] + [f"- {n}" for n in method_notes(comp)]
    return "\n".join(lines) + "\n"


def run_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the per-run table."""
    cols = ["model", "run", "seed", "accuracy", "loss", "macro F1", "train s", "epochs", "best epoch"]
    rows = []
    for g in comp.groups:
        for i, r in enumerate(g.runs):
            rows.append(
                [
                    g.label,
                    r.path.name,
                    str(r.seed),
                    _fmt(g.per_run["accuracy"][i]),
                    _fmt(g.per_run["loss"][i]),
                    _fmt(g.per_run["f1_macro"][i]),
                    f"{r.info.train_seconds:.1f}",
                    str(r.info.epochs_done),
                    str(r.info.best_epoch) if r.info.best_epoch is not None else "–",
                ]
            )
    return cols, rows


def leaderboard_csv(comp: Comparison) -> str:
    """One row per group: every metric's mean, std, CI bounds; costs; the test against the best."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["rank", "model", "registry_name", "runs", "seeds"]
    for m in METRICS:
        head += [m, f"{m}_std", f"{m}_ci_low", f"{m}_ci_high"]
    head += [
        "top_k",
        "parameters",
        "train_seconds",
        "epochs",
        "predict_ms_per_image",
        "mcnemar_b",
        "mcnemar_c",
        "mcnemar_p_max",
        "mcnemar_pairs",
        "differs_from_best",
        "n_images",
        "ci_level",
        "bootstrap_resamples",
        "bootstrap_seed",
        "test_fingerprint",
        "run_dirs",
    ]
    w.writerow(head)
    for i, g in enumerate(comp.groups, start=1):
        cells: list[Any] = [i, g.label, g.model, len(g.runs), ";".join(str(s) for s in g.seeds)]
        for m in METRICS:
            iv = g.bootstrap.intervals[m]
            std = g.std(m)
            cells += [f"{g.mean(m):.6f}", "" if std is None else f"{std:.6f}", f"{iv.low:.6f}", f"{iv.high:.6f}"]
        params = g.run_values("parameters")
        mean = lambda vals, d: "" if not vals else f"{mean_std(vals)[0]:.{d}f}"  # noqa: E731
        vs = g.vs_best
        cells += [
            comp.top_k,
            int(params[0]) if params else "",
            mean(g.run_values("train_seconds"), 1),
            mean(g.run_values("epochs_done"), 1),
            mean(g.run_values("predict_ms_per_image"), 4),
            sum(m.b for m in vs) if vs else "",
            sum(m.c for m in vs) if vs else "",
            f"{max(m.p_value for m in vs):.6g}" if vs else "",
            len(vs),
            g.verdict(comp.alpha),
            g.scores.n_images,
            g.bootstrap.level,
            g.bootstrap.n_resamples,
            g.bootstrap.seed,
            g.fingerprint,
            ";".join(str(r.path) for r in g.runs),
        ]
        w.writerow(cells)
    return buf.getvalue()


def runs_csv(comp: Comparison) -> str:
    """One row per run: model, run directory, seed, every metric, training time and epochs."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "model",
            "run_dir",
            "seed",
            *METRICS,
            "train_seconds",
            "epochs",
            "best_epoch",
            "parameters",
            "predict_ms_per_image",
            "test_fingerprint",
        ]
    )
    for g in comp.groups:
        for i, r in enumerate(g.runs):
            w.writerow(
                [
                    g.label,
                    str(r.path),
                    r.seed,
                    *(f"{g.per_run[m][i]:.6f}" for m in METRICS),
                    r.info.train_seconds,
                    r.info.epochs_done,
                    r.info.best_epoch if r.info.best_epoch is not None else "",
                    r.metrics.parameters if r.metrics.parameters is not None else "",
                    "" if r.metrics.predict_ms_per_image is None else f"{r.metrics.predict_ms_per_image:.4f}",
                    r.fingerprint,
                ]
            )
    return buf.getvalue()


def comparison_json(comp: Comparison) -> dict[str, Any]:
    """Everything computed, JSON-ready (`compare.json`)."""
    return {
        "split": comp.split,
        "n_images": comp.n_images,
        "test_fingerprint": comp.fingerprint,
        "mismatched_test_sets": comp.mismatched,
        "alpha": comp.alpha,
        "best": comp.best.label,
        "best_run": str(comp.best_run),
        "groups": [
            {
                "rank": i,
                "label": g.label,
                "model": g.model,
                "runs": [str(r.path) for r in g.runs],
                "seeds": g.seeds,
                "test_fingerprint": g.fingerprint,
                "n_images": g.scores.n_images,
                "metrics": {
                    m: {
                        "mean": g.mean(m),
                        "std": g.std(m),
                        "per_run": g.per_run[m],
                        **{k: v for k, v in g.bootstrap.intervals[m].as_dict().items() if k != "value"},
                    }
                    for m in METRICS
                },
                "confidence_intervals": g.bootstrap.as_dict(),
                "parameters": next(iter(g.run_values("parameters")), None),
                "train_seconds": g.run_values("train_seconds"),
                "epochs": g.run_values("epochs_done"),
                "predict_ms_per_image": g.run_values("predict_ms_per_image"),
                "mcnemar_vs_best": [
                    {"b": m.b, "c": m.c, "p_value": m.p_value, "n_images": m.n_images} for m in g.vs_best
                ],
                "differs_from_best": g.verdict(comp.alpha),
            }
            for i, g in enumerate(comp.groups, start=1)
        ],
        "notes": method_notes(comp),
    }


def write_outputs(comp: Comparison, out: str | os.PathLike) -> dict[str, Path]:
    """Writes every file of `OUTPUT_FILES` into `out` (atomically); returns kind -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {k: out / v for k, v in OUTPUT_FILES.items()}
    atomic_write_text(files["csv"], leaderboard_csv(comp))
    atomic_write_text(files["runs"], runs_csv(comp))
    atomic_write_text(files["markdown"], leaderboard_markdown(comp))
    bars = [
        {
            "label": g.label,
            "values": {m: g.mean(m) for m in METRICS},
            "low": {m: g.bootstrap.intervals[m].low for m in METRICS},
            "high": {m: g.bootstrap.intervals[m].high for m in METRICS},
            "per_run": {m: list(g.per_run[m]) for m in METRICS},
        }
        for g in comp.groups
    ]
    report.plot_leaderboard(
        bars,
        files["chart"],
        metrics=("accuracy", "precision_macro", "recall_macro", "f1_macro"),
        titles=METRIC_TITLES,
        level=comp.level,
        subtitle=f"{comp.split} split, {comp.n_images} images; bars: mean over seeds, "
        f"whiskers: {comp.level:.0%} bootstrap CI, dots: seeds",
    )
    rcols, rrows = run_table(comp)
    report.write_compare_html(
        files["html"],
        title=f"imgclf compare: {comp.best.label} first of {len(comp.groups)} ({comp.split}, {comp.n_images} images)",
        columns=table_columns(comp),
        rows=table_rows(comp),
        run_columns=rcols,
        run_rows=rrows,
        chart=files["chart"],
        notes=method_notes(comp),
        warning=comp.notes[0] if comp.mismatched and comp.notes else None,
    )
    files["json"] = atomic_write_json(files["json"], comparison_json(comp))
    return files


# ------------------------------------------------------------------------------------ main
def compare_runs(
    runs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    cfg: CompareConfig | None = None,
) -> Comparison:
    """Compares evaluated runs and writes the leaderboard files.

    Args:
        runs: list of paths. Run directories evaluated with `imgclf evaluate` (on `cfg.split`),
            or folders holding such runs (`collect_run_dirs`). At least one run.
        out: path or None, default None (`<parent of the first run>/compare`). Folder for
            `OUTPUT_FILES`.
        cfg: CompareConfig or None (defaults): split, bootstrap settings (2,000 resamples,
            level 0.95, seed 0), `alpha` (0.05) of the McNemar verdicts, `force`.

    Returns:
        Comparison (ranked groups, files written).

    Raises:
        ModelError: a path that is not a run, a run not evaluated on the split, or evaluated
            before fingerprints / per-image predictions were recorded.
        DataError: runs evaluated on different test splits (unless `cfg.force`), runs with
            different classes, or runs with no test image in common.
    """
    cfg = cfg or CompareConfig()
    run_dirs = collect_run_dirs(list(runs))
    if not run_dirs:
        raise ModelError("no run to compare", "pass run folders such as models/<run>")
    records = load_runs(run_dirs, cfg.split)
    sets = check_fingerprints(records, force=cfg.force)
    groups = rank_groups(
        group_runs(records, n_resamples=cfg.bootstrap_resamples, level=cfg.ci_level, seed=cfg.bootstrap_seed)
    )
    mcnemar_against_best(groups)
    comp = Comparison(
        groups,
        cfg.split,
        cfg.alpha,
        groups[0].scores.n_images,
        groups[0].fingerprint,
        mismatched=len(sets) > 1,
    )
    if comp.mismatched:
        comp.notes.append(
            f"Warning: the runs were evaluated on {len(sets)} different test sets (--force); rows marked "
            "'n/a' were not tested against the best and their figures are not comparable."
        )
    ttas = {r.metrics.tta for r in records}
    if len(ttas) > 1:
        comp.notes.append(
            f"Warning: runs were evaluated with different test-time augmentation ({', '.join(sorted(ttas))})."
        )
    comp.out = Path(out) if out is not None else run_dirs[0].parent / "compare"
    comp.files = write_outputs(comp, comp.out)
    best = comp.best
    summary(
        f"compare: {len(records)} run(s) of {len(groups)} model(s) on {comp.n_images} {cfg.split} images; "
        f"best {best.label} (accuracy {metric_cell(best, 'accuracy')}) "
        f"-> {comp.files['markdown']}, {comp.files['html']}"
    )
    return comp
