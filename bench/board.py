"""make bench-board: how fast the 日清日结看板's data layer (closeout.board.views over closeout.board.queries) serves a
national fortnight.

A generated country registry (bench/generate.py: 2,850 county-level units in 31 provinces, plus the national
level) and a store filled set-based (PostgreSQL COPY, SQLite executemany) with 14 days of what the pipeline
writes: a verdict per unit and day (mostly cleared; some open, rejected, resubmitted, late, missing or excused),
the files' submissions, receipts and reminders, and a bulletin edition per day with its delivery or sign-off. The
last day is "today" at 20:45, before the cutoff: intake has judged about half of the files, the rest are pending.

Then `BoardReader.matrix` for the 14 days (and the JSON the api-server would send), the biggest group alone,
`punctuality` and one `unit_day` are timed: best of 5 after one warm-up. The board's counts are checked against what was filled, so a
fast wrong answer fails the run. Timings are printed, never asserted.

    python -m bench.board                          # country scale, SQLite and PostgreSQL
    python -m bench.board --scale province --backends sqlite
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

from bench.generate import DEFAULT_SEED, SCALES, generate
from bench.scenarios import BACKENDS, DEFAULT_PG_ADMIN_URL, fresh_store
from closeout.board.views import BoardReader, board_status
from closeout.core.clock import LOCAL_TZ
from closeout.core.registry import Registry, load_registry
from closeout.store.database import Store

ROOT = Path(__file__).resolve().parents[1]
FIRST_DAY = date(2022, 4, 1)
DAYS = 14
REPEATS = 5
CUTOFF = "21:00"
CUTOFF_MINUTE = 21 * 60
TABLES = {
    "unit_day": ("report_date", "unit_code", "status", "detail", "updated_at"),
    "submission": (
        "report_date",
        "unit_code",
        "sha256",
        "file_name",
        "archived_path",
        "received_at",
        "status",
        "reasons",
        "processed_at",
    ),
    "notice": (
        "kind",
        "report_date",
        "unit_code",
        "notice_key",
        "status",
        "subject",
        "recipients",
        "message_id",
        "body",
        "started_at",
        "sent_at",
    ),
    "unit_excusal": ("report_date", "unit_code", "reason", "marked_by", "marked_at"),
    "edition": (
        "report_date",
        "edition_no",
        "kind",
        "subject",
        "content_sha256",
        "attachment_name",
        "announces",
        "rendered_at",
    ),
    "edition_signoff": ("report_date", "edition_no", "reasons", "requested_at", "decision"),
    "delivery": (
        "report_date",
        "edition_no",
        "attempt",
        "status",
        "subject",
        "recipients",
        "message_id",
        "content_sha256",
        "started_at",
        "sent_at",
    ),
}


@dataclass
class Filled:
    """What was written, to check the board against: the board status of every (date, unit), and row counts."""

    dates: list[date]
    now: datetime
    expected: dict[tuple[str, str], str] = field(default_factory=dict)
    late: set[tuple[str, str]] = field(default_factory=set)
    rows: Counter = field(default_factory=Counter)


def fill_store(db_url: str, registry: Registry, days: int = DAYS, seed: int = DEFAULT_SEED) -> Filled:
    """Write `days` days of a board's worth of rows for every unit of the registry, set-based, in one transaction."""
    rng = random.Random(f"{seed}:board")
    dates = [FIRST_DAY + timedelta(days=n) for n in range(days)]
    filled = Filled(dates, datetime.combine(dates[-1], clock(20, 45), LOCAL_TZ))
    rows: dict[str, list[dict]] = {table: [] for table in TABLES}
    for report_date in dates:
        day = report_date.isoformat()
        today = report_date == dates[-1]
        for unit in registry.all_units:
            status, first_minute = _unit_day(rows, rng, day, unit, today)
            filled.expected[(day, unit.code)] = board_status(status, status == "excused")
            if first_minute is not None and first_minute > CUTOFF_MINUTE:
                filled.late.add((day, unit.code))
        _editions(rows, day, today, len(rows["edition"]) % 5 == 3)
    store = Store(db_url, ROOT / "include" / "sql")  # creates the schema
    for table, columns in TABLES.items():
        store.queries[f"bench_board_{table}"] = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        )
    with store.transaction() as conn:
        for table in TABLES:
            store.insert_rows(conn, f"bench_board_{table}", rows[table])
            filled.rows[table] = len(rows[table])
    if store.engine.dialect.name == "postgresql":
        with store.transaction() as conn:
            conn.exec_driver_sql("ANALYZE")  # as autovacuum would soon after a day's writes
    store.dispose()
    return filled


def _at(day: str, hhmm: str, seconds: int = 0) -> str:
    return f"{day}T{hhmm}:{seconds:02d}.000+08:00"


def _minutes(total: int) -> str:
    return f"{total // 60:02d}:{total % 60:02d}"


