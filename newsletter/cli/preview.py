"""``newsletter preview``: render the next digest to files without sending anything."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.context import app_context, console
from newsletter.pipeline import preview_digest, write_preview


def preview(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")] = Path(
        "preview"
    ),
    open_: Annotated[
        bool, typer.Option("--open", help="Open the HTML in a browser afterwards.")
    ] = False,
    as_: Annotated[
        str | None,
        typer.Option("--as", help="Show exactly what this subscriber would get.", metavar="EMAIL"),
    ] = None,
) -> None:
    """Render the next digest to OUT/digest.html, .txt, .json and .eml; sends and marks nothing.

    When there is a draft, it is the draft as edited (`newsletter issues show`). With --as,
    it is that subscriber's variant: their frequency, countries and sources.

    Example:

        newsletter preview --out /tmp/preview --as ana@example.org --open
    """
    app = app_context(ctx)
    digest = preview_digest(app.config, app.engine(), email=as_)
    paths = write_preview(app.config, digest, out, to=as_ or "")
    if as_ and digest.is_empty:
        console.print(f"{as_} gets no email this time: their choices leave nothing")
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
