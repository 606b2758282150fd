"""Thread helpers shared by the stages that decode many images (prepare, clean, split,
evaluate, predict, explore).

Image decoding and resizing in Pillow release the GIL, so threads decode in parallel; the
number of threads and the "one batch ahead" pattern are defined once, here:

- `default_workers()`: the thread count when the user gave none (also the engine's default).
- `batched_ahead(results, batch_size)`: groups any iterator of results -- e.g. an
  `imgclf.engine` executor's `map` -- into batches, gathering batch i + 1 in a background
  thread while the caller works on batch i (`imgclf predict` runs the model there).
- `threaded_batches(fn, items, batch_size)`: the same over a plain thread pool, for
  `imgclf.inputs.iter_batches`, which sits below the engine in the layers and cannot use it.

This module is at the bottom of the package's layers (it imports nothing of imgclf). Light
imports only: `imgclf predict` imports this on its cold-start path.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_DEFAULT_WORKERS = 8  # more threads than this rarely helps decoding; it only adds memory


def default_workers() -> int:
    """Decoding / download threads when the user gave none.

    Returns:
        int: `min(8, 2 x os.cpu_count())`, at least 2. Twice the CPUs because part of each
        task waits on disk or network rather than computing.
    """
    return min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 1) * 2)


def threaded_batches(
    fn: Callable[[T], R], items: Sequence[T], batch_size: int, workers: int | None = None
) -> Iterator[tuple[Sequence[T], list[R]]]:
    """Applies `fn` to `items` in a thread pool, batch by batch, one batch ahead of the consumer.

    While the caller works on batch i (e.g. runs the model on it), the pool already computes
    batch i + 1, so at most two batches of results are in memory whatever `len(items)` is.

    Args:
        fn: callable `item -> result`. Runs in worker threads; it should return errors as
            values (an exception it raises is raised again here, in the consumer).
        items: sequence. Processed in order.
        batch_size: int, >= 1. Items per batch.
        workers: int or None, default None. Threads; None = `default_workers()`.

    Yields:
        tuple `(chunk, results)`: the slice of `items` and `fn` of each, in the same order.

    Raises:
        ValueError: if `batch_size` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, received batch_size={batch_size}")
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    if not chunks:
        return
    with ThreadPoolExecutor(max(1, workers or default_workers())) as pool:
        pending = pool.map(fn, chunks[0])
        for i, chunk in enumerate(chunks):
            results = list(pending)
            if i + 1 < len(chunks):
                pending = pool.map(fn, chunks[i + 1])
            yield chunk, results


def batched_ahead(results: Iterable[R], batch_size: int) -> Generator[list[R], None, None]:
    """Groups `results` into lists of `batch_size`, the next one gathered while the caller works.

    A background thread pulls `results` (e.g. `executor.map(fn, items)` of `imgclf.engine`,
    whose workers then keep decoding) into batch i + 1 while the caller works on batch i (e.g.
    runs the model on it), and waits there: at most two batches, plus what the executor keeps
    in flight, are in memory whatever the number of items.

    Args:
        results: iterable. Pulled in order, from one background thread only.
        batch_size: int >= 1. Results per batch (the last batch may hold fewer).

    Yields:
        list of results, in order.

    Raises:
        ValueError: if `batch_size` < 1.
        Exception: whatever pulling `results` raised, raised again here once the batches before
            it have been yielded.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, received batch_size={batch_size}")
    ready: queue.SimpleQueue[tuple[list[R] | None, Exception | None]] = queue.SimpleQueue()
    may_gather = threading.Semaphore(1)  # released each time the caller takes a batch
    stop = threading.Event()
    gatherer = threading.Thread(
        target=_gather, args=(iter(results), batch_size, ready, may_gather, stop), name="imgclf-batches", daemon=True
    )
    gatherer.start()
    try:
        while True:
            batch, error = ready.get()
            may_gather.release()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
    finally:  # the caller is done (or stopped early): let the gatherer finish its batch and end
        stop.set()
        gatherer.join()


def _gather(
    it: Iterator[R],
    batch_size: int,
    ready: queue.SimpleQueue[tuple[list[R] | None, Exception | None]],
    may_gather: threading.Semaphore,
    stop: threading.Event,
) -> None:
    """The background side of `batched_ahead`: one batch at a time, then an end marker."""
    end: tuple[list[R] | None, Exception | None] = (None, None)
    try:
        while True:
            while not may_gather.acquire(timeout=0.05):
                if stop.is_set():
                    return
            batch = [] if stop.is_set() else list(itertools.islice(it, batch_size))
            if not batch:
                return
            ready.put((batch, None))
    except Exception as exc:  # noqa: BLE001 - not swallowed: raised again in the caller's thread
        end = (None, exc)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # a generator (e.g. an executor's map): cancels what has not started
        ready.put(end)
