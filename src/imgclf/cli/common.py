"""Helpers shared by CLI modules: stage configs from an optional YAML file plus CLI options."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from imgclf.config import deep_merge, drop_none, read_yaml, validate

M = TypeVar("M", bound=BaseModel)


def stage_config(model: type[M], section: str, config: Path | None, **cli_values: Any) -> M:
    """Builds a stage config: the `section` of a run YAML (if given), then CLI options on top.

    Options left unset (None) never override a value from the file.

    Args:
        model: pydantic class of the stage (e.g. `PrepareConfig`).
        section: str. Key of the stage in a run config (e.g. `"prepare"`).
        config: path to a run config YAML, or None.
        **cli_values: the command's options.

    Returns:
        An instance of `model`.

    Raises:
        ConfigError: unknown keys or invalid values, naming the file and key.
    """
    data: dict[str, Any] = {}
    origin = "command line"
    if config is not None:
        raw = read_yaml(config)
        data = raw.get(section) or {}
        origin = f"{config} [{section}]"
    return validate(model, deep_merge(data, drop_none(cli_values)), origin=origin)
