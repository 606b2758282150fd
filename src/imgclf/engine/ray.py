"""The executor of a Ray cluster: a stage's map as Ray Data tasks over blocks of items, in item order.

`RayExecutor.map(fn, items)` runs the map with Ray Data (`ray.data`), the per-item engine of
Ray, and yields the results block after block **in item order** -- the contract of
`imgclf.engine.Executor`, so the reduce and the apply that follow are the same code on any
engine and give the same answer:

- the items become a dataset: the driver reads them a block (`block_size`, at most
  `MAX_BLOCK`) at a time into Arrow tables of rows `(pos, item)` -- the item pickled, its
  position among all items -- put into the object store (`ray.data.from_arrow_refs`); the driver
  holds one block and the references. Ray Data starts from blocks it is given or reads itself,
  not from an iterator the driver is still reading: the items are all read before the first
  task starts (every stage passes a list it has already listed);
- `map_batches(batch_size=block size)` runs `fn` over each block's items in one task of one CPU
  (`threads` threads in it) on any node, and returns the block's records pickled, one row per
  block (Arrow holds bytes, not our dataclasses of numpy arrays);
- the `DataContext` keeps item order (`execution_options.preserve_order`), raises `fn`'s own
  exception (`raise_original_map_exception`), and prints nothing: no progress bars, no start or
  statistics lines, Ray Data's log lines only in its log file (`quiet_ray_data`), so the user
  sees one bar per stage, imgclf's;
- the driver streams the output blocks as they complete (`iter_internal_ref_bundles`); the
  stage's progress bar advances block by block. Ray Data schedules the tasks and bounds what
  waits in the object store (its backpressure), where the first version of this executor kept
  its own window of blocks.

`keep=Kept(split)` (`clean`'s signatures, `audit`'s pixels): the batch task returns `split`'s
light records and its part as two columns; for each output block a small task
(`_take_parts`, next to the block) returns the light records to the driver and each part as a
return of its own, `Kept.refs`. Each part is thus a normal task output, made again from its
lineage -- the part task, and the Ray Data task before it -- when its node is lost and a later
task needs it (tested: a node removed after the map, its parts read again). The output block
they came from is freed once the part task has run.

Faults: a task whose worker or node dies is run again by Ray (`max_retries`, default
`DEFAULT_RETRIES`; given to Ray Data as its `ray_remote_args`, which Ray 2.60 marks deprecated
for Ray 2.64; the maps are pure, so a retried block gives the same records); after the
retries an `EngineError` names the stage's function. An exception raised by `fn` itself is
raised again in the driver as it is (the map returns errors as records, so this is a bug);
Ray Data stops the dataset then, so the blocks after the failing one are not yielded.
Items are pickled with Ray's cloudpickle: an ObjectRef inside an item would be serialized out
of band, which Ray allows by pinning its object until the driver exits (Ray's docs call this an
anti-pattern), so references a map needs travel inside `fn` (a `functools.partial`), which Ray
serializes with their reference counts (`audit`'s embedding: `imgclf.audit.load.embed_held`).

Paths: a map's items hold the paths the driver listed, often relative to its working folder,
so each block runs in the driver's working folder (`os.chdir` in the worker). The folders must
be the same on every node (a filesystem every node mounts at the same path): `require` checks
this before a stage starts (an input read, an output written by the workers) and names the
node that cannot see one.

Connecting: `connect(address)` -- `address` (`--ray-address`), else Ray's own `RAY_ADDRESS`,
else a Ray started on this machine for the command (loopback only, stopped at the end). Ray
is imported here only, and only when the engine is `ray`: `imgclf --help` never loads it.

For multi-worker training: `connect` and `place_actors` (N actors, one per bundle of a
placement group spread over the nodes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar, cast

from imgclf import __version__
from imgclf.engine.head import auth_hint, watch_head
from imgclf.errors import DataError, EngineError
from imgclf.fsutil import VISIBILITY_MARKER

T = TypeVar("T")
R = TypeVar("R")

#: How to get Ray, in the one-line error when it is missing.
INSTALL_HINT = "pip install 'imgclf[ray]'"
#: Items per block (one Ray task) at most; fewer when there are few items per CPU.
MAX_BLOCK = 256
#: Items per block at least (when there are enough items).
MIN_BLOCK = 4
#: Blocks per cluster CPU at least (when there are enough items): every CPU has work and the
#: progress bar moves in steps of at most a quarter of a CPU's share.
WINDOW_PER_CPU = 4
#: Tasks Ray Data may have submitted per cluster CPU (its CPU budget): 2 keeps one waiting at
#: each CPU, so no CPU idles while the driver's scheduling loop waits for its turn on a busy
#: machine.
QUEUED_PER_CPU = 2
#: Extra runs of a block whose worker or node died (`max_retries` of the task).
DEFAULT_RETRIES = 3
#: Seconds to wait for a TCP connection to the cluster's address before giving up.
CONNECT_TIMEOUT = 5.0
#: Seconds a node may take to answer the path check of `require`.
PROBE_TIMEOUT = 120.0

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_REMOTE: dict[str, Any] = {}  # the remote functions, made once per process (Ray is imported lazily)


def import_ray() -> Any:
    """Imports Ray, or raises `EngineError` saying how to install it.

    Returns:
        The `ray` module.

    Raises:
        EngineError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise EngineError(
            "--engine ray needs Ray, which is not installed", f"{INSTALL_HINT}, or use --engine local"
        ) from None
    return ray


