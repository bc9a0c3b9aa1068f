"""``newsletter db``: move the database (``db copy --to URL``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.engine import make_url

from newsletter import dbcopy
from newsletter.cli.context import app_context, console
from newsletter.store import open_engine

app = typer.Typer(no_args_is_help=True, help="Move the database to another server.")


@app.command()
def copy(
    ctx: typer.Context,
    to: Annotated[
        str, typer.Option("--to", metavar="URL", help="The target database URL (SQLAlchemy).")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace whatever the target already holds.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Rows per insert.")] = dbcopy.BATCH,
) -> None:
    """Copy every table of the configured database into another one, counts checked.

    The target is created or upgraded to the newest schema first; a target that holds
    rows is refused unless --force. Then point `database` (or DATABASE_URL) at it.

    Example:

        newsletter db copy --to postgresql+psycopg://newsletter@db.example.org/newsletter
    """
    app_ctx = app_context(ctx)
    source = app_ctx.engine()
    target = open_engine(to)
    try:
        report = dbcopy.copy_database(source, target, force=force, batch=batch)
    finally:
        target.dispose()
    table = Table("table", "rows", box=None)
    for entry in report:
        table.add_row(entry.name, str(entry.target_rows))
    console.print(table)
    where = make_url(to).render_as_string(hide_password=True)
    total = sum(r.target_rows for r in report)
    console.print(f"copied {total} rows in {len(report)} tables to {where}; counts match")
