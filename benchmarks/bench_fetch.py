"""Benchmark fetch_feeds: 200 local feeds x 50 items, a first fetch and an unchanged re-fetch.

    .venv/bin/python benchmarks/bench_fetch.py [--feeds 200] [--items 50] [--hosts 200]
        [--rounds 5] [--rss2email PATH/TO/r2e]

The feeds (~120 KB each, RSS 2.0 with content:encoded) are served by `tests.feedserver --hosts`
from a separate process, so the server does not compete with the client for the GIL: a lean
asyncio server whose 200 and 304 answers are prepared at start, listening on --hosts loopback
addresses (127.0.0.2, 127.0.0.3, …; all of 127.0.0.0/8 is loopback on Linux, nothing else is
bound). Feed i is on host i % hosts: 200 outlets are 200 hosts, so the per-host limit plays the
part it plays in production instead of serialising the whole run. `--hosts 1` is the old setup.
The second run sends the ETags and Last-Modified dates from the first: every feed answers 304.
A re-fetch changes nothing, so it is run --rounds times and the median is the figure (the range
is shown): on a shared two-core machine one run of 0.2 s can vary by half.

With --rss2email (the `r2e` of a venv that has rss2email installed, never this project's), the
same URLs are run through `r2e run --no-send` twice for comparison. rss2email is serial, and its
times include its interpreter start-up (measured and shown separately); ours are measured inside
one process, as a long-running scheduler would call fetch_feeds, on the event loop the commands
run on (newsletter.eventloop: uvloop where installed; NEWSLETTER_EVENT_LOOP=asyncio for the
standard loop).

Memory: peak RSS of this process (getrusage), and the peak of the summed RSS of its descendants
(the forkserver and parse workers, or rss2email), sampled from /proc by a separate process so the
sampling does not take the client's GIL.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import resource
import shutil
import statistics
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

from newsletter import eventloop  # noqa: E402  (after the path insert)

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
    """The peak summed RSS of a process's descendants (the parse workers, or rss2email).

    getrusage(RUSAGE_CHILDREN) cannot see the parse workers: they are children of the
    forkserver, which is never waited for before the report. So /proc is sampled, from a
    separate process (`--sample-memory`) so that the sampling does not compete for the GIL of
    the client it measures.
    """

    def __init__(self, exclude: set[int]) -> None:
        self.peak_mib = 0.0
        self._exclude = exclude
        self._sampler: subprocess.Popen[str] | None = None

    def __enter__(self) -> DescendantMemory:
        excluded = ",".join(map(str, self._exclude)) or "0"
        self._sampler = subprocess.Popen(
            [sys.executable, __file__, "--sample-memory", f"{os.getpid()}:{excluded}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._sampler.stdout is not None
        self._sampler.stdout.readline()  # "ready": it runs, and knows its own pid
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._sampler is not None
        output, _ = self._sampler.communicate("")  # closing stdin stops it
        self.peak_mib = float(output.strip() or 0)


def _sample_memory(spec: str) -> None:
    """The sampler process: until stdin closes, sample; then print the peak in MiB."""
    root, excluded = spec.split(":")
    exclude = {int(pid) for pid in excluded.split(",")} | {os.getpid()}
    stop = threading.Event()
    peak = 0

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.05):
            peak = max(peak, sum(_rss_kib(pid) for pid in _descendants(int(root)) - exclude))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    thread.join()
    print(f"{peak / 1024:.1f}", flush=True)


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


def start_server(directory: Path, hosts: int) -> tuple[subprocess.Popen[str], list[str]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.feedserver", str(directory), "--hosts", str(hosts)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    base_urls = server.stdout.readline().split()
    if not base_urls:
        server.wait()
        raise SystemExit("the feed server did not start")
    return server, base_urls


@dataclasses.dataclass
class Measured:
    first: float  # seconds
    again: float
    peak_mib: float  # the measuring process (ours) or rss2email's processes
    workers_mib: float = 0.0  # ours: forkserver and parse workers


def spread(values: list[float]) -> str:
    return f"median of {len(values)}, {min(values):.2f}-{max(values):.2f} s"


async def run_ours(
    urls: list[str], parse_workers: int | None, per_host: int | None, server_pid: int, rounds: int
) -> Measured:
    from newsletter.feeds import FeedRequest, FeedResult, FetchSettings, fetch_feeds

    settings = FetchSettings(parse_workers=parse_workers)
    if per_host is not None:
        settings = dataclasses.replace(settings, per_host=per_host)
    requests = [FeedRequest(f"feed{i}", url) for i, url in enumerate(urls)]
    entries = 0

    def count(result: FeedResult) -> None:  # as the pipeline does: store, then let go
        nonlocal entries
        entries += len(result.feed.entries) if result.feed else 0

    with DescendantMemory(exclude={server_pid}) as workers:
        started = time.perf_counter()
        first = await fetch_feeds(requests, settings, on_result=count, keep_feeds=False)
        first_time = time.perf_counter() - started
    ok = sum(r.status == "ok" for r in first)

    again = [FeedRequest(r.key, r.url, etag=r.etag, last_modified=r.last_modified) for r in first]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        second = await fetch_feeds(again, settings)
        times.append(time.perf_counter() - started)
    second_time = statistics.median(times)
    not_modified = sum(r.status == "not_modified" for r in second)

    print(f"newsletter  first fetch : {first_time:6.2f} s  ({ok} ok, {entries} entries)")
    print(
        f"newsletter  re-fetch    : {second_time:6.2f} s  ({not_modified} not modified; "
        f"{spread(times)})"
    )
    print(
        f"newsletter  peak RSS    : {peak_rss_mib():6.1f} MiB in this process, "
        f"+ {workers.peak_mib:.1f} MiB in parse workers (forkserver included)"
    )
    if ok != len(urls) or not_modified != len(urls):
        errors = {r.error for r in (*first, *second) if r.error}
        print(f"newsletter  NOT ALL FEEDS FETCHED: {sorted(errors)[:3]}")
    return Measured(first_time, second_time, peak_rss_mib(), workers.peak_mib)


def run_rss2email(r2e: str, urls: list[str], exclude: set[int], rounds: int) -> Measured:
    work = Path(tempfile.mkdtemp(prefix="bench-r2e-"))
    config, data = work / "r2e.cfg", work / "r2e.json"
    base = [r2e, "-c", str(config), "-d", str(data)]
    try:
        subprocess.run([*base, "new", "bench@example.org"], check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run([*base, "list"], check=True, capture_output=True)
        startup = time.perf_counter() - started
        # One `add` per feed rewrites the config each time; add them to the config file at once.
        with config.open("a") as out:
            for i, url in enumerate(urls):
                out.write(f"\n[feed.feed{i}]\nurl = {url}\n")
        peak = 0.0
        times = []
        for _ in range(1 + rounds):  # the first fetch, then the re-fetches
            with (
                (work / "r2e.log").open("wb") as log,  # a file, not a pipe: r2e logs a lot
                DescendantMemory(exclude=exclude) as memory,
            ):
                # Sampled from /proc: getrusage/wait4 would report the pre-exec image of this
                # process, which Linux counts in the child's ru_maxrss.
                started = time.perf_counter()
                process = subprocess.Popen(
                    [*base, "run", "--no-send"], stdout=subprocess.DEVNULL, stderr=log
                )
                _, status = os.waitpid(process.pid, 0)
                elapsed = time.perf_counter() - started
            if status:
                print(f"rss2email failed: {(work / 'r2e.log').read_text()[-500:]}")
            peak = max(peak, memory.peak_mib)
            times.append(elapsed)
        again = statistics.median(times[1:])
        print(f"rss2email   first fetch : {times[0]:6.2f} s")
        print(f"rss2email   re-fetch    : {again:6.2f} s  ({spread(times[1:])})")
        print(f"rss2email   peak RSS    : {peak:6.1f} MiB")
        print(f"rss2email   start-up    : {startup:6.2f} s  (`r2e list`, in each of its times)")
        return Measured(times[0], again, peak)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--sample-memory":
        _sample_memory(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=None, help="loopback hosts (default: feeds)")
    parser.add_argument("--parse-workers", type=int, default=None)
    parser.add_argument("--per-host", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5, help="re-fetches to take the median of")
    parser.add_argument("--rss2email", metavar="R2E", help="path to an rss2email `r2e` script")
    args = parser.parse_args()
    hosts = min(args.hosts or args.feeds, 253)

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
            f"each on average, on {hosts} loopback hosts; {os.cpu_count()} CPUs; "
            f"Python {sys.version.split()[0]}"
        )
        server, base_urls = start_server(directory, hosts)
        try:
            urls = [f"{base_urls[i % hosts]}/feeds/feed{i:03}.rss" for i in range(args.feeds)]
            ours = eventloop.run(
                run_ours(urls, args.parse_workers, args.per_host, server.pid, args.rounds)
            )
            if args.rss2email:
                theirs = run_rss2email(args.rss2email, urls, {server.pid}, args.rounds)
                print(
                    f"ratio (rss2email / newsletter): first fetch {theirs.first / ours.first:.1f}x,"
                    f" re-fetch {theirs.again / ours.again:.1f}x"
                )
            else:
                print("rss2email   not measured (pass --rss2email PATH/TO/r2e)")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
