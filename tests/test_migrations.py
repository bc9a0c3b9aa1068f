"""An existing database upgrades in place: made at revision 0001, filled, then migrated;
and the migrations make exactly the tables the models describe."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from newsletter import store
from newsletter.store import check_schema, current_revision, head_revision, migrate, open_engine

FIRST = "0001"

ROWS = {
    "subscriber": [
        "INSERT INTO subscriber (email, name, status, countries, sources, frequency, created_at,"
        " confirmed_at) VALUES ('ana@example.org', 'Ana Pérez', 'active', 'VE,CU', 'Granma',"
        " 'weekly', '2026-01-02 03:04:05', '2026-01-02 03:04:05')",
        "INSERT INTO subscriber (email, name, status, countries, sources, frequency, created_at,"
        " unsubscribed_at) VALUES ('gone@example.org', '', 'unsubscribed', '', '', 'daily',"
        " '2026-01-02 03:04:05', '2026-02-01 00:00:00')",
    ],
    "issue": [
        "INSERT INTO issue (kind, state, subject, note, created_at)"
        " VALUES ('weekly', 'sent', 'Week 1', '', '2026-01-05 07:00:00')"
    ],
    "delivery": [
        "INSERT INTO delivery (issue_id, subscriber_id, state, message_id, reply, attempts,"
        " updated_at) SELECT i.id, s.id, 'sent', '<1@example.org>', '250 OK', 1,"
        " '2026-01-05 07:01:00' FROM issue i, subscriber s WHERE s.email = 'ana@example.org'"
    ],
}


def test_a_database_at_0001_upgrades_without_losing_a_row(database_url: str) -> None:
    engine = open_engine(database_url)
    try:
        cfg = store._alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, FIRST)
        assert current_revision(engine) == FIRST
        with engine.begin() as conn:
            for statements in ROWS.values():
                for sql in statements:
                    conn.execute(text(sql))
            before = {
                table: conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()
                for table in ROWS
            }

        assert migrate(engine) == (FIRST, head_revision())
        check_schema(engine)
        assert migrate(engine) == (head_revision(), head_revision())  # again: nothing to do

        with engine.connect() as conn:
            for table, rows in before.items():
                after = conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings().all()
                assert len(after) == len(rows), table
                for old, new in zip(rows, after, strict=True):
                    for key, value in old._mapping.items():
                        assert new[key] == value, (table, key)
    finally:
        engine.dispose()


def test_the_upgraded_database_works_with_the_library(database_url: str) -> None:
    from newsletter import subscribers as subs
    from newsletter.store import session_scope

    engine = open_engine(database_url)
    try:
        cfg = store._alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, FIRST)
            conn.execute(text(ROWS["subscriber"][0]))
        migrate(engine)
        with session_scope(engine) as session:
            ana = subs.show(session, "ANA@example.org")
            assert (ana.name, ana.countries, ana.status) == ("Ana Pérez", "VE,CU", "active")
            assert ana.created_at.tzinfo is not None
            subs.add(session, "new@example.org")
        with session_scope(engine) as session:
            assert subs.count(session)["active"] == 2
    finally:
        engine.dispose()


def test_the_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
