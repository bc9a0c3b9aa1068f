"""``/``: what the newsletter is, how to subscribe and how to leave; the stylesheet."""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.jinja import environment
from newsletter.web.common import render, site


async def home(request: Request) -> Response:
    s = site(request)
    return render(
        request,
        "home",
        sources=[(src.name, src.country) for src in s.config.sources],
    )


@functools.cache
def _stylesheet() -> str:
    env = environment()
    assert env.loader is not None
    return env.loader.get_source(env, "web/site.css")[0]


async def stylesheet(request: Request) -> Response:
    return Response(
        _stylesheet(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def favicon(request: Request) -> Response:
    """No icon, said without a 404 (browsers ask for it on every site)."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


routes = [
    Route("/", home, methods=["GET"]),
    Route("/site.css", stylesheet, methods=["GET"]),
    Route("/favicon.ico", favicon, methods=["GET"]),
]
