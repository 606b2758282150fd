"""`imgclf train`: a registry model trained on DATA/train, validated on DATA/val, as a run folder.

Thin: resolve the config (a YAML `train:` section, then the options that were given), call
`imgclf.train.train`, print the run folder. With `--engine ray --num-workers N` this process
launches N workers on a Ray cluster instead (`imgclf.engine.launch`), each running this same
command with the options given here (but the three launch options) and `--strategy multiworker`.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from imgclf.cli.engine_options import engine_config, engine_opt, ray_address_opt
from imgclf.cli.options import opt, plain_opt
from imgclf.config import TrackConfig, TrainConfig, stage_config
from imgclf.errors import ConfigError


def _parse_fine_tune_layers(value: str | None) -> int | str | None:
    if value is None or value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--fine-tune-layers must be an integer or 'all', got {value!r}") from None


# The options of `imgclf train`, in the order --help shows them; each stage option defaults to
# None (a YAML value stays) and its help shows the TrainConfig field's default.
_T = TrainConfig
_DATA = plain_opt(
    Path("data/split"), "--data", "-d", help="Split folder holding train/ and val/ (from `imgclf split`)."
)
_MODEL = opt(_T, "model", "--model", "-m", help="Registry name, see `imgclf models`.")
_WEIGHTS = opt(_T, "weights", "--weights", help="none | imagenet | PATH to a weights file.")
_EPOCHS = opt(_T, "epochs", "--epochs", "-e", help="Epochs (phase 1 for pretrained models).")
_BATCH_SIZE = opt(_T, "batch_size", "--batch-size", "-b", help="Global batch size.")
_LEARNING_RATE = opt(_T, "learning_rate", "--learning-rate", "--lr", help="Peak learning rate.")
_OPTIMIZER = opt(_T, "optimizer", "--optimizer", help="adam | adamw | sgd.")
_SCHEDULE = opt(_T, "schedule", "--schedule", help="plateau (ReduceLROnPlateau) | cosine (warmup + cosine decay).")
_DROPOUT = opt(_T, "dropout", "--dropout", help="Dropout before the classifier; none = the model's own.")
_LABEL_SMOOTHING = opt(_T, "label_smoothing", "--label-smoothing", help="Label smoothing in [0, 1).")
_CLASS_WEIGHTS = opt(_T, "class_weights", "--class-weights/--no-class-weights", help="Balanced class weights.")
_IMAGE_SIZE = opt(_T, "image_size", "--image-size", help="Input side in pixels; other sizes are resized.")
_RESIZE = opt(_T, "resize", "--resize", help="center_crop | pad | squish: how images of another size become input.")
_FINE_TUNE_LAYERS = opt(
    _T,
    "fine_tune_layers",
    "--fine-tune-layers",
    help="Pretrained: top backbone layers unfrozen in phase 2, or 'all'.",
)
_FINE_TUNE_EPOCHS = opt(
    _T, "fine_tune_epochs", "--fine-tune-epochs", help="Pretrained: phase-2 epochs, 0 = as many as --epochs."
)
_SEED = opt(_T, "seed", "--seed", help="Seed for Python, NumPy and TensorFlow.")
_DETERMINISTIC = opt(
    _T, "deterministic", "--deterministic/--no-deterministic", help="TensorFlow op determinism (slower)."
)
_MIXED_PRECISION = opt(
    _T,
    "mixed_precision",
    "--mixed-precision/--no-mixed-precision",
    help="float16 (GPU) / bfloat16 (CPU) compute.",
)
_JIT = opt(_T, "jit", "--jit/--no-jit", help="XLA-compile the train step.")
_STRATEGY = opt(_T, "strategy", "--strategy", help="default | mirrored | multiworker (tf.distribute).")
_WORKER_TIMEOUT = opt(
    _T, "worker_timeout", "--worker-timeout", help="multiworker: seconds without heartbeat before a worker is lost."
)
_WORKER_START_TIMEOUT = opt(
    _T, "worker_start_timeout", "--worker-start-timeout", help="multiworker: seconds the workers wait for each other."
)
_CACHE = opt(_T, "cache", "--cache/--no-cache", help="Cache decoded images in memory; none = when they fit.")
_RUN_NAME = opt(_T, "run_name", "--run-name", help="Run folder name under --models-dir; none = <model>-<time>.")
_RUN_DIR = plain_opt(
    None,
    "--run-dir",
    help="Run folder; an existing one is resumed / continued.",
    default_text="models-dir/run-name",
)
_MODELS_DIR = plain_opt(Path("models"), "--models-dir", help="Parent of new run folders.")
_CONFIG = plain_opt(None, "--config", "-c", help="Run config YAML; its train: section is used.")
_ENGINE = engine_opt()
_RAY_ADDRESS = ray_address_opt()
_NUM_WORKERS = plain_opt(
    None,
    "--num-workers",
    help="With --engine ray: training workers (1 CPU each, spread over the nodes; docs/scale.md).",
    default_text="none: train in this process",
)
#: The options of the launcher itself, not passed on to the workers it starts.
_LAUNCH_ONLY = ("engine", "ray_address", "num_workers", "strategy")

# Experiment tracking, shared by `train`, `evaluate` and `run` (the `track:` section of a config).
TRACK = opt(
    TrackConfig,
    "backend",
    "--track",
    help="Experiment tracker: none | mlflow (pip install 'imgclf\\[mlflow]'); see docs/tracking.md.",
)
TRACK_URI = opt(
    TrackConfig, "uri", "--track-uri", help="Tracking URI, e.g. sqlite:///mlflow.db or http://127.0.0.1:5000."
)
TRACK_EXPERIMENT = opt(TrackConfig, "experiment", "--track-experiment", help="Experiment name of new tracker runs.")


def track_config(config: Path | None, backend: str | None, uri: str | None, experiment: str | None) -> TrackConfig:
    """The `TrackConfig` of a command: the config file's `track:` section, then the options.

    Args:
        config: Path or None. A run config YAML.
        backend: str or None. `--track`.
        uri: str or None. `--track-uri`.
        experiment: str or None. `--track-experiment`.

    Returns:
        TrackConfig.

    Raises:
        ConfigError: an invalid value, or a backend whose package is not installed (one line
            naming the install command), before any work starts.
    """
    from imgclf.track import check_backend

    cfg: TrackConfig = stage_config(TrackConfig, "track", config, backend=backend, uri=uri, experiment=experiment)
    check_backend(cfg)
    return cfg


def _check_one_run(cfg: TrainConfig, config: Path | None) -> None:
    """Refuses a config that trains several runs; quiets TensorFlow's C++ log for multiworker."""
    if cfg.models or cfg.repeats > 1:
        raise ConfigError(
            f"{config}: train.models / train.repeats train several runs, which `imgclf train` does not do",
            f"use `imgclf run {config}` (it trains each model, evaluates it and writes the comparison)",
        )
    if cfg.strategy == "multiworker":  # a lost worker is one `error:` line, not pages of C++ log
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _check_launch(engine: str | None, num_workers: int | None) -> bool:
    """True for `--engine ray --num-workers N`; a one-line error for a half-given pair or an
    unknown engine. Only the option counts: a config's `engine:` section is the data stages'."""
    if engine_config(None, engine, None).name != "ray":
        if num_workers is not None:
            raise ConfigError(
                f"--num-workers {num_workers} needs --engine ray (it places the workers on a Ray cluster)",
                "add --engine ray [--ray-address HOST:PORT], or leave --num-workers out to train in this process",
            )
        return False
    if num_workers is None or num_workers < 1:
        got = "missing" if num_workers is None else f"got {num_workers}"
        raise ConfigError(
            f"--engine ray trains with --num-workers N workers, N >= 1 ({got})",
            "e.g. --engine ray --num-workers 2, or --engine local to train in this process",
        )
    return True


