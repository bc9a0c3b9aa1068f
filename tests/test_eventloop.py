"""Which event loop the commands run on (newsletter.eventloop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from newsletter import eventloop
from newsletter.cli import main
from newsletter.errors import ConfigError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_commands_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.EVENT_LOOP_ENV, raising=False)
    assert eventloop.loop_factory() is uvloop.new_event_loop
    assert eventloop.run(_loop_module()).startswith("uvloop")


def test_the_standard_loop_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.EVENT_LOOP_ENV, " AsyncIO ")
    assert eventloop.run(_loop_module()) == "asyncio.unix_events"


def test_an_unknown_loop_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(eventloop.EVENT_LOOP_ENV, "tokio")
    with pytest.raises(ConfigError, match="NEWSLETTER_EVENT_LOOP='tokio'"):
        eventloop.loop_factory()
    config = tmp_path / "newsletter.toml"
    assert main(["--config", str(config), "init"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "fetch"]) == 2
    err = capsys.readouterr().err
    assert "expected 'uvloop' or 'asyncio'" in err and "Traceback" not in err
