"""Where a stage's per-item work runs: the executor interface.

Every data stage is map -> reduce -> apply (docs/architecture.md). The map is a pure, picklable
function of one item and the stage config, returning a small typed record; the stage hands it
to an `Executor`, which runs it over all items and gives the records back **in item order**, so
the reduce that follows sees the same input whatever ran the map. The driver -- the process
that called the stage -- consumes the records as they come (progress bars, counting) and never
shares state with the workers.

Executors:
- `LocalExecutor` (`imgclf.engine.local`): a thread pool (Pillow and OpenCV release the GIL
  while they decode and resize) or a process pool, on this machine.
- `RayExecutor` (`imgclf.engine.ray`): Ray Data tasks (`map_batches`) over blocks of items on
  a Ray cluster (or a Ray started on this machine); Ray is imported only when this engine is
  chosen, so `imgclf --help` and the local engine never load it. docs/scale.md says how to
  run it.

Besides `map`, an executor has `require(read, write)` -- checks that the folders a stage reads
and writes are visible where the map runs (a no-op on this machine; on a cluster every node is
asked) -- and `close()`.

A map function must be a module-level function (or a `functools.partial` of one) so that a
process pool or a cluster can pickle it; it must not print, read globals that a stage sets, or
write anything except the output file that is its item's own (prepare's resized image).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from imgclf.engine.local import LocalExecutor

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ENGINES", "Executor", "LocalExecutor", "make_executor"]

#: Engines a stage accepts (`--engine`).
ENGINES: tuple[str, ...] = ("local", "ray")


class Executor(Protocol):
    """Runs a pure function over items, results in item order.

    Attributes:
        name: str. The engine's name as a report records it (`"local"`).
        workers: int. How many items run at once.
    """

    name: str
    workers: int

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Applies `fn` to every item; yields the results in the order of `items`.

        Args:
            fn: picklable callable `item -> record`.
            items: iterable of picklable items.

        Yields:
            `fn(item)` for each item, in order. An exception raised by `fn` is raised here, in
            the driver, when its result is reached.
        """
        ...

    def require(self, read: Sequence[str | os.PathLike] = (), write: Sequence[str | os.PathLike] = ()) -> None:
        """Checks that the map's workers see the folders `read` and can write into `write`.

        Raises:
            DataError: a worker cannot see one, naming it.
        """
        ...

    def close(self) -> None:
        """Releases what the executor holds (a cluster connection it opened)."""
        ...


def make_executor(
    engine: str = "local",
    workers: int | None = None,
    *,
    kind: str = "thread",
    address: str | None = None,
    threads: int = 2,
) -> Executor:
    """Returns the executor a stage's map runs on.

    Args:
        engine: str, default "local". One of `ENGINES`.
        workers: int or None, default None. `"local"`: items at once; None =
            `imgclf.parallel.default_workers()`. Not used by `"ray"` (the cluster's CPUs decide).
        kind: str, default "thread". For `"local"`: `"thread"` or `"process"`.
        address: str or None, default None. For `"ray"`: the cluster (`--ray-address`); None =
            `RAY_ADDRESS`, else a Ray started on this machine.
        threads: int >= 1, default 2. For `"ray"`: threads per task of one CPU (one computes
            while the other waits on the disk; more for maps that wait on the network).

    Returns:
        Executor. Call its `close()` when the stage is done (or use it as a context manager).

    Raises:
        ValueError: if `engine` or `kind` is not an allowed value.
        EngineError: `"ray"` without Ray installed, or a cluster that cannot be reached.
    """
    if engine == "local":
        return LocalExecutor(workers, kind=kind)
    if engine == "ray":
        from imgclf.engine.ray import RayExecutor  # imports Ray when it connects

        return RayExecutor(address, threads=threads)
    raise ValueError(f"engine must be one of {ENGINES}, received engine={engine!r}")
