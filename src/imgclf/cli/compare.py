"""`imgclf compare RUN... [--out DIR] [--force]`: evaluated runs side by side (`imgclf.compare`).

Thin: resolve the config, call `imgclf.compare.compare_runs`, print the leaderboard. Reads
files only (no model is loaded), so it never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from imgclf.cli.options import opt, plain_opt
from imgclf.config import CompareConfig, stage_config


def print_leaderboard(comp: Any, console: Any = None) -> None:
    """Prints a `Comparison` as a table (stdout by default): the main columns of the leaderboard
    (`leaderboard.md` has every metric, the per-run table and the method notes).

    Args:
        comp: `imgclf.compare.Comparison`.
        console: rich Console or None. None = a console on stdout (the command's output).
    """
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from imgclf.compare import table_columns, table_rows

    # piped or captured output has no width to respect: keep each row on one line there
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 240)
    cols = table_columns(comp)
    shown = [
        0,
        1,
        2,
        3,
        7,
        4,
        9,
        10,
        11,
        13,
        14,
    ]  # #, model, runs, accuracy, F1, loss, ECE, params, train s, ms/img, vs best
    table = Table(
        show_header=True,
        header_style="bold",
        title=f"{comp.split} split, {comp.n_images} images: mean (± std over seeds) [{comp.level:.0%} bootstrap CI]",
    )
    for i in shown:
        table.add_column(escape(cols[i]), justify="left" if i in (1, 14) else "right", overflow="fold", no_wrap=i == 1)
    for row in table_rows(comp):
        table.add_row(*(escape(row[i]) for i in shown))
    console.print(table)
    files = comp.files
    if files:
        where = f"{escape(str(files.get('markdown')))}, {escape(str(files.get('html')))}"
        console.print(f"[dim]every metric, the runs and the method: {where}[/]", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Adds `compare` to `app`."""
    C = CompareConfig

    @app.command("compare")
    def compare(
        runs: list[Path] = typer.Argument(..., help="Evaluated run folders (models/<run>), or folders holding runs."),
        out: Path | None = plain_opt(
            None,
            "--out",
            "-o",
            help="Folder for leaderboard.csv / .md / .png, compare.html.",
            default_text="<parent of the first run>/compare",
        ),
        split: str | None = opt(C, "split", "--split", help="Whose metrics are compared: train | val | test."),
        force: bool | None = opt(
            C, "force", "--force/--no-force", help="Show runs evaluated on different test splits, with a warning."
        ),
        resamples: int | None = opt(
            C, "bootstrap_resamples", "--resamples", help="Percentile-bootstrap resamples of the confidence intervals."
        ),
        level: float | None = opt(C, "ci_level", "--level", help="Confidence level of the intervals."),
        seed: int | None = opt(C, "bootstrap_seed", "--seed", help="Seed of the bootstrap resampling."),
        alpha: float | None = opt(
            C, "alpha", "--alpha", help="Significance level of the McNemar test against the best."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print compare.json to stdout instead of the table."),
        config: Path | None = plain_opt(None, "--config", help="Run config YAML; its compare: section is used."),
    ) -> None:
        """Leaderboard of evaluated runs: every metric with a 95 % bootstrap CI, an exact McNemar test of each model against the best, seeds of one model grouped; refuses runs evaluated on different test splits."""  # noqa: E501 - typer's rich help keeps a docstring's line breaks: a paragraph is one line
        import json

        from imgclf.compare import compare_runs, comparison_json

        cfg = stage_config(
            CompareConfig,
            "compare",
            config,
            split=split,
            force=force,
            bootstrap_resamples=resamples,
            ci_level=level,
            bootstrap_seed=seed,
            alpha=alpha,
        )
        comp = compare_runs(runs, out, cfg)
        if as_json:
            typer.echo(json.dumps(comparison_json(comp), indent=2, default=str))
        else:
            print_leaderboard(comp)
