"""The MLflow backend of `imgclf.track`: one MLflow run per imgclf training run.

Imported only with `--track mlflow` (`imgclf.track.open_tracker`); MLflow itself is imported
inside the functions, as every heavy library of imgclf.

- Tracking URI (`resolve_uri`): `track.uri`, else `MLFLOW_TRACKING_URI`, else the URI the run
  already logs to (`run.json` -> `tracking`), else MLflow's own default (`sqlite:///mlflow.db`
  since MLflow 3.7). A relative SQLite or file path is made absolute, so `evaluate` finds the
  store from any folder, and an experiment imgclf makes in a SQLite store keeps its artifacts
  in `mlruns/<experiment>/` beside the database (`artifact_root`), not in the folder a command
  ran in.
- An HTTP server is checked once up front with a TCP connection (`CONNECT_TIMEOUT` seconds):
  an unreachable one costs seconds, not MLflow's minutes of retries. Retries of later requests
  are bounded too (`ENV_DEFAULTS`, MLflow's own environment variables, unless already set).
- Everything goes through `mlflow.MlflowClient` with an explicit run id (no fluent active run,
  nothing global), except the model: `mlflow.models.Model.log(..., run_id=...)` reads the global
  tracking URI, which `_tracking_uri` sets for the call and puts back.
- The model is a `mlflow.pyfunc` model from code (`imgclf/track/pyfunc_model.py`) whose
  artifacts are the run's `best.keras` and `run.json`, and whose code is a copy of the `imgclf`
  package; it predicts with `imgclf.runtime.load_model`, the loader of `imgclf predict`.
  `mlflow.keras` is not used: its loader knows neither imgclf's own layers nor `safe_mode`, and
  a pyfunc around imgclf's loader gives exactly `imgclf predict`'s probabilities.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from imgclf.config import TrackConfig
from imgclf.records.run import BEST_MODEL, RUN_FILE, RunInfo, TrackingRef

#: MLflow settings imgclf changes (MLflow's own environment variables; a value already set wins):
#: HTTP retries bounded to 2 with backoff 1 s, 2 s, and 30 s per request instead of 7 retries
#: and 120 s, so a tracking server that dies mid-run holds training for seconds, once; no
#: artifact progress bars between imgclf's own lines; no run links on stdout (which `--json`
#: output owns: `open_tracker` prints the link on stderr).
ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # stdout is for --json; imgclf prints the link on stderr
}

#: Seconds the up-front TCP check of an HTTP tracking server waits.
CONNECT_TIMEOUT = 3.0

#: Experiment of new runs when neither `track.experiment` nor `MLFLOW_EXPERIMENT_NAME` is set.
DEFAULT_EXPERIMENT = "imgclf"

#: Name of the logged model in its run.
MODEL_NAME = "model"

#: The model's code file (MLflow "models from code").
PYFUNC_MODEL_FILE = Path(__file__).with_name("pyfunc_model.py")

#: Distributions the model needs to load and predict, pinned to the installed versions.
MODEL_REQUIREMENTS = (
    "mlflow",
    "tensorflow",
    "keras",
    "numpy",
    "pillow",
    "pydantic",
    "rich",
    "opencv-python-headless",
    "scikit-learn",
    "scipy",
    "matplotlib",
    "requests",
)

#: Most entries MLflow accepts in one `log_batch` (params / tags, metrics).
_BATCH_PARAMS, _BATCH_METRICS = 100, 1000


# ------------------------------------------------------------------------------- the store
def absolute_uri(uri: str) -> str:
    """`uri` with a relative SQLite or file path made absolute (`sqlite:///mlflow.db` ->
    `sqlite:////home/me/mlflow.db`); other URIs unchanged."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path, sep, query = uri[len("sqlite:///") :].partition("?")
        if path and path != ":memory:":
            return f"sqlite:///{Path(path).resolve()}" + (sep + query if sep else "")
        return uri
    parsed = urlparse(uri)
    if parsed.scheme == "":
        return Path(uri).resolve().as_uri()
    if parsed.scheme == "file" and not parsed.netloc and not uri.startswith("file:/"):
        return Path(uri[len("file:") :]).resolve().as_uri()
    return uri


