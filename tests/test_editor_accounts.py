"""Editor accounts (argon2 hashes) and the review mail, on real databases and a real SMTP server."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from newsletter import editors
from newsletter.cli import main
from newsletter.config import parse_config
from newsletter.errors import InputError, SMTPUnavailableError
from newsletter.models import Editor, Issue
from newsletter.store import session_scope
from tests.smtpserver import SmtpServer

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_accounts_hash_and_check_passwords(engine: Engine) -> None:
    with session_scope(engine) as session:
        editor = editors.add_editor(session, " Ana@Example.ORG ", "correct horse battery")
        assert editor.email == "ana@example.org"
        assert editor.password_hash.startswith("$argon2id$")
        assert "correct horse" not in editor.password_hash
        with pytest.raises(InputError, match="already an editor"):
            editors.add_editor(session, "ana@example.org", "another long one")
        with pytest.raises(InputError, match="at least"):
            editors.add_editor(session, "bo@example.org", "short")
    with session_scope(engine) as session:
        assert editors.authenticate(session, "ana@example.org", "wrong password!", NOW) is None
        assert editors.authenticate(session, "nobody@example.org", "whatever it is", NOW) is None
        assert editors.authenticate(session, "not an address", "whatever it is", NOW) is None
        found = editors.authenticate(session, "ANA@example.org", "correct horse battery", NOW)
        assert found is not None and found.last_login_at == NOW
        editors.set_password(session, "ana@example.org", "a brand new password")
    with session_scope(engine) as session:
        assert (
            editors.authenticate(session, "ana@example.org", "correct horse battery", NOW) is None
        )
        assert [e.email for e in editors.list_editors(session)] == ["ana@example.org"]
        editors.remove_editor(session, "ana@example.org")
        with pytest.raises(InputError, match="no editor"):
            editors.remove_editor(session, "ana@example.org")


def test_cli_add_list_remove(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(tmp_path / "newsletter.toml")
    assert main(["--config", config, "init"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["--config", config, "editors", "add", "ed@example.org", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("tiny\n"))
    assert main(["--config", config, "editors", "add", "x@example.org", "--password-stdin"]) == 1
    assert "at least 10" in capsys.readouterr().err
    assert main(["--config", config, "editors", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["email"] for r in rows] == ["ed@example.org"] and rows[0]["last_login_at"] is None
    assert "password" not in json.dumps(rows)
    assert main(["--config", config, "editors", "remove", "ed@example.org"]) == 0
    assert main(["--config", config, "editors", "remove", "ed@example.org"]) == 1
    assert main(["--config", config, "editors", "list"]) == 0
    assert "no editors yet" in capsys.readouterr().out
    with session_scope_for(tmp_path) as session:
        assert session.get(Editor, 1) is None


def session_scope_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    from newsletter.store import open_engine

    return session_scope(open_engine(f"sqlite:///{tmp_path / 'subscribers.db'}"))


async def test_notify_editors_mails_a_review_link(tmp_path: Path) -> None:
    async with SmtpServer() as server:
        config = parse_config(
            {
                "newsletter": {
                    "title": "LA Weekly",
                    "from": "LA Weekly <digest@example.org>",
                    "base_url": "https://news.example.org/",
                    "editors": ["ana@example.org", "bo@example.org"],
                    "require_approval": True,
                },
                "smtp": {"host": "127.0.0.1", "port": server.port},
            },
            tmp_path / "newsletter.toml",
            env={},
        )
        issue = Issue(id=7, kind="weekly")
        sent = await editors.notify_editors(config, issue, subject="Lithium and harvests")
        assert sent == ["ana@example.org", "bo@example.org"]
        [received] = server.handler.received
        assert set(received.rcpt_tos) == {"ana@example.org", "bo@example.org"}
        assert received.mail_from == "digest@example.org"
        message = received.parse()
        assert message["Subject"] == "[LA Weekly] issue 7 is ready for review"
        body = message.get_content()
        assert "https://news.example.org/editor/issues/7" in body
        assert "Lithium and harvests" in body
        port = server.port
    nobody = parse_config({}, tmp_path / "newsletter.toml", env={})
    assert await editors.notify_editors(nobody, issue) == []
    unreachable = parse_config(
        {
            "newsletter": {"editors": ["ana@example.org"]},
            "smtp": {"host": "127.0.0.1", "port": port},
        },
        tmp_path / "newsletter.toml",
        env={},
    )
    with pytest.raises(SMTPUnavailableError):
        await editors.notify_editors(unreachable, issue)
