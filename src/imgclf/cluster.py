"""Several `imgclf train` processes as one data-parallel trainer (`--strategy multiworker`).

The cluster is the standard `TF_CONFIG` environment variable (set by hand, a Slurm script or
Kubernetes' TFJob), read here once (`read_cluster`, pure, no TensorFlow). `start_strategy`
creates `tf.distribute.MultiWorkerMirroredStrategy`; it must be the first thing the process
does with TensorFlow (collective ops are configured when TensorFlow's runtime starts), so
`imgclf.train.train` calls it before anything else. It first configures TensorFlow's
coordination service (one instance on the leader, worker 0 or the chief) with:

- a start-up barrier: every worker must join within `start_timeout` seconds, otherwise every
  worker that did stops with a `ClusterError` naming the ones that did not;
- heartbeats: a worker that stops sending them for `heartbeat_timeout` seconds (its machine
  vanished, or the process is frozen) aborts the collective ops on all the others. A worker
  killed on a machine that stays up is noticed at once (its connections are refused).

`Collectives` holds the few all-reduces the training loop needs besides the gradients'
(`imgclf.train_loop`): sums over the workers (epoch metrics, rejected files), a broadcast of
the chief's values (restored weights, resume facts) and a barrier. `cluster_errors` turns the
TensorFlow errors of a lost worker into one `ClusterError` line.

TensorFlow is imported inside the functions (`imgclf --help` must not load it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.errors import ConfigError, ImgclfError

if TYPE_CHECKING:
    import tensorflow as tf


class ClusterError(ImgclfError):
    """The workers of a multi-worker run could not start together, or one of them was lost."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in a `TF_CONFIG` cluster.

    Attributes:
        workers: tuple of str. `host:port` of every training task, the chief first (the
            `chief` job when there is one, then the `worker` job, in `TF_CONFIG` order).
        index: int. This task's position in `workers` (0 = the chief, which writes the run).
        has_chief: bool, default False. `TF_CONFIG` has a `chief` job (it is `workers[0]`).
    """

    workers: tuple[str, ...]
    index: int
    has_chief: bool = False

    @property
    def num_workers(self) -> int:
        """Number of training processes."""
        return len(self.workers)

    @property
    def is_chief(self) -> bool:
        """True for the task that writes the run folder (index 0)."""
        return self.index == 0

    @property
    def tasks(self) -> list[str]:
        """TensorFlow's `"job:i"` of every entry of `workers`."""
        return _task_names(self.workers, 1 if self.has_chief else 0)

    @property
    def leader(self) -> str:
        """TensorFlow device name of the task hosting the coordination service (index 0)."""
        job, i = self.tasks[0].split(":")
        return f"/job:{job}/replica:0/task:{i}"

    def describe(self, index: int | None = None) -> str:
        """`"worker 1 (127.0.0.1:2223)"` for `index` (default: this task)."""
        i = self.index if index is None else index
        return f"worker {i} ({self.workers[i]})"


def _task_names(workers: Sequence[str], n_chief: int) -> list[str]:
    return [f"chief:{i}" if i < n_chief else f"worker:{i - n_chief}" for i in range(len(workers))]


