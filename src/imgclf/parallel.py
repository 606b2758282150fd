"""Thread-pool helpers shared by the stages that decode many images (prepare, clean, split,
evaluate, predict, explore).

Image decoding and resizing in Pillow release the GIL, so threads decode in parallel; the
number of threads and the "one batch ahead" pattern are defined once, here. Light imports only:
`imgclf predict` imports this on its cold-start path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
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
