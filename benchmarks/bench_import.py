"""How long a 10 000-row CSV import takes, first time (inserts) and again (no changes).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_import.py [ROWS]

Runs against a fresh SQLite database in a temporary folder (WAL, as in production).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from newsletter import subscribers_csv
from newsletter.store import migrate, open_engine

SOURCES = ["Granma", "Brasil de Fato", "Venezuelanalysis"]


def make_csv(rows: int) -> bytes:
    lines = ["email,name,countries,sources,frequency"]
    for i in range(rows):
        countries = '"VE,CU"' if i % 3 else "MX BR"
        lines.append(f"user{i}@example.org,User Número {i},{countries},Granma,weekly")
    lines.append("not-an-address,Bad,VE,,weekly")  # one bad row, reported
    return ("\r\n".join(lines) + "\r\n").encode()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    data = make_csv(rows)
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(engine)
        for label in ("first import", "again (idempotent)"):
            start = time.perf_counter()
            report = subscribers_csv.import_rows(engine, data, known_sources=SOURCES)
            took = time.perf_counter() - start
            print(
                f"{label:<20} {rows} rows in {took:.2f} s ({rows / took:,.0f} rows/s): "
                f"{report.added} added, {report.unchanged} unchanged, "
                f"{len(report.rejected)} rejected"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