def read_cluster(environ: Mapping[str, str] | None = None) -> Cluster | None:
    """Reads the training cluster from `TF_CONFIG`; None when it is unset or names one task.

    `TF_CONFIG` is JSON: `{"cluster": {"worker": ["host:port", ...], "chief": [...]},
    "task": {"type": "worker", "index": i}}` (the `chief` job is optional; with it, the chief
    is worker 0 here). Other jobs (`ps`, `evaluator`) are not training workers and are refused.

    Args:
        environ: mapping or None, default None (`os.environ`).

    Returns:
        Cluster, or None (single-process training).

    Raises:
        ConfigError: `TF_CONFIG` is not JSON, lacks `cluster` / `task`, names a job other
            than `chief` / `worker`, or a task index that is not in the cluster.
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        return None
    hint = 'set TF_CONFIG to {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}'
    try:
        conf = json.loads(raw)
        jobs = conf["cluster"]
        task_type, task_index = str(conf["task"]["type"]), int(conf["task"]["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"TF_CONFIG is not a TensorFlow cluster definition ({exc})", hint) from None
    other = sorted(set(jobs) - {"chief", "worker"})
    if other or task_type not in ("chief", "worker"):
        raise ConfigError(
            f"TF_CONFIG names job(s) {other or [task_type]}: imgclf trains with `chief` and `worker` tasks only",
            "MultiWorkerMirroredStrategy has no parameter servers or evaluator",
        )
    chief, worker = list(jobs.get("chief") or []), list(jobs.get("worker") or [])
    if len(chief) > 1:
        raise ConfigError(f"TF_CONFIG names {len(chief)} chief tasks; there can be one", hint)
    workers = tuple(str(w) for w in chief + worker)
    index = task_index if task_type == "chief" else len(chief) + task_index
    if not 0 <= task_index < len(jobs.get(task_type) or []):
        raise ConfigError(f"TF_CONFIG task {task_type}:{task_index} is not in its cluster {jobs}", hint)
    if len(workers) < 2:
        return None
    return Cluster(workers, index, has_chief=bool(chief))


# ----------------------------------------------------------------------------- strategy
def start_strategy(cluster: Cluster | None, *, start_timeout: int, heartbeat_timeout: int) -> tf.distribute.Strategy:
    """Creates `MultiWorkerMirroredStrategy`, with bounded start-up and failure detection.

    Call it before anything else touches TensorFlow's runtime (a tensor, a seed, a model):
    collective ops can only be configured when the runtime starts.

    Args:
        cluster: Cluster or None. None: one worker (no `TF_CONFIG`), nothing to wait for.
        start_timeout: int, seconds. How long the workers wait for each other to join.
        heartbeat_timeout: int, seconds. A worker silent this long is considered lost.

    Returns:
        tf.distribute.MultiWorkerMirroredStrategy.

    Raises:
        ClusterError: the workers did not all join in time, this worker could not start its
            server (port in use...), or TensorFlow's runtime had already started.
    """
    import tensorflow as tf

    if cluster is None:
        return tf.distribute.MultiWorkerMirroredStrategy()
    from tensorflow.python.eager import context  # the coordination service has no public API

    ctx = context.context()
    ctx.configure_coordination_service(
        service_type="standalone",
        service_leader=cluster.leader,
        cluster_register_timeout_in_ms=start_timeout * 1000,
        heartbeat_timeout_in_ms=heartbeat_timeout * 1000,
        shutdown_barrier_timeout_in_ms=heartbeat_timeout * 1000,
        coordinated_jobs=_coordinated_jobs(cluster),
    )
    # Without the barrier the leader waits for late workers with no time limit.
    ctx.coordination_service.cluster_register_with_barrier = True
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except tf.errors.OpError as exc:
        raise _start_error(cluster, exc, start_timeout) from None
    except RuntimeError as exc:  # "Collective ops must be configured at program startup"
        raise ClusterError(
            f"{cluster.describe()} could not start: {_first_line(str(exc))}",
            "TensorFlow was already running: run `imgclf train --strategy multiworker` as its own process",
        ) from None


def _coordinated_jobs(cluster: Cluster) -> list[Any]:
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2 as pb

    counts: dict[str, int] = {}
    for name in cluster.tasks:
        job = name.split(":")[0]
        counts[job] = counts.get(job, 0) + 1
    return [pb.CoordinatedJob(name=job, num_tasks=n) for job, n in counts.items()]


def _start_error(cluster: Cluster, exc: Exception, start_timeout: int) -> ClusterError:
    """The one line for a cluster that did not form."""
    import tensorflow as tf

    text = str(exc)
    hint = (
        f"start the same `imgclf train` on every task of TF_CONFIG ({', '.join(cluster.workers)}) "
        f"within --worker-start-timeout ({start_timeout} s)"
    )
    timed_out = text.split("timed out task")[-1] if "timed out task" in text else ""
    missing = sorted({f"{job}:{i}" for job, i in re.findall(r"/job:(\w+)/replica:0/task:(\d+)", timed_out)})
    if isinstance(exc, tf.errors.DeadlineExceededError):
        known = [cluster.tasks.index(t) for t in missing if t in cluster.tasks]
        if known:
            names = ", ".join(cluster.describe(i) for i in known)
            return ClusterError(f"{cluster.describe()}: {names} did not join within {start_timeout} s", hint)
        leader = cluster.describe(0)
        return ClusterError(
            f"{cluster.describe()}: {leader}, the leader, did not answer within {start_timeout} s", hint
        )
    return ClusterError(f"{cluster.describe()} could not start: {_first_line(text)}", hint)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:300]


# --------------------------------------------------------------------------- collectives
class Collectives:
    """All-reduces between the workers of a strategy, outside the training step.

    With one worker every method returns its input (no TensorFlow op).

    Args:
        strategy: tf.distribute.Strategy. Its replicas are the ones summed over.
        cluster: Cluster or None. None: one worker.
        hint: str or None, default None. The hint of the `ClusterError` raised when a worker
            is lost during an all-reduce (`cluster_errors`).
    """

    def __init__(self, strategy: Any, cluster: Cluster | None, hint: str | None = None):
        self.strategy = strategy
        self.cluster = cluster
        self.hint = hint
        self._fn: Any = None

    @property
    def is_chief(self) -> bool:
        """True on the worker that writes the run folder."""
        return self.cluster is None or self.cluster.is_chief

    @property
    def num_workers(self) -> int:
        """Number of training processes."""
        return 1 if self.cluster is None else self.cluster.num_workers

    def describe(self) -> str:
        """`"worker 1 (host:port)"`, or `"training"` with one worker."""
        return "training" if self.cluster is None else self.cluster.describe()

    def gather(self, row: Any) -> np.ndarray:
        """Every worker's `row` (a float64 vector), as a `(num_workers, len(row))` table.

        Args:
            row: array-like of numbers, shape `(n,)`.

        Returns:
            np.ndarray float64 `(num_workers, n)`; row i is worker i's.
        """
        arr = np.asarray(row, dtype=np.float64).reshape(-1)
        table = np.zeros((self.num_workers, arr.size))
        table[0 if self.cluster is None else self.cluster.index] = arr
        return self.sum(table)

    def sum(self, values: Any) -> np.ndarray:
        """Sums a float64 array over the workers; every worker gets the same result.

        Args:
            values: array-like of numbers, any shape.

        Returns:
            np.ndarray float64 of the same shape.
        """
        arr = np.asarray(values, dtype=np.float64)
        if self.num_workers == 1:
            return arr
        return self._all_reduce([arr])[0]

    def broadcast(self, values: Any) -> np.ndarray:
        """The chief's `values` on every worker (float64; the others' values are ignored)."""
        arr = np.asarray(values, dtype=np.float64)
        return self.sum(arr if self.is_chief else np.zeros_like(arr))

    def barrier(self) -> None:
        """Returns when every worker has reached it."""
        self.sum([1.0])

    def broadcast_variables(self, variables: Sequence[Any]) -> None:
        """Assigns the chief's value of every variable to the same variable on every worker.

        Args:
            variables: sequence of Keras / TensorFlow variables, in the same order on every
                worker (e.g. `model.variables + optimizer.variables`).
        """
        self._assign(variables, mean=False)

    def average_variables(self, variables: Sequence[Any]) -> None:
        """Assigns to every variable the mean of its values over the workers.

        Args:
            variables: sequence of variables, in the same order on every worker.
        """
        self._assign(variables, mean=True)

    def _assign(self, variables: Sequence[Any], *, mean: bool) -> None:
        if self.num_workers == 1 or not variables:
            return
        arrays = [np.asarray(v.numpy(), dtype=np.float64) for v in variables]
        if not mean and not self.is_chief:
            arrays = [np.zeros_like(a) for a in arrays]
        for var, value in zip(variables, self._all_reduce(arrays)):
            var.assign((value / self.num_workers if mean else value).astype(var.numpy().dtype))

    def _all_reduce(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Sums the arrays over the workers: flattened into one float64 vector, one all-reduce."""
        import tensorflow as tf

        if self._fn is None:
            strategy = self.strategy
            local = strategy.num_replicas_in_sync // self.num_workers

            @tf.function(input_signature=[tf.TensorSpec([None], tf.float64)])  # one trace for every size
            def all_sum(flat):
                def reduce():
                    ctx = tf.distribute.get_replica_context()
                    # Only the first replica of each worker contributes (a worker with several
                    # devices counts once); the product also makes a tensor on this replica's
                    # device, which the all-reduce needs.
                    first = tf.cast(tf.equal(tf.math.floormod(ctx.replica_id_in_sync_group, local), 0), tf.float64)
                    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, flat * first)

                return strategy.experimental_local_results(strategy.run(reduce))[0]

            self._fn = all_sum
        flat = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.zeros(0)
        with cluster_errors(self.cluster, self.hint):
            out = self._fn(tf.constant(flat, tf.float64)).numpy()
        sizes = np.cumsum([a.size for a in arrays])[:-1]
        return [part.reshape(a.shape) for part, a in zip(np.split(out, sizes), arrays)]


