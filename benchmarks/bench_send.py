"""Send one issue to N subscribers through a local SMTP sink; compare with the ceiling.

    .venv/bin/python benchmarks/bench_send.py [--subscribers 20000] [--concurrency 8]

The sink is Postfix's ``smtp-sink`` when installed (``apt-get install postfix``), else a
minimal asyncio sink. Two figures, same sink, same connection count, same message size:

    newsletter  pipeline.send_issue: claims, per-subscriber fill, SMTP, delivery log
    ceiling     bare aiosmtplib pushing one pre-built message over the same connections
                with ``sendmail`` (the issue's ceiling), then over our leaner DATA path

RSS is sampled every 100 ms during each phase: it should stay flat as the list grows.
Both run on the event loop the commands run on (newsletter.eventloop: uvloop where installed;
NEWSLETTER_EVENT_LOOP=asyncio measures the standard loop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter import eventloop
from newsletter.config import parse_config
from newsletter.mailer.smtp import AiosmtplibConnection
from newsletter.models import Item, Subscriber
from newsletter.pipeline import draft_issue, sample_message, send_issue
from newsletter.store import migrate, open_engine, session_scope

NOW = datetime.now(UTC) - timedelta(hours=1)


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self) -> None:
        while True:
            self.samples.append(rss_mb())
            await asyncio.sleep(0.1)

    def summary(self) -> str:
        s = self.samples or [rss_mb()]
        quarter = max(1, len(s) // 4)
        early, late = max(s[:quarter]), max(s[-quarter:])
        return (
            f"RSS start {s[0]:.0f} MB, peak {max(s):.0f} MB, "
            f"first/last quarter peak {early:.0f}/{late:.0f} MB"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sink_binary() -> str | None:
    return shutil.which("smtp-sink") or shutil.which("smtp-sink", path="/usr/sbin")


@contextlib.asynccontextmanager
async def sink() -> AsyncIterator[tuple[int, str]]:
    """(port, name) of a running SMTP sink."""
    binary = sink_binary()
    if binary:
        port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses root otherwise
        proc = await asyncio.create_subprocess_exec(
            binary,
            *user,
            "-c",
            f"127.0.0.1:{port}",
            "1000",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            yield port, "smtp-sink"
        finally:
            proc.terminate()
            await proc.wait()
        return

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 sink ESMTP\r\n")
        in_data = False
        while line := await reader.readline():
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    writer.write(b"250 2.0.0 queued\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                in_data = True
                writer.write(b"354 go\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], "asyncio sink"
    finally:
        server.close()


def populate(engine_url: str, subscribers: int, items: int) -> None:
    engine = open_engine(engine_url)
    migrate(engine)
    sources = ["Orinoco Tribune", "Prensa Latina", "Kawsachun News", "Brasil de Fato"]
    countries = ["VE", "CU", "BO", "BR", "MX", "NI"]
    with session_scope(engine) as session:
        for n in range(items):
            session.add(
                Item(
                    source=sources[n % len(sources)],
                    identity=f"i{n}",
                    link=f"https://outlet.example/{n}/a-story-about-something-{n}",
                    canonical=f"https://outlet.example/{n}/a-story-about-something-{n}",
                    title=f"Story {n}: workers and communities organise across the region",
                    excerpt="A summary of the story, a few sentences long, as feeds give it. " * 3,
                    published=NOW,
                    fetched_at=NOW,
                    countries=countries[n % len(countries)],
                    primary_country=countries[n % len(countries)],
                )
            )
    table = Subscriber.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        batch = []
        for n in range(subscribers):
            batch.append(
                {
                    "email": f"reader{n:06d}@example.net",
                    "name": "",
                    "status": "active",
                    "countries": "",
                    "sources": "",
                    "frequency": "weekly",
                    "created_at": NOW,
                }
            )
            if len(batch) == 5000:
                conn.execute(insert(table), batch)
                batch = []
        if batch:
            conn.execute(insert(table), batch)
    engine.dispose()


async def measured(label: str, n: int, work: Callable[[], Awaitable[object]]) -> float:
    sampler = RssSampler()
    task = asyncio.create_task(sampler.run())
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    task.cancel()
    rate = n / elapsed
    print(f"{label:<11} {n} messages in {elapsed:6.1f} s = {rate:6.0f} msg/s; {sampler.summary()}")
    return rate


async def ceiling(port: int, connections: int, n: int, message: bytes, *, lean: bool) -> None:
    """Bare aiosmtplib, one pre-built message over ``connections`` sessions, no database.

    ``lean=False``: ``SMTP.sendmail``, the ceiling as the issue defines it. ``lean=True``:
    the same sessions through :class:`AiosmtplibConnection`, our DATA path (no per-message
    regex rescans), so what separates us from it is our own work: claims, fill, log.
    """
    per = [n // connections + (1 if i < n % connections else 0) for i in range(connections)]

    async def one(count: int, offset: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        conn = AiosmtplibConnection(client)
        for k in range(count):
            if lean:
                await conn.send("digest@example.org", f"r{offset + k}@example.net", message)
            else:
                await client.sendmail("digest@example.org", [f"r{offset + k}@example.net"], message)
        await client.quit()

    offsets = [sum(per[:i]) for i in range(connections)]
    await asyncio.gather(*(one(c, o) for c, o in zip(per, offsets, strict=True)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--items", type=int, default=60, help="digest size (~60 KB at 60)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        populate(db, args.subscribers, args.items)
        print(
            f"setup: {args.subscribers} subscribers, {args.items} items in "
            f"{time.perf_counter() - started:.1f} s"
        )
        async with sink() as (port, name):
            doc = {
                "newsletter": {"secret": "bench", "database": db},
                "smtp": {"host": "127.0.0.1", "port": port, "concurrency": args.concurrency},
                "digest": {"max_per_source": 100, "max_items": 200},
            }
            config = parse_config(doc, Path(tmp) / "newsletter.toml", env={})
            engine = open_engine(db)
            issue = draft_issue(config, engine, "weekly", datetime.now(UTC))
            assert issue is not None and issue.id is not None
            issue_id = issue.id
            from newsletter import issues as lifecycle

            with session_scope(engine) as session:
                digest = lifecycle.issue_digest(
                    session, issue, title=config.title, settings=config.digest
                )
            message = sample_message(config, digest)
            print(
                f"sink: {name} on port {port}; {args.concurrency} connections; "
                f"message {len(message) / 1024:.0f} KB ({digest.item_count} items)"
            )

            ours = await measured(
                "newsletter",
                args.subscribers,
                lambda: send_issue(config, engine, issue_id),
            )
            top = await measured(
                "ceiling",
                args.subscribers,
                lambda: ceiling(port, args.concurrency, args.subscribers, message, lean=False),
            )
            lean = await measured(
                "lean DATA",
                args.subscribers,
                lambda: ceiling(port, args.concurrency, args.subscribers, message, lean=True),
            )
            print(
                f"newsletter reaches {ours / top:.0%} of the ceiling (aiosmtplib sendmail) "
                f"and {ours / lean:.0%} of bare aiosmtplib on the same DATA path"
            )
            engine.dispose()


if __name__ == "__main__":
    eventloop.run(main())
