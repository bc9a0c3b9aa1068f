"""`newsletter db copy --to URL`: a filled SQLite database copied to each backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import dbcopy
from newsletter.cli import main
from newsletter.errors import InputError
from newsletter.models import (
    Delivery,
    Editor,
    Issue,
    IssueItem,
    IssueState,
    Item,
    Lease,
    ScheduleRun,
    SourceState,
    Subscriber,
)
from newsletter.store import migrate, open_engine, session_scope
from tests.smtpserver import add_active_subscriber, add_items

NOW = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
SUBSCRIBERS = 2_345  # more than one batch of the CLI's default, several of the test's


def fill(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(SourceState(name="Orinoco Tribune", url="https://orinoco.example/feed"))
        add_items(session, NOW, [("Orinoco Tribune", "VE", f"Story {n}") for n in range(30)])
        for n in range(SUBSCRIBERS):
            add_active_subscriber(session, f"r{n:05d}@example.net", countries="VE" * (n % 2))
        issue = Issue(state=IssueState.SENT, subject="Números ñ", sent_at=NOW, slot="weekly:x")
        session.add(issue)
        session.flush()
        assert issue.id is not None
        for item in session.exec(select(Item.id)).all():  # type: ignore[call-overload]
            session.add(IssueItem(issue_id=issue.id, item_id=item[0]))
        for sub_id in range(1, 101):
            session.add(Delivery(issue_id=issue.id, subscriber_id=sub_id, state="sent"))
        session.add(Editor(email="ed@example.org", password_hash="x"))
        session.add(ScheduleRun(slot="weekly:x", due_at=NOW, issue_id=issue.id))
        session.add(Lease(name="scheduler", owner="h:1:a", expires_at=NOW + timedelta(hours=1)))


def rows(engine: Engine, model: Any) -> list[Any]:
    table = model.__table__
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]


@pytest.fixture
def source(tmp_path: Path) -> Engine:
    engine = open_engine(f"sqlite:///{tmp_path / 'source.db'}")
    migrate(engine)
    fill(engine)
    return engine


def test_copy_moves_every_row(source: Engine, database_url: str) -> None:
    target = open_engine(database_url)
    try:
        seen: list[str] = []
        report = dbcopy.copy_database(
            source, target, batch=500, on_table=lambda name, n: seen.append(name)
        )
        counts = {r.name: r.target_rows for r in report}
        assert counts["subscriber"] == SUBSCRIBERS and counts["delivery"] == 100
        assert counts["item"] == 30 and counts["issue_item"] == 30
        assert all(r.ok for r in report) and all(
            n == 1
            for k, n in counts.items()
            if k in ("issue", "editor", "schedule_run", "lease", "source_state")
        )
        assert seen.index("issue") < seen.index("delivery")  # parents first
        models = (Subscriber, Item, Issue, IssueItem, Delivery, Editor, ScheduleRun, Lease)
        for model in (*models, SourceState):
            assert rows(target, model) == rows(source, model), model.__name__
        # the sequences continue after the copied ids
        with session_scope(target) as session:
            new = add_active_subscriber(session, "new@example.net")
            assert new.id == SUBSCRIBERS + 1
        with Session(target) as session:
            assert session.get(Subscriber, 7) is not None
    finally:
        target.dispose()


def test_copy_refuses_a_filled_target_unless_forced(source: Engine, database_url: str) -> None:
    target = open_engine(database_url)
    try:
        migrate(target)
        with session_scope(target) as session:
            add_active_subscriber(session, "already@example.net")
            add_active_subscriber(session, "r00001@example.net")
        with pytest.raises(InputError, match=r"not empty .*subscriber.*--force"):
            dbcopy.copy_database(source, target)
        report = dbcopy.copy_database(source, target, force=True)
        assert {r.name: r.target_rows for r in report}["subscriber"] == SUBSCRIBERS
        assert rows(target, Subscriber) == rows(source, Subscriber)
    finally:
        target.dispose()


def test_cli_copy(tmp_path: Path, source: Engine, database_url: str, capsys: Any) -> None:
    config = tmp_path / "newsletter.toml"
    config.write_text('[newsletter]\ndatabase = "sqlite:///source.db"\n', "utf-8")
    source.dispose()
    assert main(["--config", str(config), "db", "copy", "--to", database_url]) == 0
    out = capsys.readouterr().out
    assert "subscriber" in out and str(SUBSCRIBERS) in out and "counts match" in out
    assert main(["--config", str(config), "db", "copy", "--to", database_url]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["--config", str(config), "db", "copy", "--to", database_url, "--force"]) == 0
