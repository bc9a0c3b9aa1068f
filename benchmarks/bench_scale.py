"""A large list sent by `newsletter send --worker` processes through a local SMTP sink.

    .venv/bin/python benchmarks/bench_scale.py [--subscribers 200000] [--concurrency 8]
        [--database URL]   (default: a SQLite file; give a PostgreSQL URL for the real case)

Builds N subscribers and an approved issue, then measures in one run, against one sink:

    ceiling     bare aiosmtplib pushing one pre-built message over ``concurrency`` connections
    1 worker    one `send --worker` process: claims, fill, SMTP, delivery log
    2 workers   two of them on the same issue (the log is reset in between)

and samples each worker's RSS every 0.5 s (from /proc): it should stay flat over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_send import ceiling, measured, populate, sink

from newsletter import eventloop
from newsletter import issues as lifecycle
from newsletter.config import parse_config
from newsletter.pipeline import draft_issue, sample_message
from newsletter.store import open_engine, session_scope


def proc_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def workers(config_path: Path, count: int, n: int) -> tuple[float, list[list[float]]]:
    """Run ``count`` workers to the end; (msg/s, RSS samples of each)."""
    started = time.perf_counter()
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "newsletter",
            "--config",
            str(config_path),
            "send",
            "--worker",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    samples: list[list[float]] = [[] for _ in procs]

    async def sample() -> None:
        while True:
            for i, p in enumerate(procs):
                if p.returncode is None and (rss := proc_rss_mb(p.pid)) is not None:
                    samples[i].append(rss)
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    elapsed = time.perf_counter() - started
    sampler.cancel()
    for p, (out, err) in zip(procs, outputs, strict=True):
        if p.returncode != 0:
            raise SystemExit(f"worker failed ({p.returncode}): {out.decode()} {err.decode()}")
    return n / elapsed, samples


def rss_line(samples: list[float]) -> str:
    if not samples:
        return "RSS: no samples"
    quarter = max(1, len(samples) // 4)
    return (
        f"RSS start {samples[0]:.0f} MB, peak {max(samples):.0f} MB, "
        f"first/last quarter peak {max(samples[:quarter]):.0f}/{max(samples[-quarter:]):.0f} MB"
        f" ({len(samples)} samples)"
    )


def reset(db: str, issue_id: int) -> None:
    engine = open_engine(db)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM delivery WHERE issue_id = :i"), {"i": issue_id})
        conn.execute(
            text("UPDATE issue SET state = 'approved', sent_at = NULL WHERE id = :i"),
            {"i": issue_id},
        )
    engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--database", help="an empty database (default: a SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        db = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        populate(db, args.subscribers, args.items)
        print(f"setup: {args.subscribers} subscribers in {time.perf_counter() - started:.1f} s")
        async with sink() as (port, name):
            doc = {
                "newsletter": {"secret": "bench", "database": db},
                "smtp": {"host": "127.0.0.1", "port": port, "concurrency": args.concurrency},
                "digest": {"max_per_source": 100, "max_items": 200},
            }
            config_path = Path(tmp) / "newsletter.toml"
            config_path.write_text(
                f'[newsletter]\nsecret = "bench"\ndatabase = "{db}"\n'
                f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nconcurrency = {args.concurrency}\n'
                "[digest]\nmax_per_source = 100\nmax_items = 200\n",
                "utf-8",
            )
            config = parse_config(doc, config_path, env={})
            engine = open_engine(db)
            issue = draft_issue(config, engine, "weekly", datetime.now(UTC))
            assert issue is not None and issue.id is not None
            issue_id = issue.id
            with session_scope(engine) as session:
                lifecycle.approve(session, issue_id, datetime.now(UTC))
                digest = lifecycle.issue_digest(
                    session, issue, title=config.title, settings=config.digest
                )
            message = sample_message(config, digest)
            engine.dispose()
            print(
                f"sink: {name}; {args.concurrency} connections per worker; "
                f"message {len(message) / 1024:.0f} KB; database {db.split(':')[0]}"
            )
            top = await measured(
                "ceiling",
                args.subscribers,
                lambda: ceiling(port, args.concurrency, args.subscribers, message, lean=False),
            )
            rates = {}
            for count in (1, 2):
                if count > 1:
                    reset(db, issue_id)
                rate, samples = await workers(config_path, count, args.subscribers)
                rates[count] = rate
                print(f"{count} worker(s): {args.subscribers} messages = {rate:6.0f} msg/s")
                for i, s in enumerate(samples):
                    print(f"    worker {i + 1}: {rss_line(s)}")
            print(
                f"1 worker reaches {rates[1] / top:.0%} of the ceiling "
                f"({args.concurrency} connections); 2 workers: {rates[2] / rates[1]:.2f}x one"
            )


if __name__ == "__main__":
    eventloop.run(main())
