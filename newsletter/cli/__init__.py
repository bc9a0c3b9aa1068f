"""The ``newsletter`` command: a thin layer over the importable library.

Each command group lives in its own module; a command's docstring is its ``--help``.
Exit codes: 0 done, 1 done but something failed (a feed, a delivery, a row),
2 bad usage or configuration (nothing was done).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from newsletter import __version__
from newsletter.cli import archive as archive_cli
from newsletter.cli import db, fetch, items, preview, setup, sources
from newsletter.cli import demo as demo_cli
from newsletter.cli import editors as editors_cli
from newsletter.cli import issues as issues_cli
from newsletter.cli import schedule as schedule_cli
from newsletter.cli import send as send_cli
from newsletter.cli import serve as serve_cli
from newsletter.cli import status as status_cli
from newsletter.cli import subscribers as subscribers_cli
from newsletter.cli.context import AppContext, err_console
from newsletter.errors import NewsletterError

app = typer.Typer(
    name="newsletter",
    help="A weekly email digest of independent Latin American outlets, by country.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"newsletter {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="NEWSLETTER_CONFIG",
            help="The configuration file [default: ./newsletter.toml].",
            show_envvar=True,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """newsletter: fetch outlets' feeds, group new stories by country, email the digest."""
    ctx.obj = AppContext(config)
    ctx.call_on_close(ctx.obj.close)


setup.register(app)
fetch.register(app)
preview.register(app)
send_cli.register(app)
demo_cli.register(app)
app.add_typer(sources.app, name="sources")
app.add_typer(db.app, name="db")
app.add_typer(items.app, name="items")
issues_cli.register(app)
app.add_typer(editors_cli.app, name="editors")
app.add_typer(archive_cli.app, name="archive")
app.add_typer(subscribers_cli.app, name="subscribers")
serve_cli.register(app)
schedule_cli.register(app)
status_cli.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every deliberate error is one line on stderr and an exit code."""
    try:
        app(args=argv, prog_name="newsletter")
    except NewsletterError as exc:
        # The message may hold [brackets] (config keys): never read it as Rich markup.
        err_console.print("[bold red]error:[/]", escape(str(exc)), soft_wrap=True)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
