"""The issue lifecycle: draft -> approved -> sending -> sent (or discarded).

A draft collects the new items; editors drop, move and pin items, write a note and
change the subject. What is sent is exactly the approved snapshot: items fetched after
approval wait for the next issue, and edits are refused once an issue left the draft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markdown_it import MarkdownIt
from sqlmodel import Session, col, select

from newsletter import items as item_store
from newsletter.archive import ArchivedIssue
from newsletter.config import Config, SourceEntry
from newsletter.digest import Candidate, Digest, DigestSettings, build_digest
from newsletter.errors import InputError
from newsletter.models import Issue, IssueItem, IssueState, Item, SourceState
from newsletter.render import RenderedDigest, fill, render_digest

EDITABLE = (IssueState.DRAFT,)
# Markdown for editors' notes: no raw HTML, so a note can never inject markup.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")


def current_draft(session: Session, kind: str = "weekly") -> Issue | None:
    query = select(Issue).where(Issue.kind == kind, Issue.state == IssueState.DRAFT)
    return session.exec(query.order_by(col(Issue.id).desc())).first()


def create_draft(
    session: Session, *, now: datetime, max_age_days: int, kind: str = "weekly"
) -> Issue | None:
    """The draft of this kind with every new item in it; None when nothing is new.

    An existing draft is topped up with items that arrived since, keeping the editor's
    changes to the items already in it.
    """
    fresh = item_store.new_items(session, now, max_age_days, kind)
    draft = current_draft(session, kind)
    if draft is None:
        if not fresh:
            return None
        draft = Issue(kind=kind, state=IssueState.DRAFT, created_at=now)
        session.add(draft)
        session.flush()
    assert draft.id is not None
    present = set(session.exec(select(IssueItem.item_id).where(IssueItem.issue_id == draft.id)))
    for item in fresh:
        if item.id not in present:
            assert item.id is not None
            session.add(IssueItem(issue_id=draft.id, item_id=item.id))
    session.flush()
    return draft


def get_issue(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise InputError(f"no issue number {issue_id}")
    return issue


def _editable(session: Session, issue_id: int) -> Issue:
    issue = get_issue(session, issue_id)
    if issue.state not in EDITABLE:
        raise InputError(f"issue {issue_id} is {issue.state}: only a draft can be edited")
    return issue


def _entry(session: Session, issue_id: int, item_id: int) -> IssueItem:
    entry = session.get(IssueItem, (issue_id, item_id))
    if entry is None:
        raise InputError(f"item {item_id} is not in issue {issue_id}")
    return entry


def issue_items(session: Session, issue_id: int) -> list[tuple[IssueItem, Item]]:
    """The items of an issue with the editor's changes, in fetch order."""
    query = (
        select(IssueItem, Item)
        .join(Item, col(Item.id) == IssueItem.item_id)
        .where(IssueItem.issue_id == issue_id)
        .order_by(col(Item.fetched_at), col(Item.id))
    )
    return [(entry, item) for entry, item in session.exec(query)]


def find_items(session: Session, issue_id: int, title: str) -> list[Item]:
    """Items of the issue whose title contains ``title`` (case-insensitive)."""
    needle = title.casefold()
    return [item for _, item in issue_items(session, issue_id) if needle in item.title.casefold()]


def drop_item(session: Session, issue_id: int, item_id: int, *, dropped: bool = True) -> None:
    _editable(session, issue_id)
    entry = _entry(session, issue_id, item_id)
    entry.dropped = dropped
    session.add(entry)


def move_item(session: Session, issue_id: int, item_id: int, code: str) -> None:
    """File the item under another country or region, in this issue only."""
    _editable(session, issue_id)
    entry = _entry(session, issue_id, item_id)
    entry.country = item_store.parse_heading(code)
    session.add(entry)


def pin_item(session: Session, issue_id: int, item_id: int, *, pinned: bool = True) -> None:
    _editable(session, issue_id)
    entry = _entry(session, issue_id, item_id)
    entry.pinned = pinned
    session.add(entry)


def set_note(session: Session, issue_id: int, markdown: str) -> None:
    issue = _editable(session, issue_id)
    issue.note = markdown
    session.add(issue)


def set_subject(session: Session, issue_id: int, subject: str) -> None:
    issue = _editable(session, issue_id)
    issue.subject = " ".join(subject.split())  # one line: it becomes a header
    session.add(issue)


def approve(
    session: Session, issue_id: int, now: datetime, send_after: datetime | None = None
) -> Issue:
    issue = _editable(session, issue_id)
    issue.state = IssueState.APPROVED
    issue.approved_at = now
    issue.send_after = send_after
    session.add(issue)
    return issue


def discard(session: Session, issue_id: int) -> Issue:
    issue = get_issue(session, issue_id)
    if issue.state not in (IssueState.DRAFT, IssueState.APPROVED):
        raise InputError(f"issue {issue_id} is {issue.state}: it can no longer be discarded")
    issue.state = IssueState.DISCARDED
    session.add(issue)
    return issue


def render_note(markdown: str) -> str:
    """An editor's Markdown note as safe HTML (raw HTML in the note is escaped)."""
    return _markdown.render(markdown).strip() if markdown.strip() else ""


def issue_candidates(session: Session, issue_id: int) -> list[Candidate]:
    """The issue's items as digest candidates, with the editor's changes applied."""
    out = []
    for entry, item in issue_items(session, issue_id):
        if entry.dropped:
            continue
        candidate = item_store.to_candidate(item)
        primary, region = candidate.primary, candidate.region
        if entry.country:
            if entry.country.startswith(item_store.REGION_PREFIX):
                primary, region = None, entry.country.removeprefix(item_store.REGION_PREFIX)
            else:
                primary, region = entry.country, None
        out.append(replace(candidate, primary=primary, region=region, pinned=entry.pinned))
    return out


