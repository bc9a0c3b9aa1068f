"""The issue lifecycle on a real SQLite database: drafts, edits, approval freezes the snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from newsletter import issues
from newsletter.digest import DigestSettings
from newsletter.errors import InputError
from newsletter.models import Issue, IssueState, Item
from newsletter.store import session_scope

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def add_item(
    engine: Engine, title: str, country: str, *, source: str = "teleSUR", at: datetime = NOW
) -> int:
    with session_scope(engine) as session:
        item = Item(
            source=source,
            identity=title,
            link=f"https://example.org/{title.replace(' ', '-')}",
            canonical=f"https://example.org/{title.replace(' ', '-')}",
            title=title,
            published=at,
            fetched_at=at,
            countries=country,
            primary_country=country,
        )
        session.add(item)
        session.flush()
        assert item.id is not None
        return item.id


def digest_of(engine: Engine, issue_id: int):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        issue = issues.get_issue(session, issue_id)
        return issues.issue_digest(session, issue, title="LA Weekly", settings=DigestSettings())


def titles(digest) -> list[str]:  # type: ignore[no-untyped-def]
    return [i.title for g in digest.countries for s in g.sources for i in s.items]


def test_draft_collects_new_items_and_tops_up(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert issues.create_draft(session, now=NOW, max_age_days=7) is None
    a = add_item(engine, "Cuba denounces blockade", "CU")
    with session_scope(engine) as session:
        draft = issues.create_draft(session, now=NOW, max_age_days=7)
        assert draft is not None and draft.id is not None
        draft_id = draft.id
        issues.drop_item(session, draft_id, a)
    add_item(engine, "Bolivia lithium plan", "BO", at=NOW + timedelta(hours=1))
    with session_scope(engine) as session:
        again = issues.create_draft(session, now=NOW + timedelta(hours=2), max_age_days=7)
        assert again is not None and again.id == draft_id
    assert titles(digest_of(engine, draft_id)) == ["Bolivia lithium plan"], "the drop was kept"


def test_edits_shape_the_digest(engine: Engine) -> None:
    a = add_item(engine, "Maduro speaks in Caracas", "VE")
    b = add_item(engine, "Venezuela exports gas", "VE", at=NOW - timedelta(hours=3))
    with session_scope(engine) as session:
        draft = issues.create_draft(session, now=NOW, max_age_days=7)
        assert draft is not None and draft.id is not None
        issue_id = draft.id
        issues.move_item(session, issue_id, a, "caribbean")
        issues.pin_item(session, issue_id, b)
        issues.set_subject(session, issue_id, "This week:\r\nBcc: evil@example.org")
        issues.set_note(session, issue_id, "**Hello** <script>alert(1)</script>")
    digest = digest_of(engine, issue_id)
    assert [(g.code, g.name) for g in digest.countries] == [
        ("VE", "Venezuela"),
        (None, "The Caribbean"),
    ]
    assert digest.subject == "This week: Bcc: evil@example.org"
    assert "<strong>Hello</strong>" in digest.note
    assert "<script>" not in digest.note and "&lt;script&gt;" in digest.note


def test_approval_freezes_the_snapshot(engine: Engine) -> None:
    a = add_item(engine, "Sudan ceasefire talks", "SD")
    with session_scope(engine) as session:
        draft = issues.create_draft(session, now=NOW, max_age_days=7)
        assert draft is not None and draft.id is not None
        issue_id = draft.id
        issues.approve(session, issue_id, NOW)
    add_item(engine, "Late story", "CU", at=NOW + timedelta(hours=1))
    assert titles(digest_of(engine, issue_id)) == ["Sudan ceasefire talks"]
    with session_scope(engine) as session:
        with pytest.raises(InputError, match="only a draft can be edited"):
            issues.drop_item(session, issue_id, a)
        nxt = issues.create_draft(session, now=NOW + timedelta(hours=2), max_age_days=7)
        assert nxt is not None and nxt.id != issue_id
        assert [i.title for _, i in issues.issue_items(session, nxt.id)] == ["Late story"]  # type: ignore[arg-type]


def test_discard_and_unknown(engine: Engine) -> None:
    add_item(engine, "Item", "MX")
    with session_scope(engine) as session:
        draft = issues.create_draft(session, now=NOW, max_age_days=7)
        assert draft is not None and draft.id is not None
        issues.discard(session, draft.id)
        assert session.get(Issue, draft.id).state == IssueState.DISCARDED  # type: ignore[union-attr]
        with pytest.raises(InputError, match="no issue number 999"):
            issues.get_issue(session, 999)
        with pytest.raises(InputError, match="can no longer be discarded"):
            issues.discard(session, draft.id)
