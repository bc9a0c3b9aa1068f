"""`newsletter send`, `send --to`, `run`, `preview` (.eml) as subprocesses, and a kill mid-run."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from newsletter.models import Delivery, DeliveryState, Issue, IssueState
from newsletter.store import migrate, open_engine, session_scope
from tests.smtpserver import SmtpServer, add_active_subscriber, add_items

NOW = datetime.now(UTC) - timedelta(hours=1)


def write_config(tmp_path: Path, port: int, concurrency: int = 3) -> Path:
    path = tmp_path / "newsletter.toml"
    path.write_text(
        f"""
[newsletter]
secret = "cli-secret"
database = "sqlite:///subscribers.db"
base_url = "https://digest.example.org"

[smtp]
host = "127.0.0.1"
port = {port}
concurrency = {concurrency}
timeout = 5.0
""",
        "utf-8",
    )
    return path


def setup_db(tmp_path: Path, subscribers: int, with_items: bool = True) -> list[str]:
    engine = open_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
    migrate(engine)
    emails = [f"r{n:04d}@example.net" for n in range(subscribers)]
    with session_scope(engine) as session:
        if with_items:
            add_items(
                session,
                NOW,
                [("Orinoco Tribune", "VE", "Caracas news"), ("Prensa Latina", "CU", "Havana")],
            )
        for e in emails:
            add_active_subscriber(session, e)
    engine.dispose()
    return emails


async def newsletter(config: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "newsletter",
        "--config",
        str(config),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def deliveries(tmp_path: Path) -> list[Delivery]:
    engine = open_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
    with session_scope(engine) as session:
        rows = list(session.exec(select(Delivery)))
    engine.dispose()
    return rows


def issues(tmp_path: Path) -> list[Issue]:
    engine = open_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
    with session_scope(engine) as session:
        rows = list(session.exec(select(Issue)))
    engine.dispose()
    return rows


async def test_send_delivers_and_summarises(tmp_path: Path) -> None:
    emails = setup_db(tmp_path, 5)
    async with SmtpServer() as server:
        server.handler.refuse[emails[4]] = "550 5.1.1 unknown user"
        config = write_config(tmp_path, server.port)
        code, out, err = await newsletter(config, "send")  # stdin is no terminal: no question
        assert code == 1, (out, err)  # one failed
        assert "4 delivered" in out and "1 failed" in out and "0 skipped" in out
        assert server.handler.by_recipient() == Counter(dict.fromkeys(emails[:4], 1))
        again = await newsletter(config, "send", "--yes")
    assert again[0] == 0 and "nothing new" in again[1]
    assert [i.state for i in issues(tmp_path)] == [IssueState.SENT]


async def test_send_to_sends_one_copy_and_logs_nothing(tmp_path: Path) -> None:
    setup_db(tmp_path, 3)
    async with SmtpServer() as server:
        config = write_config(tmp_path, server.port)
        code, out, err = await newsletter(config, "send", "--to", "editor@example.org")
    assert code == 0, err
    assert "editor@example.org" in out
    (msg,) = server.handler.received
    assert msg.rcpt_tos == ("editor@example.org",)
    parsed = msg.parse()
    assert parsed["To"] == "editor@example.org"
    assert "https://digest.example.org/unsubscribe>" in str(parsed["List-Unsubscribe"])
    assert deliveries(tmp_path) == [] and issues(tmp_path) == []


async def test_empty_digest_is_not_sent(tmp_path: Path) -> None:
    setup_db(tmp_path, 2, with_items=False)
    async with SmtpServer() as server:
        config = write_config(tmp_path, server.port)
        code, out, _ = await newsletter(config, "send", "--yes")
    assert code == 0 and "nothing new" in out
    assert server.handler.received == [] and issues(tmp_path) == []


async def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    setup_db(tmp_path, 2)
    async with SmtpServer() as server:
        port = server.port
    code, _, err = await newsletter(write_config(tmp_path, port), "send", "--yes")
    assert code == 1
    assert "cannot reach the SMTP server" in err and "nothing was sent" in err
    assert all(d.state != DeliveryState.SENT for d in deliveries(tmp_path))


async def test_preview_writes_the_message(tmp_path: Path) -> None:
    setup_db(tmp_path, 1)
    config = write_config(tmp_path, 2525)
    code, _, err = await newsletter(config, "preview", "--out", str(tmp_path / "p"))
    assert code == 0, err
    msg = email.message_from_bytes(
        (tmp_path / "p" / "digest.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


async def test_killed_sender_resumes_without_loss(tmp_path: Path) -> None:
    concurrency = 3
    emails = setup_db(tmp_path, 150)
    async with SmtpServer() as server:
        server.handler.delay = 0.01
        config = write_config(tmp_path, server.port, concurrency)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "newsletter",
            "--config",
            str(config),
            "send",
            "--yes",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(server.handler.wait_received(40), 60)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        first = len(server.handler.received)
        assert first < 150
        code, out, err = await newsletter(config, "send", "--yes")
    assert code == 0, (out, err)
    counts = server.handler.by_recipient()
    assert set(counts) == set(emails), "nobody was missed"
    repeated = [e for e, n in counts.items() if n > 1]
    assert len(repeated) <= concurrency and max(counts.values()) <= 2
    for e in repeated:
        ids = {m.parse()["Message-ID"] for m in server.handler.received if e in m.rcpt_tos}
        assert len(ids) == 1
    assert {d.state for d in deliveries(tmp_path)} == {DeliveryState.SENT}
    assert [i.state for i in issues(tmp_path)] == [IssueState.SENT]