# -------------------------------------------------------------------------------- faults
@contextmanager
def cluster_errors(cluster: Cluster | None, resume_hint: str | None = None) -> Iterator[None]:
    """Turns the TensorFlow error of a lost worker into one `ClusterError` line.

    When a worker dies (its connections refused) or stops sending heartbeats, TensorFlow
    aborts the collective ops of the others with `UnavailableError`, `DeadlineExceededError`,
    `AbortedError`, `CancelledError` or `InternalError`, whose messages span many lines.

    Args:
        cluster: Cluster or None. None: one worker, errors pass through unchanged.
        resume_hint: str or None, default None. The hint of the error (how to resume).

    Yields:
        None.

    Raises:
        ClusterError: in place of those TensorFlow errors.
    """
    if cluster is None:
        yield
        return
    import tensorflow as tf

    lost = (
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.AbortedError,
        tf.errors.CancelledError,
        tf.errors.InternalError,
    )
    try:
        yield
    except lost as exc:
        raise ClusterError(
            f"{cluster.describe()}: lost contact with the other workers ({_lost_reason(str(exc), cluster)})",
            resume_hint or "check that every worker is running",
        ) from None


def _lost_reason(text: str, cluster: Cluster) -> str:
    """The cause inside a TensorFlow collective error, in a few words."""
    unhealthy = re.search(r"unhealthy \(stopped sending heartbeats\):\s*/job:(\w+)/replica:0/task:(\d+)", text)
    if unhealthy:
        task = f"{unhealthy.group(1)}:{unhealthy.group(2)}"
        who = cluster.describe(cluster.tasks.index(task)) if task in cluster.tasks else task
        return f"{who} stopped sending heartbeats"
    for pattern in (
        r"Connection reset by peer",
        r"Connection refused",
        r"Socket closed",
        r"failed to connect to all addresses",
        r"Deadline Exceeded",
    ):
        if re.search(pattern, text, re.IGNORECASE):
            return pattern.lower()
    aborted = re.search(r"Collective ops is aborted by: ([^\n]+)", text)
    return _first_line(aborted.group(1) if aborted else text)[:160]
