"""Running the app: which model file to serve, the listening socket, uvicorn, graceful stop.

`load_served_model` picks the model (a run's ONNX / TFLite export with `prefer_export`) and
warms it up; `Server` binds the socket itself (so a busy port is a clear error, and port 0 gives
a free port that is known before anyone connects), runs uvicorn on it, and reports the URL once
the server accepts connections. On SIGTERM or Ctrl+C uvicorn stops accepting, lets the
requests in flight finish (up to `graceful_timeout` seconds), then the app's lifespan runs what
is still queued in the micro-batcher and stops it.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import uvicorn

from imgclf.config import ServeConfig
from imgclf.errors import ConfigError, ModelError
from imgclf.export import FORMATS
from imgclf.records.run import EXPORT_DIR, is_run_dir
from imgclf.runtime import Predictor, load_model, resolve_model_path
from imgclf.serve.app import build_app
from imgclf.ui import warn

#: Export formats `prefer_export` looks for in `RUN/export/`, in order (neither imports TensorFlow).
PREFERRED_EXPORTS: tuple[str, ...] = ("onnx", "tflite")


def served_model_path(
    model: str | os.PathLike | None = None, models_dir: str | os.PathLike = "models", *, prefer_export: bool = False
) -> Path:
    """The model file or folder `imgclf serve` loads.

    Args:
        model: path or None, default None. A run folder, a `.keras` file in one, an exported
            `.onnx` / `.tflite` file or a SavedModel folder; None = the most recent run in
            `models_dir`.
        models_dir: path, default "models". Where runs live.
        prefer_export: bool, default False. For a run (folder or its `.keras`), use
            `RUN/export/model.onnx`, else `RUN/export/model.tflite`, when present; otherwise a
            warning is printed and the Keras model is used.

    Returns:
        Path.

    Raises:
        ModelError: if `model` is None and `models_dir` holds no finished run.
    """
    try:
        path = resolve_model_path(model, models_dir)
    except ModelError as exc:  # no run in models_dir: say how to name one for serve
        raise ModelError(
            exc.message, "train one with `imgclf train`, or name it: `imgclf serve models/<run>`"
        ) from None
    if not prefer_export:
        return path
    run = path if path.is_dir() else path.parent
    if path.suffix.lower() not in ("", ".keras") or not is_run_dir(run):
        return path  # already an exported file (or not a run): nothing to prefer
    for fmt in PREFERRED_EXPORTS:
        candidate = run / EXPORT_DIR / FORMATS[fmt]
        if candidate.is_file():
            return candidate
    warn(
        f"--prefer-export: {run / EXPORT_DIR} holds no model.onnx or model.tflite; serving the Keras model "
        f"(make one with `imgclf export {run} --format onnx`)"
    )
    return path


def load_served_model(
    model: str | os.PathLike | None = None, models_dir: str | os.PathLike = "models", *, prefer_export: bool = False
) -> Predictor:
    """Loads the model to serve (see `served_model_path`) and runs it once on a blank image.

    The warm-up call makes the first request as fast as the others (Keras builds its functions,
    ONNX Runtime and LiteRT allocate their buffers on the first call).

    Args:
        model: path or None, default None. See `served_model_path`.
        models_dir: path, default "models".
        prefer_export: bool, default False.

    Returns:
        Predictor.

    Raises:
        ModelError: no run found, an unknown file type, missing metadata, an unloadable model.
    """
    predictor = load_model(served_model_path(model, models_dir, prefer_export=prefer_export), models_dir)
    predictor.predict_batch(np.zeros((1, *predictor.spec.shape), np.uint8))
    return predictor


def bind_socket(host: str, port: int) -> socket.socket:
    """Opens the listening TCP socket of the server.

    Args:
        host: str. Address or name to bind (`"127.0.0.1"`, `"::1"`, `"0.0.0.0"`, `"localhost"`).
        port: int in [0, 65535]. 0 = a free port chosen by the system.

    Returns:
        socket.socket, bound and listening.

    Raises:
        ConfigError: if the port is in use or the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host.strip("[]"), port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use", "pick another with --port (0 = any free port)"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"not allowed to listen on {host}:{port}", "ports below 1024 need privileges; use --port 8000"
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc})", "check --host (e.g. 127.0.0.1 or 0.0.0.0)"
        ) from None


def _url(host: str, port: int) -> str:
    return f"http://[{host.strip('[]')}]:{port}" if ":" in host else f"http://{host}:{port}"


class Server:
    """The HTTP server of one model: the app of `imgclf.serve.app.build_app` on uvicorn.

    Args:
        predictor: Predictor. The model (e.g. from `load_served_model`).
        cfg: ServeConfig or None, default None (defaults).
        on_started: callable `(url) -> None` or None. Called once the server accepts
            connections (the CLI prints the URL there).

    Attributes:
        url: str. `http://HOST:PORT` (the real port when `cfg.port` is 0).
        port: int. The bound port.
        app: fastapi.FastAPI. The app (its `state.metrics`, `state.batcher`).

    Raises:
        ConfigError: if the socket cannot be bound (see `bind_socket`).

    Example:
        >>> server = Server(load_served_model("models/run"), ServeConfig(port=0))
        >>> server.run()        # blocks; SIGTERM / Ctrl+C stop it gracefully
    """

    def __init__(
        self, predictor: Predictor, cfg: ServeConfig | None = None, *, on_started: Callable[[str], None] | None = None
    ):
        self.cfg = cfg or ServeConfig()
        self.predictor = predictor
        self.app = build_app(predictor, self.cfg)
        self.sock = bind_socket(self.cfg.host, self.cfg.port)
        self.port = int(self.sock.getsockname()[1])
        self.url = _url(self.cfg.host, self.port)
        self._started = threading.Event()
        self._on_started = on_started
        self._thread: threading.Thread | None = None
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            server_header=False,
            timeout_graceful_shutdown=self.cfg.graceful_timeout,  # type: ignore[arg-type]  # a float works (a timeout)
            proxy_headers=False,
        )
        outer = self

        class _Uvicorn(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started and not self.should_exit:
                    outer._started.set()
                    if outer._on_started is not None:
                        outer._on_started(outer.url)

        self._uvicorn = _Uvicorn(config)

    def run(self) -> None:
        """Serves until SIGTERM / SIGINT (main thread) or `stop()`; returns after a graceful stop."""
        try:
            self._uvicorn.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start_in_thread(self, timeout: float = 60.0) -> Server:
        """Runs the server in a background thread (no signal handling) and waits until it accepts.

        Args:
            timeout: float, default 60. Seconds to wait for the start.

        Returns:
            self.

        Raises:
            RuntimeError: if the server did not start within `timeout` seconds.
        """
        self._thread = threading.Thread(target=self.run, name="imgclf-serve", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError(f"the server did not start within {timeout:g} s")
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Asks the server to stop gracefully (as SIGTERM does) and waits for its thread, if any."""
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
