"""Plots (PNG) and the self-contained HTML report of `imgclf evaluate`.

Figures are drawn with matplotlib's object API (`matplotlib.figure.Figure` on the Agg canvas,
no `pyplot` global state), so this module works headless and from threads. Every file is
written atomically. The HTML report embeds every image as a base64 `data:` URI and uses no
external CSS or script: it can be mailed or opened offline as one file.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.fsutil import atomic_write_bytes, atomic_write_text


def _figure(width: float, height: float, layout: str | None = None) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    import io

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


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:0}.sub{color:#666;margin-top:.3em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:8em}
.card b{display:block;font-size:1.5em}img{max-width:100%;border:1px solid #eee;margin:.5em 0}
.warn{color:#a60}
"""


def _leak_section(leaks: Mapping[str, Any], split: str) -> list[str]:
    """HTML of the leak audit (`metrics.json` `leaks`): a line, and the pairs when any leak."""
    e = html.escape
    if not leaks.get("checked"):
        why = leaks.get("reason")
        return [f"<p class='sub'>Leak audit not run{': ' + e(str(why)) if why else ''}.</p>"] if why else []
    n, total = leaks.get("test_images_with_copy", 0), leaks.get("test_images", 0)
    where = " or ".join(leaks.get("compared_with", []))
    how = (
        f"verified near-duplicate detector, radius {leaks.get('radius')} bits, residual &le; "
        f"{leaks.get('max_residual')} grey levels{', flips' if leaks.get('flips') else ''}; docs/dedupe.md"
    )
    cls = "warn" if n else "sub"
    out = [
        f"<p class='{cls}' id='leaks'>Leak audit: <b>{n}</b> of {total} {e(split)} images have a near copy in "
        f"{e(where)} ({leaks.get('pairs', 0)} pair(s); {how}).</p>"
    ]
    if leaks.get("not_checked"):
        out.append(
            f"<p class='warn'>{len(leaks['not_checked'])} file(s) could not be decoded and were not checked.</p>"
        )
    if n:
        left = " style='text-align:left'"
        out.append(
            f"<table><tr><th>test image</th><th{left}>copy</th><th{left}>kind</th><th>residual (grey levels)</th></tr>"
        )
        for c in leaks.get("copies", []):
            out.append(
                f"<tr><td>{e(c['test'])}</td><td{left}>{e(c['other'])}</td><td{left}>{e(c['kind'])}</td>"
                f"<td>{c['residual']}</td></tr>"
            )
        out.append("</table>")
    return out


