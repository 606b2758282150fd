"""The endpoints of `imgclf serve`: `/`, `/v1/health`, `/v1/model`, `/v1/metrics`, `/v1/predict`.

Each endpoint gets the server's `ServeState` through the `State` dependency
(`imgclf.serve.deps`). `POST /v1/predict` reads the form, loads every image with
`imgclf.inputs.load_item` in the state's thread pools, runs the model through the
`MicroBatcher`, and answers with the records of `imgclf predict --json`, made by the predict
stage's own pure functions (`imgclf.predict.scored_inputs`, `reduce_predictions`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from imgclf.config import PredictConfig, ServeConfig
from imgclf.errors import ImageError
from imgclf.inputs import InputItem
from imgclf.predict import reduce_predictions, scored_inputs, stack_loaded
from imgclf.serve.batcher import BatcherClosed
from imgclf.serve.deps import ServeState, State
from imgclf.serve.errors import MAX_FIELD_BYTES, error_response, images_failed
from imgclf.serve.metrics import CONTENT_TYPE, ServeMetrics
from imgclf.serve.schemas import (
    METRICS_RESPONSES,
    PREDICT_RESPONSES,
    HealthResponse,
    ModelResponse,
    PredictResponse,
)

_DEFAULTS = PredictConfig()

#: Paths the request counter names (any other path is counted as "other").
ENDPOINTS = frozenset(
    {"/v1/predict", "/v1/health", "/v1/model", "/v1/metrics", "/openapi.json", "/docs", "/redoc", "/"}
)


def make_router(cfg: ServeConfig) -> APIRouter:
    """The endpoints, with the form limits of `cfg` on `POST /v1/predict`.

    Args:
        cfg: ServeConfig. `max_images` caps the files (and fields) of one form.

    Returns:
        fastapi.APIRouter.
    """
    router = APIRouter()
    router.add_api_route("/", root, methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/v1/health", health, methods=["GET"], response_model=HealthResponse, summary="Liveness and readiness"
    )
    router.add_api_route("/v1/model", model, methods=["GET"], response_model=ModelResponse, summary="The model served")
    router.add_api_route(
        "/v1/metrics",
        metrics_endpoint,
        methods=["GET"],
        response_class=PlainTextResponse,
        summary="Prometheus metrics",
        responses=METRICS_RESPONSES,
    )
    router.add_api_route(
        "/v1/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        responses=PREDICT_RESPONSES,
        summary="Classify images",
        form_limits={"max_files": cfg.max_images, "max_fields": cfg.max_images + 8, "max_part_size": MAX_FIELD_BYTES},
    )
    return router


async def root() -> dict[str, str]:
    return {
        "predict": "POST /v1/predict",
        "model": "/v1/model",
        "health": "/v1/health",
        "metrics": "/v1/metrics",
        "docs": "/docs",
    }


async def health() -> dict[str, str]:
    """`{"status": "ok"}`: the model is loaded and predictions are being served."""
    return {"status": "ok"}


async def model(state: State) -> dict[str, Any]:
    """Model kind, class names, input specification, imgclf version, run name, limits."""
    return state.model_info


async def metrics_endpoint(state: State) -> Response:
    """Counters and histograms in the Prometheus text format: requests by status, images by
    outcome and error reason, the batch-size histogram (micro-batching), latencies."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


async def predict(
    request: Request,
    state: State,
    file: list[UploadFile] | None = File(
        None, description="An image file (JPEG, PNG, WebP, GIF, BMP, TIFF); repeat the field for several images."
    ),
    url: list[str] | None = Form(
        None, description="An http(s) image URL (only when the server runs with --allow-urls); repeatable."
    ),
    top_k: int = Query(_DEFAULTS.top_k, ge=1, description="Labels per image (capped at the number of classes)."),
    threshold: float = Query(
        _DEFAULTS.threshold, ge=0, le=1, description="A top probability below this sets `low_confidence`."
    ),
) -> Response:
    """Top-k labels with probabilities for each image, in the order sent.

    The record of each image is the one of `imgclf predict --json`. An image that cannot be
    used gets its `error`; the request fails (4xx) only when no image could be predicted.
    """
    started = time.perf_counter()
    state.metrics.in_flight.inc()
    try:
        return await _predict(request, state, top_k, threshold)
    finally:
        state.metrics.in_flight.dec()
        state.metrics.request_seconds.observe(time.perf_counter() - started)


