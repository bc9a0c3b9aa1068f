"""``newsletter fetch``: fetch every source and store what is new."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from newsletter import eventloop
from newsletter.cli.context import app_context, console
from newsletter.errors import EXIT_FAILURE
from newsletter.pipeline import SourceReport, fetch_sources

STATUS_STYLE = {"ok": "green", "not_modified": "dim", "skipped": "yellow"}


def fetch(ctx: typer.Context) -> None:
    """Fetch every configured source concurrently and store the new items.

    Exit 0 when every source was fetched, 1 when some failed (the others are stored).

    Example:

        newsletter fetch
    """
    app = app_context(ctx)
    config, engine = app.config, app.engine()
    with Progress(
        TextColumn("fetching"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("fetch", total=len(config.sources))

        def advance(_report: SourceReport) -> None:
            progress.advance(task)

        reports = eventloop.run(
            fetch_sources(
                config,
                engine,
                on_report=advance,
                on_start=lambda n: progress.update(task, total=n),
            )
        )
    print_summary(reports)
    if any(r.failed for r in reports):
        raise typer.Exit(EXIT_FAILURE)


def print_summary(reports: list[SourceReport]) -> None:
    table = Table("source", "new", "status", title="fetch", title_justify="left")
    for r in reports:
        status = r.status.replace("_", " ") + (f": {r.error}" if r.error else "")
        style = STATUS_STYLE.get(r.status, "red")
        table.add_row(r.name, str(r.new_items), f"[{style}]{status}[/]")
    console.print(table)
    new = sum(r.new_items for r in reports)
    failed = sum(r.failed for r in reports)
    console.print(f"{new} new items from {len(reports)} sources, {failed} failed")


def register(app: typer.Typer) -> None:
    app.command()(fetch)