def _worker_args(ctx: typer.Context) -> list[str]:
    """The options given to this command, as arguments for a worker (the launch options left out)."""
    out: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if name in _LAUNCH_ONLY or source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[name]
        if getattr(param, "is_flag", False):
            flags = param.opts if value else param.secondary_opts
            out += flags[:1]
        elif value is not None:
            out += [param.opts[0], str(value)]
    return out


def _echo_err(line: str) -> None:
    """Prints a worker's line on stderr."""
    typer.echo(line, err=True)


def _launch(
    ctx: typer.Context,
    cfg: TrainConfig,
    data: Path,
    run_dir: Path | None,
    models_dir: Path,
    address: str | None,
    n: int,
) -> None:
    """`imgclf train` on `n` Ray workers (`imgclf.engine.launch`); prints the run folder."""
    from datetime import datetime

    from imgclf.engine.launch import launch_training
    from imgclf.train import check_split_folders

    check_split_folders(data)  # before a cluster is started for nothing (the driver sees what the workers see)
    args = _worker_args(ctx)
    if run_dir is None and cfg.run_name is None:  # one name for every worker, and for the rerun
        name = f"{cfg.model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        args += ["--run-name", name]
        run_dir = models_dir / name
        hint = f"rerun the same command with --run-dir {run_dir}: training resumes from its last completed epoch"
    else:
        run_dir = run_dir if run_dir is not None else models_dir / str(cfg.run_name)
        hint = f"rerun the same command: training resumes from the last completed epoch saved in {run_dir}"
    out = launch_training(
        args, n, address=address, read=[data], write=[run_dir.parent], echo=_echo_err, resume_hint=hint
    )
    for line in out:
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Adds `train` to `app`."""

    @app.command("train")
    def train_cmd(
        ctx: typer.Context,
        data: Path = _DATA,
        model: str | None = _MODEL,
        weights: str | None = _WEIGHTS,
        epochs: int | None = _EPOCHS,
        batch_size: int | None = _BATCH_SIZE,
        learning_rate: float | None = _LEARNING_RATE,
        optimizer: str | None = _OPTIMIZER,
        schedule: str | None = _SCHEDULE,
        dropout: float | None = _DROPOUT,
        label_smoothing: float | None = _LABEL_SMOOTHING,
        class_weights: bool | None = _CLASS_WEIGHTS,
        image_size: int | None = _IMAGE_SIZE,
        resize: str | None = _RESIZE,
        fine_tune_layers: str | None = _FINE_TUNE_LAYERS,
        fine_tune_epochs: int | None = _FINE_TUNE_EPOCHS,
        seed: int | None = _SEED,
        deterministic: bool | None = _DETERMINISTIC,
        mixed_precision: bool | None = _MIXED_PRECISION,
        jit: bool | None = _JIT,
        strategy: str | None = _STRATEGY,
        worker_timeout: int | None = _WORKER_TIMEOUT,
        worker_start_timeout: int | None = _WORKER_START_TIMEOUT,
        cache: bool | None = _CACHE,
        run_name: str | None = _RUN_NAME,
        run_dir: Path | None = _RUN_DIR,
        models_dir: Path = _MODELS_DIR,
        config: Path | None = _CONFIG,
        track: str | None = TRACK,
        track_uri: str | None = TRACK_URI,
        track_experiment: str | None = TRACK_EXPERIMENT,
        engine: str | None = _ENGINE,
        ray_address: str | None = _RAY_ADDRESS,
        num_workers: int | None = _NUM_WORKERS,
    ) -> None:
        """Train a model on DATA/train, validate on DATA/val; writes a run folder (best.keras, history, plots).

        Rerun with the same --run-dir (or --run-name) to resume after an interruption, or with a
        higher --epochs to continue a finished run.

        With --track mlflow the run is also an MLflow run; a resumed run logs into the same one.

        With --engine ray --num-workers N, N workers placed on a Ray cluster train the run
        (--strategy multiworker, each with its TF_CONFIG); rerun the same command to resume.
        """
        launch = _check_launch(engine, num_workers)
        # every option named like a TrainConfig field fills it (None: the YAML's value, else the default)
        options = {k: v for k, v in ctx.params.items() if k in TrainConfig.model_fields}
        options["fine_tune_layers"] = _parse_fine_tune_layers(fine_tune_layers)
        cfg = stage_config(TrainConfig, "train", config, **options)
        _check_one_run(cfg, config)
        tracking = track_config(config, track, track_uri, track_experiment)
        if launch:
            _launch(ctx, cfg, data, run_dir, models_dir, ray_address, int(num_workers or 1))
            return
        from imgclf.runtime import import_tensorflow_quietly
        from imgclf.train import train

        import_tensorflow_quietly()
        out = train(data, cfg, models_dir=models_dir, run_dir=run_dir, track=tracking)
        typer.echo(str(out))
