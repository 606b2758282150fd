"""The one way imgclf makes HTML: Jinja2 templates in `imgclf/templates/`, autoescaped.

Every page imgclf writes or serves -- the evaluate report, the audit page, the compare page and
the review page -- is a template in `src/imgclf/templates/` rendered through `environment()`.
Autoescaping is on for every template (a file or class name with `<` in it is shown, never
interpreted), and an undefined variable is an error rather than an empty string.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

import jinja2

#: Package folder holding the templates (`imgclf/templates/<name>.html`).
TEMPLATES_PACKAGE = "imgclf"
TEMPLATES_DIR = "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared Jinja2 environment: package loader, autoescape on, strict undefined.

    Returns:
        jinja2.Environment. Templates are looked up as `"<name>.html"` or
        `"<folder>/<name>.html"` under `imgclf/templates/`.
    """
    return jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATES_PACKAGE, TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, /, **context: Any) -> str:
    """Renders one template of `imgclf/templates/` with `context`.

    Args:
        template: str. Its name relative to the templates folder, e.g. `"report.html"`.
        **context: the template's variables.

    Returns:
        str: the HTML page.

    Raises:
        jinja2.TemplateNotFound: if there is no such template (a programming error).
        jinja2.UndefinedError: if the template uses a variable not given (a programming error).
    """
    return environment().get_template(template).render(**context)


def png_data_uri(png: bytes) -> str:
    """A PNG as a `data:` URI, so a page needs no file beside it.

    Args:
        png: bytes. A PNG file's contents.

    Returns:
        str: `"data:image/png;base64,..."`.
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
