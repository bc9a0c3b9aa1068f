"""`[smtp] global_rate` and `global_domain_rate`: limits every sender sharing the database keeps.

Senders that share only the database stand for `send --worker` processes: two
SenderPools with an engine each, two `send_issue` runs of one issue, and two OS
processes. A real aiosmtpd server records when each message arrives; the reservation
itself is checked on the real databases (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from newsletter.config import parse_config
from newsletter.errors import ConfigError
from newsletter.mailer.ratelimit import RATE_SLOT, GlobalLimits, Window, reserve
from newsletter.mailer.send import SendOptions
from newsletter.mailer.smtp import Outcome, SenderPool, SmtpSettings
from newsletter.pipeline import send_issue
from newsletter.store import open_engine
from tests.smtpserver import Handler, SmtpServer
from tests.test_send import drafted, make_config, populate

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
SLACK = 0.1  # seconds: arrival jitter on a busy machine


@dataclass
class TimedHandler(Handler):
    """Records when each message arrived, by recipient."""

    arrivals: list[tuple[str, float]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.arrivals.append((envelope.rcpt_tos[0], asyncio.get_running_loop().time()))
        return await super().handle_DATA(server, session, envelope)

    def times(self, domain: str = "", prefix: str = "") -> list[float]:
        """Arrival times of the recipients in ``domain`` (any case) starting with ``prefix``."""
        return [
            t
            for rcpt, t in self.arrivals
            if rcpt.lower().endswith(domain.lower()) and rcpt.startswith(prefix)
        ]


def next_at(engine: Engine, key: str) -> float | None:
    with engine.connect() as conn:
        value = conn.execute(select(RATE_SLOT.c.next_at).where(RATE_SLOT.c.key == key)).scalar()
    return None if value is None else float(value)


def assert_paced(times: Sequence[float], rate: float) -> None:
    """No faster than ``rate``: the span, and no burst in any half second."""
    times = sorted(times)
    assert times[-1] - times[0] >= (len(times) - 1) / rate - SLACK, times
    for start in times:
        assert sum(start <= t < start + 0.5 for t in times) <= rate * 0.5 + 2, times


def overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the two senders were sending at the same time."""
    return max(min(a), min(b)) < min(max(a), max(b))


async def two_pools(
    db_url: str,
    handler: TimedHandler,
    recipients: list[str],
    rate: float | None = None,
    domain_rates: dict[str, float] | None = None,
) -> None:
    """Two pools, each with its own engine and global limits (none when neither is
    given), deliver ``recipients`` each (prefixed "a" and "b") at the same time."""
    async with SmtpServer(handler) as server:
        settings = SmtpSettings(host="127.0.0.1", port=server.port, concurrency=4, timeout=10)

        async def sender(prefix: str) -> None:
            engine = open_engine(db_url)
            try:
                limited = rate is not None or domain_rates is not None
                global_limits = GlobalLimits(engine, rate, domain_rates) if limited else None
                async with SenderPool(settings, global_limits=global_limits) as pool:
                    results = await asyncio.gather(
                        *(pool.deliver("a@example.org", prefix + r, MESSAGE) for r in recipients)
                    )
                assert {r.outcome for r in results} == {Outcome.DELIVERED}
            finally:
                engine.dispose()

        await asyncio.gather(sender("a"), sender("b"))


async def test_two_senders_together_keep_the_global_rate(db_url: str) -> None:
    rate = 20.0
    recipients = [f"{n}@example.org" for n in range(12)]
    paced = TimedHandler()
    await two_pools(db_url, paced, recipients, rate=rate)
    free = TimedHandler()
    await two_pools(db_url, free, recipients)

    assert len(paced.arrivals) == 24
    assert_paced(paced.times(), rate)  # 24 messages: 1.15 s at least; each alone makes 0.55 s
    assert overlap(paced.times(prefix="a"), paced.times(prefix="b")), "they took turns"
    unlimited = sorted(free.times())
    assert len(unlimited) == 24 and unlimited[-1] - unlimited[0] < 23 / rate / 3


async def test_a_global_domain_rate_paces_only_that_domain(db_url: str) -> None:
    rate = 10.0
    handler = TimedHandler()
    recipients = [f"g{n}@GMail.com" for n in range(6)] + [f"o{n}@example.org" for n in range(15)]
    await two_pools(db_url, handler, recipients, domain_rates={"gmail.com.": rate})
    gmail = handler.times("@gmail.com")
    other = sorted(handler.times("@example.org"))
    assert len(gmail) == 12 and len(other) == 30
    assert_paced(gmail, rate)
    assert other[-1] < max(gmail) and other[-1] - other[0] < 0.5


async def test_two_runs_of_one_issue_keep_the_global_rate(tmp_path: Path, engine: Engine) -> None:
    """The pipeline builds the limits from the config for every run that sends an issue."""
    rate = 20.0
    populate(engine, 16)
    handler = TimedHandler()
    async with SmtpServer(handler) as server:
        config = make_config(tmp_path, server.port, global_rate=rate)
        issue_id = drafted(config, engine)
        options = SendOptions(batch=2)
        a, b = await asyncio.gather(
            send_issue(config, engine, issue_id, options=options),
            send_issue(config, engine, issue_id, options=options),
        )
    assert a.delivered + b.delivered == 16 and a.delivered > 0 and b.delivered > 0
    assert_paced(handler.times(), rate)
    assert next_at(engine, "*") is not None


