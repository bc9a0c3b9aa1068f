"""`newsletter send --worker`: several processes share one issue; one is killed mid-run."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import issues
from newsletter.models import Delivery, DeliveryState, Issue, IssueState, Subscriber
from newsletter.store import session_scope
from tests.smtpserver import SmtpServer, add_active_subscriber, add_items

NOW = datetime.now(UTC) - timedelta(hours=1)
SUBSCRIBERS = 300
CONCURRENCY = 3


def write_config(tmp_path: Path, port: int, database_url: str) -> Path:
    path = tmp_path / "newsletter.toml"
    path.write_text(
        f"""
[newsletter]
secret = "worker-secret"
database = "{database_url}"
base_url = "https://digest.example.org"

[smtp]
host = "127.0.0.1"
port = {port}
concurrency = {CONCURRENCY}
timeout = 10.0
""",
        "utf-8",
    )
    return path


def approved_issue(engine: Engine, subscribers: int) -> int:
    with session_scope(engine) as session:
        add_items(session, NOW, [("Orinoco Tribune", "VE", "Caracas"), ("Prensa Latina", "CU", "")])
        for n in range(subscribers):
            add_active_subscriber(session, f"w{n:04d}@example.net")
        draft = issues.create_draft(session, now=NOW, max_age_days=7)
        assert draft is not None and draft.id is not None
        issues.approve(session, draft.id, NOW)
        return draft.id


async def start_worker(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "newsletter",
        "--config",
        str(config),
        "send",
        "--worker",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_three_workers_one_killed(tmp_path: Path, engine: Engine, database_url: str) -> None:
    issue_id = approved_issue(engine, SUBSCRIBERS)
    async with SmtpServer() as server:
        server.handler.delay = 0.03  # ~100 msg/s per worker: the run lasts a few seconds
        config = write_config(tmp_path, server.port, database_url)
        first = await start_worker(config)
        await asyncio.wait_for(server.handler.wait_received(10), 30)
        others = [await start_worker(config) for _ in range(2)]
        await asyncio.wait_for(server.handler.wait_received(60), 30)
        assert first.returncode is None, "the first worker ended before it could be killed"
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        results = [await asyncio.wait_for(p.communicate(), 60) for p in others]
        assert [p.returncode for p in others] == [0, 0], results
        received = list(server.handler.received)

    with Session(engine) as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None and issue.state == IssueState.SENT and issue.sent_at
        assert len(session.exec(select(Issue)).all()) == 1  # workers create no issues
        emails = {s.id: s.email for s in session.exec(select(Subscriber))}
        rows = session.exec(select(Delivery).where(Delivery.issue_id == issue_id)).all()

    # the log: one ended row per subscriber, every claim given up
    assert len(rows) == SUBSCRIBERS
    assert {r.state for r in rows} == {DeliveryState.SENT}
    assert all(r.claimed_by is None and r.claimed_until is None for r in rows)
    assert all(r.attempts >= 1 and r.reply.startswith("250") for r in rows)
    expected_mid = {emails[r.subscriber_id]: r.message_id for r in rows}

    # everyone got it; a repeat only for what the killed worker had in flight, same id
    counts = Counter(m.rcpt_tos[0] for m in received)
    assert set(counts) == set(emails.values())
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= CONCURRENCY, counts.most_common(5)
    for m in received:
        assert m.parse()["Message-ID"] == expected_mid[m.rcpt_tos[0]]


async def test_worker_creates_no_issue(tmp_path: Path, engine: Engine, database_url: str) -> None:
    with session_scope(engine) as session:
        add_items(session, NOW, [("Orinoco Tribune", "VE", "Caracas")])
        add_active_subscriber(session, "only@example.net")
    async with SmtpServer() as server:
        config = write_config(tmp_path, server.port, database_url)
        proc = await start_worker(config)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    assert "nothing to do" in out.decode()
    assert server.handler.received == []
    with Session(engine) as session:
        assert session.exec(select(Issue)).all() == []
