"""`imgclf models`: the registered models, their input sizes, parameters and preprocessing."""

from __future__ import annotations

import typer

from imgclf.cli.options import plain_opt


def register(app: typer.Typer) -> None:
    """Adds `models` to `app`."""

    @app.command("models")
    def models_cmd(
        num_classes: int = plain_opt(10, "--num-classes", help="Classes assumed for the parameter count."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List the registered models: default input size, parameter count, preprocessing."""
        import json

        from imgclf.runtime import import_tensorflow_quietly

        import_tensorflow_quietly()
        from imgclf.models import create_model, list_models

        rows = []
        for spec in list_models():
            m = create_model(spec.name, num_classes=num_classes)
            rows.append(
                {
                    "name": spec.name,
                    "default_size": spec.default_size,
                    "min_size": spec.min_size,
                    "params": int(m.count_params()),
                    "preprocessing": spec.preprocessing,
                    "pretrained": spec.pretrained,
                    "gradcam_layer": spec.last_conv_layer,
                    "description": spec.description,
                }
            )
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"imgclf models (parameters at the default size, {num_classes} classes)")
        for col in ("name", "input", "params", "preprocessing", "imagenet", "description"):
            table.add_column(col, justify="right" if col == "params" else "left")
        for r in rows:
            table.add_row(
                str(r["name"]),
                f"{r['default_size']}x{r['default_size']} (min {r['min_size']})",
                f"{r['params']:,}",
                str(r["preprocessing"]),
                "yes" if r["pretrained"] else "-",
                str(r["description"]),
            )
        Console().print(table)
