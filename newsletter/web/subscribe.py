"""``/subscribe`` (double opt-in) and ``/confirm/{token}``.

The form makes (or refreshes) a ``pending`` subscriber and mails a signed confirmation
link. ``GET /confirm/{token}`` shows a button; only its ``POST`` makes them active, and
pending subscribers receive nothing else. At most one confirmation mail per address per
RESEND_AFTER, whatever is submitted. The answer is the same whether or not the address was
already on the list, so the form tells no one who subscribes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter import subscribers as subs
from newsletter.errors import DeliveryError, InputError
from newsletter.lists import confirm_url, preferences_url
from newsletter.models import Subscriber, SubscriberStatus, utcnow
from newsletter.store import session_scope
from newsletter.tokens import CONFIRM_MAX_AGE_S
from newsletter.web.common import PageError, check_csrf, render, site, subscriber_for
from newsletter.web.confirm_mail import send_confirmation
from newsletter.web.csrf import FIELD

log = logging.getLogger(__name__)
RESEND_AFTER = timedelta(minutes=15)
FORM = "subscribe"


class _Raced(Exception):
    """Another request added the address between our look-up and our insert."""


@dataclass(frozen=True)
class _Claim:
    """A confirmation mail to send, and how to undo the claim if sending fails."""

    subscriber_id: int
    email: str
    previous: datetime | None


def _claim(engine: Engine, email: str, countries: list[str], now: datetime) -> _Claim | None:
    """Record the request; returns the mail to send, or None (active, or sent recently)."""
    with session_scope(engine) as session:
        # FOR UPDATE: on PostgreSQL two simultaneous submissions cannot both send
        query = select(Subscriber).where(Subscriber.email == email).with_for_update()
        sub = session.exec(query).first()
        if sub is None:
            try:
                sub = subs.add(session, email, countries=countries, status="pending", now=now)
            except InputError:  # "already a subscriber": added since our look-up
                raise _Raced from None
        elif sub.status == SubscriberStatus.ACTIVE:
            return None  # already receiving it: change nothing, tell no one
        else:
            sub.countries = subs.join(countries)  # they receive nothing until they confirm
        previous = sub.confirmation_sent_at
        if previous is not None and now - previous < RESEND_AFTER:
            return None
        sub.confirmation_sent_at = now
        session.add(sub)
        session.flush()
        assert sub.id is not None
        return _Claim(sub.id, sub.email, previous)


def _unclaim(engine: Engine, claim: _Claim) -> None:
    with session_scope(engine) as session:
        sub = subs.get_by_id(session, claim.subscriber_id)
        if sub is not None:
            sub.confirmation_sent_at = claim.previous
            session.add(sub)


async def form(request: Request) -> Response:
    s = site(request)
    return render(
        request, "subscribe", form=FORM, countries=s.countries(), chosen=[], email="", error=""
    )


async def submit(request: Request) -> Response:
    s = site(request)
    data = await request.form()
    check_csrf(request, FORM, data.get(FIELD))
    raw_email = str(data.get("email", ""))
    raw_countries = [str(c) for c in data.getlist("countries")]
    try:
        email = subs.normalize_email(raw_email)
        countries = subs.parse_countries(raw_countries)
    except InputError as exc:
        return render(
            request,
            "subscribe",
            status=400,
            form=FORM,
            countries=s.countries(),
            chosen=[c.upper() for c in raw_countries],
            email=raw_email,
            error=str(exc),
        )
    try:
        claim = await s.db(_claim, s.engine, email, countries, utcnow())
    except (IntegrityError, _Raced):  # the same address, submitted twice at once
        claim = await s.db(_claim, s.engine, email, countries, utcnow())
    if claim is not None:
        url = confirm_url(s.config, claim.subscriber_id, claim.email)
        try:
            await send_confirmation(s.config, claim.email, url)
        except DeliveryError as exc:
            log.warning("confirmation mail to %s failed: %s", claim.email, exc)
            await s.db(_unclaim, s.engine, claim)
            raise PageError(
                503,
                "We could not send the email",
                "Our mail server is not answering just now. Please try again later.",
            ) from None
    return render(request, "subscribe_sent", email=email, minutes=RESEND_AFTER.seconds // 60)


def _confirm(engine: Engine, subscriber_id: int, commit: bool) -> tuple[str, str]:
    """('confirmed' | 'pending' | 'already' | 'stale', the subscriber's email); only `commit`
    makes a pending subscriber active."""
    with session_scope(engine) as session:
        sub = subs.get_by_id(session, subscriber_id)
        assert sub is not None
        if sub.status == SubscriberStatus.ACTIVE:
            return "already", sub.email
        left, sent = sub.unsubscribed_at, sub.confirmation_sent_at
        if left is not None and (sent is None or sent < left):
            return "stale", sub.email  # a link from before they unsubscribed
        if not commit:
            return "pending", sub.email
        subs.confirm(session, sub)
        return "confirmed", sub.email


async def confirm(request: Request) -> Response:
    """GET shows a button, POST (the button) confirms: mail scanners and link previews
    follow GETs, and must not subscribe an address whose owner never clicked."""
    s = site(request)
    token = request.path_params["token"]
    sub = await subscriber_for(request, "confirm", token, max_age=CONFIRM_MAX_AGE_S)
    assert sub.id is not None
    outcome, email = await s.db(_confirm, s.engine, sub.id, request.method == "POST")
    if outcome == "stale":
        raise PageError(
            410,
            "This link is out of date",
            "You unsubscribed after this link was sent. To subscribe again, use the form.",
        )
    if outcome == "pending":
        return render(request, "confirm", email=email, action=request.url.path)
    return render(
        request,
        "confirmed",
        already=outcome == "already",
        email=email,
        preferences=preferences_url(s.config, sub.id, email),
    )


routes = [
    Route("/subscribe", form, methods=["GET"]),
    Route("/subscribe", submit, methods=["POST"]),
    Route("/confirm/{token}", confirm, methods=["GET", "POST"]),
]
