"""Send rate limits: per process in memory, and global through the database.

    RateLimiter     ``smtp.rate``: starts per second from this process
    DomainLimiter   ``smtp.domain_rate``: the same per receiving domain, this process
    reserve         one short transaction: the next block of slots of a shared limit
    SharedRate      one shared limit, handing out the slots of its reserved blocks
    GlobalLimits    ``smtp.global_rate`` and ``smtp.global_domain_rate``

Why global limits: ``send --worker`` processes (on one host or many) share an issue
through the database, and a provider counts what all of them send; with per-process
limits alone N senders go N times as fast.

The shared limit is GCRA done as reservations. The ``rate_slot`` row of a key (``*`` for
the global rate, ``domain:<domain>`` per domain) holds ``next_at``, when its next slot is
free. A process reserves a block of k consecutive slots in one statement::

    next_at = max(next_at, now) + k * interval  RETURNING next_at

(an upsert, so a missing row is created race-free), owns the window
``[next_at - k * interval, next_at)`` and starts its messages in it ``interval`` apart,
sleeping until each slot. k covers about :data:`BLOCK_SECONDS` of the rate, so a process
asks the database ~4 times a second at most, not once per message. Idle time is not
saved up: a block starts no earlier than ``now``.

``now`` is the database's clock, the one clock every host shares, so a host whose own
clock is wrong can neither stall the others nor outrun them. Each process maps a slot to
its monotonic clock by the reservation's database time; the reservation's own duration
makes that map err late, i.e. slower.

What holds: slots never overlap across processes; a message starts no earlier than its
slot; a slot found more than one block span old is dropped, never used. So in any T
seconds at most ``rate * (T + block span) + 1`` messages start, whatever the number of
processes. Slots that a process reserved and did not use (it ended, died, or had nothing
more to send) are simply lost: sending gets slower for a moment, never faster.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Table, cast, extract, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from newsletter.config import Config
from newsletter.errors import StoreError
from newsletter.models import RateSlot

RATE_SLOT: Table = RateSlot.__table__  # type: ignore[attr-defined]
BLOCK_SECONDS = 0.25  # a reservation covers this much of the rate (at least one slot)
GLOBAL_KEY = "*"


def recipient_domain(recipient: str) -> str:
    return recipient.rpartition("@")[2].lower().rstrip(".")


class RateLimiter:
    """At most ``rate`` starts per second, evenly spaced, over every connection."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self._next)
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class DomainLimiter:
    """A :class:`RateLimiter` per receiving domain named in ``smtp.domain_rate``.

    Its wait comes before a connection is taken, so a slow domain never holds a connection
    the other domains could use; the messages of one domain start no closer together
    than ``1 / rate`` on average (a start may only come later than its turn, never earlier).
    """

    def __init__(self, rates: Mapping[str, float]) -> None:
        self._limiters = {domain.lower(): RateLimiter(rate) for domain, rate in rates.items()}

    async def wait(self, recipient: str) -> None:
        if not self._limiters:
            return
        limiter = self._limiters.get(recipient_domain(recipient))
        if limiter is not None:
            await limiter.wait()


@dataclass(frozen=True)
class Window:
    """``count`` reserved slots ``interval`` apart, ending at ``end``; ``now`` is when it
    was reserved. All by the database's clock, in seconds since the epoch."""

    end: float
    count: int
    interval: float
    now: float

    @property
    def start(self) -> float:
        return self.end - self.count * self.interval

    def slots(self) -> list[float]:
        return [self.start + i * self.interval for i in range(self.count)]


def _database_now(dialect: str) -> ColumnElement[Any]:
    """The database's time, one value throughout the statement, in epoch seconds."""
    if dialect == "postgresql":
        return cast(extract("epoch", func.statement_timestamp()), Float)
    if dialect == "sqlite":  # julianday('now') is fixed within one sqlite3_step
        return (func.julianday("now") - 2440587.5) * 86400.0
    raise StoreError(f"global rate limits need SQLite or PostgreSQL, not {dialect}")


def reserve(engine: Engine, key: str, count: int, interval: float) -> Window:
    """Reserve the next ``count`` slots of ``key``, ``interval`` seconds apart.

    One upsert in one short transaction: the row is created when missing, and two
    processes racing for the same key get adjacent, non-overlapping windows.
    """
    if count < 1 or interval <= 0:
        raise ValueError("a reservation needs count >= 1 and interval > 0")
    span = count * interval
    dialect = engine.dialect.name
    now = _database_now(dialect)
    next_at = RATE_SLOT.c.next_at
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(RATE_SLOT).values(key=key, next_at=now + span)
        stmt = stmt.on_conflict_do_update(
            index_elements=[RATE_SLOT.c.key], set_={"next_at": func.greatest(next_at, now) + span}
        )
    else:  # sqlite; _database_now refused the others
        stmt = sqlite.insert(RATE_SLOT).values(key=key, next_at=now + span)
        stmt = stmt.on_conflict_do_update(
            index_elements=[RATE_SLOT.c.key], set_={"next_at": func.max(next_at, now) + span}
        )
    with engine.begin() as conn:
        end, at = conn.execute(stmt.returning(next_at, now)).one()
    return Window(end=end, count=count, interval=interval, now=at)


class SharedRate:
    """At most ``rate`` starts per second over every process sharing the database.

    Blocks are reserved on demand, in a thread (the event loop never waits on the
    database), one at a time per process; see the module doc for what is guaranteed.
    """

    def __init__(self, engine: Engine, key: str, rate: float) -> None:
        self.engine = engine
        self.key = key
        self.interval = 1.0 / rate
        self.block = max(1, int(rate * BLOCK_SECONDS))
        self.stale_after = self.block * self.interval  # older slots are dropped
        self._slots: deque[float] = deque()  # by the event loop's clock
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            slot = self._next_slot(loop.time())
            while slot is None:
                window = await asyncio.to_thread(
                    reserve, self.engine, self.key, self.block, self.interval
                )
                offset = loop.time() - window.now  # errs late: the reservation took time
                self._slots.extend(s + offset for s in window.slots())
                slot = self._next_slot(loop.time())
        delay = slot - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _next_slot(self, now: float) -> float | None:
        while self._slots:
            slot = self._slots.popleft()
            if slot >= now - self.stale_after:
                return slot
        return None


class GlobalLimits:
    """``smtp.global_rate`` and ``smtp.global_domain_rate``, shared through ``engine``.

    :meth:`wait_domain` comes before a connection is taken (as :class:`DomainLimiter`),
    :meth:`wait_rate` right before a message starts (as :class:`RateLimiter`).
    """

    def __init__(
        self,
        engine: Engine,
        rate: float | None = None,
        domain_rates: Mapping[str, float] | None = None,
    ) -> None:
        self.rate = SharedRate(engine, GLOBAL_KEY, rate) if rate else None
        domains = {recipient_domain(d): r for d, r in (domain_rates or {}).items()}
        self.domains = {d: SharedRate(engine, f"domain:{d}", r) for d, r in domains.items()}

    @classmethod
    def from_config(cls, config: Config, engine: Engine) -> GlobalLimits | None:
        """The configured global limits; None when there are none."""
        smtp = config.smtp
        if smtp.global_rate is None and not smtp.global_domain_rate:
            return None
        return cls(engine, smtp.global_rate, smtp.global_domain_rate)

    async def wait_domain(self, recipient: str) -> None:
        if not self.domains:
            return
        shared = self.domains.get(recipient_domain(recipient))
        if shared is not None:
            await shared.wait()

    async def wait_rate(self) -> None:
        if self.rate is not None:
            await self.rate.wait()
