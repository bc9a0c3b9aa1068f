"""``newsletter demo``: the whole pipeline offline, on the embedded sample feeds."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from newsletter import eventloop
from newsletter.cli.context import console
from newsletter.demo import run_demo


def demo(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder to work in [default: a new temporary one]."),
    ] = None,
) -> None:
    """Fetch the bundled sample feeds, build and send the digest, all on this machine.

    A local HTTP server serves the feeds, a SQLite database and a newsletter.toml are
    written to a temporary folder, three sample subscribers are added, and a local SMTP
    server captures the messages as .eml files. Nothing leaves the machine.

    Example:

        newsletter demo
    """
    directory = out or Path(tempfile.mkdtemp(prefix="newsletter-demo-"))
    result = eventloop.run(run_demo(directory))
    console.print(f"demo folder: {result.directory}", soft_wrap=True)
    if result.subject:
        console.print(f"digest: {result.subject}", soft_wrap=True)
    for kind in ("html", "txt", "eml"):
        if kind in result.preview:
            console.print(f"  {result.preview[kind]}", soft_wrap=True)
    if result.summary is not None:
        s = result.summary
        console.print(
            f"sent: {s.delivered} delivered, {s.failed} failed, {s.skipped} skipped; "
            f"{len(result.messages)} messages captured:"
        )
    else:
        console.print(result.note)
    for path in result.messages:
        console.print(f"  {path}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(demo)
