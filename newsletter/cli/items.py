"""``newsletter items list|set-country``: check and correct how items are tagged."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from newsletter import items as item_store
from newsletter.cli.context import app_context, console
from newsletter.store import session_scope

app = typer.Typer(help="Inspect stored items and their countries.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    country: Annotated[
        str | None, typer.Option("--country", help="Only items filed under this code or region.")
    ] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List stored items, newest first, with the countries they were tagged with.

    Example:

        newsletter items list --country CU
    """
    with session_scope(app_context(ctx).engine()) as session:
        rows = item_store.list_items(session, country=country, source=source, limit=limit)
    out: list[dict[str, Any]] = []
    for item in rows:
        primary, region = item_store.placement(item)
        out.append(
            {
                "id": item.id,
                "source": item.source,
                "title": item.title,
                "filed_under": primary or (f"region:{region}" if region else None),
                "countries": list(item.country_list),
                "override": bool(item.country_override),
                "published": item.published.isoformat() if item.published else None,
            }
        )
    if as_json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    table = Table("id", "filed under", "countries", "source", "title")
    for r in out:
        filed = (r["filed_under"] or "-") + (" (set)" if r["override"] else "")
        table.add_row(str(r["id"]), filed, ",".join(r["countries"]), r["source"], r["title"])
    console.print(table)


@app.command("set-country")
def set_country(
    ctx: typer.Context,
    item_id: Annotated[int, typer.Argument(help="The item's id (see `items list`).")],
    code: Annotated[str, typer.Argument(help="ISO alpha-2 code, or a region such as caribbean.")],
) -> None:
    """File an item under another country or region; the choice survives re-fetching.

    Example:

        newsletter items set-country 42 CU
    """
    with session_scope(app_context(ctx).engine()) as session:
        item = item_store.set_country(session, item_id, code)
        console.print(f"{item.id}: {item.title} -> {item.country_override}")
