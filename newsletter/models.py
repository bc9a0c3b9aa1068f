"""The database tables (SQLModel). Schema changes go through alembic migrations.

SourceState   fetch state and health of each configured source (keyed by name)
Item          one stored feed entry; unique per (source, identity)
Issue         one digest: draft -> approved -> sending -> sent (or discarded)
IssueItem     which items an issue holds, with the editor's changes
Subscriber    who receives the digest, and what they chose
Delivery      one row per (issue, subscriber): the delivery log
RateSlot      the next free send slot of a global rate limit (mailer/ratelimit.py)
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _when(*, index: bool = False, nullable: bool = True) -> datetime | None:
    return Field(default=None, sa_column=Column(UTCDateTime(), index=index, nullable=nullable))  # type: ignore[no-any-return]


class SourceState(SQLModel, table=True):
    __tablename__ = "source_state"

    name: str = Field(primary_key=True)
    config_url: str = ""  # the URL in newsletter.toml when this state was recorded
    url: str  # the URL to fetch: config_url, or where a permanent redirect pointed
    etag: str | None = None
    last_modified: str | None = None
    last_fetch: datetime | None = _when()
    last_success: datetime | None = _when()
    last_error: str | None = None
    last_error_at: datetime | None = _when()
    consecutive_failures: int = 0
    items_seen: int = 0
    disabled: bool = False  # the server said 410 Gone
    retry_after: datetime | None = _when()


class Item(SQLModel, table=True):
    __tablename__ = "item"
    __table_args__ = (
        UniqueConstraint("source", "identity", name="uq_item_source_identity"),
        Index("ix_item_fetched_at", "fetched_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    identity: str
    guid: str | None = None
    link: str = ""
    canonical: str = Field(default="", index=True)
    title: str
    summary_html: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    excerpt: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    author: str | None = None
    published: datetime | None = _when()
    fetched_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    countries: str = ""  # comma-separated alpha-2 codes, in order of weight
    primary_country: str | None = None
    region: str | None = None
    country_override: str | None = None  # an editor's choice; survives re-fetching

    @property
    def country_list(self) -> tuple[str, ...]:
        return tuple(c for c in self.countries.split(",") if c)

    @property
    def filed_under(self) -> str | None:
        return self.country_override or self.primary_country


class IssueState(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    DISCARDED = "discarded"


class Issue(SQLModel, table=True):
    __tablename__ = "issue"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="weekly", index=True)  # weekly | daily: which subscribers get it
    state: str = Field(default=IssueState.DRAFT, index=True)
    subject: str = ""
    note: str = ""  # the editor's Markdown
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    approved_at: datetime | None = _when()
    send_after: datetime | None = _when()
    sent_at: datetime | None = _when()
    slot: str | None = Field(default=None, unique=True)  # the schedule slot it was made for


class IssueItem(SQLModel, table=True):
    __tablename__ = "issue_item"

    issue_id: int = Field(foreign_key="issue.id", primary_key=True, ondelete="CASCADE")
    item_id: int = Field(foreign_key="item.id", primary_key=True, index=True, ondelete="CASCADE")
    dropped: bool = False
    pinned: bool = False
    country: str | None = None  # moved to another country in this issue only


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Subscriber(SQLModel, table=True):
    __tablename__ = "subscriber"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)  # normalised, lower-cased: unique case-insensitively
    name: str = ""
    status: str = Field(default=SubscriberStatus.ACTIVE, index=True)
    countries: str = ""  # comma-separated alpha-2 codes; empty = everything
    sources: str = ""  # comma-separated source names; empty = everything
    frequency: str = "weekly"
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    confirmed_at: datetime | None = _when()
    unsubscribed_at: datetime | None = _when()
    confirmation_sent_at: datetime | None = _when()  # rate-limits double opt-in mails


class DeliveryState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class Delivery(SQLModel, table=True):
    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id", name="uq_delivery_issue_subscriber"),
        Index("ix_delivery_issue_state", "issue_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", ondelete="CASCADE")
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE")
    state: str = Field(default=DeliveryState.PENDING)
    message_id: str = ""
    reply: str = ""  # the SMTP server's last reply
    attempts: int = 0
    claimed_by: str | None = None
    claimed_until: datetime | None = _when()
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class Editor(SQLModel, table=True):
    __tablename__ = "editor"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)
    password_hash: str
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    last_login_at: datetime | None = _when()


class ScheduleRun(SQLModel, table=True):
    __tablename__ = "schedule_run"

    slot: str = Field(primary_key=True)  # "<kind>:<slot time in UTC, ISO 8601>"
    kind: str = "weekly"
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = _when()
    finished_at: datetime | None = _when()
    status: str = "running"  # running | done | skipped | failed
    issue_id: int | None = Field(default=None, foreign_key="issue.id", ondelete="SET NULL")
    detail: str = ""


class Lease(SQLModel, table=True):
    __tablename__ = "lease"

    name: str = Field(primary_key=True)
    owner: str
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class RateSlot(SQLModel, table=True):
    """One limit shared by every sender process: see newsletter/mailer/ratelimit.py."""

    __tablename__ = "rate_slot"

    key: str = Field(primary_key=True)  # "*" (smtp.global_rate) or "domain:<domain>"
    next_at: float  # the next free slot: seconds since the epoch, by the database's clock
