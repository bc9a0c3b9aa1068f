"""Subscribers: add, remove, show, change and list them; parse and check their preferences.

The CLI (``newsletter subscribers …``), the CSV import and the web pages all go through
these functions. Every rejected value raises :class:`InputError` with a message fit to
show the person who typed it.

An address is validated and normalised with email-validator (no DNS look-ups) and stored
lower-cased, so it is unique case-insensitively. Preferences: ``countries`` (ISO 3166-1
alpha-2 codes) and ``sources`` (configured source names), each empty for "everything",
and ``frequency`` (``weekly`` or ``daily``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from newsletter.countries import is_country_code
from newsletter.errors import InputError
from newsletter.models import Delivery, Subscriber, SubscriberStatus, utcnow

FREQUENCIES = ("weekly", "daily")
STATUSES = tuple(s.value for s in SubscriberStatus)
# Statuses someone left or was taken out of: only an explicit choice brings them back.
LEFT = frozenset(
    {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED}
)
MAX_NAME = 200
_SEPARATORS = re.compile(r"[,\s;]+")
_LOOKUP_CHUNK = 500


# --- values -----------------------------------------------------------------------------


def normalize_email(value: str) -> str:
    """The normalised, lower-cased address, or InputError saying what is wrong with it."""
    text = value.strip()
    if not text:
        raise InputError("an email address is required")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"not a valid email address: {text!r} ({exc})") from None
    return checked.normalized.lower()


def _items(value: str | Iterable[str]) -> list[str]:
    parts = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for part in parts:
        out.extend(p for p in _SEPARATORS.split(part) if p)
    return out


def parse_countries(value: str | Iterable[str]) -> list[str]:
    """``"ve, cu"`` or ``"VE CU"`` or ``["VE", "CU"]`` -> ``["VE", "CU"]`` (checked, no repeats)."""
    out: list[str] = []
    bad: list[str] = []
    for code in _items(value):
        if not is_country_code(code):
            bad.append(code)
        elif code.upper() not in out:
            out.append(code.upper())
    if bad:
        listed = ", ".join(repr(b) for b in bad)
        raise InputError(f"not an ISO 3166-1 alpha-2 country code: {listed}")
    return out


def parse_sources(value: str | Iterable[str], known: Collection[str]) -> list[str]:
    """Source names, spelled as configured; unknown names raise InputError.

    A string is split at commas; a part that is not a source name is read as
    space-separated names, longest match first (so ``"Granma Brasil de Fato"`` works).
    """
    by_key = {name.casefold(): name for name in known}
    chunks = [value] if isinstance(value, str) else list(value)
    parts = [p.strip() for chunk in chunks for p in chunk.split(",")]
    out: list[str] = []
    bad: list[str] = []

    def take(name: str) -> None:
        if name not in out:
            out.append(name)

    for part in parts:
        if not part:
            continue
        if " ".join(part.split()).casefold() in by_key:
            take(by_key[" ".join(part.split()).casefold()])
            continue
        words = part.split()
        i = 0
        while i < len(words):
            for j in range(len(words), i, -1):
                candidate = " ".join(words[i:j]).casefold()
                if candidate in by_key:
                    take(by_key[candidate])
                    i = j
                    break
            else:
                bad.append(words[i])
                i += 1
    if bad:
        listed = ", ".join(repr(b) for b in bad)
        hint = f" (configured: {', '.join(known)})" if known else " (no sources are configured)"
        raise InputError(f"unknown source: {listed}{hint}")
    return out


def parse_frequency(value: str) -> str:
    """``weekly`` or ``daily`` (case-insensitive); "" means weekly."""
    text = value.strip().lower() or "weekly"
    if text not in FREQUENCIES:
        raise InputError(f"frequency must be weekly or daily, not {value!r}")
    return text


def parse_status(value: str) -> str:
    text = value.strip().lower()
    if text not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}, not {value!r}")
    return text


def clean_name(value: str) -> str:
    """One line, trimmed; at most MAX_NAME characters."""
    text = value.strip()
    if len(text) > MAX_NAME:
        raise InputError(f"name is longer than {MAX_NAME} characters")
    if any(c in text for c in "\r\n\x00"):
        raise InputError("name must be one line")
    return text


def join(values: Sequence[str]) -> str:
    """How a list preference is stored: comma-separated, no spaces."""
    return ",".join(values)


def split(stored: str) -> list[str]:
    return [v for v in stored.split(",") if v]


# --- queries -------------------------------------------------------------------------------


def get(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address (any case), or None; a malformed address is None."""
    try:
        key = normalize_email(email)
    except InputError:
        key = email.strip().lower()
    return session.exec(select(Subscriber).where(Subscriber.email == key)).first()


def get_by_id(session: Session, subscriber_id: int) -> Subscriber | None:
    return session.get(Subscriber, subscriber_id)


def show(session: Session, email: str) -> Subscriber:
    """The subscriber with this address; InputError when there is none."""
    sub = get(session, email)
    if sub is None:
        raise InputError(f"no subscriber with the address {email.strip()!r}")
    return sub


def get_many(session: Session, emails: Iterable[str]) -> dict[str, Subscriber]:
    """Normalised address -> subscriber, for the addresses that exist (batched look-ups)."""
    keys = sorted(set(emails))
    found: dict[str, Subscriber] = {}
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[start : start + _LOOKUP_CHUNK]
        for sub in session.exec(select(Subscriber).where(col(Subscriber.email).in_(chunk))):
            found[sub.email] = sub
    return found


