"""The delivery log: one row per (issue, subscriber), claimed in the database.

Plain SQLAlchemy Core that runs on SQLite and PostgreSQL alike:

    create   INSERT … SELECT the active subscribers of the issue's kind, idempotently
    claim    UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING id:
             one short write transaction, so two ``send`` processes never claim the same
             row; a claim is a lease (``claimed_by``, ``claimed_until``) renewed while
             the process lives and taken over when it lapses
    record   the outcome, written after the server's reply (``sent`` only after its 250)

A row is ``pending`` (to send), ``claimed`` (leased to a sender), or has ended: ``sent``,
``failed`` (a permanent refusal) or ``skipped`` (the subscriber left, or their
preferences leave nothing to send). A message deferred after its retries goes back to
``pending`` still naming its owner, so the same run does not pick it up again but the
next one does. Nothing here holds the subscriber list in memory.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from newsletter.models import (
    Delivery,
    DeliveryState,
    Issue,
    IssueState,
    Subscriber,
    SubscriberStatus,
    UTCDateTime,
)

DELIVERY: Table = Delivery.__table__  # type: ignore[attr-defined]
SUBSCRIBER: Table = Subscriber.__table__  # type: ignore[attr-defined]
ISSUE: Table = Issue.__table__  # type: ignore[attr-defined]
OPEN_STATES = (DeliveryState.PENDING, DeliveryState.CLAIMED)


def new_owner() -> str:
    """``host:pid:nonce``: who holds a claim; a dead pid on this host frees it at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _owner_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's: wait for its lease to lapse
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class Claimed:
    """A claimed delivery with what the sender needs of its subscriber."""

    delivery_id: int
    subscriber_id: int
    email: str
    active: bool
    countries: str
    sources: str


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    state: DeliveryState  # sent | failed | skipped | pending (deferred)
    reply: str
    message_id: str
    attempts: int


def create(engine: Engine, issue_id: int, kind: str, now: datetime) -> int:
    """A pending row for every active subscriber of this kind without one; returns how many."""
    existing = select(DELIVERY.c.id).where(
        DELIVERY.c.issue_id == issue_id, DELIVERY.c.subscriber_id == SUBSCRIBER.c.id
    )
    source = select(
        literal(issue_id),
        SUBSCRIBER.c.id,
        literal(DeliveryState.PENDING.value),
        literal(""),
        literal(""),
        literal(0),
        literal(now, UTCDateTime()),
    ).where(
        SUBSCRIBER.c.status == SubscriberStatus.ACTIVE.value,
        SUBSCRIBER.c.frequency == kind,
        ~existing.exists(),
    )
    columns = ["issue_id", "subscriber_id", "state", "message_id", "reply", "attempts"]
    columns.append("updated_at")
    stmt: Any
    if engine.dialect.name == "postgresql":
        stmt = postgresql.insert(DELIVERY).from_select(columns, source).on_conflict_do_nothing()
    elif engine.dialect.name == "sqlite":
        stmt = sqlite.insert(DELIVERY).from_select(columns, source).on_conflict_do_nothing()
    else:  # pragma: no cover - the two supported databases are above
        stmt = DELIVERY.insert().from_select(columns, source)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount or 0


