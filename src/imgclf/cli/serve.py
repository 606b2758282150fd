"""`imgclf serve RUN|MODEL_FILE`: an HTTP prediction server with micro-batching.

Thin: validate the options into a `ServeConfig`, load the model (`imgclf.serve.server`), run
the server until SIGTERM / Ctrl+C. FastAPI, uvicorn and TensorFlow are imported only when the
command runs (and TensorFlow only for a Keras / SavedModel model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from imgclf.cli.options import opt, plain_opt
from imgclf.config import ServeConfig, stage_config
from imgclf.ui import summary

# The options of `imgclf serve`, in the order --help shows them; each stage option defaults to
# None (a YAML value stays) and its help shows the ServeConfig field's default.
_S = ServeConfig
_MODEL = typer.Argument(
    None,
    help="Run folder, .keras, exported .onnx/.tflite or SavedModel folder. \\[default: the most recent run]",
    show_default=False,
)
_MODELS_DIR = plain_opt(Path("models"), "--models-dir", help="Where runs live (to find the most recent).")
_HOST = opt(_S, "host", "--host", help="Address to listen on; 0.0.0.0 = every interface.")
_PORT = opt(_S, "port", "--port", "-p", help="TCP port; 0 = any free port.")
_MAX_BATCH = opt(_S, "max_batch", "--max-batch", help="Most images per model call (micro-batching); 1 = off.")
_MAX_DELAY_MS = opt(
    _S, "max_delay_ms", "--max-delay-ms", help="Longest wait of an image for its batch to fill, in milliseconds."
)
_MAX_BYTES = opt(_S, "max_bytes", "--max-bytes", help="Largest request body, in bytes (larger: HTTP 413).")
_MAX_IMAGES = opt(_S, "max_images", "--max-images", help="Most images per request (more: HTTP 413).")
_ALLOW_URLS = opt(_S, "allow_urls", "--allow-urls", help="Accept `url` fields (fetched by the safe downloader).")
_ALLOW_PRIVATE_URLS = opt(
    _S,
    "allow_private_urls",
    "--allow-private-urls",
    help="Also fetch URLs on loopback / private / link-local addresses (trusted networks only).",
)
_PREFER_EXPORT = opt(_S, "prefer_export", "--prefer-export", help="Serve a run's ONNX / TFLite export (no TensorFlow).")
_WORKERS = opt(_S, "workers", "--workers", help="Threads decoding images (and as many downloading URLs).")
_URL_TIMEOUT = opt(_S, "url_timeout", "--url-timeout", help="Time budget of one URL download, in seconds.")
_GRACEFUL_TIMEOUT = opt(
    _S,
    "graceful_timeout",
    "--graceful-timeout",
    help="On SIGTERM / Ctrl+C, seconds to let requests in flight finish.",
)
_CONFIG = plain_opt(None, "--config", help="Run config YAML; its serve: section is used.")


def register(app: typer.Typer) -> None:
    """Adds `serve` to `app`."""

    @app.command("serve")
    def serve(
        model: Path | None = _MODEL,
        models_dir: Path = _MODELS_DIR,
        host: str | None = _HOST,
        port: int | None = _PORT,
        max_batch: int | None = _MAX_BATCH,
        max_delay_ms: float | None = _MAX_DELAY_MS,
        max_bytes: int | None = _MAX_BYTES,
        max_images: int | None = _MAX_IMAGES,
        allow_urls: bool | None = _ALLOW_URLS,
        allow_private_urls: bool | None = _ALLOW_PRIVATE_URLS,
        prefer_export: bool | None = _PREFER_EXPORT,
        workers: int | None = _WORKERS,
        url_timeout: float | None = _URL_TIMEOUT,
        graceful_timeout: float | None = _GRACEFUL_TIMEOUT,
        config: Path | None = _CONFIG,
    ) -> None:
        """Serve a model over HTTP: POST /v1/predict with image files, answers like `predict --json`.

        Concurrent requests are micro-batched (up to --max-batch images or --max-delay-ms).

        Endpoints: /v1/predict, /v1/health, /v1/model, /v1/metrics, /docs (OpenAPI).

        Listens on 127.0.0.1 unless --host says otherwise; SIGTERM or Ctrl+C stops it once the requests in flight are answered.
        """  # noqa: E501 - typer's rich help keeps a docstring's line breaks: a paragraph is one line
        from imgclf.serve.server import Server, load_served_model

        cfg = stage_config(
            ServeConfig,
            "serve",
            config,
            host=host,
            port=port,
            max_batch=max_batch,
            max_delay_ms=max_delay_ms,
            max_bytes=max_bytes,
            max_images=max_images,
            allow_urls=allow_urls,
            allow_private_urls=allow_private_urls,
            prefer_export=prefer_export,
            workers=workers,
            url_timeout=url_timeout,
            graceful_timeout=graceful_timeout,
        )
        predictor = load_served_model(model, models_dir, prefer_export=cfg.prefer_export)

        def started(url: str) -> None:
            name = predictor.run_name or predictor.source.name
            classes = f"{predictor.num_classes} classes"
            typer.echo(f"imgclf serve: {url} (model {name}, {predictor.kind}, {classes}; docs {url}/docs)")

        _run_until_stopped(Server(predictor, cfg, on_started=started))


def _run_until_stopped(server: Any) -> None:
    """Runs `server` until SIGINT / SIGTERM, then prints why it stopped and what it predicted."""
    import signal

    stopped_by: list[str] = []

    def note(sig: int, frame: object) -> None:  # uvicorn re-raises the signal after its graceful stop
        stopped_by.append(signal.Signals(sig).name)

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    batcher = server.app.state.batcher
    why = f" on {stopped_by[0]}" if stopped_by else ""
    summary(f"imgclf serve: stopped{why}; {batcher.images} images predicted in {batcher.batches} model calls")
