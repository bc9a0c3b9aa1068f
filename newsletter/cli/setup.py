"""``newsletter init``: write a starter config and create or upgrade the database."""

from __future__ import annotations

import typer

from newsletter.cli.context import app_context, console
from newsletter.config_file import write_starter
from newsletter.store import migrate


def init(ctx: typer.Context) -> None:
    """Write a commented newsletter.toml (never overwriting one) and create or upgrade the database.

    Safe to run again at any time, for instance after an upgrade.

    Example:

        newsletter init && newsletter fetch
    """
    app = app_context(ctx)
    path = app.config_path
    if write_starter(path):
        console.print(f"wrote {path} (edit the [newsletter] and [smtp] tables before sending)")
    else:
        console.print(f"{path} exists; left as it is")
    before, after = migrate(app.engine(check=False))
    if before == after:
        console.print(f"database {app.config.database_url} is up to date ({after})")
    else:
        console.print(f"database {app.config.database_url}: {before or 'empty'} -> {after}")


def register(app: typer.Typer) -> None:
    app.command()(init)
