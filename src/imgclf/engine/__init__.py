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

A map function must be a module-level function (or a `functools.partial` of one) so that a
process pool or a cluster can pickle it; it must not print, read globals that a stage sets, or
write anything except the output file that is its item's own (prepare's resized image).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from imgclf.engine.local import LocalExecutor

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["ENGINES", "Executor", "LocalExecutor", "make_executor"]

#: Engines a stage accepts (`--engine`).
ENGINES: tuple[str, ...] = ("local",)


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


def make_executor(engine: str = "local", workers: int | None = None, *, kind: str = "thread") -> Executor:
    """Returns the executor a stage's map runs on.

    Args:
        engine: str, default "local". One of `ENGINES`.
        workers: int or None, default None. Items at once; None = `imgclf.parallel.default_workers()`.
        kind: str, default "thread". For `"local"`: `"thread"` or `"process"`.

    Returns:
        Executor.

    Raises:
        ValueError: if `engine` or `kind` is not an allowed value.
    """
    if engine == "local":
        return LocalExecutor(workers, kind=kind)
    raise ValueError(f"engine must be one of {ENGINES}, received engine={engine!r}")