def resolve_uri(uri: str | None, stored: TrackingRef | None) -> str:
    """The tracking URI a run logs to (see the module docstring for the order).

    Args:
        uri: str or None. `track.uri`.
        stored: TrackingRef or None. `run.json` -> `tracking`.

    Returns:
        str, absolute for local stores.
    """
    chosen = (
        uri or os.environ.get("MLFLOW_TRACKING_URI") or (stored.uri if stored and stored.backend == "mlflow" else None)
    )
    if not chosen:
        import mlflow

        chosen = mlflow.get_tracking_uri()
    return absolute_uri(str(chosen))


def check_reachable(uri: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Opens (and closes) a TCP connection to an `http(s)://` tracking server.

    Args:
        uri: str. Tracking URI; other schemes are not checked.
        timeout: float, default `CONNECT_TIMEOUT`. Seconds.

    Raises:
        ConnectionError: the server cannot be reached, naming it.
    """
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"MLflow tracking server {uri} cannot be reached ({type(exc).__name__}: {exc})") from None


def _quiet_mlflow_logs() -> None:
    """MLflow's INFO lines (database set-up, model validation) would interleave imgclf's
    output. Called after `import mlflow`, which configures its loggers."""
    import logging

    import mlflow  # noqa: F401  (sets up MLflow's loggers, which this then quiets)

    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


@contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to `uri` for the block, then put back (with the
    `MLFLOW_TRACKING_URI` environment variable, which `mlflow.set_tracking_uri` also sets)."""
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    explicit = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(explicit)  # type: ignore[arg-type]  # None unsets it (MLflow's own code path)
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


def artifact_root(uri: str, experiment: str) -> str | None:
    """Where a new experiment of a SQLite store keeps its artifacts: `mlruns/<experiment>/`
    beside the database file (MLflow's own default is `./mlruns/<id>` of whatever folder the
    command runs in); None for other stores (their server or MLflow decides).

    Args:
        uri: str. Tracking URI, absolute (`absolute_uri`).
        experiment: str. The experiment's name (characters other than letters, digits, `.`,
            `_` and `-` become `_` in the folder name).

    Returns:
        str (a `file://` URI) or None.
    """
    if not uri.startswith("sqlite:////"):
        return None
    database = Path(uri[len("sqlite:///") :].partition("?")[0])
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
    return (database.parent / "mlruns" / folder).as_uri()


def _experiment_id(client: Any, name: str | None, uri: str) -> str:
    """The id of experiment `name` (else `MLFLOW_EXPERIMENT_NAME`, else "imgclf"), made if missing."""
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return str(client.create_experiment(name, artifact_location=artifact_root(uri, name)))
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def _existing_run(client: Any, stored: TrackingRef | None) -> Any:
    """The MLflow run `run.json` names, if this store has it (and it is not deleted)."""
    if stored is None or stored.backend != "mlflow":
        return None
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(stored.run_id)
    except MlflowException:
        return None
    return None if run.info.lifecycle_stage == "deleted" else run


# ------------------------------------------------------------------------------- the model
def model_requirements() -> list[str]:
    """`MODEL_REQUIREMENTS` pinned to the installed versions (those not installed left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in MODEL_REQUIREMENTS:
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return out


def model_signature(info: RunInfo) -> Any:
    """The model's signature: uint8 `(-1, size, size, 3)` (raw RGB in [0, 255], as
    `imgclf.inputs.load_image` makes them) -> float32 `(-1, num_classes)` probabilities.
    Unnamed tensors: `predict` takes and returns plain arrays, in Python and when served."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    size = info.input_spec.size
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, size, size, 3))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, info.num_classes))]),
    )