async def _predict(request: Request, state: ServeState, top_k: int, threshold: float) -> Response:
    """`POST /v1/predict` once the parameters are valid: form -> images -> model -> records."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return error_response(
            415,
            "unsupported_media_type",
            f"the body is {ctype or 'missing'!r}, not a form; send multipart/form-data with `file` fields "
            "(curl -F file=@photo.jpg ...)",
        )
    form = await request.form()  # already parsed (and limited) by FastAPI: the cached form
    parsed = read_form(form, state.cfg)
    if isinstance(parsed, JSONResponse):
        return parsed
    items, uploads = parsed
    try:
        loaded, probs = await _load_and_predict(state, items, uploads)
    except BatcherClosed:
        return error_response(503, "stopping", "the server is stopping; retry on another instance")
    _count_images(state.metrics, loaded)
    scored = scored_inputs([it.name for it in items], loaded, probs)
    plan = reduce_predictions(scored, state.predictor.class_names, top_k, threshold)
    records = [p.to_dict() for p in plan.predictions]
    if plan.summary.predicted:
        return JSONResponse({"predictions": records})
    first = loaded[0]
    assert isinstance(first, ImageError)
    return images_failed(first, len(items), items[0].url is not None, records)


def read_form(
    form: FormData, cfg: ServeConfig
) -> tuple[list[InputItem], list[tuple[int, StarletteUpload]]] | JSONResponse:
    """The images a `/v1/predict` form names, or the error answer when it names none usable.

    Args:
        form: FormData. The parsed request body.
        cfg: ServeConfig. `allow_urls` and `max_images` are used.

    Returns:
        tuple `(items, uploads)`: one InputItem per `file` / `url` field in the order sent, and
        `(position in items, upload)` for each file (its bytes are read later); or a
        JSONResponse: 403 `urls_disabled`, 422 `missing_field` or 413 `too_many_images`.
    """
    items: list[InputItem] = []
    uploads: list[tuple[int, StarletteUpload]] = []
    other: list[str] = []
    has_url = False
    for key, value in form.multi_items():
        if key == "file" and not isinstance(value, str):
            uploads.append((len(items), value))
            items.append(InputItem(name=value.filename or f"file {len(items) + 1}"))
        elif key == "url":
            has_url = True
            items.append(InputItem(name=str(value), url=str(value).strip()))
        elif key not in other:
            other.append(key)
    if has_url and not cfg.allow_urls:
        return error_response(
            403,
            "urls_disabled",
            "`url` fields are off on this server; upload the image as a `file` field, "
            "or start the server with --allow-urls",
        )
    if not items:
        want = "`file` fields" + (" or `url` fields" if cfg.allow_urls else "")
        got = f"; received field(s) {', '.join(repr(k) for k in other)}" if other else ""
        return error_response(
            422, "missing_field", f"no image in the request: send one or more {want} (multipart/form-data){got}"
        )
    if len(items) > cfg.max_images:
        return error_response(
            413,
            "too_many_images",
            f"{len(items)} images in one request, more than --max-images {cfg.max_images}; split the request",
        )
    return items, uploads


async def _load_and_predict(
    state: ServeState, items: list[InputItem], uploads: list[tuple[int, StarletteUpload]]
) -> tuple[list[np.ndarray | ImageError], np.ndarray | None]:
    """Reads the uploads, loads every image, runs the model on those that loaded (micro-batched).

    Returns:
        tuple `(loaded, probs)`: one `load_item` result per item, and the model's rows for the
        arrays among them, in order (None when none loaded).

    Raises:
        BatcherClosed: if the server is stopping.
    """
    batcher = state.batcher
    batcher.expect(len(items))  # a batch forming now may wait for these (up to --max-delay-ms)
    announced = len(items)
    try:
        for i, upload in uploads:
            items[i].data = await upload.read()
        loaded = await state.load(items)
        batcher.expect(-announced)
        announced = 0
        images, ok = stack_loaded(loaded, state.predictor.spec.shape)
        probs = await batcher.predict(images) if ok else None
    finally:
        if announced:
            batcher.expect(-announced)
    return loaded, probs


def _count_images(metrics: ServeMetrics, loaded: list[np.ndarray | ImageError]) -> None:
    """Counts each image of a request as predicted or failed (by reason)."""
    for a in loaded:
        if isinstance(a, ImageError):
            metrics.images.labels("error").inc()
            metrics.image_errors.labels(a.reason).inc()
        else:
            metrics.images.labels("predicted").inc()
