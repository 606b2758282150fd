"""Multi-worker training launched on a Ray cluster: `imgclf train ... --engine ray --num-workers N`.

The launcher (the driver, the process the user started) does not train. It places N Ray
actors of one CPU each, spread over the nodes (`imgclf.engine.ray.place_actors`, a placement
group with the SPREAD strategy); each actor picks a free port on its node and reports
`host:port`. The driver builds the cluster from those addresses and each actor starts the same
`python -m imgclf train ... --strategy multiworker` as a subprocess, with the `TF_CONFIG` of its
task (index i; worker 0 is the chief, which writes the run folder). From then on training is
exactly the `TF_CONFIG` path of `imgclf.cluster` and `imgclf.train_loop`: the same loop, the
same run folder, the same backups. This is not Ray Train's `TensorflowTrainer` (which forces
Keras 2): Ray only places the processes and carries their output.

The driver polls the actors (`POLL_SECONDS`) and prints each worker's output lines prefixed
`[worker i]`: every line of the chief, only the non-progress lines of the others (their epoch
lines repeat the chief's). When a worker exits with a non-zero code, or its actor is lost (its
node died), the driver stops the others and raises one `EngineError` saying what happened and
that rerunning the same command resumes from the last completed epoch (the loop's backup).

A worker's subprocess dies with its actor (Linux: `PR_SET_PDEATHSIG`), so a killed driver,
whose actors Ray kills, leaves no training process behind.

Ray is imported inside the functions, only when this launcher runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from imgclf.errors import EngineError

#: Seconds between two polls of the workers' output and exit codes.
POLL_SECONDS = 0.5
#: Seconds an actor may take to answer a call (a poll, a port, a start) before it counts as lost.
ACTOR_TIMEOUT = 120.0
#: Seconds a stopped worker gets to exit after SIGTERM before it is killed.
STOP_GRACE = 10.0
#: A progress line of a worker (`epoch 3/40 (2s): loss ...`): shown for the chief only.
PROGRESS = re.compile(r"\bepoch \d+/\d+")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Asks Linux to kill this process when its parent (the actor) dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class TrainWorker:
    """One training process on a Ray node (used as a Ray actor by `launch_training`).

    `address()` reserves a port, `start()` runs `python -m imgclf train ARGS` with `TF_CONFIG`
    in the driver's working folder, `poll()` returns the output lines read since the last call
    and the exit code once the process ended, `stop()` ends it.
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.readers: list[threading.Thread] = []

    def address(self) -> str:
        """`host:port` of a free port on this node (the node's address as Ray knows it)."""
        import ray

        host = ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind((host, 0))
            return f"{host}:{s.getsockname()[1]}"

    def start(self, args: list[str], tf_config: str, cwd: str, columns: int = 200) -> None:
        """Starts `python -m imgclf train *args` with `TF_CONFIG`, in `cwd`, its lines `columns` wide."""
        env = {**os.environ, "TF_CONFIG": tf_config, "PYTHONUNBUFFERED": "1", "COLUMNS": str(columns)}
        env.pop("RAY_ADDRESS", None)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "imgclf", "train", *args],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                preexec_fn=_die_with_parent,  # a prctl call only: safe in a threaded parent
            )
        except OSError as exc:
            raise EngineError(f"cannot start `imgclf train` in {cwd}: {exc.strerror or exc}") from None
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            reader = threading.Thread(target=self._read, args=(name, stream), daemon=True)
            reader.start()
            self.readers.append(reader)

    def _read(self, name: str, stream: IO[str] | None) -> None:
        """Queues every line of `stream`."""
        if stream is not None:
            for line in stream:
                self.lines.put((name, line.rstrip("\n")))

    def poll(self) -> tuple[list[tuple[str, str]], int | None]:
        """The `(stream, line)` pairs read since the last call, and the exit code (None: running)."""
        code = None if self.proc is None else self.proc.poll()
        if code is not None:
            for reader in self.readers:
                reader.join(5)
        out: list[tuple[str, str]] = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self.lines.get_nowait())
        return out, code

    def stop(self) -> None:
        """Ends the process: SIGTERM, then SIGKILL after `STOP_GRACE` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tf_configs(addresses: Sequence[str]) -> list[str]:
    """The `TF_CONFIG` of every worker of a cluster (worker 0 is the chief).

    Args:
        addresses: sequence of str. `host:port` of each worker, in task order.

    Returns:
        list of str (JSON), one per worker.
    """
    jobs = {"worker": list(addresses)}
    return [json.dumps({"cluster": jobs, "task": {"type": "worker", "index": i}}) for i in range(len(addresses))]


@dataclass
class _Watch:
    """The driver's view of the workers while they train."""

    actors: list[Any]
    addresses: list[str]
    echo: Callable[[str], None]
    hint: str
    codes: list[int | None] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    stdout: list[str] = field(default_factory=list)

    def describe(self, i: int) -> str:
        """`"worker 1 (10.0.0.6:40123)"`."""
        return f"worker {i} ({self.addresses[i]})" if i < len(self.addresses) else f"worker {i}"

    def show(self, i: int, lines: list[tuple[str, str]]) -> None:
        """Prints worker `i`'s stderr lines (the chief's all, the others' but progress); keeps
        the chief's stdout (the others' repeats it)."""
        for stream, line in lines:
            if line.startswith("error:"):
                self.errors[i] = line.removeprefix("error:").strip()
            if stream == "out":
                if i == 0:
                    self.stdout.append(line)
            elif i == 0 or not PROGRESS.search(line):
                self.echo(f"[worker {i}] {line}")

    def failed(self, i: int, code: int) -> EngineError:
        """The one line for worker `i` ended with `code`."""
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        why = f": {self.errors[i]}" if i in self.errors else ""
        return EngineError(f"{self.describe(i)} {how}{why}; the other workers were stopped", self.hint)

    def lost(self, i: int, exc: BaseException) -> EngineError:
        """The one line for worker `i` whose actor (or node) is gone."""
        what = " ".join(str(exc).split())[:160]
        return EngineError(
            f"{self.describe(i)} was lost: its Ray node or actor died ({type(exc).__name__}: {what}); "
            "the other workers were stopped",
            self.hint,
        )


