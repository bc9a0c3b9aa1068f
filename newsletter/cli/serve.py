"""``newsletter serve``: the web pages (subscribe, confirm, preferences, unsubscribe)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from newsletter.cli.context import app_context, err_console
from newsletter.web import create_app


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The port.")] = 8000,
) -> None:
    """Serve the subscribe, confirm, preferences and one-click unsubscribe pages.

    Put it behind a TLS-terminating proxy; [newsletter] base_url must be the public
    address, since the links in emails are made from it.

    Example:

        newsletter serve --host 0.0.0.0 --port 8000
    """
    app_ctx = app_context(ctx)
    web_app = create_app(app_ctx.config, app_ctx.engine())
    err_console.print(f"serving {app_ctx.config.newsletter.base_url} on http://{host}:{port}")
    uvicorn.run(web_app, host=host, port=port, proxy_headers=True, log_level="info")


def register(app: typer.Typer) -> None:
    app.command()(serve)
