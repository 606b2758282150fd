"""`imgclf run CONFIG`: every stage in order, each reading the previous stage's folder.

    source (dataset export | existing folder | reddit / web scrape) -> <data_dir>/raw
    clean    <data_dir>/raw        -> <data_dir>/clean
    prepare  <data_dir>/clean      -> <data_dir>/processed
    split    <data_dir>/processed  -> <data_dir>/split
    train    <data_dir>/split      -> <models_dir>/<run>
    evaluate <models_dir>/<run>    -> metrics.json, predictions.csv, plots, report.html
    predict  a few test images (or `predict.images`) with the trained model

Several models (`train.models: [mlp, cnn, ...]`, or `imgclf run CONFIG --models mlp,cnn`) and
several seeds (`train.repeats: N`, `--repeats N`) make one run directory per model and seed,
all trained on the same split (the split's seed does not change), model `m` with seed
`train.seed + r` for r = 0..N-1:

    <models_dir>/<base>-<label>[-s<seed>]   one run each (`-s<seed>` only when N > 1)
    <models_dir>/<base>-compare/            the comparison (`imgclf.compare`), also printed

where `<base>` is `train.run_name` or `name` and `<label>` the entry's `name` or model. Each is
evaluated, then compared; the predict stage uses the best model's best run.

Stages left out of `stages:` are skipped; their output folder must then already exist. Every
stage resumes or rewrites deterministically, so rerunning the same config is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgclf.clean import clean_folder
from imgclf.compare import compare_runs
from imgclf.config import RunConfig, TrainConfig
from imgclf.datasets import export_dataset
from imgclf.errors import DataError
from imgclf.evaluate import evaluate_run
from imgclf.predict import predict_inputs
from imgclf.prepare import prepare_folder
from imgclf.records.run import load_run_info, save_run_info
from imgclf.scrape.reddit import scrape_reddit
from imgclf.scrape.web import scrape_web
from imgclf.split import split_folder
from imgclf.track import check_backend, pipeline_params
from imgclf.train import train
from imgclf.ui import console


@dataclass
class PipelineResult:
    """What `run_pipeline` produced: folders, run directories, metrics, timings (seconds).

    Attributes:
        folders: dict stage -> folder (`raw`, `clean`, `processed`, `split`).
        run_dir: Path or None. The run directory (several models: the best model's best run).
        metrics: dict or None. `metrics.json` of `run_dir`.
        predictions: list of `imgclf.predict.Prediction` of the predict stage.
        seconds: dict stage -> wall time in seconds.
        run_dirs: list of Path. Every run directory trained or evaluated, in plan order.
        comparison: `imgclf.compare.Comparison` or None (several models or seeds only).
    """

    folders: dict[str, Path] = field(default_factory=dict)
    run_dir: Path | None = None
    metrics: dict[str, Any] | None = None
    predictions: list[Any] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    run_dirs: list[Path] = field(default_factory=list)
    comparison: Any = None


@dataclass(frozen=True)
class PlannedRun:
    """One training run of `imgclf run`: which configuration, with which seed, into which folder.

    Attributes:
        label: str. The model's name in the comparison (`train.models` entry name, else model).
        config: TrainConfig. Its resolved training configuration (seed and run name set).
        run_dir: Path. Its run directory.
        named: bool. The label was given by the entry's `name` (recorded in `run.json`).
    """

    label: str
    config: TrainConfig
    run_dir: Path
    named: bool = False


def is_multi(cfg: RunConfig) -> bool:
    """True when the config trains several models or several seeds (and so compares them)."""
    return bool(cfg.train.models) or cfg.train.repeats > 1


def plan_runs(cfg: RunConfig) -> list[PlannedRun]:
    """Every training run `cfg` asks for, in order: each model, then each seed.

    One model, one seed: `<models_dir>/<train.run_name or name>`, the configuration as given.
    Otherwise, for each `(label, config)` of `cfg.train.model_configs()` and r in
    `range(train.repeats)`: seed `config.seed + r`, folder `<base>-<label>` plus `-s<seed>` when
    `repeats > 1`. A pure function: no folder is touched.

    Args:
        cfg: RunConfig.

    Returns:
        list of PlannedRun.
    """
    base = cfg.train.run_name or cfg.name
    if not is_multi(cfg):
        return [PlannedRun(cfg.train.model, cfg.train, cfg.models_dir / base)]
    out = []
    names = {e.label for e in cfg.train.models if e.name}
    for label, tc in cfg.train.model_configs():
        for r in range(cfg.train.repeats):
            seed = tc.seed + r
            run_name = f"{base}-{label}" + (f"-s{seed}" if cfg.train.repeats > 1 else "")
            values = {**tc.model_dump(), "seed": seed, "run_name": run_name}
            out.append(PlannedRun(label, TrainConfig.model_validate(values), cfg.models_dir / run_name, label in names))
    return out


def comparison_dir(cfg: RunConfig) -> Path:
    """Folder of the comparison `run` writes: `<models_dir>/<train.run_name or name>-compare`."""
    return cfg.models_dir / f"{cfg.train.run_name or cfg.name}-compare"


def _acquire(cfg: RunConfig, raw: Path) -> None:
    """Fills `raw` from the configured source(s)."""
    src = cfg.source
    if src.dataset is not None:
        export_dataset(
            src.dataset.name,
            raw,
            official_split=src.dataset.official_split,
            limit_per_class=src.dataset.limit_per_class,
        )
    for reddit in src.reddit:
        scrape_reddit(reddit, raw, cfg.scrape)
    for web in src.web:
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


@dataclass
class _Pipeline:
    """One `run_pipeline` call: the config, its planned runs, and what the stages made so far."""

    cfg: RunConfig
    planned: list[PlannedRun]
    result: PipelineResult
    on_predictions: Callable[[list[Any]], None] | None = None
    on_comparison: Callable[[Any], None] | None = None
    run_dir: Path = Path()  # the run the later stages use (several models: the best one after evaluate)
    started: float = 0.0

    @property
    def multi(self) -> bool:
        return is_multi(self.cfg)

    def folder(self, stage: str) -> Path:
        """The folder of `stage`: raw, clean, processed or split."""
        return self.result.folders[stage]

    def header(self, index: int, name: str, detail: str) -> None:
        """Prints the stage's rule `i/n name  detail` and starts its clock."""
        total = len(self.cfg.stages)
        console.rule(f"[bold]{index}/{total} {name}[/]  [dim]{detail}[/]", align="left")
        self.started = time.perf_counter()


def _source_stage(pipe: _Pipeline, i: int) -> None:
    raw = pipe.folder("raw")
    pipe.header(i, "source", str(raw))
    if pipe.cfg.source.folder is not None:
        if not raw.is_dir():
            raise DataError(f"source folder not found: {raw}", "fix source.folder in the config")
        console.print(f"using existing folder {raw} as raw input")
    else:
        _acquire(pipe.cfg, raw)


def _clean_stage(pipe: _Pipeline, i: int) -> None:
    pipe.header(i, "clean", f"{pipe.folder('raw')} -> {pipe.folder('clean')}")
    clean_folder(pipe.folder("raw"), pipe.folder("clean"), pipe.cfg.clean)


def _prepare_stage(pipe: _Pipeline, i: int) -> None:
    pipe.header(i, "prepare", f"{pipe.folder('clean')} -> {pipe.folder('processed')}")
    prepare_folder(pipe.folder("clean"), pipe.folder("processed"), pipe.cfg.prepare)


def _split_stage(pipe: _Pipeline, i: int) -> None:
    pipe.header(i, "split", f"{pipe.folder('processed')} -> {pipe.folder('split')}")
    split_folder(pipe.folder("processed"), pipe.folder("split"), pipe.cfg.split)


def _train_stage(pipe: _Pipeline, i: int) -> None:
    cfg, planned, split = pipe.cfg, pipe.planned, pipe.folder("split")
    if pipe.multi:
        what = f"{len(planned)} runs ({', '.join(dict.fromkeys(p.label for p in planned))})"
    else:
        what = cfg.train.model
    pipe.header(i, "train", f"{what} on {split} -> {pipe.run_dir if not pipe.multi else cfg.models_dir}")
    for j, p in enumerate(planned, start=1):
        if pipe.multi:
            console.rule(
                f"[bold]train {j}/{len(planned)}[/] {p.label}, seed {p.config.seed} -> {p.run_dir}",
                align="left",
                characters="·",
            )
        pipe.result.run_dir = train(
            split,
            p.config,
            models_dir=cfg.models_dir,
            run_dir=p.run_dir,
            track=cfg.track,
            track_params=pipeline_params(cfg),
        )
        if p.named:
            info = load_run_info(p.run_dir)
            info.label = p.label
            save_run_info(p.run_dir, info)


def _evaluate_stage(pipe: _Pipeline, i: int) -> None:
    cfg, planned, result, e = pipe.cfg, pipe.planned, pipe.result, pipe.cfg.evaluate
    pipe.header(i, "evaluate", f"{pipe.run_dir if not pipe.multi else f'{len(planned)} runs'} on {e.split}")
    by_run: dict[Path, dict[str, Any]] = {}
    for p in planned:
        result.metrics = by_run[p.run_dir] = evaluate_run(
            p.run_dir,
            split=e.split,
            data_dir=pipe.folder("split"),
            top_k=e.top_k,
            batch_size=e.batch_size,
            tta=e.tta,
            bootstrap_resamples=e.bootstrap_resamples,
            ci_level=e.ci_level,
            bootstrap_seed=e.bootstrap_seed,
            leak_audit=e.leak_audit,
            track=cfg.track,
        )
    if pipe.multi:
        compare_cfg = cfg.compare.model_copy(update={"split": e.split})
        result.comparison = compare_runs([p.run_dir for p in planned], comparison_dir(cfg), compare_cfg)
        pipe.run_dir = result.run_dir = result.comparison.best_run
        result.metrics = by_run[pipe.run_dir]
        if pipe.on_comparison is not None:
            pipe.on_comparison(result.comparison)


def _predict_stage(pipe: _Pipeline, i: int) -> None:
    cfg = pipe.cfg
    images = list(cfg.predict.images) or sample_test_images(pipe.folder("split"))
    pipe.header(i, "predict", f"{len(images)} image(s) with {pipe.run_dir}")
    if images:
        pipe.result.predictions = predict_inputs(
            images,
            model=pipe.run_dir,
            top_k=cfg.predict.top_k,
            threshold=cfg.predict.threshold,
            batch_size=cfg.predict.batch_size,
            tta=cfg.predict.tta,
        )
        if pipe.on_predictions is not None:
            pipe.on_predictions(pipe.result.predictions)


#: What each stage name of `RunConfig.stages` runs, given the pipeline and the stage's position.
_STAGES: dict[str, Callable[[_Pipeline, int], None]] = {
    "scrape": _source_stage,
    "clean": _clean_stage,
    "prepare": _prepare_stage,
    "split": _split_stage,
    "train": _train_stage,
    "evaluate": _evaluate_stage,
    "predict": _predict_stage,
}


def _print_done(pipe: _Pipeline) -> None:
    """The closing lines: time per stage, the test accuracy, the run directories."""
    cfg, result = pipe.cfg, pipe.result
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    console.rule("[bold]done[/]", align="left")
    metrics = result.metrics
    tail = f"; test accuracy {metrics['accuracy']:.4f}" if metrics and "accuracy" in metrics else ""
    if result.comparison is not None and metrics is not None:
        tail = f"; best {result.comparison.best.label}, test accuracy {metrics['accuracy']:.4f}"
    console.print(f"run: {cfg.name}: {timing}; total {sum(result.seconds.values()):.1f}s{tail}", soft_wrap=True)
    if pipe.multi and ("train" in cfg.stages or "evaluate" in cfg.stages):
        console.print(f"run directories: {', '.join(str(p.run_dir) for p in pipe.planned)}", soft_wrap=True)
        if result.comparison is not None:
            console.print(f"comparison: {result.comparison.out}", soft_wrap=True)
    elif result.run_dir is not None or "train" in cfg.stages:
        console.print(f"run directory: {pipe.run_dir}", soft_wrap=True)


def run_pipeline(
    cfg: RunConfig,
    on_predictions: Callable[[list[Any]], None] | None = None,
    on_comparison: Callable[[Any], None] | None = None,
) -> PipelineResult:
    """Runs the stages of `cfg.stages` in order.

    Args:
        cfg: RunConfig, validated (see `imgclf.config.load_run_config`).
        on_predictions: callable or None. Called with the predict stage's `Prediction`s as soon
            as they exist (the CLI prints them as a table).
        on_comparison: callable or None. Called with the `imgclf.compare.Comparison` as soon as
            it is written (several models or seeds, with the evaluate stage).

    Returns:
        PipelineResult: stage folders, run directories, test metrics, the comparison,
        predictions, and wall time per stage in seconds.

    With `cfg.track` (`track: {backend: mlflow}`), each training run is one tracker run that
    its evaluation logs into too (`imgclf.track`); the config's `name`, `source`, `clean`,
    `prepare` and `split` sections are logged as params beside `train.*`.

    Raises:
        ImgclfError: from any stage (missing folder, empty class, bad model name, ...). Model
            names are checked before the first stage when training; the tracker's package too.
    """
    check_backend(cfg.track)  # a missing tracker package fails now, not after the first stages
    raw = Path(cfg.source.folder) if cfg.source.folder is not None else cfg.stage_dir("raw")
    planned = plan_runs(cfg)
    result = PipelineResult(
        folders={
            "raw": raw,
            "clean": cfg.stage_dir("clean"),
            "processed": cfg.stage_dir("processed"),
            "split": cfg.stage_dir("split"),
        },
        run_dirs=[p.run_dir for p in planned],
    )
    pipe = _Pipeline(cfg, planned, result, on_predictions, on_comparison, run_dir=planned[0].run_dir)
    if "train" in cfg.stages and pipe.multi:  # an unknown name fails now, not after the first models trained
        from imgclf.models import get_spec  # imports Keras

        for p in planned:
            get_spec(p.config.model)
    for i, stage in enumerate(cfg.stages, start=1):
        _STAGES[stage](pipe, i)
        result.seconds[stage] = time.perf_counter() - pipe.started
    _print_done(pipe)
    return result
