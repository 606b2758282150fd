"""Micro-batching: images from concurrent requests gathered into one model call.

A model call on a batch of 32 images costs far less than 32 calls on one image (the per-call
overhead and the matrix kernels' efficiency dominate on CPU), so a server that answers each
request with its own call wastes most of its time when requests arrive together. The
`MicroBatcher` is the dynamic batching of TensorFlow Serving, Triton and Ray Serve's
`@serve.batch`: requests put their images in one queue; a batch is run when `max_batch` images
are waiting, or when the oldest waiting image has waited `max_delay_ms`, whichever comes first;
while a batch runs, the next one fills. Each request gets back its own rows, in the order it
sent its images.

The wait is only spent when it can pay: callers announce the images they are still decoding
(`expect`), and when no announced image is on its way the queued ones run at once -- a lone
request is not held `max_delay_ms` for company that is not coming.

The model runs in one worker thread (one call at a time: the model's runtime already uses every
core inside a call), so the event loop keeps accepting, parsing and decoding meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("imgclf.serve")


class BatcherClosed(RuntimeError):
    """The batcher is not running (not started yet, or shutting down)."""


@dataclass
class _Pending:
    image: np.ndarray
    future: asyncio.Future
    arrived: float  # event-loop time, seconds


class MicroBatcher:
    """Gathers images from concurrent callers into batches for one model function.

    Args:
        predict: callable `(batch, size, size, 3) uint8 array -> (batch, num_classes) array`.
            Called in the batcher's worker thread, one call at a time.
        max_batch: int >= 1, default 32. Most images per call. 1 = no micro-batching (each
            image is its own call).
        max_delay_ms: float >= 0, default 10. Longest wait, in milliseconds, of the oldest
            queued image for its batch to fill; 0 runs whatever is queued at once.
        on_batch: callable `(batch_size, seconds) -> None` or None. Told about every model call
            (for metrics).
        on_queue: callable `(images_waiting) -> None` or None. Told when the queue changes.

    Raises:
        ValueError: if `max_batch` < 1 or `max_delay_ms` < 0.

    Example:
        >>> batcher = MicroBatcher(predictor.predict_batch, max_batch=32, max_delay_ms=10)
        >>> await batcher.start()
        >>> probs = await batcher.predict(images)   # (n, num_classes), rows in input order
        >>> await batcher.stop()                    # runs what is queued, then returns
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int = 32,
        max_delay_ms: float = 10.0,
        on_batch: Callable[[int, float], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, received max_batch={max_batch}")
        if max_delay_ms < 0:
            raise ValueError(f"max_delay_ms must be >= 0, received max_delay_ms={max_delay_ms}")
        self.max_batch = int(max_batch)
        self.max_delay = float(max_delay_ms) / 1000.0
        self._predict = predict
        self._on_batch = on_batch or (lambda n, s: None)
        self._on_queue = on_queue or (lambda n: None)
        self._pending: deque[_Pending] = deque()
        self._arrived: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._expected = 0  # images announced by `expect` and not submitted yet
        self.batches = 0  # model calls made
        self.images = 0  # images predicted

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._task is not None and not self._closing and not self._task.done()

    async def start(self) -> None:
        """Starts the batching task on the running event loop (call once)."""
        if self._task is not None:
            raise RuntimeError("MicroBatcher.start() was already called")
        self._arrived, self._changed = asyncio.Event(), asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgclf-model")
        self._task = asyncio.create_task(self._run(), name="imgclf-batcher")
        self._task.add_done_callback(self._ended)

    def expect(self, n: int) -> None:
        """Announces `n` images about to be submitted (being read or decoded); negative withdraws.

        While announced images are on their way, a batch that is not full waits for them (up to
        `max_delay_ms` for its oldest image); when none is, it runs at once. A caller
        withdraws what it announced right before `predict` (or when it gives up).

        Args:
            n: int. Images announced (> 0) or withdrawn (< 0).
        """
        self._expected = max(0, self._expected + int(n))
        if self._changed is not None and self._expected == 0:
            self._changed.set()  # wake the batching task: nothing more to wait for

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of `images`, computed in batches shared with other callers.

        Args:
            images: np.ndarray `(n, size, size, 3)` uint8 (or a sequence of `(size, size, 3)`
                arrays), raw RGB in [0, 255], n >= 1.

        Returns:
            np.ndarray `(n, num_classes)`: row i is the prediction of `images[i]`.

        Raises:
            BatcherClosed: if the batcher is not running.
            Exception: whatever the model function raised for a batch holding these images.
        """
        if not self.running:
            raise BatcherClosed("the prediction queue is not running (the server is starting or stopping)")
        assert self._arrived is not None and self._changed is not None
        loop = asyncio.get_running_loop()
        now = loop.time()
        futures = []
        for image in images:
            fut = loop.create_future()
            self._pending.append(_Pending(image, fut, now))
            futures.append(fut)
        self._on_queue(len(self._pending))
        self._arrived.set()
        self._changed.set()  # wake the batching task: the batch may now be full
        rows = await asyncio.gather(*futures)
        return np.stack(rows)

    async def stop(self) -> None:
        """Stops taking images, runs every queued one (without waiting for batches to fill), and
        shuts the worker thread down. Safe to call twice."""
        self._closing = True
        if self._task is not None:
            assert self._arrived is not None and self._changed is not None
            self._arrived.set()
            self._changed.set()
            try:
                await self._task
            except Exception:  # noqa: BLE001 - already logged by _ended
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # ----------------------------------------------------------------------------- internals
    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        while self._pending and len(batch) < self.max_batch:
            p = self._pending.popleft()
            if not p.future.done():  # a caller that went away (cancelled) is skipped
                batch.append(p)
        self._on_queue(len(self._pending))
        return batch

    async def _run(self) -> None:
        assert self._arrived is not None and self._changed is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            wait = self._pending[0].arrived + self.max_delay - loop.time()
            if len(self._pending) < self.max_batch and wait > 0 and self._expected > 0 and not self._closing:
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    pass
                continue  # look again: more images, a full batch, nothing more expected, or time is up
            batch = self._take()
            if batch:
                await self._run_batch(batch, loop)

    async def _run_batch(self, batch: list[_Pending], loop: asyncio.AbstractEventLoop) -> None:
        images = np.stack([p.image for p in batch])
        start = time.perf_counter()
        try:
            probs = await loop.run_in_executor(self._executor, self._predict, images)
            probs = np.asarray(probs)
            if probs.shape[0] != len(batch):
                raise RuntimeError(f"the model returned {probs.shape[0]} rows for a batch of {len(batch)} images")
        except Exception as exc:  # noqa: BLE001 - handed to every caller of this batch
            log.error("model call failed on a batch of %d images: %s: %s", len(batch), type(exc).__name__, exc)
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        self.batches += 1
        self.images += len(batch)
        self._on_batch(len(batch), time.perf_counter() - start)
        for p, row in zip(batch, probs):
            if not p.future.done():
                p.future.set_result(row)

    def _ended(self, task: asyncio.Task) -> None:
        """If the batching task ever dies, nobody may wait forever: fail what is queued."""
        self._closing = True
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error("the micro-batcher stopped: %s: %s", type(exc).__name__, exc)
        while self._pending:
            p = self._pending.popleft()
            if not p.future.done():
                p.future.set_exception(BatcherClosed("the prediction queue stopped"))