def claim(
    engine: Engine, issue_id: int, owner: str, limit: int, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Lease up to ``limit`` open rows to ``owner``, oldest first."""
    d = DELIVERY.c
    claimable = (
        select(d.id)
        .where(
            d.issue_id == issue_id,
            or_(
                and_(
                    d.state == DeliveryState.PENDING.value,
                    or_(d.claimed_by.is_(None), d.claimed_by != owner),
                ),
                and_(d.state == DeliveryState.CLAIMED.value, d.claimed_until < now),
            ),
        )
        .order_by(d.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers anyway
    )
    stmt = (
        update(DELIVERY)
        .where(d.id.in_(claimable.scalar_subquery()))
        .values(
            state=DeliveryState.CLAIMED.value,
            claimed_by=owner,
            claimed_until=now + lease,
            updated_at=now,
        )
        .returning(d.id)
    )
    with engine.begin() as conn:
        ids = [row[0] for row in conn.execute(stmt)]
        if not ids:
            return []
        s = SUBSCRIBER.c
        rows = conn.execute(
            select(d.id, s.id, s.email, s.status, s.countries, s.sources)
            .join_from(DELIVERY, SUBSCRIBER, d.subscriber_id == s.id)
            .where(d.id.in_(ids))
            .order_by(d.id)
        )
        return [
            Claimed(r[0], r[1], r[2], r[3] == SubscriberStatus.ACTIVE.value, r[4], r[5])
            for r in rows
        ]


def record(engine: Engine, outcomes: Sequence[Outcome], owner: str, now: datetime) -> None:
    """Write outcomes in one transaction; ``sent`` rows drop their claim."""
    if not outcomes:
        return
    d = DELIVERY.c
    stmt = (
        update(DELIVERY)
        .where(d.id == bindparam("did"))
        .values(
            state=bindparam("new_state"),
            reply=bindparam("new_reply"),
            message_id=bindparam("new_message_id"),
            attempts=d.attempts + bindparam("tries"),
            claimed_by=bindparam("owner"),
            claimed_until=None,
            updated_at=now,
        )
    )
    params = [
        {
            "did": o.delivery_id,
            "new_state": o.state.value,
            "new_reply": o.reply[:1000],
            "new_message_id": o.message_id,
            "tries": o.attempts,
            # a deferred row keeps its owner: this run does not take it again, the next does
            "owner": owner if o.state == DeliveryState.PENDING else None,
        }
        for o in outcomes
    ]
    with engine.begin() as conn:
        conn.execute(stmt, params)


def renew(engine: Engine, issue_id: int, owner: str, until: datetime) -> None:
    d = DELIVERY.c
    with engine.begin() as conn:
        conn.execute(
            update(DELIVERY)
            .where(
                d.issue_id == issue_id,
                d.claimed_by == owner,
                d.state == DeliveryState.CLAIMED.value,
            )
            .values(claimed_until=until)
        )


def release(engine: Engine, issue_id: int, owners: Sequence[str]) -> int:
    """Give claimed rows back (an aborted run, or a dead owner's); returns how many."""
    if not owners:
        return 0
    d = DELIVERY.c
    with engine.begin() as conn:
        result = conn.execute(
            update(DELIVERY)
            .where(
                d.issue_id == issue_id,
                d.claimed_by.in_(owners),
                d.state == DeliveryState.CLAIMED.value,
            )
            .values(state=DeliveryState.PENDING.value, claimed_by=None, claimed_until=None)
        )
        return result.rowcount or 0


def release_dead(engine: Engine, issue_id: int) -> int:
    """Free the claims of senders on this machine that no longer run (killed, crashed)."""
    d = DELIVERY.c
    with engine.connect() as conn:
        owners = conn.execute(
            select(d.claimed_by)
            .where(d.issue_id == issue_id, d.state == DeliveryState.CLAIMED.value)
            .distinct()
        ).scalars()
        dead = [o for o in owners if o and _owner_dead(o)]
    return release(engine, issue_id, dead)


def held_by_others(engine: Engine, issue_id: int, owner: str) -> bool:
    """Whether another sender holds a claim (live or lapsed) on a row of this issue."""
    d = DELIVERY.c
    held = select(d.id).where(
        d.issue_id == issue_id,
        d.state == DeliveryState.CLAIMED.value,
        d.claimed_by != owner,
    )
    with engine.connect() as conn:
        return bool(conn.execute(select(held.exists())).scalar())


def counts(engine: Engine, issue_id: int) -> dict[str, int]:
    d = DELIVERY.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(d.state, func.count()).where(d.issue_id == issue_id).group_by(d.state)
        )
        return {state: n for state, n in rows}


def finish_if_done(engine: Engine, issue_id: int, now: datetime) -> bool:
    """Mark the issue sent when every delivery has ended; True when it is (now) sent."""
    d, i = DELIVERY.c, ISSUE.c
    open_rows = select(d.id).where(
        d.issue_id == issue_id, d.state.in_([s.value for s in OPEN_STATES])
    )
    with engine.begin() as conn:
        conn.execute(
            update(ISSUE)
            .where(i.id == issue_id, i.state == IssueState.SENDING.value, ~open_rows.exists())
            .values(state=IssueState.SENT.value, sent_at=now)
        )
        state = conn.execute(select(i.state).where(i.id == issue_id)).scalar_one()
    return bool(state == IssueState.SENT.value)
