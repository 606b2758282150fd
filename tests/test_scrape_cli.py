"""`imgclf scrape ... --help`: every option states its real default, read from the config models."""

from __future__ import annotations

import re

import pytest
import typer
from rich.markup import escape
from typer.testing import CliRunner

from imgclf.cli.main import app
from imgclf.cli.options import field_default_text
from imgclf.config import RedditSource, ScrapeConfig, WebSource

#: option -> (config model, field) for the options that fill a config field.
FIELDS = {
    "--limit": None,  # differs per command, checked below
    "--sort": (RedditSource, "sort"),
    "--time-filter": (RedditSource, "time_filter"),
    "--search": (RedditSource, "search"),
    "--new-only": (RedditSource, "new_only"),
    "--nsfw": (RedditSource, "nsfw"),
    "--praw-site": (RedditSource, "praw_site"),
    "--urls-file": (WebSource, "urls_file"),
    "--depth": (WebSource, "depth"),
    "--max-pages": (WebSource, "max_pages"),
    **{f"--{f.replace('_', '-')}": (ScrapeConfig, f) for f in ScrapeConfig.model_fields if f != "backoff"},
    "--respect-noai": (ScrapeConfig, "respect_noai"),
}


def _command(name: str):
    group = typer.main.get_command(app).commands["scrape"]
    return group.commands[name]


@pytest.mark.parametrize("name", ["reddit", "web", "status"])
def test_every_option_states_its_default_from_the_config(name):
    cmd = _command(name)
    for param in cmd.params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        flag = param.opts[0]
        if param.required:
            continue
        m = re.search(r"\\\[default: (.*)\]$", param.help or "")
        assert m, f"{name} {flag}: no [default: ...] at the end of its help: {param.help!r}"
        if flag == "--limit":
            model = RedditSource if name == "reddit" else WebSource
            assert m.group(1) == escape(field_default_text(model, "limit"))
        elif flag in FIELDS:
            model, field = FIELDS[flag]
            assert m.group(1) == escape(field_default_text(model, field)), (name, flag)


def test_help_renders_the_defaults():
    out = CliRunner().invoke(app, ["scrape", "reddit", "--help"], env={"COLUMNS": "250"}).output
    flat = " ".join(out.split())
    for text in (
        "[default: 120]",
        "[default: 1000]",
        "[default: top]",
        "[default: on]",
        "[default: 5]",
        "--ignore-noai",
        "--new-only",
        "--search",
    ):
        assert text in flat, text
    out = CliRunner().invoke(app, ["scrape", "web", "--help"], env={"COLUMNS": "250"}).output
    assert "[default: no limit]" in " ".join(out.split())
