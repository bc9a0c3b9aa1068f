"""``newsletter editors add|list|remove|password``: the accounts of the /editor pages."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from newsletter import editors
from newsletter.cli.context import app_context, console
from newsletter.store import session_scope

app = typer.Typer(help="Editor accounts (log in at /editor).", no_args_is_help=True)

Email = Annotated[str, typer.Argument(help="The editor's email address (the login).")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return editors.check_password(password)


@app.command()
def add(ctx: typer.Context, email: Email, password_stdin: PasswordStdin = False) -> None:
    """Create an editor account; the password is asked twice (or read from stdin).

    Example:

        newsletter editors add ana@example.org
        printf '%s\\n' "$PASSWORD" | newsletter editors add ana@example.org --password-stdin
    """
    engine = app_context(ctx).engine()
    password = _read_password(password_stdin)
    with session_scope(engine) as session:
        editor = editors.add_editor(session, email, password)
    console.print(f"editor {escape(editor.email)} added")


@app.command()
def password(ctx: typer.Context, email: Email, password_stdin: PasswordStdin = False) -> None:
    """Set a new password for an editor.

    Example:

        newsletter editors password ana@example.org
    """
    engine = app_context(ctx).engine()
    new = _read_password(password_stdin)
    with session_scope(engine) as session:
        editor = editors.set_password(session, email, new)
    console.print(f"password of {escape(editor.email)} changed")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the editor accounts.

    Example:

        newsletter editors list
    """

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    with session_scope(app_context(ctx).engine()) as session:
        rows = [
            {
                "email": e.email,
                "created_at": iso(e.created_at),
                "last_login_at": iso(e.last_login_at),
            }
            for e in editors.list_editors(session)
        ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no editors yet: newsletter editors add EMAIL")
        return
    table = Table("email", "created", "last login")
    for r in rows:
        table.add_row(
            escape(r["email"] or ""), (r["created_at"] or "")[:16], (r["last_login_at"] or "-")[:16]
        )
    console.print(table)


@app.command()
def remove(ctx: typer.Context, email: Email) -> None:
    """Remove an editor account; its sessions stop working at once.

    Example:

        newsletter editors remove ana@example.org
    """
    with session_scope(app_context(ctx).engine()) as session:
        editor = editors.remove_editor(session, email)
    console.print(f"editor {escape(editor.email)} removed")


__all__ = ["app"]
