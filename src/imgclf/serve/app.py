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

Bad input never gets a 500 (and never stops the server). Every error answer is
`{"detail": "<what went wrong, naming the file / field, and what to do>", "reason": "<code>"}`
(plus `predictions` when images were read, and `errors` for invalid parameters):

| status | reason | when |
| --- | --- | --- |
| 400 | `bad_request` | a malformed multipart body |
| 403 | `urls_disabled` | a `url` field, and the server was started without `--allow-urls` |
| 403 | `url_refused` | every image was a URL resolving to a loopback / private / link-local / multicast / reserved address |
| 413 | `body_too_large` | the body is larger than `--max-bytes` (checked on `Content-Length` before reading, and counted as it streams) |
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

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from imgclf import __version__
from imgclf.config import PredictConfig, ServeConfig
from imgclf.errors import ImageError
from imgclf.images import ALLOWED_FORMATS, DEFAULT_MAX_PIXELS
from imgclf.inputs import Fetch, InputItem, is_url, load_item
from imgclf.parallel import default_workers
from imgclf.predict import error_prediction, prediction_of
from imgclf.runtime import Predictor
from imgclf.serve.batcher import BatcherClosed, MicroBatcher
from imgclf.serve.metrics import CONTENT_TYPE, ServeMetrics

log = logging.getLogger("imgclf.serve")

#: HTTP status of a request whose images all failed, by the first failure's reason.
STATUS_BY_REASON: dict[str, int] = {
    "not_an_image": 415,
    "unsupported_format": 415,
    "html": 415,
    "url_refused": 403,
    "urls_disabled": 403,
}
#: Status for any other image failure (decompression_bomb, truncated, corrupt, downloads...).
DEFAULT_IMAGE_ERROR_STATUS = 422

_FORMATS = ", ".join(sorted(ALLOWED_FORMATS - {"MPO"}))
_HINTS: dict[str, str] = {
    "not_an_image": f"send an image file ({_FORMATS})",
    "unsupported_format": f"convert it to one of {_FORMATS}",
    "html": "the URL gives a web page; use the direct link of the image",
    "decompression_bomb": f"images above {DEFAULT_MAX_PIXELS:,} pixels are refused; send a smaller version",
    "truncated": "the file is cut short; send a complete copy",
    "corrupt": "the file is damaged; send another copy",
    "url_refused": "use a public http(s) URL, or start the server with --allow-private-urls on a trusted network",
}
_DOWNLOAD_HINT = "check that the URL is reachable from the server and is the direct link of an image"

#: Longest `url` field (and any other text field), in bytes.
MAX_FIELD_BYTES = 16 * 1024


# ------------------------------------------------------------------------- response models
class LabelProbability(BaseModel):
    label: str
    probability: float = Field(ge=0, le=1)


class PredictionRecord(BaseModel):
    """One image's answer: the record of `imgclf predict --json`."""

    input: str = Field(description="The uploaded file name, or the URL.")
    label: str | None = Field(description="Most probable class; null when the image failed.")
    probability: float | None = Field(description="Its probability, in [0, 1].")
    low_confidence: bool = Field(description="True when `probability` < `threshold`.")
    top_k: list[LabelProbability] = Field(description="The `top_k` most probable classes, most probable first.")
    error: str | None = Field(description="`reason: detail` when the image could not be used, else null.")


class PredictResponse(BaseModel):
    predictions: list[PredictionRecord]


class ErrorResponse(BaseModel):
    detail: str = Field(description="What went wrong, naming the file or field, and what to do.")
    reason: str = Field(description="Machine-readable reason, e.g. `not_an_image`, `body_too_large`.")
    predictions: list[PredictionRecord] | None = Field(
        default=None, description="Per-image records, when images were read."
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Every invalid parameter, for `invalid_request`."
    )


class HealthResponse(BaseModel):
    status: str


class Limits(BaseModel):
    max_batch: int
    max_delay_ms: float
    max_bytes: int
    max_images: int
    allow_urls: bool


