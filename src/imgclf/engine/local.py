"""The executor of one machine: a thread pool or a process pool with a bounded window."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor as _PoolExecutor
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

from imgclf.parallel import default_workers

T = TypeVar("T")
R = TypeVar("R")

#: Items in flight per worker: enough to keep every worker busy while the driver consumes (on a
#: busy machine the driver is not scheduled for a while: with 4 a worker, `prepare` of 10,000
#: images took 1.31x the wall time of submitting them all at once, with 64 it took 0.95x;
#: docs/benchmarks.md), few enough that the records waiting in memory stay small whatever the
#: number of items.
WINDOW_PER_WORKER = 64

KINDS: tuple[str, ...] = ("thread", "process")


class LocalExecutor:
    """Runs a map on this machine, in threads or processes, results in item order.

    Unlike `concurrent.futures.Executor.map`, which submits every item at once, at most
    `workers * WINDOW_PER_WORKER` items are in flight, so 10 million files cost no more memory
    than a few hundred.

    Args:
        workers: int or None, default None. Items at once; None = `imgclf.parallel.default_workers()`.
        kind: str, default "thread". `"thread"` (decoding in Pillow / OpenCV releases the GIL)
            or `"process"` (pure-Python work; `fn` and items must pickle).

    Raises:
        ValueError: if `kind` is not one of `KINDS` or `workers` < 1.
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, kind: str = "thread"):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, received kind={kind!r}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1 or None, received workers={workers}")
        self.workers = workers or default_workers()
        self.kind = kind

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def require(self, read: Sequence[str | os.PathLike] = (), write: Sequence[str | os.PathLike] = ()) -> None:
        """Nothing to check: the map runs in this process, which sees what the driver sees."""

    def close(self) -> None:
        """Nothing to release: each `map` call owns its pool."""

    def _pool(self) -> _PoolExecutor:
        if self.kind == "process":
            return ProcessPoolExecutor(self.workers)
        return ThreadPoolExecutor(self.workers)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Applies `fn` to every item; yields results in the order of `items` (see `Executor.map`)."""
        window = self.workers * WINDOW_PER_WORKER
        pending: deque[Future[R]] = deque()
        with self._pool() as pool:
            try:
                for item in items:
                    pending.append(pool.submit(fn, item))
                    if len(pending) >= window:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # the consumer stopped early or an item failed: drop what has not started
                for f in pending:
                    f.cancel()
