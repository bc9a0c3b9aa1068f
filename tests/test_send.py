"""Delivery over real SMTP (aiosmtpd on 127.0.0.1) into a real database, faults included.

Counts are exact: delivered, failed, and the copies each address received.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from newsletter.config import Config, parse_config
from newsletter.errors import InputError, SMTPUnavailableError
from newsletter.mailer.send import SendOptions
from newsletter.mailer.smtp import RetryPolicy
from newsletter.models import Delivery, DeliveryState, Issue, IssueState, SubscriberStatus
from newsletter.pipeline import draft_issue, send_issue
from newsletter.store import session_scope
from tests.smtpserver import SmtpServer, add_active_subscriber, add_items

NOW = datetime.now(UTC).replace(microsecond=0)
FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)


def make_config(tmp_path: Path, port: int, **smtp: object) -> Config:
    doc = {
        "newsletter": {"secret": "s3cret", "base_url": "https://digest.example.org"},
        "smtp": {"host": "127.0.0.1", "port": port, "concurrency": 3, "timeout": 5.0, **smtp},
    }
    return parse_config(doc, tmp_path / "newsletter.toml", env={})


def populate(engine: Engine, subscribers: int) -> list[str]:
    emails = [f"reader{n:03d}@example.net" for n in range(subscribers)]
    with session_scope(engine) as session:
        add_items(
            session,
            NOW - timedelta(hours=1),
            [
                ("Orinoco Tribune", "VE", "Caracas hosts a summit"),
                ("Prensa Latina", "CU", "Havana harvest"),
                ("Kawsachun News", "BO", "La Paz election"),
            ],
        )
        for e in emails:
            add_active_subscriber(session, e)
    return emails


def drafted(config: Config, engine: Engine) -> int:
    issue = draft_issue(config, engine, "weekly", NOW)
    assert issue is not None and issue.id is not None
    return issue.id


def rows(engine: Engine, issue_id: int) -> list[Delivery]:
    with session_scope(engine) as session:
        return list(session.exec(select(Delivery).where(Delivery.issue_id == issue_id)))


def issue_state(engine: Engine, issue_id: int) -> str:
    with session_scope(engine) as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        return issue.state


async def test_every_subscriber_gets_one_message(tmp_path: Path, engine: Engine) -> None:
    emails = populate(engine, 25)
    async with SmtpServer() as server:
        config = make_config(tmp_path, server.port)
        issue_id = drafted(config, engine)
        progress: list[str] = []
        summary = await send_issue(config, engine, issue_id, on_progress=progress.append)
        again = await send_issue(config, engine, issue_id)
    assert (summary.delivered, summary.failed, summary.skipped) == (25, 0, 0)
    assert summary.issue_sent and again.issue_sent and again.delivered == 0
    assert progress.count("sent") == 25
    assert server.handler.by_recipient() == Counter(dict.fromkeys(emails, 1))
    assert server.handler.connections == 3, "connections are reused"
    assert issue_state(engine, issue_id) == IssueState.SENT
    log = rows(engine, issue_id)
    assert {r.state for r in log} == {DeliveryState.SENT}
    assert all(r.reply.startswith("250") and r.message_id for r in log)
    by_id = {m.parse()["To"]: m.parse() for m in server.handler.received}
    for r in log:
        msg = next(m for m in by_id.values() if m["Message-ID"] == r.message_id)
        assert msg["Subject"].startswith("Latin America Weekly: 3 stories")
        assert server.handler.received[0].mail_from == "digest@example.org"


async def test_temporary_replies_are_retried(tmp_path: Path, engine: Engine) -> None:
    emails = populate(engine, 6)
    async with SmtpServer() as server:
        h = server.handler
        h.script[emails[0]] = ["451 4.7.1 greylisted", "451 4.7.1 greylisted"]
        h.script[emails[1]] = ["421 4.3.2 going away"]  # the server closes: reconnect
        h.script[emails[2]] = ["552 5.2.2 mailbox full"]  # temporary, RFC 5321
        h.script[emails[3]] = ["450 4.2.0"] * 10  # never gives in: deferred, left pending
        config = make_config(tmp_path, server.port)
        issue_id = drafted(config, engine)
        summary = await send_issue(config, engine, issue_id, retry=FAST)
        assert (summary.delivered, summary.failed, summary.deferred) == (5, 0, 1)
        assert not summary.issue_sent and issue_state(engine, issue_id) == IssueState.SENDING
        counts = h.by_recipient()
        assert counts == Counter({e: 1 for e in emails if e != emails[3]})
        attempts = {r.subscriber_id: r.attempts for r in rows(engine, issue_id)}
        assert sorted(attempts.values()) == [1, 1, 2, 2, 3, 4]
        deferred = [r for r in rows(engine, issue_id) if r.state == DeliveryState.PENDING]
        assert len(deferred) == 1 and deferred[0].reply.startswith("450")

        h.script.clear()  # the next run delivers the deferred one and ends the issue
        second = await send_issue(config, engine, issue_id, retry=FAST)
    assert (second.delivered, second.deferred) == (1, 0) and second.issue_sent
    assert h.by_recipient() == Counter(dict.fromkeys(emails, 1))


async def test_permanent_failures_are_recorded_and_the_run_goes_on(
    tmp_path: Path, engine: Engine
) -> None:
    emails = populate(engine, 8)
    async with SmtpServer() as server:
        server.handler.refuse[emails[2]] = "550 5.1.1 no such user"
        server.handler.refuse[emails[5]] = "553 5.1.3 bad address"
        config = make_config(tmp_path, server.port)
        issue_id = drafted(config, engine)
        summary = await send_issue(config, engine, issue_id, retry=FAST)
    assert (summary.delivered, summary.failed) == (6, 2)
    assert summary.issue_sent, "a failure has ended too"
    failed = {r.reply for r in rows(engine, issue_id) if r.state == DeliveryState.FAILED}
    assert failed == {"550 5.1.1 no such user", "553 5.1.3 bad address"}
    assert sum(server.handler.by_recipient().values()) == 6


async def test_a_dropped_connection_reconnects(tmp_path: Path, engine: Engine) -> None:
    emails = populate(engine, 12)
    async with SmtpServer() as server:
        server.handler.drop_at = {2, 5, 9}
        config = make_config(tmp_path, server.port)
        issue_id = drafted(config, engine)
        summary = await send_issue(config, engine, issue_id, retry=FAST)
    assert (summary.delivered, summary.failed, summary.deferred) == (12, 0, 0)
    assert server.handler.by_recipient() == Counter(dict.fromkeys(emails, 1))
    assert server.handler.connections == 3 + 3


async def test_unreachable_server_sends_and_marks_nothing(tmp_path: Path, engine: Engine) -> None:
    populate(engine, 3)
    async with SmtpServer() as server:
        port = server.port
    config = make_config(tmp_path, port)  # nothing listens there any more
    issue_id = drafted(config, engine)
    with pytest.raises(SMTPUnavailableError, match="nothing was sent"):
        await send_issue(config, engine, issue_id, retry=FAST)
    assert issue_state(engine, issue_id) == IssueState.DRAFT
    assert rows(engine, issue_id) == []


async def test_skips_leavers_and_empty_variants(tmp_path: Path, engine: Engine) -> None:
    emails = populate(engine, 4)
    with session_scope(engine) as session:
        add_active_subscriber(session, "cuba@example.net", countries="CU")
        add_active_subscriber(session, "chile@example.net", countries="CL")
        add_active_subscriber(session, "daily@example.net", frequency="daily")
    async with SmtpServer() as server:
        config = make_config(tmp_path, server.port)
        issue_id = drafted(config, engine)
        with session_scope(engine) as session:  # leaves after the rows exist
            from newsletter.mailer import deliveries

            deliveries.create(engine, issue_id, "weekly", NOW)
            sub = session.exec(
                select(Delivery).where(Delivery.issue_id == issue_id).order_by(Delivery.id)
            ).first()
            assert sub is not None
            from newsletter.models import Subscriber

            leaver = session.get(Subscriber, sub.subscriber_id)
            assert leaver is not None
            leaver.status = SubscriberStatus.UNSUBSCRIBED
            session.add(leaver)
        summary = await send_issue(config, engine, issue_id)
    assert (summary.delivered, summary.skipped) == (4, 2)
    got = {m.rcpt_tos[0]: m.parse() for m in server.handler.received}
    assert "daily@example.net" not in got and "chile@example.net" not in got
    assert emails[0] not in got
    assert got["cuba@example.net"]["Subject"] == "Latin America Weekly: 1 story from Cuba"


async def test_an_empty_issue_is_refused(tmp_path: Path, engine: Engine) -> None:
    with session_scope(engine) as session:
        add_active_subscriber(session, "x@example.net")
        issue = Issue(kind="weekly", state=IssueState.DRAFT, created_at=NOW)
        session.add(issue)
        session.flush()
        issue_id = issue.id
    assert issue_id is not None
    config = make_config(tmp_path, 9)
    with pytest.raises(InputError, match="empty"):
        await send_issue(config, engine, issue_id)


async def test_cancelled_run_resumes_without_loss(tmp_path: Path, engine: Engine) -> None:
    emails = populate(engine, 40)
    async with SmtpServer() as server:
        server.handler.delay = 0.01
        config = make_config(tmp_path, server.port)
        issue_id = drafted(config, engine)
        options = SendOptions(batch=5)
        task = asyncio.create_task(send_issue(config, engine, issue_id, options=options))
        await server.handler.wait_received(15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        first = len(server.handler.received)
        assert first < 40
        summary = await send_issue(config, engine, issue_id, options=options)
    counts = server.handler.by_recipient()
    log = {
        r.subscriber_id: (r.state, r.reply, r.attempts, r.claimed_by)
        for r in rows(engine, issue_id)
    }
    assert set(counts) == set(emails), ("nobody was missed", log, summary)
    duplicates = [e for e, n in counts.items() if n > 1]
    assert len(duplicates) <= config.smtp.concurrency
    assert all(n <= 2 for n in counts.values())
    for e in duplicates:
        ids = {m.parse()["Message-ID"] for m in server.handler.received if e in m.rcpt_tos}
        assert len(ids) == 1, "a repeat carries the same Message-ID"
    assert summary.issue_sent
    assert {r.state for r in rows(engine, issue_id)} == {DeliveryState.SENT}


async def test_two_senders_share_an_issue_without_repeats(tmp_path: Path, engine: Engine) -> None:
    emails = populate(engine, 60)
    async with SmtpServer() as server:
        server.handler.delay = 0.002
        config = make_config(tmp_path, server.port)
        issue_id = drafted(config, engine)
        options = SendOptions(batch=4)
        a, b = await asyncio.gather(
            send_issue(config, engine, issue_id, options=options),
            send_issue(config, engine, issue_id, options=options),
        )
    assert a.delivered + b.delivered == 60
    assert a.delivered > 0 and b.delivered > 0
    assert server.handler.by_recipient() == Counter(dict.fromkeys(emails, 1))
    assert issue_state(engine, issue_id) == IssueState.SENT
