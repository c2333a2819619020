#!/usr/bin/env python3
"""Compare tamyla.tradehub.data_migration's importer with plain ``psql \\copy``.

One PostgreSQL 15 cluster on loopback (the tests' own, tests/support/services.py). For
each size, a generated bundle of transaction history (CSV) is imported twice into
identical empty tables of the same database: by the module's importer, in a child
process of its own so that its peak memory can be read (``wait4``), and by
``psql -c '\\copy ... FROM file WITH (FORMAT csv, HEADER true)'``. The importer's time
includes everything it does: checksum, COPY into staging, type, count and key checks,
the merge and the ledger. Prints both throughputs, their ratio and the importer's peak
RSS at each size. Aims: a ratio of at least 0.8, the same peak RSS at every size. Then,
for information, the merge of a newer export into the largest import (every row
compared by key, 1 % new), which a first import does not need.

    .venv/bin/python benchmarks/data_migration.py [--sizes 100000,1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "collections"))

from tests.support.bundles import BY_NAME, write_bundle  # noqa: E402
from tests.support.services import postgres_server  # noqa: E402

ENTITY = "transactions"
TARGET = "demand.saas_transactions"
RAW_TABLE = "bench_raw.transactions"


def child(bundle: str, conninfo: str) -> None:
    """Run one import in this process and print its result (the --child mode)."""
    from ansible_collections.tamyla.tradehub.plugins.module_utils.data_migration import (
        run_import,
    )

    result = run_import(
        bundle=bundle,
        conninfo=json.loads(conninfo),
        progress_file=os.path.join(os.path.dirname(bundle), "progress.json"),
    )
    print(json.dumps(result))


def run_importer(bundle: Path, conninfo: dict) -> tuple[float, int, dict]:
    """Seconds, peak RSS in KiB, and result of one import in a child process."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(bundle), json.dumps(conninfo)],
            stdout=out,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"importer failed ({process.returncode}):\n{text}")
    result = json.loads(text)
    if result.get("failed"):
        raise SystemExit(f"importer refused the bundle: {result['msg']}")
    return seconds, usage.ru_maxrss, result


def run_psql(server, csv_file: Path) -> float:
    env = dict(os.environ, PGPASSWORD=server.password)
    command = [
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        server.superuser,
        "-d",
        "tradehub",
        "-c",
        f"\\copy {RAW_TABLE} FROM '{csv_file}' WITH (FORMAT csv, HEADER true)",
    ]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - started


def reset(server) -> None:
    """Empty target tables and no ledger, so that each run is a first import."""
    entity = BY_NAME[ENTITY]
    columns = ", ".join(
        f"{name} {SQL_TYPES[kind]}{'' if nullable else ' NOT NULL'}"
        for name, kind, nullable in entity.columns
    )
    key = ", ".join(entity.primary_key)
    with server.connect("tradehub") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TARGET}, {RAW_TABLE}")
        conn.execute("DROP SCHEMA IF EXISTS tradehub_migration CASCADE")
        conn.execute(f"CREATE TABLE {RAW_TABLE} ({columns}, PRIMARY KEY ({key}))")
        conn.execute("CHECKPOINT")


SQL_TYPES = {
    "text": "text",
    "integer": "bigint",
    "decimal": "numeric",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
    "uuid": "uuid",
    "json": "jsonb",
}


def merge_newer_export(work: Path, size: int, conninfo: dict) -> tuple:
    """Import the next export of the same history over the rows imported last: every
    row is compared by key (INSERT ... ON CONFLICT), 1 % are new."""
    newer = write_bundle(
        work / f"newer-{size}", entities=[ENTITY], sizes={ENTITY: size}, revision=1
    )
    seconds, rss, result = run_importer(newer, conninfo)
    shutil.rmtree(newer)
    return result["totals"]["rows"], seconds, rss, result["totals"]


def count(server, table: str) -> int:
    with server.connect("tradehub") as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="100000,1000000", help="rows, comma-separated"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; best kept"
    )
    parser.add_argument(
        "--no-merge",
        dest="merge",
        action="store_false",
        help="skip merging a newer export into the largest import",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if shutil.which("psql") is None:
        raise SystemExit("psql not found: scripts/setup-host.sh --packages-only")
    sizes = [int(size) for size in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tradehub-bench-migration-"))
    lines = []
    try:
        with postgres_server() as server:
            server.create_database("tradehub")
            with server.connect("tradehub") as conn:
                conn.execute("CREATE SCHEMA demand")
                conn.execute("CREATE SCHEMA bench_raw")
            conninfo = {
                "host": server.host,
                "port": server.port,
                "user": server.superuser,
                "password": server.password,
                "dbname": "tradehub",
            }
            for size in sizes:
                started = time.perf_counter()
                bundle = write_bundle(
                    work / f"bundle-{size}", entities=[ENTITY], sizes={ENTITY: size}
                )
                print(
                    f"generated {size} rows of {ENTITY} in "
                    f"{time.perf_counter() - started:.1f} s "
                    f"({(bundle / 'transactions.csv').stat().st_size / 2**20:.0f} MiB)",
                    flush=True,
                )
                best_module = best_psql = float("inf")
                peak = 0
                for _ in range(args.repeat):
                    reset(server)
                    psql_seconds = run_psql(server, bundle / "transactions.csv")
                    seconds, rss, result = run_importer(bundle, conninfo)
                    assert result["totals"]["new"] == size, result["totals"]
                    assert count(server, TARGET) == count(server, RAW_TABLE) == size
                    best_module = min(best_module, seconds)
                    best_psql = min(best_psql, psql_seconds)
                    peak = max(peak, rss)
                lines.append(
                    (
                        size,
                        size / best_module,
                        size / best_psql,
                        best_module,
                        best_psql,
                        peak,
                    )
                )
                if args.merge and size == sizes[-1]:
                    merged = merge_newer_export(work, size, conninfo)
                shutil.rmtree(bundle)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"{'ROWS':>9} {'MODULE rows/s':>14} {'PSQL rows/s':>12} {'RATIO':>6} "
        f"{'MODULE s':>9} {'PSQL s':>7} {'PEAK RSS':>9}"
    )
    for size, module_rate, psql_rate, module_s, psql_s, peak in lines:
        print(
            f"{size:>9} {module_rate:>14,.0f} {psql_rate:>12,.0f} "
            f"{module_rate / psql_rate:>6.2f} {module_s:>9.2f} {psql_s:>7.2f} "
            f"{peak / 1024:>7.1f} MiB"
        )
    if len(lines) > 1:
        print(
            f"peak RSS at {lines[-1][0]} rows over {lines[0][0]} rows: "
            f"{lines[-1][5] / lines[0][5]:.2f}"
        )
    if args.merge:
        rows, seconds, rss, totals = merged
        print(
            f"newer export merged into the {sizes[-1]} imported rows: {rows} rows in "
            f"{seconds:.2f} s, {rows / seconds:,.0f} rows/s "
            f"(new {totals['new']}, changed {totals['changed']}, unchanged "
            f"{totals['unchanged']}), peak RSS {rss / 1024:.1f} MiB"
        )


if __name__ == "__main__":
    main()
