"""What `imgclf serve` counts, in the Prometheus text exposition format (`GET /v1/metrics`).

Built on the official `prometheus_client` library, with one registry per app (never the
process-global one), so several servers in one process -- tests, a benchmark -- count apart.

Metrics (all prefixed `imgclf_`):

- `imgclf_requests_total{endpoint, status}`: answered requests, by endpoint and HTTP status.
- `imgclf_images_total{outcome}`: images received, `outcome` = `"predicted"` or `"error"`.
- `imgclf_image_errors_total{reason}`: images that could not be used, by reason
  (`"not_an_image"`, `"decompression_bomb"`, `"url_refused"`, ...).
- `imgclf_batch_size`: histogram of images per model call (micro-batching at work: a server
  under concurrent load shows batches larger than 1).
- `imgclf_batch_seconds`: histogram of the duration of one model call, in seconds.
- `imgclf_request_seconds`: histogram of `POST /v1/predict` latency, in seconds.
- `imgclf_queue_images`: images waiting for a batch now.
- `imgclf_requests_in_flight`: `POST /v1/predict` requests being handled now.

`CountRequests` is the ASGI middleware that counts every answer, refusals included.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Media type of `ServeMetrics.render()` output (Prometheus text format 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def batch_buckets(max_batch: int) -> tuple[float, ...]:
    """Histogram buckets for batch sizes: 1, 2, 4, ... up to `max_batch`, and `max_batch` itself.

    Args:
        max_batch: int >= 1. The largest batch the server forms.

    Returns:
        tuple of float, ascending, ending with `max_batch`.
    """
    out, b = [], 1
    while b < max_batch:
        out.append(float(b))
        b *= 2
    out.append(float(max_batch))
    return tuple(out)


class ServeMetrics:
    """The counters and histograms of one server.

    Args:
        max_batch: int >= 1. Sets the `imgclf_batch_size` buckets (see `batch_buckets`).
    """

    def __init__(self, max_batch: int):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "imgclf_requests", "Answered requests, by endpoint and HTTP status.", ["endpoint", "status"], registry=r
        )
        self.images = Counter(
            "imgclf_images", "Images received, by outcome (predicted / error).", ["outcome"], registry=r
        )
        self.image_errors = Counter(
            "imgclf_image_errors", "Images that could not be used, by reason.", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "imgclf_batch_size", "Images per model call (micro-batching).", buckets=batch_buckets(max_batch), registry=r
        )
        self.batch_seconds = Histogram(
            "imgclf_batch_seconds", "Duration of one model call, in seconds.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.request_seconds = Histogram(
            "imgclf_request_seconds", "POST /v1/predict latency, in seconds.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.queue_images = Gauge("imgclf_queue_images", "Images waiting for a batch.", registry=r)
        self.in_flight = Gauge("imgclf_requests_in_flight", "POST /v1/predict requests being handled.", registry=r)

    def render(self) -> bytes:
        """The metrics in the Prometheus text exposition format (media type `CONTENT_TYPE`)."""
        return generate_latest(self.registry)


class CountRequests:
    """Pure ASGI middleware: counts answered requests by endpoint and status (`imgclf_requests_total`).

    Args:
        app: ASGI app.
        metrics: ServeMetrics.
        endpoints: frozenset of str. Paths counted under their own name; any other path is
            counted as `"other"` (so scanning for URLs cannot grow the label set).
    """

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, endpoints: frozenset[str]):
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        path = scope.get("path", "")
        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.requests.labels(path if path in self.endpoints else "other", str(status[0])).inc()
