"""The `imgclf` command: a Typer app whose commands live in sibling modules, one per command or
command group, each named after it (`imgclf train` -> `imgclf/cli/train.py`).

`COMMAND_MODULES` is the one list of commands: every module in it exposes `register(app)`, and
`imgclf --help` lists the commands in its order -- the pipeline's stages in the order they run,
then the rest.
Domain errors (`ImgclfError`) from any command are turned into one line on stderr and exit code
1 here, in one place. Commands that need TensorFlow import it themselves, quietly
(`imgclf.runtime.import_tensorflow_quietly`), so `--help` and the TensorFlow-free paths
(`predict --model model.onnx`, `cluster` on raw pixels) stay fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from imgclf import __version__
from imgclf.cli.core import FlagGroup, ImgclfTyper
from imgclf.errors import ImgclfError, LoaderError
from imgclf.ui import console

#: Module of each command / command group under `imgclf.cli`, in the order `--help` lists them
#: (a module `augment_preview` is the command `augment-preview`).
COMMAND_MODULES: tuple[str, ...] = (
    # the pipeline, in the order its stages run
    "scrape",
    "clean",
    "prepare",
    "split",
    "train",
    "evaluate",
    "predict",
    # every stage of a config in one go, and the bundled datasets (a source without scraping)
    "run",
    "datasets",
    # the data-trust loop: find suspect labels, let a person decide (clean replays the decisions)
    "audit",
    "review",
    # judging and using trained models
    "compare",
    "serve",
    "export",
    "explain",
    # around training: the model registry, augmentation, looking at a dataset
    "models",
    "augment_preview",
    "embed",
    "cluster",
    "autoencoder",
)

#: Position of each command name in `--help`.
_ORDER = {m.replace("_", "-"): i for i, m in enumerate(COMMAND_MODULES)}


def report_error(exc: ImgclfError) -> None:
    """Prints `exc` as one line on stderr (message, then hint).

    A `LoaderError` (a bug while loading one image) whose traceback no stage has kept yet gets
    it written to a temporary log file first, so the hint can name it.
    """
    from rich.markup import escape

    if isinstance(exc, LoaderError) and exc.log is None:
        exc.save_traceback()

    console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    if exc.hint:
        console.print(f"  [dim]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)


class ImgclfGroup(FlagGroup):
    """Root command group: lists the commands in `COMMAND_MODULES` order, and turns
    `ImgclfError` into a message and exit code 1."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted(super().list_commands(ctx), key=lambda name: _ORDER.get(name, len(_ORDER)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ImgclfError as exc:
            report_error(exc)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None


app = ImgclfTyper(
    cls=ImgclfGroup,
    name="imgclf",
    help="End-to-end image classification: scrape -> clean -> prepare -> split -> train -> evaluate -> predict.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"imgclf {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """imgclf: your own image categories to a trained model, a report and fast predictions."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"imgclf.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ImgclfError as exc:  # raised outside a command (e.g. during option parsing)
        report_error(exc)
        sys.exit(1)
