"""``/preferences/{token}``: the subscriber chooses countries, sources and frequency."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter import subscribers as subs
from newsletter.errors import InputError
from newsletter.lists import unsubscribe_url
from newsletter.models import Subscriber
from newsletter.store import session_scope
from newsletter.web.common import check_csrf, render, site, subscriber_for
from newsletter.web.csrf import FIELD

FORM = "preferences"


def _page(
    request: Request,
    sub: Subscriber,
    *,
    countries: list[str],
    sources: list[str],
    frequency: str,
    status: int = 200,
    error: str = "",
    saved: bool = False,
) -> Response:
    s = site(request)
    assert sub.id is not None
    return render(
        request,
        "preferences",
        status=status,
        form=FORM,
        action=request.url.path,
        email=sub.email,
        subscribed=sub.status in ("active", "pending"),
        countries=s.countries(countries),
        sources=s.source_names,
        chosen_countries=countries,
        chosen_sources=sources,
        frequency=frequency,
        error=error,
        saved=saved,
        unsubscribe=unsubscribe_url(s.config, sub.id, sub.email),
    )


async def page(request: Request) -> Response:
    sub = await subscriber_for(request, "preferences", request.path_params["token"])
    return _page(
        request,
        sub,
        countries=subs.split(sub.countries),
        sources=subs.split(sub.sources),
        frequency=sub.frequency,
    )


def _save(
    engine: Engine,
    subscriber_id: int,
    countries: list[str],
    sources: list[str],
    frequency: str,
    known: list[str],
) -> Subscriber | None:
    with session_scope(engine) as session:
        sub = subs.get_by_id(session, subscriber_id)
        if sub is None:
            return None
        subs.apply(
            sub, countries=countries, sources=sources, frequency=frequency, known_sources=known
        )
        session.add(sub)
        return sub


async def save(request: Request) -> Response:
    s = site(request)
    sub = await subscriber_for(request, "preferences", request.path_params["token"])
    data = await request.form()
    check_csrf(request, FORM, data.get(FIELD))
    countries = [str(c) for c in data.getlist("countries")]
    sources = [str(v) for v in data.getlist("sources")]
    frequency = str(data.get("frequency", "weekly"))
    assert sub.id is not None
    try:
        saved = await s.db(_save, s.engine, sub.id, countries, sources, frequency, s.source_names)
    except InputError as exc:
        return _page(
            request,
            sub,
            countries=[c.upper() for c in countries],
            sources=sources,
            frequency=frequency,
            status=400,
            error=str(exc),
        )
    assert saved is not None
    return _page(
        request,
        saved,
        countries=subs.split(saved.countries),
        sources=subs.split(saved.sources),
        frequency=saved.frequency,
        saved=True,
    )


routes = [
    Route("/preferences/{token}", page, methods=["GET"]),
    Route("/preferences/{token}", save, methods=["POST"]),
]