def list_subscribers(
    session: Session, *, status: str | None = None, country: str | None = None
) -> list[Subscriber]:
    """Subscribers by address; ``country`` keeps those who get stories about it.

    That is everyone who chose the country and everyone with no country filter.
    """
    query = select(Subscriber).order_by(col(Subscriber.email))
    if status is not None:
        query = query.where(Subscriber.status == parse_status(status))
    subs = list(session.exec(query))
    if country is not None:
        (code,) = parse_countries(country) or [""]
        if not code:
            raise InputError("--country needs a country code")
        subs = [s for s in subs if not s.countries or code in split(s.countries)]
    return subs


def count(session: Session) -> dict[str, int]:
    """How many subscribers have each status (every status is present, maybe 0)."""
    counts = dict.fromkeys(STATUSES, 0)
    query = select(Subscriber.status, func.count()).group_by(col(Subscriber.status))
    for status, n in session.exec(query):
        counts[status] = n
    return counts


def as_dict(sub: Subscriber) -> dict[str, Any]:
    """A JSON-ready view of a subscriber."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": sub.id,
        "email": sub.email,
        "name": sub.name,
        "status": sub.status,
        "countries": split(sub.countries),
        "sources": split(sub.sources),
        "frequency": sub.frequency,
        "created_at": when(sub.created_at),
        "confirmed_at": when(sub.confirmed_at),
        "unsubscribed_at": when(sub.unsubscribed_at),
    }


# --- changes ------------------------------------------------------------------------------


def _set_status(sub: Subscriber, status: str, now: datetime) -> None:
    if status == sub.status:
        return
    sub.status = status
    if status == SubscriberStatus.ACTIVE:
        sub.confirmed_at = sub.confirmed_at or now
        sub.unsubscribed_at = None
    elif status == SubscriberStatus.UNSUBSCRIBED:
        sub.unsubscribed_at = now


def add(
    session: Session,
    email: str,
    *,
    name: str = "",
    countries: str | Iterable[str] = (),
    sources: str | Iterable[str] = (),
    frequency: str = "weekly",
    known_sources: Collection[str] = (),
    status: str = SubscriberStatus.ACTIVE,
    now: datetime | None = None,
) -> Subscriber:
    """Add a subscriber (active unless told otherwise); InputError if the address exists."""
    now = now or utcnow()
    key = normalize_email(email)
    sub = Subscriber(
        email=key,
        name=clean_name(name),
        countries=join(parse_countries(countries)),
        sources=join(parse_sources(sources, known_sources)),
        frequency=parse_frequency(frequency),
        status=SubscriberStatus.PENDING,
        created_at=now,
    )
    if get(session, key) is not None:
        raise InputError(f"{key} is already a subscriber (use `subscribers set` to change it)")
    _set_status(sub, parse_status(status), now)
    session.add(sub)
    session.flush()
    return sub


def update(
    session: Session,
    email: str,
    *,
    name: str | None = None,
    countries: str | Iterable[str] | None = None,
    sources: str | Iterable[str] | None = None,
    frequency: str | None = None,
    status: str | None = None,
    known_sources: Collection[str] = (),
    now: datetime | None = None,
) -> Subscriber:
    """Change what is given (None leaves a field alone); InputError if there is no such one."""
    sub = show(session, email)
    apply(
        sub,
        name=name,
        countries=countries,
        sources=sources,
        frequency=frequency,
        status=status,
        known_sources=known_sources,
        now=now,
    )
    session.add(sub)
    session.flush()
    return sub


def apply(
    sub: Subscriber,
    *,
    name: str | None = None,
    countries: str | Iterable[str] | None = None,
    sources: str | Iterable[str] | None = None,
    frequency: str | None = None,
    status: str | None = None,
    known_sources: Collection[str] = (),
    now: datetime | None = None,
) -> bool:
    """Check every value, then change the row; True when something changed."""
    values: dict[str, str] = {}
    if name is not None:
        values["name"] = clean_name(name)
    if countries is not None:
        values["countries"] = join(parse_countries(countries))
    if sources is not None:
        values["sources"] = join(parse_sources(sources, known_sources))
    if frequency is not None:
        values["frequency"] = parse_frequency(frequency)
    new_status = parse_status(status) if status is not None else None
    changed = False
    for key, value in values.items():
        if getattr(sub, key) != value:
            setattr(sub, key, value)
            changed = True
    if new_status is not None and new_status != sub.status:
        _set_status(sub, new_status, now or utcnow())
        changed = True
    return changed


def unsubscribe(session: Session, sub: Subscriber, now: datetime | None = None) -> bool:
    """Mark unsubscribed (at once: the next send skips them); False if already so."""
    if sub.status == SubscriberStatus.UNSUBSCRIBED:
        return False
    _set_status(sub, SubscriberStatus.UNSUBSCRIBED, now or utcnow())
    session.add(sub)
    session.flush()
    return True


def confirm(session: Session, sub: Subscriber, now: datetime | None = None) -> bool:
    """Double opt-in: make the subscriber active; False if they already were."""
    if sub.status == SubscriberStatus.ACTIVE:
        return False
    now = now or utcnow()
    sub.status = SubscriberStatus.ACTIVE
    sub.confirmed_at = now
    sub.unsubscribed_at = None
    session.add(sub)
    session.flush()
    return True


def remove(session: Session, email: str, *, purge: bool = False) -> Subscriber:
    """Mark unsubscribed; ``purge`` deletes the row and its delivery history instead."""
    sub = show(session, email)
    if purge:
        session.exec(delete(Delivery).where(col(Delivery.subscriber_id) == sub.id))
        session.exec(delete(Subscriber).where(col(Subscriber.id) == sub.id))
        session.expunge(sub)
        return sub
    unsubscribe(session, sub)
    return sub
