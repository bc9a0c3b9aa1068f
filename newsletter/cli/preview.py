"""``newsletter preview``: render the next digest to files without sending anything."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.context import app_context, console
from newsletter.issues import draft_digest
from newsletter.pipeline import next_digest, write_preview
from newsletter.store import session_scope


def preview(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")] = Path(
        "preview"
    ),
    open_: Annotated[
        bool, typer.Option("--open", help="Open the HTML in a browser afterwards.")
    ] = False,
) -> None:
    """Render the next digest to OUT/digest.html, .txt and .json; sends and marks nothing.

    When there is a weekly draft, it is the draft as edited (`newsletter issues show`).

    Example:

        newsletter preview --out /tmp/preview --open
    """
    app = app_context(ctx)
    with session_scope(app.engine()) as session:
        digest = draft_digest(session, app.config)
    if digest is None:
        digest = next_digest(app.config, app.engine())
    paths = write_preview(app.config, digest, out)
    console.print(f"{digest.subject}")
    console.print(
        f"{digest.item_count} items in {len(digest.countries)} groups"
        + (f", {digest.more_count} more beyond the caps" if digest.more_count else "")
    )
    for path in paths.values():
        console.print(f"  {path}")
    if open_:
        webbrowser.open(paths["html"].resolve().as_uri())


def register(app: typer.Typer) -> None:
    app.command()(preview)
