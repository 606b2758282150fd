"""`imgclf split SRC --out OUT`: stratified train/val/test without leaking duplicate groups."""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.engine_options import engine_config, engine_opt, ray_address_opt, stage_executor
from imgclf.cli.options import opt, plain_opt
from imgclf.config import SplitConfig, stage_config


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
    S = SplitConfig

    @app.command("split")
    def split(
        src: Path = typer.Argument(..., help="Input ImageFolder (usually the prepare output)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder: train/ val/ test/ _reports/."),
        ratios: str | None = opt(S, "ratios", "--ratios", help="train,val,test fractions."),
        seed: int | None = opt(S, "seed", "--seed", help="Random seed; same seed = same split."),
        keep_test: bool | None = opt(
            S, "keep_test", "--keep-test/--no-keep-test", help="Keep SRC/test/ as the test split."
        ),
        check_leaks: bool | None = opt(
            S, "check_leaks", "--check-leaks/--no-check-leaks", help="Fail on near duplicates across splits."
        ),
        link: str | None = opt(
            S, "link", "--link", help="hardlink | copy (a hard link falls back to a copy where impossible)."
        ),
        radius: int | None = opt(
            S, "radius", "--radius", help="Candidate radius in bits of each 64-bit perceptual hash (0-32)."
        ),
        max_residual: float | None = opt(
            S, "max_residual", "--max-residual", help="Largest residual, in grey levels, of a verified near duplicate."
        ),
        flips: bool | None = opt(S, "flips", "--flips/--no-flips", help="Mirrored copies join duplicate groups."),
        provenance: bool | None = opt(
            S,
            "provenance",
            "--provenance/--no-provenance",
            help="Keep each scrape provenance group (post, gallery, crosspost, URL) in one split.",
        ),
        engine: str | None = engine_opt(),
        ray_address: str | None = ray_address_opt(),
        config: Path | None = plain_opt(
            None, "--config", help="Run config YAML; its split: (and engine:) sections are used."
        ),
    ) -> None:
        """Split SRC into OUT/train, OUT/val, OUT/test, stratified by class; duplicate and provenance groups stay together."""  # noqa: E501 - typer's rich help keeps a docstring's line breaks: a paragraph is one line
        from imgclf.split import split_folder

        cfg = stage_config(
            SplitConfig,
            "split",
            config,
            ratios=_ratios(ratios),
            seed=seed,
            keep_test=keep_test,
            check_leaks=check_leaks,
            link=link,
            radius=radius,
            max_residual=max_residual,
            flips=flips,
            provenance=provenance,
        )
        with stage_executor(engine_config(config, engine, ray_address), [src]) as executor:
            split_folder(src, out, cfg, executor=executor)