def _unit_day(
    rows: dict[str, list[dict]], rng: random.Random, day: str, unit, today: bool
) -> tuple[str | None, int | None]:
    """One unit's rows for one day; returns the unit_day status written (None: no row, pending) and the minute of
    the day its first file arrived (None: no file)."""
    code = unit.code
    first_file: list[int] = []

    def file(sha: str, minute: int, status: str, reasons: str = "") -> None:
        first_file.append(minute)
        received = _at(day, _minutes(minute))
        rows["submission"].append(
            {
                "report_date": day,
                "unit_code": code,
                "sha256": sha,
                "file_name": f"{code}.csv",
                "archived_path": f"/archive/{day}/{code}/{sha[:16]}-{code}.csv",
                "received_at": received,
                "status": status,
                "reasons": reasons,
                "processed_at": _at(day, _minutes(minute), 5),
            }
        )
        notice("receipt", sha, minute + 1)

    def notice(kind: str, key: str, minute: int) -> None:
        rows["notice"].append(
            {
                "kind": kind,
                "report_date": day,
                "unit_code": code,
                "notice_key": key,
                "status": "sent",
                "subject": f"【{kind}】{unit.name}",
                "recipients": unit.email or "",
                "message_id": f"<{kind}.{day}.{code}.{key}@bench>",
                "body": "",
                "started_at": _at(day, _minutes(minute)),
                "sent_at": _at(day, _minutes(minute), 1),
            }
        )

    def verdict(status: str | None, detail: str = "") -> tuple[str | None, int | None]:
        if status is not None:
            rows["unit_day"].append(
                {
                    "report_date": day,
                    "unit_code": code,
                    "status": status,
                    "detail": detail,
                    "updated_at": _at(day, "21:05"),
                }
            )
        return status, min(first_file, default=None)

    if not unit.required:
        return verdict(None if today else "absent", "本日无单独报送")
    roll = rng.random()
    minute = rng.randint(14 * 60, 20 * 60 + 59) if roll < 0.95 else rng.randint(21 * 60 + 1, 23 * 60)  # 5 % late
    sha = f"{code}{day}".encode().hex().ljust(64, "0")[:64]
    if today:
        if minute > 20 * 60 + 45 or roll > 0.55:  # nothing yet: reminders at 19:00 and 20:30
            notice("reminder", "19:00", 19 * 60)
            notice("reminder", "20:30", 20 * 60 + 30)
            return verdict(None)
        if roll < 0.05:
            file(sha, minute, "rejected", "[拒收] sampled 不是整数")
            return verdict("rejected", "[拒收] sampled 不是整数")
        file(sha, minute, "loaded")
        return verdict("received" if roll < 0.08 else "loaded")
    if roll < 0.02:  # 缺报, after two reminders
        notice("reminder", "19:00", 19 * 60)
        notice("reminder", "20:30", 20 * 60 + 30)
        return verdict("missing", "截至截止时间未收到数据文件")
    if roll < 0.03:  # 标记缺报 by an operator
        rows["unit_excusal"].append(
            {
                "report_date": day,
                "unit_code": code,
                "reason": "停电",
                "marked_by": "ops",
                "marked_at": _at(day, "18:00"),
            }
        )
        return verdict("excused", "停电（ops 标记）")
    if roll < 0.05:  # refused and never sent again
        file(sha, minute, "rejected", "[拒收] sampled 不是整数")
        return verdict("rejected", "[拒收] sampled 不是整数")
    if roll < 0.08:  # refused, then sent again and loaded
        file(sha, min(minute, 20 * 60), "rejected", "[拒收] sampled 不是整数")
        file(sha[::-1], min(minute, 20 * 60) + 30, "loaded")
    else:
        file(sha, minute, "loaded")
    return verdict("break", "[对账] isolation_central 与前日接不上") if roll > 0.97 else verdict("cleared")


def _editions(rows: dict[str, list[dict]], day: str, today: bool, with_late_report: bool) -> None:
    """A closed day: its 正式 edition, sent; now and then a 补报 edition held for sign-off. Today: nothing yet."""
    if today:
        return
    for no, kind in ((1, "official"), (2, "late_report"))[: 2 if with_late_report else 1]:
        rows["edition"].append(
            {
                "report_date": day,
                "edition_no": no,
                "kind": kind,
                "subject": f"全国疫情防控工作日报（{day}）",
                "content_sha256": "c" * 64,
                "attachment_name": "figures.xlsx",
                "announces": "[]",
                "rendered_at": _at(day, "21:20"),
            }
        )
    rows["delivery"].append(
        {
            "report_date": day,
            "edition_no": 1,
            "attempt": 1,
            "status": "sent",
            "subject": f"全国疫情防控工作日报（{day}）",
            "recipients": "duty@bench.invalid, office@bench.invalid",
            "message_id": f"<bulletin.{day}@bench>",
            "content_sha256": "c" * 64,
            "started_at": _at(day, "21:21"),
            "sent_at": _at(day, "21:21", 5),
        }
    )
    if with_late_report:
        rows["edition_signoff"].append(
            {
                "report_date": day,
                "edition_no": 2,
                "reasons": "补报",
                "requested_at": _at(day, "22:30"),
                "decision": "pending",
            }
        )