def issue_digest(
    session: Session,
    issue: Issue,
    *,
    title: str,
    settings: DigestSettings,
    candidates: list[Candidate] | None = None,
) -> Digest:
    """The digest of an issue, exactly as its snapshot stands.

    Freshness is judged at the issue's creation, so an approved issue renders the same
    whenever it is sent. ``candidates`` lets a caller pass a filtered subset (a variant).
    """
    assert issue.id is not None
    chosen = issue_candidates(session, issue.id) if candidates is None else candidates
    return build_digest(
        chosen,
        title=title,
        now=issue.created_at,
        settings=settings,
        subject=issue.subject or None,
        note=render_note(issue.note),
    )


# --- for the editors' tools (CLI twins, /editor pages, archive) -------------------------


def list_issues(
    session: Session, *, kind: str | None = None, states: tuple[str, ...] | None = None
) -> list[Issue]:
    """Issues, newest first."""
    query = select(Issue)
    if kind:
        query = query.where(Issue.kind == kind)
    if states:
        query = query.where(col(Issue.state).in_(states))
    return list(session.exec(query.order_by(col(Issue.id).desc())))


def sent_issues(session: Session, kind: str = "weekly") -> list[Issue]:
    """Sent issues of one kind, newest first: what the public archive shows."""
    query = select(Issue).where(Issue.kind == kind, Issue.state == IssueState.SENT)
    return list(session.exec(query.order_by(col(Issue.sent_at).desc(), col(Issue.id).desc())))


def filed_under(entry: IssueItem, item: Item) -> str | None:
    """Where the item stands in this issue: the issue's move, else the item's placement."""
    if entry.country:
        return entry.country
    primary, region = item_store.placement(item)
    return primary or (item_store.REGION_PREFIX + region if region else None)


def drop_by_title(session: Session, issue_id: int, title: str, *, dropped: bool = True) -> Item:
    """Drop the one item whose title contains ``title``; refuse when several or none match."""
    _editable(session, issue_id)
    matches = find_items(session, issue_id, title)
    exact = [i for i in matches if i.title.casefold() == title.casefold()]
    if len(exact) == 1:
        matches = exact
    if not matches:
        raise InputError(f"no item of issue {issue_id} has {title!r} in its title")
    if len(matches) > 1:
        listed = "; ".join(f"{i.id}: {i.title}" for i in matches[:10])
        raise InputError(f"{len(matches)} items match {title!r}, use --item ID: {listed}")
    item = matches[0]
    assert item.id is not None
    drop_item(session, issue_id, item.id, dropped=dropped)
    return item


def feed_health(
    session: Session, sources: Sequence[SourceEntry], issue_id: int
) -> list[SourceHealth]:
    """How each configured source fared for this issue: failing, silent or fine."""
    counts: dict[str, int] = {}
    for _, item in issue_items(session, issue_id):
        counts[item.source] = counts.get(item.source, 0) + 1
    states = {s.name: s for s in session.exec(select(SourceState))}
    out = []
    for source in sources:
        state = states.get(source.name)
        failures = state.consecutive_failures if state else 0
        disabled = bool(state and state.disabled)
        out.append(
            SourceHealth(
                name=source.name,
                items=counts.get(source.name, 0),
                failing=disabled or failures > 0,
                disabled=disabled,
                consecutive_failures=failures,
                last_error=(state.last_error if state and failures else None) or None,
                last_success=state.last_success if state else None,
            )
        )
    return out


@dataclass(frozen=True)
class SourceHealth:
    name: str
    items: int  # items this source brought into the issue
    failing: bool
    disabled: bool
    consecutive_failures: int
    last_error: str | None
    last_success: datetime | None

    @property
    def silent(self) -> bool:
        return self.items == 0


def parse_when(text: str, timezone: str = "UTC") -> datetime:
    """An ISO 8601 time (``2026-11-23 07:00``, ``…T07:00+01:00``); naive means ``timezone``."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"not a time: {text!r} (use ISO 8601, e.g. 2026-11-23T07:00)") from None
    if when.tzinfo is None:
        try:
            when = when.replace(tzinfo=ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {timezone!r}") from None
    return when.astimezone(UTC)


def render_issue(
    session: Session,
    issue: Issue,
    config: Config,
    *,
    candidates: list[Candidate] | None = None,
) -> tuple[Digest, RenderedDigest]:
    """The issue's digest and its public copy (links to the generic subscribe pages).

    What the archive shows and what `preview` writes; a subscriber's own copy differs
    only by the links the mailer fills in.
    """
    from newsletter.pipeline import public_links  # pipeline imports this module

    digest = issue_digest(
        session, issue, title=config.title, settings=config.digest, candidates=candidates
    )
    rendered = render_digest(
        digest, base_url=config.newsletter.base_url, lang=config.newsletter.lang
    )
    return digest, fill(rendered, **public_links(config))


def archived(session: Session, config: Config, issue: Issue) -> ArchivedIssue:
    """One sent issue as the public archive shows it (the public copy)."""
    assert issue.id is not None
    digest, rendered = render_issue(session, issue, config)
    return ArchivedIssue(
        number=issue.id,
        subject=digest.subject,
        sent_at=issue.sent_at or issue.approved_at or issue.created_at,
        item_count=digest.item_count,
        html=rendered.html,
        text=rendered.text,
    )


def archive_entries(session: Session, config: Config, kind: str = "weekly") -> list[ArchivedIssue]:
    """The sent issues of one kind, newest first, as the public archive shows them."""
    return [archived(session, config, issue) for issue in sent_issues(session, kind)]
