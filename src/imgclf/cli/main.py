"""The `imgclf` command: a Typer app whose command groups live in sibling modules.

Every module in `COMMAND_MODULES` exposes `register(app)`. Domain errors (`ImgclfError`) from
any command are turned into one line on stderr and exit code 1 here, in one place.
"""

from __future__ import annotations

import importlib
import sys

import typer
from typer.core import TyperGroup

from imgclf.errors import ImgclfError

COMMAND_MODULES = (
    "datasets",
    "scrape",
    "clean",
    "prepare",
    "split",
    "train",
    "evaluate",
    "predict",
    "explore",
    "run",
)


def report_error(exc: ImgclfError) -> None:
    """Prints `exc` as one line on stderr (message, then hint)."""
    from rich.markup import escape

    from imgclf.ui import console

    console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    if exc.hint:
        console.print(f"  [dim]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)


#: Commands that always need TensorFlow (predict is left out: exported models run without it).
TENSORFLOW_COMMANDS = frozenset({"run", "train", "evaluate", "export", "explain", "embed", "autoencoder", "models", "augment-preview"})


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and initializes its devices with the C++ start-up chatter hidden.

    TensorFlow 2.21 writes oneDNN / CUDA / cpu_feature_guard lines to file descriptor 2 before
    its logging is configured, so `TF_CPP_MIN_LOG_LEVEL` alone does not silence them. They go
    to a temporary file instead, which is shown if the import fails.
    """
    import os
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _needs_tensorflow(args: list[str]) -> bool:
    """Whether the command line `args` (command first) will import TensorFlow anyway."""
    if {"--help", "-h"} & set(args):
        return False
    model = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--model", "-m")), "")
    model = next((a.split("=", 1)[1] for a in args if a.startswith("--model=")), model)
    if args[0] == "predict":  # exported ONNX / TFLite models run without TensorFlow
        return not model.lower().endswith((".onnx", ".tflite"))
    if args[0] == "cluster":  # raw pixels (the default) need no TensorFlow; a model does
        return model.lower() not in ("", "raw")
    return args[0] in TENSORFLOW_COMMANDS


class ImgclfGroup(TyperGroup):
    """Root command group that turns `ImgclfError` into a message and exit code 1."""

    def invoke(self, ctx: typer.Context):  # noqa: D401
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if args and _needs_tensorflow(args):
            import_tensorflow_quietly()
        try:
            return super().invoke(ctx)
        except ImgclfError as exc:
            report_error(exc)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            from imgclf.ui import console

            console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None


app = typer.Typer(
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
        from imgclf import __version__

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