def check_board(board: dict, filled: Filled) -> list[str]:
    """Every cell's status and late flag as written, every day's counts their sum: [] when all agree."""
    problems = []
    seen = 0
    for group in board["groups"]:
        for unit in group["units"]:
            for cell in unit["cells"]:
                seen += 1
                key = (cell["date"], unit["code"])
                if cell["status"] != filled.expected[key]:
                    problems.append(f"{key}: board {cell['status']}, filled {filled.expected[key]}")
                if cell["late"] != (key in filled.late):
                    problems.append(f"{key}: late {cell['late']}")
    if seen != len(filled.expected):
        problems.append(f"{seen} cells on the board, {len(filled.expected)} filled")
    for board_day in board["days"]:
        expected = Counter(s for (d, _), s in filled.expected.items() if d == board_day["date"])
        if {k: v for k, v in board_day["counts"].items() if v} != dict(expected):
            problems.append(f"{board_day['date']}: counts {board_day['counts']} ≠ {dict(expected)}")
    return problems[:20]


def best_of(action, repeats: int = REPEATS) -> tuple[float, object]:
    """Seconds of the fastest of `repeats` runs after one warm-up, and the last result."""
    result = action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return min(times), result


@dataclass
class BoardTiming:
    backend: str
    units: int
    days: int
    cells: int
    fill_s: float
    matrix_s: float
    matrix_json_s: float
    json_bytes: int
    one_group_s: float
    punctuality_s: float
    unit_day_s: float
    problems: list[str]


def measure(backend: str, registry_path: Path, work: Path, pg_admin_url: str, days: int = DAYS) -> BoardTiming:
    registry = load_registry(registry_path)
    with fresh_store(backend, "board", work, pg_admin_url) as url:
        started = time.perf_counter()
        filled = fill_store(url, registry, days)
        fill_s = time.perf_counter() - started
        reader = BoardReader(url, registry, CUTOFF)
        first, last = filled.dates[0], filled.dates[-1]
        try:
            matrix_s, board = best_of(lambda: reader.matrix(first, last, filled.now))
            matrix_json_s, body = best_of(
                lambda: json.dumps(reader.matrix(first, last, filled.now), ensure_ascii=False)
            )
            biggest = max(registry.groups(), key=lambda g: len(g.codes)).key  # a province, at national scale
            one_group_s, _ = best_of(lambda: json.dumps(reader.matrix(first, last, filled.now, group=biggest)))
            punctuality_s, table = best_of(lambda: reader.punctuality(first, last))
            some_unit = registry.units[len(registry.units) // 2].code
            unit_day_s, _ = best_of(lambda: reader.unit_day(first, some_unit))
        finally:
            reader.dispose()
        problems = check_board(board, filled)
        if len(table) != len(registry.all_units):
            problems.append(f"punctuality: {len(table)} rows for {len(registry.all_units)} units")
    return BoardTiming(
        backend,
        len(registry.all_units),
        days,
        len(filled.expected),
        fill_s,
        matrix_s,
        matrix_json_s,
        len(body.encode()),
        one_group_s,
        punctuality_s,
        unit_day_s,
        problems,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="country")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: " + ",".join(BACKENDS))
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL, help="where a fresh database is created")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - set(BACKENDS):
        parser.error(f"backends: choose from {', '.join(BACKENDS)}")
    with tempfile.TemporaryDirectory(prefix="closeout-bench-board-") as tmp:
        work = Path(tmp)
        dataset = generate(args.scale, work / "data", days=0)  # the registry only: the board reads no files
        results = []
        for backend in backends:
            print(f"… {backend}: filling {args.days} days", flush=True)
            results.append(measure(backend, dataset.registry_path, work, args.pg_admin_url, args.days))
    head = (
        "| store | units × days | fill (s) | matrix (ms) | matrix + JSON (ms) | JSON (MB) | biggest group + JSON (ms) "
        "| punctuality (ms) | unit-day (ms) |"
    )
    print("\n" + head + "\n|" + "---|" * 9)
    for r in results:
        print(
            f"| {r.backend} | {r.units:,} × {r.days} | {r.fill_s:.1f} | {_ms(r.matrix_s)} | {_ms(r.matrix_json_s)} "
            f"| {r.json_bytes / 1e6:.1f} | {_ms(r.one_group_s)} | {_ms(r.punctuality_s)} | {_ms(r.unit_day_s)} |"
        )
    print()
    for r in results:
        print(
            f"{r.units - 1:,} units × {r.days} days served in {_ms(r.matrix_json_s)} ms on {r.backend} "
            f"(matrix {_ms(r.matrix_s)} ms + JSON; best of {REPEATS} after a warm-up)"
        )
    failed = [r for r in results if r.problems]
    for r in failed:
        print(f"\nCORRECTNESS FAILED on {r.backend}:\n  " + "\n  ".join(r.problems), file=sys.stderr)
    if not failed:
        print("Correctness: every cell's status and late flag, and every day's counts, as filled.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
