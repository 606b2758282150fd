"""Rendering results for people: prediction tables, one-line summaries.

CLI-side code (the library returns data; commands decide how it looks). No Typer here, so the
`run` command and `predict` share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imgclf.predict import Prediction, summarize


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


def prediction_summary(predictions: Sequence[Prediction], threshold: float) -> str:
    """One line: how many predicted, how many flagged low-confidence, how many failed and why."""
    s = summarize(predictions)
    why = f" ({', '.join(f'{n} {r}' for r, n in s.failed.items())})" if s.failed else ""
    return (
        f"predict: {s.predicted} of {s.total} images predicted, {s.low_confidence} below the {threshold:.2f} "
        f"confidence threshold, {s.failed_total} failed{why}"
    )