class ModelResponse(BaseModel):
    kind: str = Field(description="keras | onnx | tflite | saved_model")
    run_name: str | None
    model_file: str
    class_names: list[str]
    input_spec: dict[str, Any]
    imgclf_version: str
    limits: Limits


_ERRORS = {"model": ErrorResponse}
_PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERRORS, "description": "Malformed multipart body."},
    403: {**_ERRORS, "description": "URLs are off, or a URL's address is refused."},
    413: {**_ERRORS, "description": "Body larger than --max-bytes, or more than --max-images images."},
    415: {**_ERRORS, "description": "Not a form body, or no image could be read as an image."},
    422: {
        **_ERRORS,
        "description": "Missing field, invalid parameter, or no image usable (bomb, truncated, download failed...).",
    },
}


def _error(status: int, reason: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"detail": detail, "reason": reason}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status)


def _where(loc: tuple | list) -> str:
    if not loc:
        return "the request"
    kind = {"query": "query parameter", "body": "form field", "path": "path parameter", "header": "header"}.get(
        str(loc[0]), str(loc[0])
    )
    return f"{kind} {loc[1]!r}" if len(loc) > 1 else kind


# ---------------------------------------------------------------------------- URL fetching
def make_url_fetch(cfg: ServeConfig) -> Fetch:
    """The `url -> bytes` function of the server: SSRF checks, then the scraper's safe downloader.

    Args:
        cfg: ServeConfig. `allow_private_urls`, `max_bytes` (per download, in bytes) and
            `url_timeout` (seconds, the whole download) are used.

    Returns:
        callable `url -> bytes`. It raises `ImageError` with reason `"url_refused"` when the host
        (or a redirect's host) resolves to a non-public address and private URLs are not
        allowed, `"unsupported_scheme"` for a non-http(s) URL, and the downloader's own errors
        (`DownloadError`, an `ImageError`) otherwise.
    """
    from imgclf import netsafe

    def fetch(url: str) -> bytes:
        from imgclf.scrape.download import fetch_image

        if not is_url(url):
            raise ImageError(url, "unsupported_scheme", "only http:// and https:// URLs are fetched")
        session = None
        if not cfg.allow_private_urls:
            try:
                netsafe.check_url(url)
            except netsafe.UnsafeAddressError as exc:
                raise ImageError(url, "url_refused", exc.message) from None
            except (OSError, ValueError) as exc:  # socket.gaierror is an OSError
                raise ImageError(url, "connection_error", f"the host does not resolve ({exc})") from None
            session = netsafe.guarded_session()  # checks every connection again: redirects, DNS rebinding
        try:
            return fetch_image(
                url,
                max_bytes=cfg.max_bytes,
                connect_timeout=min(10.0, cfg.url_timeout),
                read_timeout=min(30.0, cfg.url_timeout),
                retries=1,
                backoff=0.5,
                total_timeout=cfg.url_timeout,
                session=session,
            ).data
        except netsafe.UnsafeAddressError as exc:
            raise ImageError(url, "url_refused", f"after a redirect: {exc.message}") from None
        finally:
            if session is not None:
                session.close()

    return fetch


# ---------------------------------------------------------------------------------- the app
class _CountRequests:
    """Pure ASGI middleware: counts answered requests by endpoint and status."""

    def __init__(self, app: Any, metrics: ServeMetrics, endpoints: frozenset[str]):
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        path = scope.get("path", "")
        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.requests.labels(path if path in self.endpoints else "other", str(status[0])).inc()