def resolve_address(address: str | None = None) -> str | None:
    """The cluster to connect to: `address`, else `RAY_ADDRESS`, else None (start one here).

    Args:
        address: str or None. `host:port` of the cluster's head (GCS), or `ray://host:port`.

    Returns:
        str or None.
    """
    return address or os.environ.get("RAY_ADDRESS") or None


def _host_port(address: str) -> tuple[str, int]:
    """`(host, port)` of `host:port` or `ray://host:port`; `EngineError` when it is neither."""
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise EngineError(
            f"Ray address {address!r} is not host:port",
            "e.g. --ray-address 10.0.0.5:6379 (the port `ray start --head` printed)",
        )
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """Fails fast, in one line, when nothing listens at `address` (Ray itself waits minutes)."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise EngineError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}",
            "start it (`ray start --head` on the head node), fix --ray-address / RAY_ADDRESS, or use --engine local",
        ) from None


def connect(address: str | None = None, *, num_cpus: int | None = None) -> tuple[Any, bool]:
    """Connects this process to a Ray cluster, or starts a Ray on this machine.

    Where: `address`, else `RAY_ADDRESS`, else a new Ray on this machine (loopback only, with
    `num_cpus` CPUs). A process already connected stays connected to its cluster.

    Args:
        address: str or None, default None. `host:port` of the head node, or `ray://host:port`.
        num_cpus: int or None, default None. CPUs of a Ray started here (None = all).

    Returns:
        tuple `(ray, started)`: the `ray` module, and True when this call connected (so the
        caller disconnects with `ray.shutdown()` when done).

    Raises:
        EngineError: Ray is not installed, or the cluster cannot be reached.
    """
    target = resolve_address(address)
    if target is None or _host_port(target)[0] in _LOOPBACK:
        # one machine: every Ray process on loopback (read by Ray when it is imported)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    if target is not None:
        _check_reachable(target)
    try:
        if target is None:
            # a Ray of this command only, on loopback, with token authentication on: Ray's line
            # announcing it (how to opt out) is not for imgclf's user
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=target, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = target or "this machine"
        raise EngineError(
            f"cannot connect to the Ray cluster at {where}: {' '.join(str(exc).split())[:200]}",
            "check the cluster (`ray status`) and that it runs the same Ray and Python versions, or use --engine local"
            + (auth_hint() if target is not None else ""),
        ) from None
    return ray, True


def _run_block(fn: Callable[[T], R], items: list[T], cwd: str, threads: int) -> list[R]:
    """`fn` over `items` in order, in the driver's folder `cwd`, on `threads` threads."""
    if cwd and os.getcwd() != cwd:
        with contextlib.suppress(OSError):  # a folder this node lacks: `require` names it
            os.chdir(cwd)
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        return list(pool.map(fn, items))


def _run_batch(
    batch: Any, *, fn: Callable[[Any], Any], cwd: str, threads: int, split: Callable[[list[Any], int], Any] | None
) -> Any:
    """The batch UDF of `RayExecutor.map` (a Ray Data task): `fn` over the batch's items.

    `batch` is a pyarrow Table of rows `(pos, item)` (an item pickled, its position among all
    items), consecutive positions. Returns a one-row table: the batch's first position and its
    records pickled (`records`), or with `split`, the records `split` returns (`light`) and
    the part it leaves in the object store (`part`), each pickled.
    """
    import pyarrow as pa
    from ray import cloudpickle

    positions = batch.column("pos").to_numpy()
    start = int(positions[0]) if len(positions) else 0
    if len(positions) and int(positions[-1]) - start != len(positions) - 1:
        raise RuntimeError(f"Ray Data gave a batch of items out of order (positions {start}..{positions[-1]})")
    items = [cloudpickle.loads(b) for b in batch.column("item").to_pylist()]
    records = _run_block(fn, items, cwd, threads)
    if split is None:
        return pa.table({"start": [start], "records": pa.array([cloudpickle.dumps(records)], pa.binary())})
    light, part = split(records, start)
    return pa.table(
        {
            "start": [start],
            "light": pa.array([cloudpickle.dumps(light)], pa.binary()),
            "part": pa.array([cloudpickle.dumps(part)], pa.binary()),
        }
    )


