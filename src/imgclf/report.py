"""Plots (PNG) and the self-contained HTML pages of `imgclf evaluate` and `imgclf compare`.

Figures are drawn with matplotlib's object API (`matplotlib.figure.Figure` on the Agg canvas,
no `pyplot` global state), so this module works headless and from threads. Every file is
written atomically.

The pages are Jinja2 templates rendered through `imgclf.html` (autoescaped, one layout):
`templates/report.html` (`write_html_report`, its variables from `report_context`) and
`templates/compare.html` (`write_compare_html`, tables from `compare_table`). Numbers arrive
in the templates already formatted. Every image is embedded as a base64 `data:` URI and no
external CSS or script is used: a page can be mailed or opened offline as one file.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from imgclf.fsutil import atomic_write_bytes, atomic_write_text
from imgclf.html import png_data_uri, render


def _figure(width: float, height: float, layout: Literal["constrained", "tight"] | None = None) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def plot_confusion_matrix(
    cm: np.ndarray, class_names: Sequence[str], path: str | os.PathLike, normalize: bool = False
) -> Path:
    """Draws a confusion matrix as a heat map with the value in every cell.

    Args:
        cm: np.ndarray `(num_classes, num_classes)` of int counts; rows = true class,
            columns = predicted class (scikit-learn's `confusion_matrix` layout).
        class_names: sequence of str, tick labels.
        path: PNG file to write.
        normalize: bool, default False. If True, each row is divided by its sum (the diagonal
            then shows per-class recall) and cells show fractions.

    Returns:
        Path written.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            cm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    n = len(class_names)
    side = min(4 + 0.5 * n, 30)
    fig = _figure(side + 1.5, side)
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else max(cm.max(), 1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix" + (" (rows normalized)" if normalize else " (counts)"))
    if n <= 30:
        thresh = (1 if normalize else cm.max()) / 2
        for i in range(n):
            for j in range(n):
                txt = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                ax.text(
                    j, i, txt, ha="center", va="center", fontsize=8, color="white" if cm[i, j] > thresh else "black"
                )
    return _save(fig, path)


def plot_training_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike) -> Path:
    """Draws loss and accuracy per epoch (train and validation) from a Keras history.

    Args:
        history: mapping of column -> values per epoch, e.g. from `history.csv` (CSVLogger
            columns `epoch`, `loss`, `accuracy`, `val_loss`, `val_accuracy`, `learning_rate`).
        path: PNG file to write.

    Returns:
        Path written.
    """
    from matplotlib.ticker import MaxNLocator

    n = len(next(iter(history.values()), []))
    epochs = np.asarray(history.get("epoch", range(n)), dtype=float) + 1
    fig = _figure(11, 4)
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for key, style in ((metric, "-o"), (f"val_{metric}", "-s")):
            if key in history:
                ax.plot(epochs, history[key], style, markersize=3, label="train" if key == metric else "validation")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_reliability_diagram(bins: Sequence[Mapping[str, float]], ece: float, path: str | os.PathLike) -> Path:
    """Draws a reliability diagram (accuracy vs confidence per bin) with the ECE in the title.

    As in Guo et al., 2017, "On Calibration of Modern Neural Networks", fig. 1: bars are the
    accuracy of each equal-width confidence bin, the gap to the diagonal is miscalibration.

    Args:
        bins: sequence of dicts with `lower`, `upper`, `count`, `accuracy`, `confidence`
            (see `imgclf.evaluate.expected_calibration_error`).
        ece: float. Expected calibration error, shown in the title.
        path: PNG file to write.

    Returns:
        Path written.
    """
    fig = _figure(9, 4.5)
    ax = fig.add_subplot(1, 2, 1)
    lows = np.array([b["lower"] for b in bins])
    width = np.array([b["upper"] - b["lower"] for b in bins])
    acc = np.array([b["accuracy"] for b in bins])
    conf = np.array([b["confidence"] for b in bins])
    counts = np.array([b["count"] for b in bins])
    filled = counts > 0
    ax.bar(lows[filled], acc[filled], width=width[filled], align="edge", edgecolor="black", label="accuracy")
    ax.bar(
        lows[filled],
        conf[filled] - acc[filled],
        bottom=acc[filled],
        width=width[filled],
        align="edge",
        color="red",
        alpha=0.3,
        edgecolor="red",
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram, ECE = {ece:.4f} ({len(bins)} bins)")
    ax.legend(loc="upper left", fontsize=8)
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.bar(lows, counts, width=width, align="edge", edgecolor="black")
    ax2.set_xlim(0, 1)
    ax2.set_xlabel("confidence (top-1 probability)")
    ax2.set_ylabel("images")
    ax2.set_title("Confidence histogram")
    return _save(fig, path)


def plot_gallery(
    images: np.ndarray, captions: Sequence[Mapping[str, Any]], path: str | os.PathLike, columns: int = 4
) -> Path:
    """Draws a grid of images with their true and predicted labels (most confident errors).

    Args:
        images: np.ndarray `(n, height, width, 3)`, uint8 in [0, 255]; n may be 0.
        captions: sequence of n dicts with `true`, `predicted`, `probability`, `file`.
        path: PNG file to write.
        columns: int, default 4. Images per row.

    Returns:
        Path written. With no image, the figure says that there was no error.
    """
    n = len(images)
    if n == 0:
        fig = _figure(5, 1.5)
        fig.text(0.5, 0.5, "No misclassified image in this split.", ha="center", va="center", fontsize=12)
        return _save(fig, path)
    cols = min(columns, n)
    rows = -(-n // cols)
    fig = _figure(3 * cols, 3.3 * rows, layout="constrained")  # keeps the suptitle above the captions
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(images[i], interpolation="nearest" if images[i].shape[0] < 96 else "antialiased")
        c = captions[i]
        ax.set_title(
            f"true: {c['true']}\npred: {c['predicted']} ({c['probability']:.2f})\n{Path(c['file']).name}",
            fontsize=8,
            color="darkred",
        )
        ax.axis("off")
    fig.suptitle("Most confidently wrong images")
    return _save(fig, path)


def _data_uri(path: str | os.PathLike) -> str:
    """A PNG file as a `data:` URI (the page needs no file beside it)."""
    return png_data_uri(Path(path).read_bytes())


#: The figures of the evaluate report, in page order: kind (key of `images`), heading, text.
REPORT_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("confusion_matrix", "Confusion matrix", "Rows are the true class, columns the predicted class."),
    (
        "confusion_matrix_normalized",
        "Confusion matrix, normalized",
        "Each row divided by its total: the diagonal is the recall of each class.",
    ),
    (
        "confident_errors",
        "Most confidently wrong images",
        "Misclassified images with the highest predicted probability: label noise or real confusions.",
    ),
    (
        "reliability_diagram",
        "Calibration",
        "Expected calibration error with 15 equal-width bins (Guo et al., 2017, On Calibration of Modern Neural "
        "Networks). Bars below the diagonal mean over-confidence.",
    ),
    ("training_curves", "Training curves", "Loss and accuracy per epoch, from history.csv."),
)

#: The metric cards at the top of the report: `metrics.json` key, and its label (a format
#: string filled with `top_k` and `ece_bins`).
_CARDS: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy"),
    ("top_k_accuracy", "top-{top_k} accuracy"),
    ("f1_macro", "macro F1"),
    ("precision_macro", "macro precision"),
    ("recall_macro", "macro recall"),
    ("loss", "loss (cross-entropy)"),
    ("ece", "ECE ({ece_bins} bins)"),
)


def _cards(metrics: Mapping[str, Any]) -> list[dict[str, str]]:
    """The metric cards: label, value and, when the run has them, the confidence bounds."""
    ci = (metrics.get("confidence_intervals") or {}).get("metrics") or {}
    names = {"top_k": metrics.get("top_k", 1), "ece_bins": metrics.get("ece_bins", 15)}
    cards = []
    for key, label in _CARDS:
        iv = ci.get(key)
        bounds = f"[{iv['low']:.4f}, {iv['high']:.4f}]" if iv else ""
        cards.append({"label": label.format(**names), "value": f"{metrics[key]:.4f}", "interval": bounds})
    return cards


def _intervals_note(metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the brackets of the cards are (level, images, resamples, seed), or None without them."""
    c = metrics.get("confidence_intervals") or {}
    if not c.get("metrics"):
        return None
    return {
        "level": f"{c.get('level', 0.95):.0%}",
        "n_images": c.get("n_images", ""),
        "n_resamples": c.get("n_resamples", ""),
        "seed": c.get("seed", ""),
    }


def _leak_context(leaks: Mapping[str, Any]) -> dict[str, Any]:
    """The leak audit (`metrics.json` `leaks`) as the template shows it."""
    if not leaks.get("checked"):
        return {"checked": False, "reason": leaks.get("reason")}
    return {
        "checked": True,
        "n": leaks.get("test_images_with_copy", 0),
        "total": leaks.get("test_images", 0),
        "where": " or ".join(leaks.get("compared_with", [])),
        "pairs": leaks.get("pairs", 0),
        "radius": leaks.get("radius"),
        "max_residual": leaks.get("max_residual"),
        "flips": bool(leaks.get("flips")),
        "not_checked": len(leaks.get("not_checked") or []),
        "copies": list(leaks.get("copies", [])),
    }


def _per_class(metrics: Mapping[str, Any]) -> list[dict[str, str]]:
    """Rows of the per-class table, numbers formatted."""
    return [
        {
            "name": name,
            "precision": f"{row['precision']:.4f}",
            "recall": f"{row['recall']:.4f}",
            "f1": f"{row['f1']:.4f}",
            "support": str(row["support"]),
        }
        for name, row in metrics["per_class"].items()
    ]


def report_context(
    metrics: Mapping[str, Any], images: Mapping[str, str | os.PathLike], info: Any = None
) -> dict[str, Any]:
    """The variables of `templates/report.html`: every number formatted, every figure embedded.

    Args:
        metrics: mapping. The content of `metrics.json` (see `imgclf.evaluate.evaluate_run`).
        images: mapping of kind -> PNG path (the kinds of `REPORT_FIGURES`); missing files skipped.
        info: RunInfo or None. Shown in the header (model, input specification).

    Returns:
        dict of the template's variables (`title`, `cards`, `leaks`, `per_class`, `figures`, ...).
    """
    split = metrics.get("split", "test")
    tta = metrics.get("tta", "none")
    aside = metrics.get("set_aside") or {}
    fp = metrics.get("fingerprint") or {}
    figures = [
        {"heading": heading, "text": text, "src": _data_uri(images[key])}
        for key, heading, text in REPORT_FIGURES
        if images.get(key) is not None and Path(images[key]).is_file()
    ]
    errors = [
        {"file": r["file"], "true": r["true"], "predicted": r["predicted"], "probability": f"{r['probability']:.4f}"}
        for r in metrics.get("confident_errors") or []
    ]
    return {
        "title": f"imgclf evaluation: {Path(str(metrics.get('run', ''))).name} ({split})",
        "split": split,
        "n_images": metrics.get("n_images", "?"),
        "data_dir": str(metrics.get("data_dir", "")),
        "model": None if info is None else str(info.model),
        "input": None if info is None else info.input_spec.describe(),
        "tta": None if tta == "none" else str(tta),
        "set_aside": None
        if not aside.get("count")
        else {"count": aside["count"], "reasons": ", ".join(f"{r}: {c}" for r, c in aside.get("reasons", {}).items())},
        "cards": _cards(metrics),
        "intervals": _intervals_note(metrics),
        "fingerprint": {"short": fp["sha256"][:16], "n_files": fp.get("n_files", "?")} if fp.get("sha256") else None,
        "leaks": _leak_context(metrics.get("leaks") or {}),
        "per_class": _per_class(metrics),
        "macro": {
            "precision": f"{metrics['precision_macro']:.4f}",
            "recall": f"{metrics['recall_macro']:.4f}",
            "f1": f"{metrics['f1_macro']:.4f}",
            "n_images": metrics.get("n_images", ""),
        },
        "figures": figures,
        "errors": errors,
    }


def write_html_report(
    path: str | os.PathLike,
    metrics: Mapping[str, Any],
    images: Mapping[str, str | os.PathLike],
    info: Any = None,
) -> Path:
    """Writes one self-contained HTML page with the metrics, tables and every plot embedded.

    The page is `templates/report.html` rendered through `imgclf.html` (autoescaped: a class
    or file name is shown as text, never read as markup).

    Args:
        path: HTML file to write.
        metrics: mapping. The content of `metrics.json` (see `imgclf.evaluate.evaluate_run`).
        images: mapping of kind -> PNG path (`confusion_matrix`, `confusion_matrix_normalized`,
            `training_curves`, `confident_errors`, `reliability_diagram`); missing files skipped.
        info: RunInfo or None. Shown in the header (model, image size, classes).

    Returns:
        Path written.
    """
    return atomic_write_text(path, render("report.html", **report_context(metrics, images, info)))


# ------------------------------------------------------------------------ imgclf compare
def plot_leaderboard(
    bars: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    metrics: Sequence[str] = ("accuracy", "precision_macro", "recall_macro", "f1_macro"),
    titles: Mapping[str, str] | None = None,
    level: float = 0.95,
    subtitle: str = "",
) -> Path:
    """Draws one horizontal bar chart per metric, a bar per model, its confidence interval as
    whiskers and each seed's value as a dot.

    Args:
        bars: sequence of dicts, best model first, each with `label` (str) and, per metric
            name, `values[m]` (float, the bar), `low[m]` / `high[m]` (floats, the interval) and
            optionally `per_run[m]` (list of float, one dot per run; drawn when there are 2+).
        path: PNG file to write.
        metrics: sequence of str, default accuracy and macro precision / recall / F1. Metrics
            in [0, 1] where higher is better.
        titles: mapping metric -> panel title, or None (the metric names).
        level: float, default 0.95. Confidence level, for the axis label.
        subtitle: str. Line under the figure title.

    Returns:
        Path written. The value axis starts near the lowest interval bound (not at 0) so that
        differences of a point are visible; the axis label says where it starts.
    """
    from matplotlib.ticker import MaxNLocator

    titles = dict(titles or {})
    n = len(bars)
    cols = min(len(metrics), 2)
    rows = -(-len(metrics) // cols)
    height = max(1.6, 0.45 * n + 1.2)
    fig = _figure(6.2 * cols, height * rows + 0.8)
    colors = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    y = np.arange(n)[::-1]
    for j, m in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, j + 1)
        vals = np.array([b["values"][m] for b in bars], dtype=float)
        low = np.array([b["low"][m] for b in bars], dtype=float)
        high = np.array([b["high"][m] for b in bars], dtype=float)
        lo_axis = max(0.0, float(np.floor((low.min() - 0.02) * 50) / 50))
        span = max(float(high.max()) - lo_axis, 1e-3)
        hi_axis = float(high.max()) + 0.04 * span  # room for a whisker or dot at 1.0
        ax.barh(
            y, vals - lo_axis, left=lo_axis, color=[colors[i % len(colors)] for i in range(n)], alpha=0.75, height=0.6
        )
        ax.errorbar(vals, y, xerr=[vals - low, high - vals], fmt="none", ecolor="black", capsize=4, lw=1.2)
        for i, b in enumerate(bars):
            runs = list((b.get("per_run") or {}).get(m) or [])
            if len(runs) > 1:
                ax.plot(runs, np.full(len(runs), y[i]), "o", color="white", mec="black", ms=4, zorder=3)
            ax.text(hi_axis, y[i], f" {vals[i]:.4f}", va="center", ha="left", fontsize=8)
        ax.set_yticks(y, labels=[str(b["label"]) for b in bars])
        ax.set_xlim(lo_axis, hi_axis)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_title(titles.get(m, m))
        ax.set_xlabel(f"{titles.get(m, m)} ({level:.0%} CI; axis from {lo_axis:g})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Model comparison" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


_NUMBER = re.compile(r"\s*([-+]?\.?\d|[-\u2013\u2014]?\s*$)")
_INTERVAL = re.compile(r"\[[^\]]*\]")


def _is_number(text: str) -> bool:
    """True for a cell that reads as a figure (a number, or a dash for none)."""
    return _NUMBER.match(text) is not None


def _unbroken_intervals(text: str) -> str:
    """`"0.9452 [0.9409, 0.9493]"` with no-break spaces inside the bracket: a value and its
    interval may wrap only before the bracket (what still does not fit scrolls in its box)."""
    return _INTERVAL.sub(lambda m: m.group(0).replace(" ", "\u00a0"), text)


def compare_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> dict[str, Any]:
    """A table of the compare page: cells, and which columns hold text rather than figures.

    Args:
        columns: sequence of str. Headers.
        rows: sequence of sequences of str. Cells (already formatted).

    Returns:
        dict with `head` and `rows`, lists of `{"text": str, "left": bool}`: a column with any
        cell that is not a figure (model, run, path) is left-aligned; figures stay right-aligned.
    """
    left = [any(not _is_number(str(r[k])) for r in rows if k < len(r)) for k in range(len(columns))]
    return {
        "head": [{"text": c, "left": left[k]} for k, c in enumerate(columns)],
        "rows": [
            [{"text": _unbroken_intervals(str(c)), "left": k < len(left) and left[k]} for k, c in enumerate(r)]
            for r in rows
        ],
    }


def code_spans(text: str) -> list[tuple[str, bool]]:
    """Splits Markdown-ish text at backticks: `(text, is_code)` pieces, in order.

    Example:
        >>> code_spans("see `a.csv` now")
        [('see ', False), ('a.csv', True), (' now', False)]
    """
    parts = re.split(r"`([^`]*)`", text)
    return [(part, i % 2 == 1) for i, part in enumerate(parts) if part or i % 2 == 1]


def write_compare_html(
    path: str | os.PathLike,
    *,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    run_columns: Sequence[str],
    run_rows: Sequence[Sequence[str]],
    chart: str | os.PathLike | None,
    notes: Sequence[str],
    warning: str | None = None,
) -> Path:
    """Writes the self-contained page of `imgclf compare` (chart embedded, no external file).

    The page is `templates/compare.html` rendered through `imgclf.html`: wider than the report,
    each table scrolling inside its own box (never the page) when even two-line cells do not fit.

    Args:
        path: HTML file to write.
        title: str. Page title and heading.
        columns, rows: the leaderboard's headers and cells (already formatted text).
        run_columns, run_rows: the per-run table.
        chart: PNG path of `plot_leaderboard`, or None.
        notes: sequence of str. Method notes (Markdown backticks are shown as code).
        warning: str or None. Shown above the table (e.g. different test sets under --force).

    Returns:
        Path written.
    """
    page = render(
        "compare.html",
        title=title,
        warning=code_spans(warning) if warning else None,
        leaderboard=compare_table(columns, rows),
        chart=_data_uri(chart) if chart is not None and Path(chart).is_file() else None,
        runs=compare_table(run_columns, run_rows),
        notes=[code_spans(n) for n in notes],
    )
    return atomic_write_text(path, page)