def input_example(info: RunInfo) -> np.ndarray:
    """One validation image of the run as model input, `(1, size, size, 3)` uint8; a grey image
    when the split folder is gone."""
    from imgclf.errors import ImgclfError
    from imgclf.inputs import list_images, load_image

    size = info.input_spec.size
    if info.data_dir:
        for split in ("val", "train", "test"):
            folder = Path(info.data_dir) / split
            if not folder.is_dir():
                continue
            for entry in list_images(folder, class_names=info.class_names, layout="classes").entries[:5]:
                try:
                    return load_image(entry.path, info.input_spec)[None]
                except ImgclfError:
                    continue
    return np.full((1, size, size, 3), 128, np.uint8)


def model_metadata(info: RunInfo, run_dir: Path) -> dict[str, Any]:
    """What the model's `MLmodel` file records beside the signature: classes, input spec, run."""
    from imgclf import __version__

    return {
        "imgclf_version": __version__,
        "run": run_dir.name,
        "model": info.model,
        "class_names": list(info.class_names),
        "input_spec": info.input_spec.model_dump(mode="json"),
        "input": "raw RGB uint8 (batch, size, size, 3) in [0, 255], made by imgclf.inputs.load_image",
        "output": "class probabilities float32 (batch, num_classes), columns in class_names order",
    }


