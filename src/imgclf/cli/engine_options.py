"""`--engine` and `--ray-address`: the options of the data stages that choose where their map runs.

Used by `clean`, `prepare`, `split`, `audit`, `predict` and `scrape web` (not a command itself).
The engine comes from the option, else the `engine:` section of `--config FILE`, else `local`
(`imgclf.config.EngineConfig`). With `local` the stage makes its own executor, exactly as
before; with `ray`, `stage_executor` connects (`imgclf.engine.ray.connect`: `--ray-address`,
else `RAY_ADDRESS`, else a Ray started on this machine), checks that every node sees the
folders the stage reads and writes, and disconnects when the stage is done. Ray is imported
only then: `--help` never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imgclf.cli.options import opt
from imgclf.config import EngineConfig, read_yaml, validate
from imgclf.engine import Executor, make_executor


def engine_opt() -> Any:
    """The `--engine local|ray` option (default from `EngineConfig.name`)."""
    return opt(
        EngineConfig,
        "name",
        "--engine",
        help="Where the per-image work runs: local (this machine) | ray (a Ray cluster, docs/scale.md).",
    )


def ray_address_opt() -> Any:
    """The `--ray-address HOST:PORT` option (default from `EngineConfig.address`)."""
    return opt(EngineConfig, "address", "--ray-address", help="With --engine ray: the cluster head's host:port.")


def engine_config(config: str | os.PathLike | None, engine: str | None, address: str | None) -> EngineConfig:
    """The engine of a stage command: its options over the `engine:` section of `config`.

    Args:
        config: path of a run YAML, or None.
        engine: str or None. `--engine` (None: not given).
        address: str or None. `--ray-address` (None: not given).

    Returns:
        EngineConfig.

    Raises:
        ConfigError: an unknown engine, or an invalid `engine:` section (naming the file).
    """
    data: dict[str, Any] = {}
    origin = "command line"
    if config is not None:
        section = read_yaml(Path(config)).get("engine")
        data = {"name": section} if isinstance(section, str) else dict(section or {})
        origin = f"{config} [engine]"
    data |= {k: v for k, v in (("name", engine), ("address", address)) if v is not None}
    cfg: EngineConfig = validate(EngineConfig, data, origin=origin)
    return cfg


@contextmanager
def stage_executor(
    cfg: EngineConfig,
    read: Sequence[str | os.PathLike] = (),
    write: Sequence[str | os.PathLike] = (),
    *,
    threads: int = 2,
) -> Iterator[Executor | None]:
    """The executor a stage command passes to its stage: None for `local` (the stage's own).

    With `ray`: connects, checks that every node sees `read` and can write into `write`
    (`Executor.require`), and disconnects at the end.

    Args:
        cfg: EngineConfig.
        read: sequence of paths the map reads.
        write: sequence of folders the map writes into (created by the check).
        threads: int, default 2. Threads per Ray task (`imgclf.engine.ray.RayExecutor`).

    Yields:
        Executor or None.

    Raises:
        EngineError: Ray not installed, or the cluster cannot be reached.
        DataError: a node cannot see a folder.
    """
    if cfg.name == "local":
        yield None
        return
    executor = make_executor("ray", address=cfg.address, threads=threads)
    try:
        executor.require(read, write)
        yield executor
    finally:
        executor.close()
