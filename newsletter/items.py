"""Stored items: insert what a feed brought, tag countries, read the next digest's candidates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import exists
from sqlmodel import Session, col, select

from newsletter import countries
from newsletter.digest import Candidate
from newsletter.errors import InputError
from newsletter.models import Issue, IssueItem, IssueState, Item

REGION_PREFIX = "region:"
# Issues whose items are spoken for: an item in one of these is never "new" again.
CLAIMING_STATES = (IssueState.APPROVED, IssueState.SENDING, IssueState.SENT)


class Entry(Protocol):
    """What the store needs of a parsed feed entry (feeds.ParsedEntry)."""

    @property
    def identity(self) -> str: ...
    @property
    def guid(self) -> str | None: ...
    @property
    def link(self) -> str | None: ...
    @property
    def title(self) -> str: ...
    @property
    def summary_html(self) -> str: ...
    @property
    def excerpt(self) -> str: ...
    @property
    def author(self) -> str | None: ...
    @property
    def published(self) -> datetime | None: ...


def store_entries(
    session: Session,
    source: str,
    source_country: str,
    entries: Sequence[Entry],
    now: datetime,
    canonical: dict[str, str] | None = None,
) -> int:
    """Insert the entries this source has not stored before; returns how many were new.

    Identity is per source (guid, else link, else a content hash: the parser's job), so
    re-fetching the same feed stores nothing. ``canonical`` maps links to their canonical
    form, which is how one story carried by two sources is recognised later.
    """
    identities = {e.identity for e in entries}
    if not identities:
        return 0
    known = set(
        session.exec(
            select(Item.identity).where(Item.source == source, col(Item.identity).in_(identities))
        )
    )
    new = 0
    for entry in entries:
        if entry.identity in known:
            continue
        known.add(entry.identity)
        placement = countries.detect(entry.title, entry.excerpt, source_country)
        link = entry.link or ""
        session.add(
            Item(
                source=source,
                identity=entry.identity,
                guid=entry.guid,
                link=link,
                canonical=(canonical or {}).get(link, link),
                title=entry.title,
                summary_html=entry.summary_html,
                excerpt=entry.excerpt,
                author=entry.author,
                published=entry.published,
                fetched_at=now,
                countries=",".join(placement.countries),
                primary_country=placement.primary,
                region=placement.region,
            )
        )
        new += 1
    return new


def placement(item: Item) -> tuple[str | None, str | None]:
    """(primary country, region) the item is filed under, the editor's override first."""
    override = item.country_override
    if override:
        if override.startswith(REGION_PREFIX):
            return None, override.removeprefix(REGION_PREFIX)
        return override, None
    return item.primary_country, item.region


def parse_heading(code: str) -> str:
    """Validate an editor's country choice: an alpha-2 code or a region key."""
    key = code.strip()
    if key.casefold().removeprefix(REGION_PREFIX) in countries.REGIONS:
        return REGION_PREFIX + key.casefold().removeprefix(REGION_PREFIX)
    if countries.is_country_code(key):
        return key.upper()
    regions = ", ".join(countries.REGIONS)
    raise InputError(f"{code!r} is neither an ISO 3166-1 alpha-2 code nor a region ({regions})")


def set_country(session: Session, item_id: int, code: str) -> Item:
    """File an item under another country (or region) for good; survives re-fetching."""
    item = session.get(Item, item_id)
    if item is None:
        raise InputError(f"no item with id {item_id}")
    item.country_override = parse_heading(code)
    session.add(item)
    return item


def to_candidate(item: Item) -> Candidate:
    assert item.id is not None
    primary, region = placement(item)
    return Candidate(
        id=item.id,
        source=item.source,
        title=item.title,
        link=item.link,
        published=item.published,
        fetched=item.fetched_at,
        excerpt=item.excerpt,
        author=item.author,
        canonical=item.canonical,
        countries=item.country_list,
        primary=primary,
        region=region,
    )


def new_items(
    session: Session, now: datetime, max_age_days: int, kind: str = "weekly"
) -> list[Item]:
    """Items never in an approved or sent issue of this kind, fetched within the age window.

    Kinds are independent: a daily issue does not take items away from the weekly one.

    An item published within the window was fetched after it was published, so the
    ``fetched_at`` bound is a safe index filter; the digest stage applies the exact rule.
    """
    cutoff = now - timedelta(days=max_age_days)
    spoken_for = (
        select(IssueItem.item_id)
        .join(Issue, col(Issue.id) == IssueItem.issue_id)
        .where(
            col(IssueItem.item_id) == Item.id,
            col(Issue.state).in_(CLAIMING_STATES),
            col(Issue.kind) == kind,
        )
    )
    query = (
        select(Item)
        .where(col(Item.fetched_at) >= cutoff, ~exists(spoken_for))
        .order_by(col(Item.fetched_at), col(Item.id))
    )
    return list(session.exec(query))


def list_items(
    session: Session, *, country: str | None = None, source: str | None = None, limit: int = 50
) -> list[Item]:
    """Newest stored items, optionally only those filed under ``country`` (code or region)."""
    query = select(Item).order_by(col(Item.fetched_at).desc(), col(Item.id).desc())
    if source:
        query = query.where(Item.source == source)
    if country:
        heading = parse_heading(country)
        if heading.startswith(REGION_PREFIX):
            region = heading.removeprefix(REGION_PREFIX)
            query = query.where(
                (col(Item.country_override) == heading)
                | (col(Item.country_override).is_(None) & (col(Item.region) == region))
            )
        else:
            query = query.where(
                (col(Item.country_override) == heading)
                | (col(Item.country_override).is_(None) & (col(Item.primary_country) == heading))
            )
    return list(session.exec(query.limit(limit)))
