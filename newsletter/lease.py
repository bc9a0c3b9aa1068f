"""A named, expiring lock in the ``lease`` table, for SQLite and PostgreSQL.

One holder at a time: :func:`acquire` inserts the row, or takes it over when it has
expired (or is already ours), in one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``
statement, so two processes racing for it cannot both win. The holder renews it while it
works and releases it when done; a holder that dies simply lets it expire.

Times are passed in (``now``), never read here, so tests can pin the clock.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.dml import Insert
from sqlmodel import SQLModel

from newsletter.errors import StoreError
from newsletter.models import Lease

_TABLE: Table = SQLModel.metadata.tables[str(Lease.__tablename__)]


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, and until when."""

    name: str
    owner: str
    expires_at: datetime


def new_owner() -> str:
    """An owner id unique to this process and call: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _upsert(engine: Engine, name: str, owner: str, expires_at: datetime, now: datetime) -> bool:
    values = {"name": name, "owner": owner, "expires_at": expires_at}
    c = _TABLE.c
    takeover = (c.expires_at <= now) | (c.owner == owner)
    new = {"owner": owner, "expires_at": expires_at}
    dialect = engine.dialect.name
    stmt: Insert
    if dialect == "sqlite":
        lite = sqlite.insert(_TABLE).values(values)
        stmt = lite.on_conflict_do_update(index_elements=[c.name], set_=new, where=takeover)
    elif dialect == "postgresql":
        pg = postgresql.insert(_TABLE).values(values)
        stmt = pg.on_conflict_do_update(index_elements=[c.name], set_=new, where=takeover)
    else:
        raise StoreError(f"leases need SQLite or PostgreSQL, not {dialect}")
    with engine.begin() as conn:
        # A row back: inserted or taken over; none: someone else holds a live lease.
        # (RETURNING, not rowcount: drivers disagree on rowcount for upserts.)
        return conn.execute(stmt.returning(c.name)).first() is not None


def acquire(engine: Engine, name: str, owner: str, ttl: timedelta, now: datetime) -> bool:
    """Take the lease ``name`` until ``now + ttl`` unless someone else holds a live one.

    Acquiring a lease one already holds extends it.
    """
    return _upsert(engine, name, owner, now + ttl, now)


def renew(engine: Engine, name: str, owner: str, ttl: timedelta, now: datetime) -> bool:
    """Extend a lease we hold; False when it is no longer ours (it expired and was taken)."""
    c = _TABLE.c
    stmt = update(_TABLE).where(c.name == name, c.owner == owner).values(expires_at=now + ttl)
    with engine.begin() as conn:
        return conn.execute(stmt.returning(c.name)).first() is not None


def release(engine: Engine, name: str, owner: str) -> bool:
    """Give the lease up; False when it was not ours (any more)."""
    c = _TABLE.c
    stmt = delete(_TABLE).where(c.name == name, c.owner == owner).returning(c.name)
    with engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def holder(engine: Engine, name: str, now: datetime) -> Holder | None:
    """Who holds a live lease ``name`` at ``now``, if anyone."""
    c = _TABLE.c
    with engine.connect() as conn:
        row = conn.execute(
            select(c.owner, c.expires_at).where(c.name == name, c.expires_at > now)
        ).first()
    if row is None:
        return None
    return Holder(name, row.owner, row.expires_at)
