"""`ServeConfig`: the settings of `imgclf serve` (validated once, by pydantic).

Kept in its own module for now; it belongs next to the other stage configs in
`imgclf.config` (and as a `serve:` section of `RunConfig`).
"""

from __future__ import annotations

from pydantic import Field

from imgclf.config import StrictModel


class ServeConfig(StrictModel):
    """`imgclf serve`: the HTTP prediction server.

    Attributes:
        host: str, default "127.0.0.1". Address to bind; "0.0.0.0" listens on every interface
            (then anyone who can reach the machine can use the model).
        port: int in [0, 65535], default 8000. TCP port; 0 = a free port chosen by the system
            (the URL printed on start says which).
        max_batch: int >= 1, default 32. Most images per model call (micro-batching); 1 turns
            micro-batching off.
        max_delay_ms: float >= 0, default 10. Longest time, in milliseconds, an image waits for
            its batch to fill before the batch is run anyway.
        max_bytes: int >= 1, default 20,000,000. Largest request body, in bytes (files, URLs
            and multipart overhead together); larger requests get HTTP 413 without being read.
        max_images: int >= 1, default 64. Most images (file and url fields) in one request;
            more get HTTP 413.
        allow_urls: bool, default False. Accept `url` fields, downloaded by the scraper's safe
            downloader.
        allow_private_urls: bool, default False. Also fetch URLs whose host resolves to a
            loopback, private, link-local, multicast or reserved address (off: refused, HTTP
            403, as server-side request forgery protection).
        prefer_export: bool, default False. For a run folder, serve its ONNX (else TFLite)
            export from `RUN/export/` when there is one: no TensorFlow is imported.
        workers: int >= 1 or None, default None (`imgclf.parallel.default_workers()`). Threads
            decoding uploaded images, and as many downloading URLs.
        url_timeout: float > 0, default 20. Time budget of one URL download in seconds, all
            tries and redirects included.
        graceful_timeout: float > 0, default 30. On SIGTERM / Ctrl+C, seconds to wait for
            requests in flight to finish before they are cancelled.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_batch: int = Field(default=32, ge=1, le=4096)
    max_delay_ms: float = Field(default=10.0, ge=0, le=60_000)
    max_bytes: int = Field(default=20_000_000, ge=1)
    max_images: int = Field(default=64, ge=1, le=10_000)
    allow_urls: bool = False
    allow_private_urls: bool = False
    prefer_export: bool = False
    workers: int | None = Field(default=None, ge=1, le=256, json_schema_extra={"default_text": "min(8, 2 x CPUs)"})
    url_timeout: float = Field(default=20.0, gt=0, le=600)
    graceful_timeout: float = Field(default=30.0, gt=0, le=3600)
