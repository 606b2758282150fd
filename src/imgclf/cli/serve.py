"""`imgclf serve RUN|MODEL_FILE`: an HTTP prediction server with micro-batching.

Thin: validate the options into a `ServeConfig`, load the model (`imgclf.serve.server`), run
the server until SIGTERM / Ctrl+C. FastAPI, uvicorn and TensorFlow are imported only when the
command runs (and TensorFlow only for a Keras / SavedModel model).
"""

from __future__ import annotations

from pathlib import Path

import typer

from imgclf.cli.options import opt, plain_opt
from imgclf.config import ServeConfig


def register(app: typer.Typer) -> None:
    """Adds `serve` to `app`."""
    S = ServeConfig

    @app.command("serve")
    def serve(
        model: Path | None = typer.Argument(
            None,
            help="Run folder, .keras, exported .onnx/.tflite or SavedModel folder. \\[default: the most recent run]",
            show_default=False,
        ),
        models_dir: Path = plain_opt(Path("models"), "--models-dir", help="Where runs live (to find the most recent)."),
        host: str | None = opt(S, "host", "--host", help="Address to listen on; 0.0.0.0 = every interface."),
        port: int | None = opt(S, "port", "--port", "-p", help="TCP port; 0 = any free port."),
        max_batch: int | None = opt(
            S, "max_batch", "--max-batch", help="Most images per model call (micro-batching); 1 = off."
        ),
        max_delay_ms: float | None = opt(
            S, "max_delay_ms", "--max-delay-ms", help="Longest wait of an image for its batch to fill, in milliseconds."
        ),
        max_bytes: int | None = opt(
            S, "max_bytes", "--max-bytes", help="Largest request body, in bytes (larger: HTTP 413)."
        ),
        max_images: int | None = opt(S, "max_images", "--max-images", help="Most images per request (more: HTTP 413)."),
        allow_urls: bool | None = opt(
            S, "allow_urls", "--allow-urls", help="Accept `url` fields (fetched by the safe downloader)."
        ),
        allow_private_urls: bool | None = opt(
            S,
            "allow_private_urls",
            "--allow-private-urls",
            help="Also fetch URLs on loopback / private / link-local addresses (trusted networks only).",
        ),
        prefer_export: bool | None = opt(
            S, "prefer_export", "--prefer-export", help="Serve a run's ONNX / TFLite export (no TensorFlow)."
        ),
        workers: int | None = opt(
            S, "workers", "--workers", help="Threads decoding images (and as many downloading URLs)."
        ),
        url_timeout: float | None = opt(
            S, "url_timeout", "--url-timeout", help="Time budget of one URL download, in seconds."
        ),
        graceful_timeout: float | None = opt(
            S,
            "graceful_timeout",
            "--graceful-timeout",
            help="On SIGTERM / Ctrl+C, seconds to let requests in flight finish.",
        ),
        config: Path | None = plain_opt(None, "--config", help="Run config YAML; its serve: section is used."),
    ) -> None:
        """Serve a model over HTTP: POST /v1/predict with image files, answers like `predict --json`.

        Concurrent requests are micro-batched (up to --max-batch images or --max-delay-ms).

        Endpoints: /v1/predict, /v1/health, /v1/model, /v1/metrics, /docs (OpenAPI).

        Listens on 127.0.0.1 unless --host says otherwise; SIGTERM or Ctrl+C stops it once the requests in flight are answered.
        """
        import signal

        from imgclf.config import stage_config
        from imgclf.serve.server import Server, load_served_model
        from imgclf.ui import summary

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
            typer.echo(
                f"imgclf serve: {url} (model {name}, {predictor.kind}, {predictor.num_classes} classes; docs {url}/docs)"
            )

        server = Server(predictor, cfg, on_started=started)
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
