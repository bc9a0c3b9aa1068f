"""``/unsubscribe/{token}``: a confirmation page, and one-click unsubscribe (RFC 8058).

``GET`` only shows a page with a button (link scanners follow GETs). ``POST`` with the
body ``List-Unsubscribe=One-Click``, which is what mail providers send and what the
page's button sends, unsubscribes at once and answers 200: no redirect, no cookie, no
CSRF token (the signed subscriber token in the URL is the authority). The change is
committed before the answer, so the very next send skips them.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter import subscribers as subs
from newsletter.lists import from_domain, preferences_url
from newsletter.models import SubscriberStatus
from newsletter.store import session_scope
from newsletter.web.common import PageError, render, site, subscriber_for

ONE_CLICK = ("List-Unsubscribe", "One-Click")


def _unsubscribe(engine: Engine, subscriber_id: int) -> bool:
    with session_scope(engine) as session:
        sub = subs.get_by_id(session, subscriber_id)
        return sub is not None and subs.unsubscribe(session, sub)


async def page(request: Request) -> Response:
    s = site(request)
    sub = await subscriber_for(request, "unsubscribe", request.path_params["token"])
    assert sub.id is not None
    return render(
        request,
        "unsubscribe",
        email=sub.email,
        done=sub.status == SubscriberStatus.UNSUBSCRIBED,
        action=request.url.path,
        preferences=preferences_url(s.config, sub.id, sub.email),
    )


async def one_click(request: Request) -> Response:
    s = site(request)
    sub = await subscriber_for(request, "unsubscribe", request.path_params["token"])
    data = await request.form()
    if data.get(ONE_CLICK[0]) != ONE_CLICK[1]:
        raise PageError(
            400,
            "Nothing was changed",
            "This address unsubscribes with a POST of List-Unsubscribe=One-Click.",
        )
    assert sub.id is not None
    await s.db(_unsubscribe, s.engine, sub.id)
    return render(request, "unsubscribed", email=sub.email)


async def info(request: Request) -> Response:
    """How to unsubscribe without a link: the mailto address an admin processes."""
    config = site(request).config
    mailto = config.newsletter.unsubscribe_mailto or f"unsubscribe@{from_domain(config)}"
    return render(request, "unsubscribe_info", mailto=mailto)


routes = [
    Route("/unsubscribe", info, methods=["GET"]),
    Route("/unsubscribe/{token}", page, methods=["GET"]),
    Route("/unsubscribe/{token}", one_click, methods=["POST"]),
]
