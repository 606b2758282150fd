"""Rendering results for people and files: prediction tables, CSV, one-line summaries.

CLI-side code (the library returns data; commands decide how it looks). No Typer here, so the
`run` command and `predict` share it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any


def print_predictions(predictions: Sequence[Any], top_k: int = 3, console: Any = None) -> None:
    """Prints predictions as a table: input, top-k labels with probabilities, flags, errors.

    Args:
        predictions: sequence of `imgclf.predict.Prediction`.
        top_k: int, default 3. How many labels to show per image.
        console: rich Console or None. None = a console on stdout (this is the command's output).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(highlight=False)
    table = Table(show_header=True, header_style="bold")
    table.add_column("input", overflow="fold")
    table.add_column("prediction")
    table.add_column("p", justify="right")
    table.add_column(f"top-{top_k}" if top_k > 1 else "", overflow="fold")
    for p in predictions:
        if not p.ok:
            table.add_row(escape(p.input), "[red]unreadable[/]", "", f"[red]{escape(p.error or '')}[/]")
            continue
        label = f"[yellow]{escape(p.label)} (low confidence)[/]" if p.low_confidence else f"[green]{escape(p.label)}[/]"
        rest = ", ".join(f"{escape(lab)} {prob:.3f}" for lab, prob in p.top_k[1:top_k])
        table.add_row(escape(p.input), label, f"{p.probability:.3f}", rest)
    console.print(table)


def prediction_summary(predictions: Sequence[Any], threshold: float) -> str:
    """One line: how many predicted, how many flagged low-confidence, how many failed and why."""
    ok = [p for p in predictions if p.ok]
    low = sum(p.low_confidence for p in ok)
    failed: dict[str, int] = {}
    for p in predictions:
        if not p.ok:
            reason = (p.error or "error").split(":")[0]
            failed[reason] = failed.get(reason, 0) + 1
    why = f" ({', '.join(f'{n} {r}' for r, n in sorted(failed.items()))})" if failed else ""
    return (
        f"predict: {len(ok)} of {len(predictions)} images predicted, {low} below the {threshold:.2f} "
        f"confidence threshold, {len(predictions) - len(ok)} failed{why}"
    )


def predictions_csv(predictions: Sequence[Any]) -> str:
    """CSV text: input, label, probability, low_confidence, top_k (`label:prob;...`), error."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["input", "label", "probability", "low_confidence", "top_k", "error"])
    for p in predictions:
        w.writerow(
            [
                p.input,
                p.label or "",
                "" if p.probability is None else f"{p.probability:.6f}",
                int(p.low_confidence) if p.ok else "",
                ";".join(f"{lab}:{prob:.6f}" for lab, prob in p.top_k),
                p.error or "",
            ]
        )
    return buf.getvalue()
