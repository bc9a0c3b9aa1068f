"""The command line: init, config errors, sources. Runs the real entry point in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.cli import main


def run(tmp_path: Path, *args: str) -> int:
    return main(["--config", str(tmp_path / "newsletter.toml"), *args])


def test_init_twice_is_harmless(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "init") == 0
    first = capsys.readouterr().out
    assert "wrote" in first and "empty -> " in first
    config_text = (tmp_path / "newsletter.toml").read_text()
    assert run(tmp_path, "init") == 0
    second = capsys.readouterr().out
    assert "left as it is" in second and "up to date" in second
    assert (tmp_path / "newsletter.toml").read_text() == config_text
    assert (tmp_path / "subscribers.db").exists()


def test_config_error_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "newsletter.toml").write_text('[smtp]\nsecurity = "ssl"\n')
    assert run(tmp_path, "sources", "list") == 2
    err = capsys.readouterr().err
    assert "newsletter.toml: [smtp.security]" in err
    assert "Traceback" not in err


def test_missing_config_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "fetch") == 2
    assert "no such file" in capsys.readouterr().err


def test_commands_refuse_a_database_init_did_not_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "newsletter.toml").write_text("")
    assert run(tmp_path, "items", "list") == 1
    assert "newsletter init" in capsys.readouterr().err


def test_sources_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "init") == 0
    assert (
        run(tmp_path, "sources", "add", "Granma", "https://en.granma.cu/feed", "--country", "cu")
        == 0
    )
    capsys.readouterr()
    assert run(tmp_path, "sources", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    granma = next(r for r in rows if r["name"] == "Granma")
    assert granma["country"] == "CU"
    assert granma["items_seen"] == 0
    assert run(tmp_path, "sources", "add", "X", "ftp://x.example/", "--country", "CU") == 2
    assert "url" in capsys.readouterr().err
    assert run(tmp_path, "sources", "remove", "granma") == 0
    assert run(tmp_path, "sources", "remove", "granma") == 1
    assert "no source named" in capsys.readouterr().err


def test_usage_error_exit_2(tmp_path: Path) -> None:
    assert run(tmp_path, "no-such-command") == 2


def test_console_script_help_has_examples() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "items", "set-country", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "newsletter items set-country 42 CU" in result.stdout
