"""`imgclf review DIR`: a local page to look at a dataset and decide (reject, relabel, undo).

Imports nothing heavy at module level: Starlette and uvicorn load only when the command runs,
so `imgclf --help` and `imgclf review --help` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from imgclf.cli.options import plain_opt
from imgclf.review import DEFAULT_HOST, DEFAULT_PORT
from imgclf.ui import warn


def register(app: typer.Typer) -> None:
    """Adds `review` to `app`."""

    @app.command("review")
    def review(
        data_dir: Path = typer.Argument(
            ...,
            help="Folder to review: DIR/<class>/<image> or DIR/{train,val,test}/<class>/<image> "
            "(usually clean's output). Decisions go to DIR/_reports/decisions.sqlite.",
        ),
        audit: Path | None = plain_opt(
            None, "--audit", help="`imgclf audit` output folder: label issues (worst first) and outliers."
        ),
        run: Path | None = plain_opt(
            None, "--run", help="An evaluated run folder (metrics.json): its most confidently wrong images."
        ),
        port: int = plain_opt(DEFAULT_PORT, "--port", "-p", help="Port to listen on; 0 = any free port."),
        host: str = plain_opt(
            DEFAULT_HOST,
            "--host",
            help="Address to bind. Anything but loopback puts the page (token-protected) on the network.",
        ),
        no_browser: bool = plain_opt(False, "--no-browser", help="Do not open a browser; just print the URL."),
    ) -> None:
        """Open a local page to review a dataset: keys j/k move, x rejects, 1-9 relabel, u undoes.

        Prints one line `review: http://127.0.0.1:PORT/?token=TOKEN` on stdout. `imgclf clean SRC --out DIR` applies the decisions.
        """  # noqa: E501 - typer's rich help keeps a docstring's line breaks: a paragraph is one line
        from imgclf.review.server import is_loopback, serve_review

        if not is_loopback(host):
            warn(f"--host {host}: the review page is reachable from the network (it still needs the token)")

        def announce(url: str) -> None:
            sys.stdout.write(f"review: {url}\n")
            sys.stdout.flush()

        serve_review(
            data_dir, audit=audit, run=run, host=host, port=port, open_browser=not no_browser, on_ready=announce
        )
