"""What the endpoints of `imgclf serve` depend on: the server's state and the URL fetcher.

`ServeState` holds everything one server shares between requests -- the predictor, the
`ServeConfig`, the metrics, the micro-batcher, the decoding and download thread pools and the
URL fetcher -- and starts and stops them (the app's lifespan calls `start` and `stop`). The
endpoints receive it through the FastAPI dependency `get_state` (`State` in a signature).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request

from imgclf import __version__
from imgclf.config import ServeConfig
from imgclf.errors import ImageError
from imgclf.inputs import Fetch, InputItem, is_url, load_item
from imgclf.net import safety
from imgclf.net.image import fetch_image
from imgclf.parallel import default_workers
from imgclf.runtime import Predictor
from imgclf.serve.batcher import MicroBatcher
from imgclf.serve.metrics import ServeMetrics


# ---------------------------------------------------------------------------- URL fetching
def fetch_url(url: str, *, cfg: ServeConfig) -> bytes:
    """Downloads one image URL for the server: SSRF checks, then the scraper's safe downloader.

    Args:
        url: str. The `url` field of a request.
        cfg: ServeConfig. `allow_private_urls`, `max_bytes` (per download, in bytes) and
            `url_timeout` (seconds, the whole download) are used.

    Returns:
        bytes, the encoded image.

    Raises:
        ImageError: reason `"url_refused"` when the host (or a redirect's host) resolves to a
            non-public address and private URLs are not allowed, `"unsupported_scheme"` for a
            non-http(s) URL, `"connection_error"` for a host that does not resolve, and the
            downloader's own errors (`DownloadError`, an `ImageError`) otherwise.
    """
    if not is_url(url):
        raise ImageError(url, "unsupported_scheme", "only http:// and https:// URLs are fetched")
    session = None
    if not cfg.allow_private_urls:
        try:
            safety.check_url(url)
        except safety.UnsafeAddressError as exc:
            raise ImageError(url, "url_refused", exc.message) from None
        except (OSError, ValueError) as exc:  # socket.gaierror is an OSError
            raise ImageError(url, "connection_error", f"the host does not resolve ({exc})") from None
        session = safety.guarded_session()  # checks every connection again: redirects, DNS rebinding
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
    except safety.UnsafeAddressError as exc:
        raise ImageError(url, "url_refused", f"after a redirect: {exc.message}") from None
    finally:
        if session is not None:
            session.close()


def make_url_fetch(cfg: ServeConfig) -> Fetch:
    """The `url -> bytes` function of the server (`fetch_url` with `cfg`; picklable).

    Args:
        cfg: ServeConfig.

    Returns:
        callable `url -> bytes` (see `fetch_url` for what it raises).
    """
    return partial(fetch_url, cfg=cfg)


# ------------------------------------------------------------------------------- the state
@dataclass
class ServeState:
    """Everything one server shares between requests.

    Attributes:
        predictor: Predictor. The model served.
        cfg: ServeConfig. Limits, micro-batching, URL policy.
        metrics: ServeMetrics. The server's counters and histograms.
        batcher: MicroBatcher. Runs the model on images of concurrent requests together.
        fetch: callable `url -> bytes` or None. None when the server takes no URLs.
        workers: int. Threads decoding images (and as many downloading URLs).
        model_info: dict. The body of `GET /v1/model`.
        pools: dict str -> ThreadPoolExecutor. `"decode"` and `"download"`, while running.
    """

    predictor: Predictor
    cfg: ServeConfig
    metrics: ServeMetrics
    batcher: MicroBatcher
    fetch: Fetch | None
    workers: int
    model_info: dict[str, Any]
    pools: dict[str, ThreadPoolExecutor] = field(default_factory=dict)

    @classmethod
    def create(cls, predictor: Predictor, cfg: ServeConfig) -> ServeState:
        """The state of a server of `predictor` with `cfg` (nothing is started yet)."""
        metrics = ServeMetrics(cfg.max_batch)

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
        fetch = make_url_fetch(cfg) if cfg.allow_urls else None
        workers = cfg.workers or default_workers()
        return cls(predictor, cfg, metrics, batcher, fetch, workers, _model_info(predictor, cfg))

    async def start(self) -> None:
        """Starts the thread pools and the micro-batcher."""
        self.pools["decode"] = ThreadPoolExecutor(self.workers, thread_name_prefix="imgclf-decode")
        self.pools["download"] = ThreadPoolExecutor(self.workers, thread_name_prefix="imgclf-download")
        await self.batcher.start()

    async def stop(self) -> None:
        """Runs every image still queued, then stops the batcher and the thread pools."""
        await self.batcher.stop()  # in-flight requests are done (uvicorn waits for them first)
        for pool in self.pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    async def load(self, items: list[InputItem]) -> list[np.ndarray | ImageError]:
        """Loads the images of one request (`imgclf.inputs.load_item`) in the thread pools, in order."""
        loop = asyncio.get_running_loop()
        spec = self.predictor.spec
        jobs = [
            loop.run_in_executor(
                self.pools["download" if it.url is not None else "decode"], load_item, it, spec, self.fetch
            )
            for it in items
        ]
        return list(await asyncio.gather(*jobs))


def _model_info(predictor: Predictor, cfg: ServeConfig) -> dict[str, Any]:
    """The body of `GET /v1/model`."""
    return {
        "kind": predictor.kind,
        "run_name": predictor.run_name,
        "model_file": predictor.source.name,
        "class_names": predictor.class_names,
        "input_spec": predictor.describe()["input_spec"],
        "imgclf_version": __version__,
        "limits": {
            "max_batch": cfg.max_batch,
            "max_delay_ms": cfg.max_delay_ms,
            "max_bytes": cfg.max_bytes,
            "max_images": cfg.max_images,
            "allow_urls": cfg.allow_urls,
        },
    }


def get_state(request: Request) -> ServeState:
    """FastAPI dependency: the `ServeState` of the app that received `request`."""
    return request.app.state.serve


#: An endpoint parameter annotated `State` receives the server's `ServeState`.
State = Annotated[ServeState, Depends(get_state)]