def stage_model(run_dir: Path, dest: Path) -> tuple[Path, Path]:
    """Copies what the model needs into `dest`: `run/` (`best.keras`, `run.json`) and
    `code/imgclf/` (the package, without caches); returns both folders."""
    import imgclf

    run = dest / "run"
    run.mkdir(parents=True)
    for name in (BEST_MODEL, RUN_FILE):
        shutil.copy2(run_dir / name, run / name)
    code = dest / "code" / "imgclf"
    shutil.copytree(Path(imgclf.__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return run, code


# ----------------------------------------------------------------------------- the backend
class MlflowBackend:
    """One MLflow run, through `mlflow.MlflowClient` (a `imgclf.track.TrackingBackend`).

    Args:
        client: mlflow.MlflowClient. Bound to `ref.uri`.
        ref: TrackingRef. The run.
        created: bool. The run was made now (False: reopened).
    """

    def __init__(self, client: Any, ref: TrackingRef, created: bool):
        self.client = client
        self.ref = ref
        self.created = created

    @property
    def url(self) -> str | None:
        """The run's page in the MLflow UI, for a tracking server (`http(s)://`); else None."""
        if urlparse(self.ref.uri).scheme not in ("http", "https"):
            return None
        return f"{self.ref.uri.rstrip('/')}/#/experiments/{self.ref.experiment_id}/runs/{self.ref.run_id}"

    @classmethod
    def open(cls, cfg: TrackConfig, run_name: str, stored: TrackingRef | None) -> MlflowBackend:
        """Reopens the MLflow run `stored` names when the store has it, else makes one.

        Args:
            cfg: TrackConfig. `uri` and `experiment`.
            run_name: str. Name of a new MLflow run (the run folder's name).
            stored: TrackingRef or None. `run.json` -> `tracking`.

        Returns:
            MlflowBackend, its run RUNNING.

        Raises:
            ConnectionError: an HTTP tracking server cannot be reached.
            mlflow.exceptions.MlflowException: the store refuses (bad URI, permissions...).
        """
        uri = resolve_uri(cfg.uri, stored)
        check_reachable(uri)
        for key, value in ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
        _quiet_mlflow_logs()
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        run = _existing_run(client, stored)
        if run is not None:
            client.update_run(run.info.run_id, status="RUNNING")
            model_uri = stored.model_uri if stored is not None else None
        else:
            tags = {"mlflow.source.name": "imgclf", "mlflow.source.type": "LOCAL"}
            run = client.create_run(_experiment_id(client, cfg.experiment, uri), run_name=run_name, tags=tags)
            model_uri = None
        ref = TrackingRef(
            backend="mlflow",
            uri=uri,
            run_id=run.info.run_id,
            experiment_id=str(run.info.experiment_id),
            model_uri=model_uri,
        )
        return cls(client, ref, created=stored is None or run.info.run_id != stored.run_id)

    def log_params(self, params: Mapping[str, str]) -> None:
        """Logs the params the run does not have yet; a changed value goes to the tag
        `param.<key>` (MLflow params are write-once)."""
        from mlflow.entities import Param, RunTag

        existing = self.client.get_run(self.ref.run_id).data.params
        new = [Param(k, v) for k, v in params.items() if k not in existing]
        changed = [RunTag(f"param.{k}", v) for k, v in params.items() if k in existing and existing[k] != v]
        for i in range(0, len(new), _BATCH_PARAMS):
            self.client.log_batch(self.ref.run_id, params=new[i : i + _BATCH_PARAMS])
        for i in range(0, len(changed), _BATCH_PARAMS):
            self.client.log_batch(self.ref.run_id, tags=changed[i : i + _BATCH_PARAMS])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Sets tags, in batches."""
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in tags.items()]
        for i in range(0, len(items), _BATCH_PARAMS):
            self.client.log_batch(self.ref.run_id, tags=items[i : i + _BATCH_PARAMS])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Logs metrics at `step`, one timestamp for all."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), _BATCH_METRICS):
            self.client.log_batch(self.ref.run_id, metrics=items[i : i + _BATCH_METRICS])

    def log_artifacts(self, files: Sequence[Path]) -> None:
        """Uploads each file to the root of the run's artifacts (a newer upload replaces it)."""
        for f in files:
            self.client.log_artifact(self.ref.run_id, str(f))

    def log_model(self, run_dir: Path, info: RunInfo, step: int) -> str | None:
        """Logs `best.keras` as a pyfunc model with its signature and an input example.

        Args:
            run_dir: Path. The run folder (`best.keras`, `run.json`).
            info: RunInfo. The run (input size, classes, split folder for the example).
            step: int. The step the model belongs to (its metrics are linked at it).

        Returns:
            str: the model's URI (`models:/m-...`), for `mlflow.pyfunc.load_model`.
        """
        import mlflow
        from mlflow.entities import LoggedModelStatus
        from mlflow.models import Model

        # Made here, in the run's experiment: `Model.log` alone would file it under the fluent
        # API's current experiment (MLflow's "Default"), away from its run.
        model = self.client.create_logged_model(
            experiment_id=self.ref.experiment_id,
            name=MODEL_NAME,
            source_run_id=self.ref.run_id,
            params=self.client.get_run(self.ref.run_id).data.params,
            model_type="imgclf",
        )
        try:
            with tempfile.TemporaryDirectory(prefix="imgclf-mlflow-") as tmp:
                run, code = stage_model(Path(run_dir), Path(tmp))
                with _tracking_uri(self.ref.uri):
                    logged = Model.log(
                        artifact_path=None,
                        name=MODEL_NAME,
                        flavor=mlflow.pyfunc,
                        run_id=self.ref.run_id,
                        model_id=model.model_id,
                        step=step,
                        python_model=str(PYFUNC_MODEL_FILE),
                        artifacts={"run": str(run)},
                        code_paths=[str(code)],
                        signature=model_signature(info),
                        input_example=input_example(info),
                        pip_requirements=model_requirements(),
                        metadata=model_metadata(info, Path(run_dir)),
                    )
        except BaseException:
            self.client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            raise
        self.client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        return str(logged.model_uri)

    def finish(self, status: str) -> None:
        """Ends the run with `status` (`FINISHED`, `FAILED`, `KILLED`)."""
        self.client.set_terminated(self.ref.run_id, status=status)
