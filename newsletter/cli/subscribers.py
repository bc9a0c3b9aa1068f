"""``newsletter subscribers …``: manage the list from the command line.

A thin layer over :mod:`newsletter.subscribers` and :mod:`newsletter.subscribers_csv`.
Exit codes: 0 done, 1 rejected input (a bad address, a rejected CSV row), 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from newsletter import subscribers as subs
from newsletter import subscribers_csv
from newsletter.cli.context import AppContext, app_context, console, err_console
from newsletter.errors import EXIT_FAILURE, InputError
from newsletter.store import session_scope

app = typer.Typer(
    help="Add, change, remove, list, import and export subscribers.", no_args_is_help=True
)


class Frequency(StrEnum):
    weekly = "weekly"
    daily = "daily"


class Status(StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
EmailArg = Annotated[str, typer.Argument(help="The subscriber's address (any case).")]


def _known(ctx: AppContext) -> list[str]:
    return [s.name for s in ctx.config.sources]


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _describe(row: dict[str, Any]) -> None:
    every = "(everything)"
    console.print(f"email:        {row['email']}")
    console.print(f"name:         {row['name'] or '-'}")
    console.print(f"status:       {row['status']}")
    console.print(f"countries:    {','.join(row['countries']) or every}")
    console.print(f"sources:      {', '.join(row['sources']) or every}")
    console.print(f"frequency:    {row['frequency']}")
    console.print(f"created:      {row['created_at']}")
    if row["confirmed_at"]:
        console.print(f"confirmed:    {row['confirmed_at']}")
    if row["unsubscribed_at"]:
        console.print(f"unsubscribed: {row['unsubscribed_at']}")


@app.command()
def add(
    ctx: typer.Context,
    email: EmailArg,
    name: Annotated[str, typer.Option("--name", help="How to greet them.")] = "",
    countries: Annotated[
        str, typer.Option("--countries", help="Country codes, e.g. VE,CU (default: all).")
    ] = "",
    sources: Annotated[
        str, typer.Option("--sources", help="Source names, comma-separated (default: all).")
    ] = "",
    frequency: Annotated[Frequency, typer.Option("--frequency")] = Frequency.weekly,
    as_json: JsonOpt = False,
) -> None:
    """Add an active subscriber (an admin's add needs no confirmation mail).

    Example:

        newsletter subscribers add ana@example.org --name "Ana" --countries VE,CU
    """
    app_ctx = app_context(ctx)
    with session_scope(app_ctx.engine()) as session:
        sub = subs.add(
            session,
            email,
            name=name,
            countries=countries,
            sources=sources,
            frequency=frequency.value,
            known_sources=_known(app_ctx),
        )
        row = subs.as_dict(sub)
    if as_json:
        _print_json(row)
    else:
        console.print(f"added {row['email']}")


@app.command()
def remove(
    ctx: typer.Context,
    email: EmailArg,
    purge: Annotated[
        bool,
        typer.Option("--purge", help="Delete the row and its delivery history (erasure requests)."),
    ] = False,
) -> None:
    """Unsubscribe someone (they get nothing from the next send on), or erase them.

    This is also how an admin processes mail sent to the List-Unsubscribe mailto address.

    Example:

        newsletter subscribers remove ana@example.org --purge
    """
    with session_scope(app_context(ctx).engine()) as session:
        sub = subs.remove(session, email, purge=purge)
    console.print(f"{'purged' if purge else 'unsubscribed'} {sub.email}")


@app.command()
def show(ctx: typer.Context, email: EmailArg, as_json: JsonOpt = False) -> None:
    """Show one subscriber.

    Example:

        newsletter subscribers show ana@example.org --json
    """
    with session_scope(app_context(ctx).engine()) as session:
        row = subs.as_dict(subs.show(session, email))
    if as_json:
        _print_json(row)
    else:
        _describe(row)


@app.command("set")
def set_(
    ctx: typer.Context,
    email: EmailArg,
    name: Annotated[str | None, typer.Option("--name")] = None,
    countries: Annotated[
        str | None, typer.Option("--countries", help='Country codes; "" for all.')
    ] = None,
    sources: Annotated[
        str | None, typer.Option("--sources", help='Source names; "" for all.')
    ] = None,
    frequency: Annotated[Frequency | None, typer.Option("--frequency")] = None,
    status: Annotated[Status | None, typer.Option("--status")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a subscriber's name, preferences or status; what is not given stays.

    Example:

        newsletter subscribers set ana@example.org --countries "" --frequency daily
    """
    app_ctx = app_context(ctx)
    with session_scope(app_ctx.engine()) as session:
        sub = subs.update(
            session,
            email,
            name=name,
            countries=countries,
            sources=sources,
            frequency=frequency.value if frequency else None,
            status=status.value if status else None,
            known_sources=_known(app_ctx),
        )
        row = subs.as_dict(sub)
    if as_json:
        _print_json(row)
    else:
        _describe(row)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[Status | None, typer.Option("--status")] = None,
    country: Annotated[
        str | None,
        typer.Option("--country", help="Only those who get this country (or everything)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List subscribers by address.

    Example:

        newsletter subscribers list --status active --country VE --json
    """
    with session_scope(app_context(ctx).engine()) as session:
        rows = [
            subs.as_dict(s)
            for s in subs.list_subscribers(
                session, status=status.value if status else None, country=country
            )
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table("email", "name", "status", "countries", "sources", "frequency")
    for r in rows:
        table.add_row(
            r["email"],
            r["name"],
            r["status"],
            ",".join(r["countries"]) or "all",
            ", ".join(r["sources"]) or "all",
            r["frequency"],
        )
    console.print(table)
    console.print(f"{len(rows)} subscriber{'s' if len(rows) != 1 else ''}")


@app.command()
def count(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Count subscribers by status.

    Example:

        newsletter subscribers count --json
    """
    with session_scope(app_context(ctx).engine()) as session:
        counts = subs.count(session)
    if as_json:
        _print_json({**counts, "total": sum(counts.values())})
        return
    for status, n in counts.items():
        console.print(f"{status:<13} {n}")
    console.print(f"{'total':<13} {sum(counts.values())}")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A CSV file with a header row.")],
    reactivate: Annotated[
        bool,
        typer.Option(
            "--reactivate", help="Make people who unsubscribed, bounced or complained active."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import subscribers from CSV: columns email, name, countries, sources, frequency.

    UTF-8 (a BOM is fine); lists separated by commas inside quotes, or by spaces. Running
    it twice changes nothing; every rejected row is reported with its line number and the
    command exits 1, while the good rows are imported.

    Example:

        newsletter subscribers import people.csv
    """
    app_ctx = app_context(ctx)
    try:
        data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {exc.strerror}") from None
    report = subscribers_csv.import_rows(
        app_ctx.engine(), data, known_sources=_known(app_ctx), reactivate=reactivate
    )
    if as_json:
        _print_json(report.as_dict())
    else:
        for note in report.notes:
            err_console.print(f"note: {note}")
        for rejected in report.rejected:
            err_console.print(f"rejected: {rejected}")
        console.print(
            f"{report.rows} rows: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.rejected)} rejected"
        )
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Where to write the CSV (- for stdout).")],
    status: Annotated[
        str, typer.Option("--status", help="Which subscribers: a status, or all.")
    ] = "active",
) -> None:
    """Export subscribers as CSV, in the format `import` reads (default: the active ones).

    Example:

        newsletter subscribers export backup.csv --status all
    """
    try:
        wanted = None if status == "all" else subs.parse_status(status)
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--status") from None
    with session_scope(app_context(ctx).engine()) as session:
        text = subscribers_csv.export_status(session, wanted)
    if str(file) == "-":
        sys.stdout.write(text)
        return
    try:
        with file.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise InputError(f"{file}: cannot write: {exc.strerror}") from None
    rows = text.count("\r\n") - 1
    err_console.print(f"wrote {rows} subscriber{'s' if rows != 1 else ''} to {file}")
