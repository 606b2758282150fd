"""CLI options whose help shows the real default, read from the pydantic config field.

A stage option on the command line defaults to None (so an option left unset never overrides
a value from a YAML file); the value that applies then is the pydantic field's default. `opt`
builds such an option and appends `[default: VALUE]` to its help text, taken from the field in
`imgclf.config` -- so the help can never drift from the config -- and escaped for rich markup
(an unescaped `[default: cnn]` is read as a rich tag and vanishes).

A field whose default needs words rather than a value (None meaning "the data's size") says so
in `imgclf.config` with `json_schema_extra={"default_text": "..."}`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer
from pydantic import BaseModel


def format_default(value: Any) -> str:
    """Renders a config default for help text: `True` -> `on`, a list -> `0.7,0.15,0.15`, ...

    Args:
        value: any config value.

    Returns:
        str: the value as a user would type it on the command line.
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        return ",".join(format_default(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_default(v)}" for k, v in value.items()) or "none"
    return str(value)


def field_default_text(schema: type[BaseModel], field: str) -> str:
    """The default of `schema.field` as help text (its `default_text`, else the value).

    Args:
        schema: pydantic model class from `imgclf.config` (e.g. `TrainConfig`).
        field: str. A field name of `schema`; a dotted name walks nested models
            (`"augment.flip"`).

    Returns:
        str, e.g. `"cnn"`, `"on"`, `"the data's size"`.

    Raises:
        KeyError: if the field does not exist (a programming error, caught by the tests).
    """
    model: Any = schema
    parts = field.split(".")
    for part in parts[:-1]:
        model = model.model_fields[part].annotation
    info = model.model_fields[parts[-1]]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "default_text" in extra:
        return str(extra["default_text"])
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "none"
    return format_default(value)


def help_with_default(help: str, default: str) -> str:
    """Returns `help` followed by `[default: DEFAULT]`, escaped for rich markup.

    Args:
        help: str. The option's help sentence(s).
        default: str. The default as text.

    Returns:
        str, e.g. `"Registry name, see `imgclf models`. \\[default: cnn]"`.
    """
    from rich.markup import escape

    return f"{help.rstrip()} {escape(f'[default: {default}]')}"


def opt(schema: type[BaseModel], field: str, *flags: str, help: str, **kwargs: Any) -> Any:
    """A `typer.Option` defaulting to None whose help ends with the field's real default.

    Args:
        schema: pydantic model class the option fills (e.g. `TrainConfig`).
        field: str. Field name in `schema` (dotted for nested models).
        *flags: str. Option names, e.g. `"--model", "-m"`; a boolean pair as
            `"--dedupe/--no-dedupe"`.
        help: str. What the option does (a sentence; the default is appended).
        **kwargs: passed to `typer.Option`.

    Returns:
        The `typer.Option` parameter info.

    Example:
        >>> model: str | None = opt(TrainConfig, "model", "--model", "-m", help="Registry name.")
    """
    return typer.Option(
        None, *flags, help=help_with_default(help, field_default_text(schema, field)), show_default=False, **kwargs
    )


def plain_opt(default: Any, *flags: str, help: str, **kwargs: Any) -> Any:
    """A `typer.Option` with a real default (not a config field), shown escaped in its help.

    Args:
        default: the option's default value (a Path, int, ...), or None for "not given".
        *flags: str. Option names.
        help: str. What the option does.
        **kwargs: passed to `typer.Option`; `default_text` overrides the shown default.

    Returns:
        The `typer.Option` parameter info.
    """
    text = kwargs.pop("default_text", None)
    if text is None and default is not None and default is not ...:
        text = format_default(default)
    shown = help_with_default(help, text) if text is not None else help
    return typer.Option(default, *flags, help=shown, show_default=False, **kwargs)
