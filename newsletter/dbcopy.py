"""Copy every table of one database into another (SQLite to PostgreSQL, typically).

    newsletter db copy --to postgresql+psycopg://user@host/db

The target is migrated to the newest revision first, so both sides have the same tables;
the source must be at that revision too. Tables go in foreign-key order, in batches
streamed from the source (no table is ever held in memory), all in one transaction on
the target: a failed copy leaves nothing half written. PostgreSQL sequences are then set
past the copied ids, and the row counts of every table are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Integer, Table, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from newsletter import models  # noqa: F401 - registers the tables on SQLModel.metadata
from newsletter.errors import InputError, StoreError
from newsletter.store import check_schema, migrate

BATCH = 1000


@dataclass(frozen=True)
class TableCopy:
    name: str
    source_rows: int
    target_rows: int

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows


def tables() -> list[Table]:
    """Every table the migrations create, parents before children."""
    return list(SQLModel.metadata.sorted_tables)


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def non_empty(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [t.name for t in tables() if conn.execute(select(1).select_from(t).limit(1)).first()]


def _reset_sequences(conn: Connection) -> None:
    """Set each serial/identity sequence past the largest copied id (PostgreSQL only)."""
    for table in tables():
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        column = pk[0].name
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": conn.dialect.identifier_preparer.quote(table.name), "column": column},
        ).scalar()
        if sequence is None:
            continue
        biggest = conn.execute(select(func.max(pk[0]))).scalar()
        conn.execute(
            text("SELECT setval(CAST(:seq AS regclass), :value, :called)"),
            {"seq": sequence, "value": biggest or 1, "called": biggest is not None},
        )


def copy_database(
    source: Engine,
    target: Engine,
    *,
    force: bool = False,
    batch: int = BATCH,
    on_table: Callable[[str, int], None] | None = None,
) -> list[TableCopy]:
    """Copy every row of ``source`` into ``target``; returns the counts of each table.

    A target that already holds rows is refused unless ``force``, which empties it first.
    Raises StoreError when a count differs after the copy.
    """
    check_schema(source)
    migrate(target)
    filled = non_empty(target)
    if filled and not force:
        raise InputError(
            "the target database is not empty (" + ", ".join(filled) + "): "
            "use --force to replace its contents"
        )
    ordered = tables()
    with source.connect() as src, target.begin() as dst:
        for table in reversed(ordered):
            dst.execute(table.delete())
        for table in ordered:
            copied = 0
            rows = src.execution_options(stream_results=True, yield_per=batch).execute(
                select(table)
            )
            for part in rows.mappings().partitions(batch):
                dst.execute(table.insert(), [dict(r) for r in part])
                copied += len(part)
            if on_table:
                on_table(table.name, copied)
        if target.dialect.name == "postgresql":
            _reset_sequences(dst)
    report: list[TableCopy] = []
    with source.connect() as src, target.connect() as dst:
        for table in ordered:
            report.append(TableCopy(table.name, _count(src, table), _count(dst, table)))
    wrong = [r for r in report if not r.ok]
    if wrong:
        detail = ", ".join(f"{r.name}: {r.source_rows} vs {r.target_rows}" for r in wrong)
        raise StoreError(f"row counts differ after the copy: {detail}")
    return report
