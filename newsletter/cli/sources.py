"""``newsletter sources list|add|remove``: the sources live in newsletter.toml."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table
from sqlmodel import Session, select

from newsletter.cli.context import app_context, console
from newsletter.config import SourceEntry
from newsletter.config_file import add_source, remove_source
from newsletter.errors import ConfigError
from newsletter.models import SourceState

app = typer.Typer(
    help="List, add and remove sources (kept in newsletter.toml).", no_args_is_help=True
)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the sources with their fetch health.

    Example:

        newsletter sources list --json
    """
    ctxobj = app_context(ctx)
    config = ctxobj.config
    with Session(ctxobj.engine()) as session:
        states = {s.name: s for s in session.exec(select(SourceState))}
    rows: list[dict[str, Any]] = []
    for s in config.sources:
        st = states.get(s.name)
        rows.append(
            {
                "name": s.name,
                "url": s.url,
                "country": s.country,
                "fetching": st.url if st and st.url != s.url else s.url,
                "last_success": st.last_success.isoformat() if st and st.last_success else None,
                "last_error": st.last_error if st and st.consecutive_failures else None,
                "consecutive_failures": st.consecutive_failures if st else 0,
                "items_seen": st.items_seen if st else 0,
                "disabled": bool(st and st.disabled),
            }
        )
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("name", "country", "url", "last success", "failures", "items")
    for r in rows:
        health = "[red]gone (410)[/]" if r["disabled"] else str(r["consecutive_failures"])
        last = (r["last_success"] or "never")[:16].replace("T", " ")
        table.add_row(r["name"], r["country"], r["fetching"], last, health, str(r["items_seen"]))
    console.print(table)


@app.command()
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The outlet's name, as readers will see it.")],
    url: Annotated[str, typer.Argument(help="The RSS or Atom feed URL.")],
    country: Annotated[str, typer.Option("--country", help="ISO alpha-2 code of the outlet.")],
) -> None:
    """Add a source to newsletter.toml, keeping the file's comments.

    Example:

        newsletter sources add "Granma" https://en.granma.cu/feed --country CU
    """
    path = app_context(ctx).config_path
    try:
        source = SourceEntry(name=name, url=url, country=country)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(
            err["msg"].removeprefix("Value error, "), key=str(err["loc"][0])
        ) from None
    add_source(path, source)
    console.print(f"added {source.name} ({source.country}) {source.url}")


@app.command()
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The source's name (case-insensitive).")],
) -> None:
    """Remove a source from newsletter.toml; its stored items stay.

    Example:

        newsletter sources remove "Granma"
    """
    removed = remove_source(app_context(ctx).config_path, name)
    console.print(f"removed {removed.name} {removed.url}")
