"""Alembic environment: run by newsletter.store.migrate with a live connection."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import newsletter.models  # noqa: F401 - registers the tables on SQLModel.metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite can only ALTER by copying the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
