"""The public archive on the web: ``/archive``, ``/archive/N``, ``/archive/feed.xml``.

Only sent issues are shown, each as its public copy (generic unsubscribe and preferences
links). Pages are built by :mod:`newsletter.archive` from the database on each request.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter import archive
from newsletter import issues as lifecycle
from newsletter.config import Config
from newsletter.models import Issue, IssueState
from newsletter.store import session_scope

CACHE = "public, max-age=300"


def archive_site(config: Config) -> archive.Site:
    return archive.Site(
        title=config.title,
        base_url=config.newsletter.base_url.rstrip("/"),
        lang=config.newsletter.lang,
    )


def archive_routes(config: Config, engine: Engine) -> list[BaseRoute]:
    """The ``/archive`` routes, to add to the application's routes."""
    site = archive_site(config)

    def entries() -> list[archive.ArchivedIssue]:
        with session_scope(engine) as session:
            return lifecycle.archive_entries(session, config)

    def one(number: int) -> archive.ArchivedIssue | None:
        with session_scope(engine) as session:
            issue = session.get(Issue, number)
            if issue is None or issue.state != IssueState.SENT or issue.kind != "weekly":
                return None
            return lifecycle.archived(session, config, issue)

    async def index(request: Request) -> Response:
        page = archive.index_page(site, await run_in_threadpool(entries))
        return HTMLResponse(page, headers={"Cache-Control": CACHE})

    async def issue_page(request: Request) -> Response:
        found = await run_in_threadpool(one, int(request.path_params["number"]))
        if found is None:
            return HTMLResponse(
                "<!DOCTYPE html><title>Not found</title><p>No such issue in the archive.</p>",
                status_code=404,
            )
        return HTMLResponse(
            archive.issue_page(found),
            headers={
                "Cache-Control": CACHE,
                "Content-Security-Policy": archive.ISSUE_CSP,
                "Referrer-Policy": "no-referrer",
            },
        )

    async def feed(request: Request) -> Response:
        xml = archive.atom_feed(site, await run_in_threadpool(entries), now=datetime.now(UTC))
        return Response(xml, media_type="application/atom+xml", headers={"Cache-Control": CACHE})

    return [
        Route("/archive", index, methods=["GET"]),
        Route("/archive/", index, methods=["GET"]),
        Route("/archive/feed.xml", feed, methods=["GET"]),
        Route("/archive/{number:int}", issue_page, methods=["GET"]),
    ]
