"""Benchmark fetch_feeds: 200 local feeds x 50 items, a first fetch and an unchanged re-fetch.

    .venv/bin/python benchmarks/bench_fetch.py [--feeds 200] [--items 50] [--rss2email PATH/TO/r2e]

The feeds (~100 KB each, RSS 2.0 with content:encoded) are served by tests/feedserver.py from a
separate process, so the server does not compete with the client for the GIL. The second run
sends the ETags and Last-Modified dates from the first: every feed answers 304.

With --rss2email (the `r2e` of a venv that has rss2email installed, never this project's), the
same feeds are run through `r2e run --no-send` twice for comparison. rss2email is serial.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.feeds import FeedRequest, FetchSettings, fetch_feeds  # noqa: E402

WORDS = [
    "Venezuela",
    "Caracas",
    "sovereignty",
    "commune",
    "workers",
    "blockade",
    "Cuba",
    "Havana",
    "Bolivia",
    "lithium",
    "Mexico",
    "Sheinbaum",
    "solidarity",
    "Palestine",
    "Gaza",
    "imperialism",
    "oil",
    "cooperative",
    "assembly",
    "the",
    "of",
    "and",
    "in",
    "to",
    "a",
    "for",
    "with",
    "on",
    "by",
    "people",
    "government",
    "popular",
    "movement",
    "social",
    "march",
]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_feed(index: int, items: int, rng: random.Random) -> bytes:
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Outlet {index}</title><link>https://outlet{index}.example/</link>"
        "<description>Independent news</description>"
    ]
    for item in range(items):
        paragraphs = "".join(f"<p>{_sentence(rng, 28)} {_sentence(rng, 22)}</p>" for _ in range(5))
        content = (
            f"<p>By Writer {item} – Nov 19, 2026</p>{paragraphs}"
            f'<p><a href="/related/{item}">Related</a></p><p>Translation: Outlet {index}</p>'
        )
        when = format_datetime(start - timedelta(hours=item * 3))
        parts.append(
            f"<item><title>{_sentence(rng, 9)}</title>"
            f"<link>https://outlet{index}.example/2026/11/story-{item}/</link>"
            f'<guid isPermaLink="false">https://outlet{index}.example/?p={item}</guid>'
            f"<dc:creator>Writer {item}</dc:creator><pubDate>{when}</pubDate>"
            f"<description><![CDATA[<p>{_sentence(rng, 30)}</p>]]></description>"
            f"<content:encoded><![CDATA[{content}]]></content:encoded></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


def peak_rss_mib() -> float:
    """Peak resident memory of this process, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class DescendantMemory:
    """Samples the summed RSS of this process's descendants (the parse workers) from /proc.

    getrusage(RUSAGE_CHILDREN) cannot see them: they are children of the forkserver, and it is
    never waited for before the report.
    """

    def __init__(self, exclude: set[int]) -> None:
        self.peak_mib = 0.0
        self._exclude = exclude
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DescendantMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = sum(_rss_kib(pid) for pid in _descendants(os.getpid()) - self._exclude)
            self.peak_mib = max(self.peak_mib, total / 1024)


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            parents[int(status.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def start_server(directory: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.feedserver", str(directory)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    base_url = server.stdout.readline().strip()
    return server, base_url


async def run_ours(urls: list[str], settings: FetchSettings, server_pid: int) -> None:
    requests = [FeedRequest(f"feed{i}", url) for i, url in enumerate(urls)]
    started = time.perf_counter()
    with DescendantMemory(exclude={server_pid}) as workers:
        first = await fetch_feeds(requests, settings)
    first_time = time.perf_counter() - started
    ok = sum(r.status == "ok" for r in first)
    entries = sum(len(r.feed.entries) for r in first if r.feed)

    again = [FeedRequest(r.key, r.url, etag=r.etag, last_modified=r.last_modified) for r in first]
    started = time.perf_counter()
    second = await fetch_feeds(again, settings)
    second_time = time.perf_counter() - started
    not_modified = sum(r.status == "not_modified" for r in second)

    print(f"newsletter  first fetch : {first_time:6.2f} s  ({ok} ok, {entries} entries)")
    print(f"newsletter  re-fetch    : {second_time:6.2f} s  ({not_modified} not modified)")
    print(
        f"newsletter  peak RSS    : {peak_rss_mib():6.1f} MiB in this process, "
        f"+ {workers.peak_mib:.1f} MiB in parse workers (forkserver included)"
    )


def run_rss2email(r2e: str, urls: list[str], exclude: set[int]) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-r2e-"))
    config, data = work / "r2e.cfg", work / "r2e.json"
    base = [r2e, "-c", str(config), "-d", str(data)]
    try:
        subprocess.run([*base, "new", "bench@example.org"], check=True, capture_output=True)
        # One `add` per feed rewrites the config each time; add them to the config file at once.
        with config.open("a") as out:
            for i, url in enumerate(urls):
                out.write(f"\n[feed.feed{i}]\nurl = {url}\n")
        peak = 0.0
        for label in ("first fetch", "re-fetch   "):
            started = time.perf_counter()
            with (work / "r2e.log").open("wb") as log:  # a file, not a pipe: r2e logs a lot
                process = subprocess.Popen(
                    [*base, "run", "--no-send"], stdout=subprocess.DEVNULL, stderr=log
                )
                # Sampled from /proc: getrusage/wait4 would report the pre-exec image of this
                # process, which Linux counts in the child's ru_maxrss.
                with DescendantMemory(exclude=exclude) as memory:
                    _, status = os.waitpid(process.pid, 0)
            elapsed = time.perf_counter() - started
            if status:
                print(f"rss2email failed: {(work / 'r2e.log').read_text()[-500:]}")
            peak = max(peak, memory.peak_mib)
            print(f"rss2email   {label} : {elapsed:6.2f} s")
        print(f"rss2email   peak RSS    : {peak:6.1f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--parse-workers", type=int, default=None)
    parser.add_argument("--per-host", type=int, default=FetchSettings.per_host)
    parser.add_argument("--rss2email", metavar="R2E", help="path to an rss2email `r2e` script")
    args = parser.parse_args()

    rng = random.Random(2026)
    with tempfile.TemporaryDirectory(prefix="bench-feeds-") as tmp:
        directory = Path(tmp)
        sizes = []
        for i in range(args.feeds):
            body = make_feed(i, args.items, rng)
            sizes.append(len(body))
            (directory / f"feed{i:03}.rss").write_bytes(body)
        print(
            f"{args.feeds} feeds x {args.items} items, {sum(sizes) / len(sizes) / 1024:.0f} KB "
            f"each on average; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}"
        )
        server, base_url = start_server(directory)
        try:
            urls = [f"{base_url}/feeds/feed{i:03}.rss" for i in range(args.feeds)]
            # All feeds are on 127.0.0.1 here, so per_host bounds the whole run.
            settings = FetchSettings(parse_workers=args.parse_workers, per_host=args.per_host)
            asyncio.run(run_ours(urls, settings, server.pid))
            if args.rss2email:
                run_rss2email(args.rss2email, urls, exclude={server.pid})
            else:
                print("rss2email   not measured (pass --rss2email PATH/TO/r2e)")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
