"""The ASGI app of `imgclf serve` (FastAPI): endpoints, limits, error answers.

Endpoints (all JSON unless said):

- `POST /v1/predict`: a `multipart/form-data` body with one or more `file` fields (and, when
  the server allows URLs, `url` fields; a `url`-only request may also be
  `application/x-www-form-urlencoded`); query parameters `top_k` and `threshold`. Answers
  `{"predictions": [...]}`, one record per image in the order sent, each the record of
  `imgclf predict --json` (`imgclf.predict.Prediction.to_dict`) with `input` = the uploaded
  file name or the URL.
- `GET /v1/health`: `{"status": "ok"}` once the model is loaded and the batcher runs.
- `GET /v1/model`: model kind, class names, input specification, imgclf version, run name,
  and the server's limits.
- `GET /v1/metrics`: Prometheus text format (`imgclf.serve.metrics`).
- `GET /openapi.json`, `GET /docs` (Swagger UI), `GET /redoc`: FastAPI's own.

Every image goes through `imgclf.inputs.load_item` -> `load_image`, the function training
used, in a thread pool; the model runs through the `MicroBatcher`.

The app is assembled here from modules of their own:

- `imgclf.serve.routes`: the endpoints (`make_router`).
- `imgclf.serve.deps`: `ServeState` (predictor, config, metrics, batcher, thread pools, URL
  fetch), given to the endpoints by the FastAPI dependency `get_state`.
- `imgclf.serve.guard`: `RequestGuard`, the `Host` (DNS rebinding) and `Content-Length` checks.
- `imgclf.serve.errors`: the JSON error answers and the exception handlers.
- `imgclf.serve.schemas`: the response models of the OpenAPI schema.
- `imgclf.serve.metrics`: `ServeMetrics` and `CountRequests`, the request counter.

Bad input never gets a 500 (and never stops the server). Every error answer is
`{"detail": "<what went wrong, naming the file / field, and what to do>", "reason": "<code>"}`
(plus `predictions` when images were read, and `errors` for invalid parameters):

| status | reason | when |
| --- | --- | --- |
| 400 | `bad_request` | a malformed multipart body |
| 403 | `urls_disabled` | a `url` field, and the server was started without `--allow-urls` |
| 403 | `url_refused` | every image was a URL of a loopback, private, link-local, multicast or reserved address |
| 413 | `body_too_large` | the body is over `--max-bytes` (checked on `Content-Length` first, then as it streams) |
| 413 | `too_many_images` | more than `--max-images` images |
| 415 | `unsupported_media_type` | the body is not a form |
| 415 | `not_an_image`, `unsupported_format`, `html` | every image was one of these |
| 422 | `missing_field` | no `file` (or `url`) field |
| 422 | `invalid_request` | an invalid query parameter or field (`errors` lists them) |
| 422 | `decompression_bomb`, `truncated`, `corrupt`, a download failure, ... | every image failed so |

When some images of a request load and others do not, the answer is 200 and the failed ones
carry their `error` (as `imgclf predict --json` does); the request fails only when no image
could be predicted, with the status of its first failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from imgclf import __version__
from imgclf.config import ServeConfig
from imgclf.runtime import Predictor
from imgclf.serve.deps import ServeState
from imgclf.serve.errors import install_error_handlers
from imgclf.serve.guard import RequestGuard, allowed_hosts
from imgclf.serve.metrics import CountRequests, ServeMetrics
from imgclf.serve.routes import ENDPOINTS, make_router


class _ServeApp(FastAPI):
    """FastAPI with two layers in front of everything, FastAPI's own body limit included.

    Outermost, `CountRequests` counts every answer; then `RequestGuard` refuses a foreign
    `Host` and a too-large `Content-Length` before a byte of the body is read (FastAPI's
    body limit, which comes first among its middleware, would answer the latter in plain text).
    """

    def __init__(self, *, metrics: ServeMetrics, cfg: ServeConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self._metrics = metrics
        self._cfg = cfg

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        guarded = RequestGuard(inner, max_bytes=self._cfg.max_bytes, hosts=allowed_hosts(self._cfg))
        return CountRequests(guarded, metrics=self._metrics, endpoints=ENDPOINTS)


def build_app(predictor: Predictor, cfg: ServeConfig | None = None) -> FastAPI:
    """Builds the ASGI app serving `predictor`.

    Args:
        predictor: Predictor. A loaded model (`imgclf.runtime.load_model`).
        cfg: ServeConfig or None, default None (defaults). Limits, micro-batching, URL policy.

    Returns:
        fastapi.FastAPI. Its lifespan starts the micro-batcher and the decoding threads, and on
        shutdown runs every image still queued before stopping them. `app.state.serve` holds
        the `ServeState`, `app.state.metrics` its `ServeMetrics`, `app.state.batcher` its
        `MicroBatcher` and `app.state.config` the `ServeConfig`.
    """
    cfg = cfg or ServeConfig()
    state = ServeState.create(predictor, cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    urls_text = " and `url` fields (http/https; fetched by the server)" if cfg.allow_urls else ""
    app = _ServeApp(
        metrics=state.metrics,
        cfg=cfg,
        title="imgclf serve",
        version=__version__,
        summary=f"Image classification with {predictor.run_name or predictor.source.name} ({predictor.kind}).",
        description=(
            f"Classes: {', '.join(predictor.class_names)}. Input: {predictor.spec.describe()}.\n\n"
            f"`POST /v1/predict` with `file` fields{urls_text}; answers one record per image, in the order sent."
        ),
        lifespan=lifespan,
        max_body_size=cfg.max_bytes,
    )
    app.state.serve = state
    app.state.metrics = state.metrics
    app.state.batcher = state.batcher
    app.state.config = cfg
    install_error_handlers(app)
    app.include_router(make_router(cfg))
    return app