def _records_of(table: Any) -> list[Any]:
    """The records of an output block of `_run_batch` (without `split`), in order."""
    from ray import cloudpickle

    return [r for b in table.column("records").to_pylist() for r in cloudpickle.loads(b)]


def _take_parts(table: Any) -> tuple[Any, ...]:
    """A task on an output block of `_run_batch` with `split`: `((starts, records), part, ...)`,
    the light records for the driver and each batch's part as a return of its own."""
    from ray import cloudpickle

    starts = [int(s) for s in table.column("start").to_pylist()]
    light = [r for b in table.column("light").to_pylist() for r in cloudpickle.loads(b)]
    parts = [cloudpickle.loads(b) for b in table.column("part").to_pylist()]
    return (starts, light), *parts


def _num_rows(table: Any) -> int:
    """Rows of a block (when Ray Data's metadata does not say)."""
    return int(table.num_rows)


def _probe(paths: list[str], markers: list[str], cwd: str) -> tuple[list[str], str]:
    """The paths (and output markers) a node cannot see from the driver's folder `cwd`, and
    the version of imgclf the node runs."""
    from imgclf import __version__

    with contextlib.suppress(OSError):
        os.chdir(cwd)
    missing = [p for p in paths if not os.path.exists(p)] + [m for m in markers if not os.path.isfile(m)]
    return missing, __version__


def _remote(ray: Any, name: str) -> Any:
    """The Ray remote function of `name` (`take_parts`, `num_rows`, `probe`), made once per process."""
    if name not in _REMOTE:
        fns: dict[str, Callable[..., Any]] = {"take_parts": _take_parts, "num_rows": _num_rows, "probe": _probe}
        _REMOTE[name] = ray.remote(fns[name])
    return _REMOTE[name]


def quiet_ray_data() -> Any:
    """Sets this process's Ray Data options for the maps; returns its `DataContext`.

    Item order kept (`preserve_order`); `fn`'s own exception raised as it was; Ray Data's
    progress bars, start and end lines and statistics off, and its log lines kept out of the
    terminal (they still go to the log file of Ray's session): the user sees one bar per stage,
    imgclf's, fed by the blocks as they complete.

    Returns:
        ray.data.DataContext: this process's context, with these options set.
    """
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.raise_original_map_exception = True
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.CRITICAL + 1)
    return ctx


@dataclass
class Kept:
    """What the blocks of a map leave in the cluster's object store (`RayExecutor.map(keep=)`).

    `split(records, start)` runs in the worker on each block's records (`start`: the position
    of the block's first item among all items) and returns `(records, part)`: the records the
    driver receives (lighter ones, e.g. without their near-duplicate signature) and the part
    that stays in the object store of the node that made it. The driver keeps only references.

    Args:
        split: picklable callable `(list of records, int) -> (list of records, part)`.

    Attributes:
        refs: list of ObjectRef, one part per block, in item order.
        starts: list of int. Position of each block's first item.
    """

    split: Callable[[list[Any], int], tuple[list[Any], Any]]
    refs: list[Any] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)