SENDER = """
import asyncio, sys
from newsletter.mailer.ratelimit import GlobalLimits
from newsletter.mailer.smtp import SenderPool, SmtpSettings
from newsletter.store import open_engine

async def main(url, port, prefix, count, rate):
    engine = open_engine(url)
    settings = SmtpSettings(host="127.0.0.1", port=port, concurrency=4, timeout=10)
    limits = GlobalLimits(engine, rate=rate)
    async with SenderPool(settings, global_limits=limits) as pool:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        message = b"From: a@example.org\\r\\nSubject: hi\\r\\n\\r\\nhello\\r\\n"
        results = await asyncio.gather(*(
            pool.deliver("a@example.org", f"{prefix}{n}@example.org", message)
            for n in range(count)
        ))
    engine.dispose()
    print(sum(r.outcome.value == "delivered" for r in results), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
"""


async def test_two_processes_together_keep_the_global_rate(db_url: str) -> None:
    rate, count = 20.0, 12
    handler = TimedHandler()
    async with SmtpServer(handler) as server:
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                SENDER,
                db_url,
                str(server.port),
                prefix,
                str(count),
                str(rate),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for prefix in "ab"
        ]
        for p in procs:  # both started and connected: then both go at once
            assert p.stdout is not None
            assert await asyncio.wait_for(p.stdout.readline(), 60) == b"ready\n"
        go = asyncio.gather(*(p.communicate(b"go\n") for p in procs))
        outputs = await asyncio.wait_for(go, 60)
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [str(count).encode()] * 2
    assert len(handler.arrivals) == 2 * count
    assert_paced(handler.times(), rate)
    assert overlap(handler.times(prefix="a"), handler.times(prefix="b")), "they took turns"


def test_back_to_back_reservations_are_adjacent(engine: Engine) -> None:
    first = reserve(engine, "*", 4, 2.5)
    assert first.end - first.start == pytest.approx(10.0)
    assert first.start == pytest.approx(first.now, abs=1e-6)  # a fresh key starts now
    assert abs(first.now - time.time()) < 5  # the database's clock, in epoch seconds
    second = reserve(engine, "*", 2, 2.5)
    assert second.start == pytest.approx(first.end, abs=1e-6)
    assert second.end == pytest.approx(first.end + 5.0, abs=1e-6)
    assert second.slots() == pytest.approx([first.end, first.end + 2.5], abs=1e-6)
    assert next_at(engine, "*") == pytest.approx(second.end, abs=1e-6)


def test_a_missing_row_is_created_for_its_key_alone(engine: Engine) -> None:
    assert next_at(engine, "domain:gmail.com") is None
    window = reserve(engine, "domain:gmail.com", 1, 0.2)
    assert next_at(engine, "domain:gmail.com") == pytest.approx(window.end, abs=1e-6)
    assert next_at(engine, "*") is None


def test_idle_time_is_not_saved_up(engine: Engine) -> None:
    earlier = reserve(engine, "*", 1, 1.0)
    with engine.begin() as conn:
        conn.execute(update(RATE_SLOT).values(next_at=earlier.now - 100))
    window = reserve(engine, "*", 3, 1.0)
    assert window.start >= earlier.now and window.start == pytest.approx(window.now, abs=1e-6)


def test_racing_reservations_never_overlap(db_url: str) -> None:
    windows: list[Window] = []
    errors: list[BaseException] = []

    def racer() -> None:
        engine = open_engine(db_url)
        try:
            for _ in range(10):
                windows.append(reserve(engine, "*", 3, 0.01))
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(windows) == 40
    ordered = sorted(windows, key=lambda w: w.start)
    for before, after in itertools.pairwise(ordered):
        assert after.start >= before.end - 1e-6


def test_config_reads_the_global_limits(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.toml"
    data = {"smtp": {"rate": 50, "global_rate": 20, "global_domain_rate": {"GMail.com.": 5}}}
    config = parse_config(data, path, env={})
    assert config.smtp.global_rate == 20.0
    assert config.smtp.global_domain_rate == {"gmail.com": 5.0}
    engine = open_engine("sqlite://")  # not touched until a message waits
    limits = GlobalLimits.from_config(config, engine)
    assert limits is not None and limits.rate is not None
    assert (limits.rate.key, limits.rate.interval, limits.rate.block) == ("*", 0.05, 5)
    assert {d: s.key for d, s in limits.domains.items()} == {"gmail.com": "domain:gmail.com"}
    assert GlobalLimits.from_config(parse_config({}, path, env={}), engine) is None
    for bad in ({"global_rate": 0}, {"global_domain_rate": {"gmail.com": -1}}):
        key = next(iter(bad))
        with pytest.raises(ConfigError, match=rf"smtp\.{key}"):
            parse_config({"smtp": bad}, path, env={})
