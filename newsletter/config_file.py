"""Write and edit ``newsletter.toml`` while keeping the admin's comments (tomlkit)."""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from newsletter.config import SourceEntry, parse_config
from newsletter.errors import ConfigError, InputError

SECRET_PLACEHOLDER = "__SECRET__"  # noqa: S105 - replaced by a random secret at init


def starter_text() -> str:
    """The commented starter configuration, with a fresh random secret."""
    text = resources.files("newsletter").joinpath("starter.toml").read_text("utf-8")
    return text.replace(SECRET_PLACEHOLDER, secrets.token_urlsafe(32))


def write_starter(path: Path) -> bool:
    """Write the starter file unless one exists. True when it wrote one."""
    try:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(starter_text())
    except FileExistsError:
        return False
    return True


def _load(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such file (run `newsletter init` to write one)", path=path) from None


def _save(path: Path, doc: tomlkit.TOMLDocument) -> None:
    # Validate the edited document before it replaces the file: an edit never leaves
    # a config that the next command refuses.
    parse_config(doc.unwrap(), path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(tomlkit.dumps(doc), "utf-8")
    tmp.replace(path)


def add_source(path: Path, source: SourceEntry) -> None:
    """Append a ``[[sources]]`` entry; refuse a duplicate name or URL."""
    doc = _load(path)
    sources = doc.get("sources")
    for entry in sources or ():
        if str(entry.get("name", "")).casefold() == source.name.casefold():
            raise InputError(f"a source named {source.name!r} exists already")
        if entry.get("url") == source.url:
            raise InputError(f"{source.url} is already the source {entry.get('name')!r}")
    table = tomlkit.table()
    table.add("name", source.name)
    table.add("url", source.url)
    table.add("country", source.country)
    if sources is None:
        doc.append("sources", tomlkit.aot())
        sources = doc["sources"]
    assert isinstance(sources, AoT)
    sources.append(table)
    _save(path, doc)


def remove_source(path: Path, name: str) -> SourceEntry:
    """Remove the source called ``name`` (case-insensitive) and return it."""
    doc = _load(path)
    sources = doc.get("sources")
    if isinstance(sources, AoT):
        for i, entry in enumerate(sources):
            if str(entry.get("name", "")).casefold() == name.casefold():
                removed = SourceEntry.model_validate(_plain(entry))
                del sources[i]
                _save(path, doc)
                return removed
    raise InputError(f"no source named {name!r}")


def _plain(table: Table) -> dict[str, Any]:
    value = table.unwrap()
    assert isinstance(value, dict)
    return value
