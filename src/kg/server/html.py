"""HTML pages: one Jinja2 environment with autoescape always on, and IRI → link helpers.

Every value from the store reaches a page through autoescaping (labels may hold markup);
IRIs under the base IRI become site-relative links, so a local run on any port and a
deployment behind a path prefix (uvicorn --root-path) both navigate within themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # every template, whatever its extension
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


LINKABLE_SCHEMES = ("http://", "https://", "ftp://", "mailto:")


def local_href(iri: str, base_iri: str, root_path: str = "") -> str:
    """The link to follow for an IRI: site-relative inside the base, the IRI itself outside.

    Only web schemes become links: a `javascript:` or `data:` IRI written into the store
    would otherwise run in the reader's browser when clicked (stored XSS, issue 7); for those
    the empty string, which templates treat as "no link".
    """
    if iri.startswith(base_iri):
        return f"{root_path}/{iri[len(base_iri):]}"
    return iri if iri.lower().startswith(LINKABLE_SCHEMES) else ""


def render(request: Request, template: str, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render a template with the request's root path available as `root`."""
    root = request.scope.get("root_path", "").rstrip("/")
    html = _ENV.get_template(template).render(root=root, **context)
    return HTMLResponse(html, status_code=status, headers=headers)