def _cause(exc: BaseException) -> BaseException | None:
    """The exception `fn` raised, inside Ray's `RayTaskError` (None for a system failure)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else None


@dataclass
class RayExecutor:
    """Runs a map on a Ray cluster, a block of items per task, results in item order.

    Args:
        address: str or None, default None. The cluster (`connect`): `--ray-address`, else
            `RAY_ADDRESS`, else a Ray started on this machine.
        block_size: int or None, default None. Items per task; None = as many as gives each
            CPU `WINDOW_PER_CPU` blocks or more, between `MIN_BLOCK` and `MAX_BLOCK`.
        max_retries: int >= 0, default 3. Extra runs of a block whose worker or node died.
        threads: int >= 1, default 2. Threads running a block's items inside its task (of one
            CPU): 2 keeps the CPU busy while one item waits on the disk (a decode reading its
            file, `prepare`'s write and fsync) -- measured 1.5-2 ms an image against 2.6-3.6 ms
            with one thread on `prepare`'s map; more for work that mostly waits (downloads).

    Attributes:
        name: str. `"ray"`.
        workers: int. CPUs of the cluster (blocks that run at once).
        started: bool. This executor connected (or started Ray); `close` disconnects then.

    Raises:
        EngineError: Ray is not installed, or the cluster cannot be reached.
        ValueError: `block_size`, `max_retries` or `threads` out of range.
    """

    address: str | None = None
    block_size: int | None = None
    max_retries: int = DEFAULT_RETRIES
    threads: int = 2
    name: str = field(default="ray", init=False)
    workers: int = field(default=1, init=False)
    started: bool = field(default=False, init=False)
    cwd: str = field(default_factory=os.getcwd, init=False)
    _ray: Any = field(default=None, init=False, repr=False)
    _watch: threading.Event | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.block_size is not None and self.block_size < 1:
            raise ValueError(f"block_size must be >= 1 or None, received block_size={self.block_size}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, received max_retries={self.max_retries}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, received threads={self.threads}")
        self._ray, self.started = connect(self.address)
        self.workers = max(1, int(self._ray.cluster_resources().get("CPU", 1)))
        target = resolve_address(self.address)
        if self.started and target is not None:  # a head elsewhere: say it in one line if it is lost
            self._watch = watch_head(target, *_host_port(target))

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnects from the cluster if this executor connected (stops a Ray it started)."""
        if self._watch is not None:
            self._watch.set()
            self._watch = None
        if self.started and self._ray.is_initialized():
            self._ray.shutdown()
        self.started = False

    def block_for(self, n: int | None) -> int:
        """Items per block for `n` items (None: unknown).

        Returns:
            int: `block_size` when given, else `n / (workers * WINDOW_PER_CPU)` within
            [`MIN_BLOCK`, `MAX_BLOCK`] (`MAX_BLOCK` when `n` is unknown).
        """
        if self.block_size is not None:
            return self.block_size
        if n is None:
            return MAX_BLOCK
        return max(MIN_BLOCK, min(MAX_BLOCK, -(-n // (self.workers * WINDOW_PER_CPU))))

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, keep: Kept | None = None) -> Iterator[R]:
        """Applies `fn` to every item on the cluster; yields results in the order of `items`.

        The items become a Ray Data dataset (blocks of `block_for(n)` rows, each an item and
        its position), `map_batches` runs `fn` over each block's items in a task of one CPU,
        and the driver receives the output blocks in item order as they complete. A consumer
        that stops early releases Ray Data's iterator, which stops the dataset's execution.

        Args:
            fn: picklable callable `item -> record` (module-level, or a `functools.partial` of one).
            items: iterable of picklable items. Read in full (into the object store, a block at
                a time) before the first task starts: Ray Data cannot start from an iterator.
            keep: Kept or None, default None. Splits each block's records in the worker: the
                driver receives `keep.split`'s records, the other part stays in the object store
                (`keep.refs`).

        Yields:
            `fn(item)` (or its light form with `keep`) for each item, in order, a block at a time.

        Raises:
            EngineError: a block's worker died more than `max_retries` times.
            Exception: what `fn` raised, as it raised it.
        """
        ray = self._ray
        size = self.block_for(len(items) if isinstance(items, Sequence) else None)
        blocks = self._put_items(items, size)
        if not blocks:
            return
        dataset = self._dataset(blocks, size, fn, keep)
        try:
            for bundle in dataset.iter_internal_ref_bundles():
                for ref, meta in zip(bundle.block_refs, bundle.metadata):
                    yield from self._block(ref, meta.num_rows, keep)
        except ray.exceptions.RayError as exc:
            raise self._error(exc, fn) from None

    def _put_items(self, items: Iterable[Any], size: int) -> list[Any]:
        """The items as Arrow tables of `size` rows `(pos, item)` in the object store, a block
        at a time (the driver holds one block and the references)."""
        import pyarrow as pa
        from ray import cloudpickle

        refs, start, it = [], 0, iter(items)
        while block := list(islice(it, size)):
            table = pa.table(
                {
                    "pos": pa.array(range(start, start + len(block)), pa.int64()),
                    "item": pa.array([cloudpickle.dumps(x) for x in block], pa.binary()),
                }
            )
            refs.append(self._ray.put(table))
            start += len(block)
        return refs

    def _dataset(self, blocks: list[Any], size: int, fn: Callable[..., Any], keep: Kept | None) -> Any:
        """The Ray Data dataset of the map: the item blocks, `_run_batch` over each."""
        import warnings

        from ray.data import ExecutionResources, from_arrow_refs
        from ray.util.annotations import RayDeprecationWarning

        ctx = quiet_ray_data()
        # Ray Data submits a task when its budget has a free CPU, from its scheduling loop in
        # this process; a budget of QUEUED_PER_CPU x the cluster's CPUs keeps a task waiting at
        # each CPU, which Ray starts the moment the one before ends (docs/scale.md)
        ctx.execution_options.resource_limits = ExecutionResources.for_limits(cpu=self.workers * QUEUED_PER_CPU)
        with warnings.catch_warnings():  # `max_retries` goes through Ray Data's `ray_remote_args`
            warnings.simplefilter("ignore", RayDeprecationWarning)
            return from_arrow_refs(blocks).map_batches(
                cast(Any, _run_batch),  # a batch and keyword arguments (`fn_kwargs`)
                batch_size=size,
                batch_format="pyarrow",
                zero_copy_batch=True,
                fn_kwargs={"fn": fn, "cwd": self.cwd, "threads": self.threads, "split": keep and keep.split},
                num_cpus=1,
                max_retries=self.max_retries,
            )

    def _block(self, ref: Any, rows: int | None, keep: Kept | None) -> list[Any]:
        """The records of one output block; with `keep`, a task takes its parts out first."""
        ray = self._ray
        if keep is None:
            return _records_of(ray.get(ref))
        if rows is None:
            rows = int(ray.get(_remote(ray, "num_rows").remote(ref)))
        take = _remote(ray, "take_parts").options(num_returns=1 + rows, num_cpus=0, max_retries=self.max_retries)
        refs = take.remote(ref)
        refs = refs if isinstance(refs, list) else [refs]
        starts, light = ray.get(refs[0])
        keep.refs.extend(refs[1:])
        keep.starts.extend(starts)
        return light

    def _error(self, exc: BaseException, fn: Callable[..., Any]) -> BaseException:
        """`fn`'s own exception inside Ray's error, else an `EngineError` for a lost block."""
        ray = self._ray
        if isinstance(exc, ray.exceptions.RayTaskError):
            cause = _cause(exc)
            if cause is not None and not isinstance(cause, ray.exceptions.RayError):
                return cause
            if cause is None:
                return EngineError(f"a Ray task of {_fn_name(fn)} failed: {' '.join(str(exc).split())[:300]}")
        return EngineError(
            f"a block of {_fn_name(fn)} was lost {self.max_retries + 1} times "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
            "check the cluster's nodes (`ray status`), then run the same command again",
        )

    def _get_probes(self, refs: list[Any]) -> list[tuple[list[str], str]]:
        """The probes' answers; `EngineError` when imgclf cannot be imported on a node."""
        ray = self._ray
        try:
            answers: list[tuple[list[str], str]] = ray.get(refs, timeout=PROBE_TIMEOUT)
        except ray.exceptions.RayTaskError as exc:
            raise EngineError(
                f"imgclf cannot be imported on a Ray node: {' '.join(str(_cause(exc) or exc).split())[-200:]}",
                "install the same imgclf (and its dependencies) on every node of the cluster",
            ) from None
        except ray.exceptions.GetTimeoutError:
            raise EngineError(
                f"a Ray node did not answer within {PROBE_TIMEOUT:g} s", "check the cluster (`ray status`)"
            ) from None
        return answers

    def require(self, read: Sequence[str | os.PathLike] = (), write: Sequence[str | os.PathLike] = ()) -> None:
        """Checks that every node with CPUs sees the folders a stage reads and writes.

        A folder in `write` is created here (with its parents) and a marker file written into
        it, which every node must see (and which is removed after): a node that would write
        into a folder of its own is caught before any work is done. A `read` path missing here,
        or a `write` folder that is (inside) a `read` path or holds one, is left to the stage's
        own checks and messages (nothing is created then).

        Args:
            read: sequence of paths the workers read (relative paths from the driver's folder).
            write: sequence of folders the workers write into.

        Raises:
            DataError: a node cannot see one of them, naming the node and the path.
            EngineError: a node runs another imgclf version, or cannot import it.
        """
        ins = [Path(p) for p in read]
        if not all(p.exists() for p in ins):
            return
        outs = [Path(w) for w in write if not any(_overlap(Path(w), p) for p in ins)]
        markers = [_marker(folder) for folder in outs]
        try:
            self._probe_nodes([str(p) for p in ins], markers)
        finally:
            for m in markers:
                with contextlib.suppress(OSError):
                    os.unlink(m)

    def _probe_nodes(self, paths: list[str], markers: list[str]) -> None:
        """Asks every node with CPUs which of `paths` and `markers` it cannot see."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self._ray
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        probe = _remote(ray, "probe")
        refs = [
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                paths, markers, self.cwd
            )
            for n in nodes
        ]
        for node, (missing, version) in zip(nodes, self._get_probes(refs)):
            where = node.get("NodeManagerAddress")
            if version != __version__:
                raise EngineError(
                    f"the Ray node {where} runs imgclf {version}, this machine imgclf {__version__}",
                    "install the same imgclf on every node",
                )
            if missing:
                shown = str(Path(missing[0]).parent) if missing[0] in markers else missing[0]
                raise DataError(
                    f"{shown} is not visible on the Ray node {where}",
                    "put the data on a filesystem every node mounts at the same path, or use --engine local",
                )


def _overlap(a: Path, b: Path) -> bool:
    """`a` and `b` are the same folder or one is inside the other (resolved)."""
    ra, rb = a.resolve(), b.resolve()
    return ra == rb or rb in ra.parents or ra in rb.parents


def _marker(folder: Path) -> str:
    """Creates `folder` (and parents) and a marker file in it that every node must see."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{VISIBILITY_MARKER}{uuid.uuid4().hex}"
    marker.write_text("visible\n", encoding="utf-8")
    return str(marker)


def _fn_name(fn: Callable[..., Any]) -> str:
    """The name of a map function (through `functools.partial`)."""
    inner = getattr(fn, "func", fn)
    return f"{getattr(inner, '__module__', '')}.{getattr(inner, '__qualname__', repr(inner))}"


@dataclass
class ActorGroup:
    """N Ray actors placed on the cluster by `place_actors` (one per placement-group bundle).

    Attributes:
        actors: list of actor handles, rank order.
        group: the Ray placement group holding their resources.
    """

    actors: list[Any]
    group: Any

    def shutdown(self) -> None:
        """Kills the actors and frees their placement group."""
        ray = import_ray()
        from ray.util.placement_group import remove_placement_group

        for a in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        remove_placement_group(self.group)


def place_actors(
    actor_cls: type,
    n: int,
    *args: Any,
    num_cpus: float = 1,
    num_gpus: float = 0,
    strategy: str = "SPREAD",
    timeout: float = 300.0,
    **kwargs: Any,
) -> ActorGroup:
    """Starts `n` actors of `actor_cls`, each with its own CPUs / GPUs, spread over the nodes.

    For a launcher that runs one worker per actor (multi-worker training): connect first
    (`connect`), then place the workers; actor `k` gets `actor_cls(*args, **kwargs)`.

    Args:
        actor_cls: type. A plain class (made a Ray actor here).
        n: int >= 1. Actors.
        *args, **kwargs: passed to each actor's constructor.
        num_cpus: float, default 1. CPUs reserved per actor.
        num_gpus: float, default 0. GPUs reserved per actor.
        strategy: str, default "SPREAD". Placement group strategy: `"SPREAD"`, `"STRICT_SPREAD"`
            (one node each), `"PACK"` or `"STRICT_PACK"`.
        timeout: float, default 300. Seconds to wait for the cluster to have the resources.

    Returns:
        ActorGroup.

    Raises:
        EngineError: Ray is not installed, not connected, or the cluster lacks the resources
            within `timeout`.
        ValueError: `n` < 1.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, received n={n}")
    ray = import_ray()
    if not ray.is_initialized():
        raise EngineError("not connected to a Ray cluster", "call imgclf.engine.ray.connect(address) first")
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundle = {"CPU": num_cpus} | ({"GPU": num_gpus} if num_gpus else {})
    group = placement_group([dict(bundle) for _ in range(n)], strategy=strategy)
    try:
        ray.get(group.ready(), timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(group)
        raise EngineError(
            f"the Ray cluster has no room for {n} workers of {bundle} after {timeout:g} s",
            "add nodes, or ask for fewer workers / CPUs / GPUs",
        ) from None
    cls = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(actor_cls)
    actors = [
        cls.options(scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=k)).remote(
            *args, **kwargs
        )
        for k in range(n)
    ]
    return ActorGroup(actors, group)