def _host_name(value: bytes) -> str:
    """The host of a `Host` header, without the port: `127.0.0.1:8000` -> `127.0.0.1`, `[::1]:80` -> `::1`."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class _ServeApp(FastAPI):
    """FastAPI with two checks made before anything else runs, answered in JSON.

    - A `Content-Length` above the body limit gets 413 without a byte of the body read
      (FastAPI's own `max_body_size` also counts the bytes as they stream, but answers a
      too-large `Content-Length` in plain text).
    - On a loopback server, a `Host` header naming another host gets 400: DNS-rebinding
      protection (as Jupyter's server does), so a web page cannot reach the server under a
      name of its own.
    """

    imgclf_max_bytes: int = 0
    imgclf_metrics: ServeMetrics | None = None
    imgclf_hosts: frozenset[str] | None = None  # allowed Host names; None = any

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            declared = host = None
            for name, value in scope.get("headers", ()):
                if name == b"content-length":
                    declared = value
                elif name == b"host":
                    host = value
            if self.imgclf_hosts is not None and host is not None and _host_name(host) not in self.imgclf_hosts:
                response = _error(
                    400,
                    "invalid_host",
                    f"this server listens on a loopback address and answers only requests addressed to "
                    f"{' or '.join(sorted(self.imgclf_hosts))}, not {host.decode('latin-1')!r} (DNS-rebinding "
                    "protection); use http://127.0.0.1:PORT, or start it with --host 0.0.0.0",
                )
                await self._refuse(scope, receive, send, response, "400")
                return
            if declared is not None and declared.strip().isdigit() and int(declared) > self.imgclf_max_bytes > 0:
                response = _error(
                    413,
                    "body_too_large",
                    f"the request body ({int(declared):,} bytes) is larger than the limit of {self.imgclf_max_bytes:,} "
                    "bytes (--max-bytes); send fewer or smaller images per request",
                )
                response.headers["Connection"] = "close"
                await self._refuse(scope, receive, send, response, "413")
                return
        await super().__call__(scope, receive, send)

    async def _refuse(self, scope: dict, receive: Callable, send: Callable, response: Response, status: str) -> None:
        if self.imgclf_metrics is not None:
            path = scope.get("path", "")
            self.imgclf_metrics.requests.labels(path if path == "/v1/predict" else "other", status).inc()
        await response(scope, receive, send)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def build_app(predictor: Predictor, cfg: ServeConfig | None = None) -> FastAPI:
    """Builds the ASGI app serving `predictor`.

    Args:
        predictor: Predictor. A loaded model (`imgclf.runtime.load_model`).
        cfg: ServeConfig or None, default None (defaults). Limits, micro-batching, URL policy.

    Returns:
        fastapi.FastAPI. Its lifespan starts the micro-batcher and the decoding threads, and on
        shutdown runs every image still queued before stopping them. `app.state.metrics`
        holds the `ServeMetrics`, `app.state.batcher` the `MicroBatcher`.
    """
    cfg = cfg or ServeConfig()
    defaults = PredictConfig()
    metrics = ServeMetrics(cfg.max_batch)
    workers = cfg.workers or default_workers()

    def on_batch(n: int, seconds: float) -> None:
        metrics.batch_size.observe(n)
        metrics.batch_seconds.observe(seconds)

    batcher = MicroBatcher(
        predictor.predict_batch,
        max_batch=cfg.max_batch,
        max_delay_ms=cfg.max_delay_ms,
        on_batch=on_batch,
        on_queue=metrics.queue_images.set,
    )
    pools: dict[str, ThreadPoolExecutor] = {}
    fetch = make_url_fetch(cfg) if cfg.allow_urls else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pools["decode"] = ThreadPoolExecutor(workers, thread_name_prefix="imgclf-decode")
        pools["download"] = ThreadPoolExecutor(workers, thread_name_prefix="imgclf-download")
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()  # in-flight requests are done (uvicorn waits for them first)
            for pool in pools.values():
                pool.shutdown(wait=False, cancel_futures=True)

    urls_text = " and `url` fields (http/https; fetched by the server)" if cfg.allow_urls else ""
    app = _ServeApp(
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
    app.imgclf_max_bytes = cfg.max_bytes
    app.imgclf_metrics = metrics
    app.state.metrics = metrics
    app.state.batcher = batcher
    app.state.config = cfg
    endpoints = frozenset(
        {"/v1/predict", "/v1/health", "/v1/model", "/v1/metrics", "/openapi.json", "/docs", "/redoc", "/"}
    )
    app.add_middleware(_CountRequests, metrics=metrics, endpoints=endpoints)
    if _is_loopback(cfg.host):
        app.imgclf_hosts = frozenset({"localhost", "127.0.0.1", "::1", cfg.host.strip("[]").lower()})

    # ----------------------------------------------------------------------- error answers
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_encoder(exc.errors())
        parts = []
        for e in errors[:3]:
            loc = tuple(e.get("loc", ()))
            if len(loc) > 1 and loc[0] == "body" and loc[1] == "file":
                parts.append(
                    "form field 'file' must be a file upload (a multipart part with a filename, e.g. curl -F file=@photo.jpg)"
                )
            else:
                parts.append(f"{_where(loc)}: {e.get('msg', 'invalid')}")
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, text = exc.status_code, str(exc.detail)
        if status == 413:
            return _error(
                413,
                "body_too_large",
                f"the request body is larger than the limit of {cfg.max_bytes:,} bytes (--max-bytes); "
                "send fewer or smaller images per request",
            )
        if status == 400 and text.startswith(("Too many files", "Too many fields")):
            return _error(
                413,
                "too_many_images",
                f"more than {cfg.max_images} images in one request (--max-images); split the request",
            )
        if status == 400 and text.startswith("Field exceeded maximum size"):
            return _error(
                422,
                "invalid_request",
                f"a form field is longer than {MAX_FIELD_BYTES // 1024} KB; URLs must be shorter",
            )
        reasons = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
        hint = {
            404: f"no endpoint {request.url.path}; see /docs",
            405: f"{request.method} is not allowed on {request.url.path}; see /docs",
            400: f"malformed request ({text}); send multipart/form-data with `file` fields",
        }.get(status, text)
        return _error(status, reasons.get(status, f"http_{status}"), hint)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:  # bugs only; logged with traceback
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", f"internal error ({type(exc).__name__}); see the server log")

    # ---------------------------------------------------------------------------- endpoints
    @app.get("/", include_in_schema=False)
    async def root() -> dict[str, str]:
        return {
            "predict": "POST /v1/predict",
            "model": "/v1/model",
            "health": "/v1/health",
            "metrics": "/v1/metrics",
            "docs": "/docs",
        }

    @app.get("/v1/health", response_model=HealthResponse, summary="Liveness and readiness")
    async def health() -> dict[str, str]:
        """`{"status": "ok"}`: the model is loaded and predictions are being served."""
        return {"status": "ok"}

    info = predictor.describe()
    model_info = {
        "kind": predictor.kind,
        "run_name": predictor.run_name,
        "model_file": predictor.source.name,
        "class_names": predictor.class_names,
        "input_spec": info["input_spec"],
        "imgclf_version": __version__,
        "limits": {
            "max_batch": cfg.max_batch,
            "max_delay_ms": cfg.max_delay_ms,
            "max_bytes": cfg.max_bytes,
            "max_images": cfg.max_images,
            "allow_urls": cfg.allow_urls,
        },
    }

    @app.get("/v1/model", response_model=ModelResponse, summary="The model served")
    async def model() -> dict[str, Any]:
        """Model kind, class names, input specification, imgclf version, run name, limits."""
        return model_info

    @app.get(
        "/v1/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics",
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."}
        },
    )
    async def metrics_endpoint() -> Response:
        """Counters and histograms in the Prometheus text format: requests by status, images by
        outcome and error reason, the batch-size histogram (micro-batching), latencies."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def load_all(items: list[InputItem]) -> list[np.ndarray | ImageError]:
        loop = asyncio.get_running_loop()
        spec = predictor.spec
        jobs = [
            loop.run_in_executor(pools["download" if it.url is not None else "decode"], load_item, it, spec, fetch)
            for it in items
        ]
        return list(await asyncio.gather(*jobs))

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=_PREDICT_RESPONSES,
        summary="Classify images",
        form_limits={"max_files": cfg.max_images, "max_fields": cfg.max_images + 8, "max_part_size": MAX_FIELD_BYTES},
    )
    async def predict(
        request: Request,
        file: list[UploadFile] | None = File(
            None, description="An image file (JPEG, PNG, WebP, GIF, BMP, TIFF); repeat the field for several images."
        ),
        url: list[str] | None = Form(
            None, description="An http(s) image URL (only when the server runs with --allow-urls); repeatable."
        ),
        top_k: int = Query(defaults.top_k, ge=1, description="Labels per image (capped at the number of classes)."),
        threshold: float = Query(
            defaults.threshold, ge=0, le=1, description="A top probability below this sets `low_confidence`."
        ),
    ) -> Response:
        """Top-k labels with probabilities for each image, in the order sent.

        The record of each image is the one of `imgclf predict --json`. An image that cannot be
        used gets its `error`; the request fails (4xx) only when no image could be predicted.
        """
        started = time.perf_counter()
        metrics.in_flight.inc()
        try:
            return await _predict(request, top_k, threshold)
        finally:
            metrics.in_flight.dec()
            metrics.request_seconds.observe(time.perf_counter() - started)

    async def _predict(request: Request, top_k: int, threshold: float) -> Response:
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            return _error(
                415,
                "unsupported_media_type",
                f"the body is {ctype or 'missing'!r}, not a form; send multipart/form-data with `file` fields "
                "(curl -F file=@photo.jpg ...)",
            )
        form = await request.form()  # already parsed (and limited) by FastAPI: the cached form
        items: list[InputItem] = []
        uploads: list[tuple[int, UploadFile]] = []
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
            return _error(
                403,
                "urls_disabled",
                "`url` fields are off on this server; upload the image as a `file` field, "
                "or start the server with --allow-urls",
            )
        if not items:
            want = "`file` fields" + (" or `url` fields" if cfg.allow_urls else "")
            got = f"; received field(s) {', '.join(repr(k) for k in other)}" if other else ""
            return _error(
                422, "missing_field", f"no image in the request: send one or more {want} (multipart/form-data){got}"
            )
        if len(items) > cfg.max_images:
            return _error(
                413,
                "too_many_images",
                f"{len(items)} images in one request, more than --max-images {cfg.max_images}; split the request",
            )
        batcher.expect(len(items))  # a batch forming now may wait for these (up to --max-delay-ms)
        announced = len(items)
        try:
            for i, upload in uploads:
                items[i].data = await upload.read()
            loaded = await load_all(items)
            ok = [i for i, a in enumerate(loaded) if isinstance(a, np.ndarray)]
            batcher.expect(-announced)
            announced = 0
            probs = None
            if ok:
                try:
                    probs = await batcher.predict(np.stack([loaded[i] for i in ok]))
                except BatcherClosed:
                    return _error(503, "stopping", "the server is stopping; retry on another instance")
        finally:
            if announced:
                batcher.expect(-announced)
        row = {i: r for r, i in enumerate(ok)}
        records = []
        first_error: ImageError | None = None
        for i, item in enumerate(items):
            a = loaded[i]
            if isinstance(a, ImageError):
                first_error = first_error or a
                metrics.images.labels("error").inc()
                metrics.image_errors.labels(a.reason).inc()
                records.append(error_prediction(item.name, a).to_dict())
            else:
                metrics.images.labels("predicted").inc()
                assert probs is not None
                records.append(
                    prediction_of(item.name, probs[row[i]], predictor.class_names, top_k, threshold).to_dict()
                )
        if ok:
            return JSONResponse({"predictions": records})
        assert first_error is not None
        reason = first_error.reason
        status = STATUS_BY_REASON.get(reason, DEFAULT_IMAGE_ERROR_STATUS)
        hint = _HINTS.get(reason, _DOWNLOAD_HINT if items[0].url is not None else "send another image")
        where = first_error.path
        text = f"{where}: {reason}" + (f" ({first_error.detail})" if first_error.detail else "")
        more = f"; {len(items) - 1} more image(s) failed too" if len(items) > 1 else ""
        return _error(status, reason, f"{text}{more}; {hint}", predictions=records)

    return app
