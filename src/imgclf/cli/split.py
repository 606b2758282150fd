"""`imgclf split SRC --out OUT`: stratified train/val/test without leaking duplicate groups."""

from __future__ import annotations

from pathlib import Path

import typer


def _ratios(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        parts = [float(x) for x in value.replace(" ", "").split(",")]
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give 3 numbers such as 0.7,0.15,0.15") from None
    if len(parts) != 3:
        raise typer.BadParameter(f"{value!r}: give 3 numbers (train,val,test) such as 0.7,0.15,0.15")
    return parts


def register(app: typer.Typer) -> None:
    """Adds `split` to `app`."""

    @app.command("split")
    def split(
        src: Path = typer.Argument(..., help="Input ImageFolder (usually the prepare output)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder: train/ val/ test/ _reports/."),
        ratios: str | None = typer.Option(None, "--ratios", help="train,val,test fractions \\[default: 0.7,0.15,0.15]."),
        seed: int | None = typer.Option(None, "--seed", help="Random seed; same seed = same split \\[default: 42]."),
        keep_test: bool | None = typer.Option(None, "--keep-test/--no-keep-test", help="Keep SRC/test/ as the test split \\[default: off]."),
        check_leaks: bool | None = typer.Option(None, "--check-leaks/--no-check-leaks", help="Fail on near-duplicates across splits \\[default: on]."),
        link: str | None = typer.Option(None, "--link", help="hardlink | copy \\[default: hardlink, copy if impossible]."),
        threshold: int | None = typer.Option(None, "--threshold", help="Duplicate-group radius in bits \\[default: as clean]."),
        config: Path | None = typer.Option(None, "--config", help="Run config YAML; its split: section is used."),
    ) -> None:
        """Split SRC into OUT/train, OUT/val, OUT/test, stratified by class; duplicate groups stay together."""
        from imgclf.cli.common import stage_config
        from imgclf.config import SplitConfig
        from imgclf.split import split_folder

        cfg = stage_config(
            SplitConfig, "split", config, ratios=_ratios(ratios), seed=seed, keep_test=keep_test,
            check_leaks=check_leaks, link=link, threshold=threshold,
        )
        split_folder(src, out, cfg)
