"""Terminal output shared by every stage: one stderr console, progress bars, summaries.

Library code may report progress through `progress()`; it never prints results to stdout
(stdout is kept for `--json` / machine-readable output).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: Console for progress, warnings and summaries (stderr, so stdout stays machine-readable).
console = Console(stderr=True, highlight=False)


def _quiet() -> bool:
    return os.environ.get("IMGCLF_QUIET", "") not in ("", "0")


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[..., None]]:
    """Shows a rich progress bar on stderr while the block runs.

    Args:
        description: str. What is being done, e.g. `"clean: hashing"`.
        total: int or None. Number of steps; None shows a spinner without a total.

    Yields:
        callable `advance(n=1, **fields)`: moves the bar by `n` steps; keyword `status=str`
        replaces the text shown after the bar (e.g. kept / skipped counts).

    Example:
        >>> with progress("prepare", total=len(files)) as advance:
        ...     for f in files:
        ...         advance(status=f"kept {kept}")
    """
    bar = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
        disable=_quiet(),
    )
    with bar:
        task = bar.add_task(description, total=total, status="")

        def advance(n: int = 1, status: str | None = None) -> None:
            if status is None:
                bar.advance(task, n)
            else:
                bar.update(task, advance=n, status=status)

        yield advance


def summary(line: str) -> None:
    """Prints the one-line end-of-stage summary (kept / set aside / where written) on stderr."""
    console.print(line, soft_wrap=True)


def warn(line: str) -> None:
    """Prints a warning line on stderr."""
    console.print(f"[yellow]warning:[/] {line}", soft_wrap=True)
