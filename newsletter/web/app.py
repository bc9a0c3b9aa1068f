"""``create_app(config, engine)``: the Starlette application behind ``newsletter serve``."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.web import home, preferences, subscribe, unsubscribe
from newsletter.web.archive import archive_routes
from newsletter.web.common import PageError, Site, render
from newsletter.web.editor import editor_routes

MAX_BODY_BYTES = 64 * 1024

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the URLs carry subscriber tokens
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, and ``Cache-Control: no-store`` unless the
    response says otherwise (pages name subscribers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    if key not in headers:  # a response may set its own (the framed mail preview)
                        headers[key] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    return render(request, "error", status=exc.status, heading=exc.heading, message=exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headings = {404: "Page not found", 405: "Not allowed", 413: "Too much data"}
    return render(
        request,
        "error",
        status=exc.status_code,
        heading=headings.get(exc.status_code, "Something went wrong"),
        message=exc.detail if exc.status_code not in headings else "",
    )


def create_app(config: Config, engine: Engine) -> Starlette:
    """The web application for ``config``'s list, on ``engine``'s (migrated) database."""
    if not config.secret:
        raise ConfigError(
            "no secret configured: set NEWSLETTER_SECRET or [newsletter] secret",
            path=config.path,
            key="newsletter.secret",
        )
    app = Starlette(
        routes=[
            *home.routes,
            *subscribe.routes,
            *preferences.routes,
            *unsubscribe.routes,
            *editor_routes(config, engine),
            *archive_routes(config, engine),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={PageError: _page_error, HTTPException: _http_error},
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.site = Site(config, engine)
    return app
