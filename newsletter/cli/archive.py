"""``newsletter archive export DIR``: the public archive as static files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from newsletter import archive
from newsletter import issues as lifecycle
from newsletter.cli.context import app_context, console
from newsletter.store import session_scope
from newsletter.web.archive import archive_site

app = typer.Typer(help="The public archive of sent issues.", no_args_is_help=True)


@app.command()
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="The folder to write into (made if missing).")],
) -> None:
    """Write the archive as static files: index.html, N/index.html and feed.xml.

    Publish the folder as <base_url>/archive/ with any web server; it is what
    `newsletter serve` shows at /archive.

    Example:

        newsletter archive export /var/www/news/archive
    """
    app_ = app_context(ctx)
    with session_scope(app_.engine()) as session:
        entries = lifecycle.archive_entries(session, app_.config)
    written = archive.export(archive_site(app_.config), entries, out, now=datetime.now(UTC))
    console.print(f"{len(entries)} issues, {len(written)} files written to {out}")