def write_html_report(
    path: str | os.PathLike,
    metrics: Mapping[str, Any],
    images: Mapping[str, Path],
    info: Any = None,
) -> Path:
    """Writes one self-contained HTML page with the metrics, tables and every plot embedded.

    Args:
        path: HTML file to write.
        metrics: mapping. The content of `metrics.json` (see `imgclf.evaluate.compute_metrics`).
        images: mapping of kind -> PNG path (`confusion_matrix`, `confusion_matrix_normalized`,
            `training_curves`, `confident_errors`, `reliability_diagram`); missing files skipped.
        info: RunInfo or None. Shown in the header (model, image size, classes).

    Returns:
        Path written.
    """
    e = html.escape
    split = metrics.get("split", "test")
    title = f"imgclf evaluation: {Path(str(metrics.get('run', ''))).name} ({split})"
    cards = [
        ("accuracy", metrics["accuracy"]),
        (f"top-{metrics.get('top_k', 1)} accuracy", metrics["top_k_accuracy"]),
        ("macro F1", metrics["f1_macro"]),
        ("macro precision", metrics["precision_macro"]),
        ("macro recall", metrics["recall_macro"]),
        ("loss (cross-entropy)", metrics["loss"]),
        (f"ECE ({metrics.get('ece_bins', 15)} bins)", metrics["ece"]),
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    sub = f"{metrics.get('n_images', '?')} images from {e(str(metrics.get('data_dir', '')))}"
    if info is not None:
        sub += f" &middot; model {e(str(info.model))}, input {e(info.input_spec.describe())}"
    if metrics.get("tta", "none") != "none":
        sub += f" &middot; test-time augmentation: {e(str(metrics['tta']))} (mean with the mirror image)"
    parts.append(f"<p class='sub'>{sub}</p>")
    aside = metrics.get("set_aside") or {}
    if aside.get("count"):
        reasons = ", ".join(f"{e(str(r))}: {c}" for r, c in aside.get("reasons", {}).items())
        parts.append(f"<p class='warn'>{aside['count']} unreadable file(s) set aside and not scored ({reasons}).</p>")
    parts.append("<div class='cards'>")
    ci = (metrics.get("confidence_intervals") or {}).get("metrics") or {}
    keys = ["accuracy", "top_k_accuracy", "f1_macro", "precision_macro", "recall_macro", "loss", "ece"]
    for (k, v), key in zip(cards, keys):
        iv = ci.get(key)
        bounds = f"<small>[{iv['low']:.4f}, {iv['high']:.4f}]</small>" if iv else ""
        parts.append(f"<div class='card'>{e(k)}<b>{v:.4f}</b>{bounds}</div>")
    parts.append("</div>")
    if ci:
        c = metrics["confidence_intervals"]
        parts.append(
            f"<p class='sub'>Brackets: {c.get('level', 0.95):.0%} percentile-bootstrap confidence intervals over the "
            f"{c.get('n_images', '')} images ({c.get('n_resamples', '')} resamples, seed {c.get('seed', '')}; "
            "Efron &amp; Tibshirani 1993, ch. 13).</p>"
        )
    fp = metrics.get("fingerprint") or {}
    if fp.get("sha256"):
        parts.append(
            f"<p class='sub'>Split fingerprint <code>{e(fp['sha256'][:16])}…</code> ({fp.get('n_files', '?')} files).</p>"
        )
    parts.extend(_leak_section(metrics.get("leaks") or {}, split))

    parts.append(
        "<h2>Per class</h2><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
    )
    for c, row in metrics["per_class"].items():
        parts.append(
            f"<tr><td>{e(c)}</td><td>{row['precision']:.4f}</td><td>{row['recall']:.4f}</td>"
            f"<td>{row['f1']:.4f}</td><td>{row['support']}</td></tr>"
        )
    parts.append(
        f"<tr><th>macro average</th><th>{metrics['precision_macro']:.4f}</th><th>{metrics['recall_macro']:.4f}</th>"
        f"<th>{metrics['f1_macro']:.4f}</th><th>{metrics.get('n_images', '')}</th></tr></table>"
    )
    sections = [
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
            "Expected calibration error with 15 equal-width bins (Guo et al., 2017, On Calibration of Modern Neural Networks). Bars below the diagonal mean over-confidence.",
        ),
        ("training_curves", "Training curves", "Loss and accuracy per epoch, from history.csv."),
    ]
    for key, heading, text in sections:
        p = images.get(key)
        if p is not None and Path(p).is_file():
            parts.append(f"<h2>{e(heading)}</h2><p>{e(text)}</p>{_img_tag(Path(p), heading)}")
    errors = metrics.get("confident_errors") or []
    if errors:
        parts.append("<table><tr><th>file</th><th>true</th><th>predicted</th><th>probability</th></tr>")
        parts.extend(
            f"<tr><td>{e(r['file'])}</td><td>{e(r['true'])}</td><td>{e(r['predicted'])}</td><td>{r['probability']:.4f}</td></tr>"
            for r in errors
        )
        parts.append("</table>")
    parts.append("</body></html>\n")
    return atomic_write_text(path, "\n".join(parts))


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


#: The compare page: wider than the report, each table scrolling inside its own box (never
#: the page) when even two-line cells do not fit.
_COMPARE_CSS = "body{max-width:1400px}.scroll{overflow-x:auto}td.t,th.t{text-align:left}"


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
    import re

    e = html.escape

    def code(text: str) -> str:
        return re.sub(r"`([^`]*)`", r"<code>\1</code>", e(text))

    def cell(text: str) -> str:
        # A value and its interval, "0.9452 [0.9409, 0.9493]", may wrap only before the
        # bracket: a wide leaderboard breaks into two lines per cell, and what still does not
        # fit scrolls inside its box (`.scroll`), never the page.
        return re.sub(r"\[[^\]]*\]", lambda m: m.group(0).replace(" ", "&nbsp;"), e(text))

    def numeric(text: str) -> bool:
        return re.match(r"\s*([-+]?\.?\d|[-\u2013\u2014]?\s*$)", text) is not None

    def table(cols: Sequence[str], body: Sequence[Sequence[str]]) -> str:
        # numbers right-aligned (the default), a column of names (models, runs, paths) left
        text = [any(not numeric(str(r[k])) for r in body if k < len(r)) for k in range(len(cols))]
        attr = [" class='t'" if t else "" for t in text]
        head = "".join(f"<th{attr[k]}>{e(c)}</th>" for k, c in enumerate(cols))
        lines = "".join(
            "<tr>"
            + "".join(f"<td{attr[k] if k < len(attr) else ''}>{cell(str(c))}</td>" for k, c in enumerate(r))
            + "</tr>"
            for r in body
        )
        return f"<div class='scroll'><table><tr>{head}</tr>{lines}</table></div>"

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}{_COMPARE_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    if warning:
        parts.append(f"<p class='warn'>{code(warning)}</p>")
    parts.append("<h2>Leaderboard</h2>" + table(columns, rows))
    if chart is not None and Path(chart).is_file():
        parts.append(_img_tag(Path(chart), "bar chart with confidence intervals"))
    parts.append("<h2>Runs</h2>" + table(run_columns, run_rows))
    parts.append("<h2>Method</h2><ul>" + "".join(f"<li>{code(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    return atomic_write_text(path, "\n".join(parts))