def _call(ray: Any, ref: Any) -> Any:
    """`ray.get(ref)`, raising the `EngineError` an actor raised as it is."""
    try:
        return ray.get(ref, timeout=ACTOR_TIMEOUT)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, EngineError):
            raise cause from None
        raise


def _watch(ray: Any, w: _Watch) -> None:
    """Forwards the workers' output until all exit 0; `EngineError` for the first that does not."""
    w.codes = [None] * len(w.actors)
    while True:
        for i, actor in enumerate(w.actors):
            if w.codes[i] is not None:
                continue
            try:
                lines, code = _call(ray, actor.poll.remote())
            except (ray.exceptions.RayError, TimeoutError) as exc:
                raise w.lost(i, exc) from None
            w.show(i, lines)
            w.codes[i] = code
        failed = [i for i, c in enumerate(w.codes) if c is not None and c != 0]
        if failed:  # the cause first: a killed worker, then one that did not merely lose the others
            i = min(failed, key=lambda k: (int(w.codes[k] or 0) > 0, "lost contact" in w.errors.get(k, ""), k))
            raise w.failed(i, int(w.codes[i] or 0))
        if all(c == 0 for c in w.codes):
            return
        time.sleep(POLL_SECONDS)


def _worker_columns(prefix: int) -> int:
    """Line width for the workers: the driver's terminal less the prefix, or 200 (no wrapping) when
    the driver's output is not a terminal (a log file, a pipe), so no line is cut in two."""
    try:
        width = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 200
    return max(80, width - prefix)


def _start(ray: Any, w: _Watch, argv: list[str], cwd: str) -> None:
    """Gets each actor's `host:port`, then starts every worker with its `TF_CONFIG`."""
    columns = _worker_columns(len(f"[worker {len(w.actors)}] "))
    try:
        w.addresses = [_call(ray, a.address.remote()) for a in w.actors]
        refs = [a.start.remote(argv, c, cwd, columns) for a, c in zip(w.actors, tf_configs(w.addresses))]
        for ref in refs:
            _call(ray, ref)
    except (ray.exceptions.RayError, TimeoutError) as exc:
        what = " ".join(str(exc).split())[:160]
        raise EngineError(
            f"a training worker was lost while starting ({type(exc).__name__}: {what})",
            "check the cluster (`ray status`), then run the same command again",
        ) from None


def _stop_all(ray: Any, w: _Watch) -> None:
    """Asks every worker still running to stop, and waits for them (a lost one is skipped)."""
    refs = [a.stop.remote() for a, c in zip(w.actors, w.codes or [None] * len(w.actors)) if c is None]
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.get(ref, timeout=STOP_GRACE + 5)


def launch_training(
    args: Sequence[str],
    num_workers: int,
    *,
    address: str | None = None,
    read: Sequence[str | os.PathLike] = (),
    write: Sequence[str | os.PathLike] = (),
    echo: Callable[[str], None] | None = None,
    resume_hint: str = "rerun the same command: training resumes from the last completed epoch",
) -> list[str]:
    """Runs `imgclf train *args --strategy multiworker` on `num_workers` Ray actors, one CPU each.

    Args:
        args: sequence of str. The arguments of `imgclf train` every worker gets (paths relative
            to this process's working folder, which must be the same on every node).
        num_workers: int >= 1. Training processes (placement group bundles, SPREAD).
        address: str or None, default None. The cluster: `--ray-address`, else `RAY_ADDRESS`,
            else a Ray started on this machine.
        read: sequence of paths every node must see (the split folder).
        write: sequence of folders every node must see the writes into (the run's parent).
        echo: callable `str -> None` or None, default None (print to stderr). Receives each
            forwarded output line, prefixed `[worker i]`.
        resume_hint: str. The hint of the error raised when a worker fails.

    Returns:
        list of str: what the chief printed on stdout (the run folder).

    Raises:
        EngineError: Ray missing, the cluster unreachable or without room for the workers, a
            worker that exited non-zero or was lost (the others are stopped first).
        DataError: a node cannot see `read` or `write`.
        ValueError: `num_workers` < 1.
    """
    from imgclf.engine.ray import RayExecutor, place_actors

    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, received num_workers={num_workers}")
    say = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    argv = [*args, "--strategy", "multiworker"]
    with RayExecutor(address) as executor:
        executor.require(read, write)
        ray = executor._ray
        group = place_actors(TrainWorker, num_workers, num_cpus=1, strategy="SPREAD")
        watch = _Watch(group.actors, [], say, resume_hint)
        try:
            _start(ray, watch, argv, executor.cwd)
            say(f"train: {num_workers} workers on Ray: {', '.join(watch.addresses)} (worker 0 writes the run)")
            _watch(ray, watch)
        finally:
            _stop_all(ray, watch)
            group.shutdown()
    return watch.stdout
