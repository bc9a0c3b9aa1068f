"""Time the countries stage: gazetteer build (once per process) and tagging 100 items.

Run with ``.venv/bin/python benchmarks/bench_countries.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # a plain script: make the checkout importable

from newsletter.countries import detect  # noqa: E402
from newsletter.countries.gazetteer import build, gazetteer  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "countries_labelled.jsonl"
ITEMS = 100
ROUNDS = 5


def main() -> None:
    started = time.perf_counter()
    gazetteer()  # what the first detect() in a process pays, library loading included
    first = time.perf_counter() - started
    builds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        build()
        builds.append(time.perf_counter() - started)
    index = gazetteer().index
    print(
        f"gazetteer: first build {first * 1000:.0f} ms (with library loading), "
        f"rebuild median {statistics.median(builds) * 1000:.0f} ms; {len(index)} names"
    )

    lines = LABELLED.read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines][:ITEMS]
    runs = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for item in items:
            detect(item["title"], item["text"], item["source_country"])
        runs.append(time.perf_counter() - started)
    chars = sum(len(i["title"]) + len(i["text"]) for i in items)
    print(
        f"tagging {len(items)} items ({chars} characters): median "
        f"{statistics.median(runs) * 1000:.1f} ms, worst {max(runs) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
