"""`imgclf run CONFIG`: every stage in order, each reading the previous stage's folder.

    source (dataset export | existing folder | reddit / web scrape) -> <data_dir>/raw
    clean    <data_dir>/raw        -> <data_dir>/clean
    prepare  <data_dir>/clean      -> <data_dir>/processed
    split    <data_dir>/processed  -> <data_dir>/split
    train    <data_dir>/split      -> <models_dir>/<run>
    evaluate <models_dir>/<run>    -> metrics.json, plots, report.html
    predict  a few test images (or `predict.images`) with the trained model

Stages left out of `stages:` are skipped; their output folder must then already exist. Every
stage resumes or rewrites deterministically, so rerunning the same config is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.config import RunConfig
from imgclf.errors import DataError
from imgclf.ui import console


@dataclass
class PipelineResult:
    """What `run_pipeline` produced: folders, the run directory, metrics, timings (seconds)."""

    folders: dict[str, Path] = field(default_factory=dict)
    run_dir: Path | None = None
    metrics: dict[str, Any] | None = None
    predictions: list[Any] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _acquire(cfg: RunConfig, raw: Path) -> None:
    """Fills `raw` from the configured source(s)."""
    src = cfg.source
    if src.dataset is not None:
        from imgclf.datasets import export_dataset

        export_dataset(
            src.dataset.name, raw, official_split=src.dataset.official_split,
            limit_per_class=src.dataset.limit_per_class,
        )
    for reddit in src.reddit:
        from imgclf.scrape.reddit import scrape_reddit

        scrape_reddit(reddit, raw, cfg.scrape)
    for web in src.web:
        from imgclf.scrape.web import scrape_web

        scrape_web(web, raw, cfg.scrape)


def sample_test_images(split_dir: Path, n: int = 3) -> list[str]:
    """Returns up to `n` test images, one per class in class order, for the closing prediction."""
    test = split_dir / "test"
    if not test.is_dir():
        return []
    picks: list[str] = []
    for cls in sorted(p for p in test.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        files = sorted(f for f in cls.iterdir() if f.is_file() and not f.name.startswith(("_", ".")))
        if files:
            picks.append(str(files[0]))
        if len(picks) >= n:
            break
    return picks


def run_pipeline(cfg: RunConfig, on_predictions: Callable[[list[Any]], None] | None = None) -> PipelineResult:
    """Runs the stages of `cfg.stages` in order.

    Args:
        cfg: RunConfig, validated (see `imgclf.config.load_run_config`).
        on_predictions: callable or None. Called with the predict stage's `Prediction`s as soon
            as they exist (the CLI prints them as a table).

    Returns:
        PipelineResult: stage folders, run directory, test metrics, predictions, and wall time
        per stage in seconds.

    Raises:
        ImgclfError: from any stage (missing folder, empty class, bad model name, ...).
    """
    result = PipelineResult()
    stages = list(cfg.stages)
    raw = Path(cfg.source.folder) if cfg.source.folder is not None else cfg.stage_dir("raw")
    clean, processed, split = cfg.stage_dir("clean"), cfg.stage_dir("processed"), cfg.stage_dir("split")
    result.folders = {"raw": raw, "clean": clean, "processed": processed, "split": split}
    run_dir = cfg.models_dir / (cfg.train.run_name or cfg.name)
    total = len(stages)

    def header(i: int, name: str, detail: str) -> float:
        console.rule(f"[bold]{i}/{total} {name}[/]  [dim]{detail}[/]", align="left")
        return time.perf_counter()

    for i, stage in enumerate(stages, start=1):
        if stage == "scrape":
            t = header(i, "source", str(raw))
            if cfg.source.folder is not None:
                if not raw.is_dir():
                    raise DataError(f"source folder not found: {raw}", "fix source.folder in the config")
                console.print(f"using existing folder {raw} as raw input")
            else:
                _acquire(cfg, raw)
        elif stage == "clean":
            t = header(i, "clean", f"{raw} -> {clean}")
            from imgclf.clean import clean_folder

            clean_folder(raw, clean, cfg.clean)
        elif stage == "prepare":
            t = header(i, "prepare", f"{clean} -> {processed}")
            from imgclf.prepare import prepare_folder

            prepare_folder(clean, processed, cfg.prepare)
        elif stage == "split":
            t = header(i, "split", f"{processed} -> {split}")
            from imgclf.split import split_folder

            split_folder(processed, split, cfg.split)
        elif stage == "train":
            t = header(i, "train", f"{cfg.train.model} on {split} -> {run_dir}")
            from imgclf.train import train

            result.run_dir = train(split, cfg.train, models_dir=cfg.models_dir, run_dir=run_dir)
        elif stage == "evaluate":
            t = header(i, "evaluate", f"{run_dir} on {cfg.evaluate.split}")
            from imgclf.evaluate import evaluate_run

            result.metrics = evaluate_run(
                run_dir, split=cfg.evaluate.split, data_dir=split, top_k=cfg.evaluate.top_k,
                batch_size=cfg.evaluate.batch_size, tta=cfg.evaluate.tta,
            )
        elif stage == "predict":
            images = list(cfg.predict.images) or sample_test_images(split)
            t = header(i, "predict", f"{len(images)} image(s) with {run_dir}")
            if images:
                from imgclf.predict import predict_inputs

                result.predictions = predict_inputs(
                    images, model=run_dir, top_k=cfg.predict.top_k, threshold=cfg.predict.threshold,
                    batch_size=cfg.predict.batch_size, tta=cfg.predict.tta,
                )
                if on_predictions is not None:
                    on_predictions(result.predictions)
        else:  # pragma: no cover - guarded by the config's Literal
            continue
        result.seconds[stage] = time.perf_counter() - t
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    console.rule("[bold]done[/]", align="left")
    tail = f"; test accuracy {result.metrics['accuracy']:.4f}" if result.metrics and "accuracy" in result.metrics else ""
    console.print(f"run: {cfg.name}: {timing}; total {sum(result.seconds.values()):.1f}s{tail}", soft_wrap=True)
    if result.run_dir is not None or "train" in stages:
        console.print(f"run directory: {run_dir}", soft_wrap=True)
    return result
