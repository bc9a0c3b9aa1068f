"""What every command shares: the config (read once), the database, the consoles."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy.engine import Engine

from newsletter.config import Config, config_path, load_config
from newsletter.store import check_schema, open_engine

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@dataclass
class AppContext:
    explicit_config: Path | None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return config_path(self.explicit_config)

    @functools.cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    def close(self) -> None:
        """Dispose of the engine's pool: a long-lived server must not keep our connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def engine(self, *, check: bool = True) -> Engine:
        """The database engine; refuses a database that `init` has not created or upgraded."""
        if self._engine is None:
            self._engine = open_engine(self.config.database_url)
            if check:
                check_schema(self._engine)
        return self._engine


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    return obj
