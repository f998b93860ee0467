"""make bench-reclose: how long re-closing a year of city days takes in one run (closeout.close.reclose_range), and
whether the cascade came out right.

A generated city (6 units) and N consecutive days (default 365) are closed and published once, untimed (one load,
reconcile, edition and mail per day). Then one county re-sends its whole year: one more confirmed case on the
first day (so its derived cumulative shifts on every later day) and more people isolated on the first day,
carried in its isolation stock on every day after (so each day balances only against the day before it as
re-closed). The range re-close of all N days is timed, then the store is checked against the corrected data:
every figure, the derived cumulatives, every unit cleared, no finding, one 更正 edition per day, every change
signed; the summary is mailed once; and a second run of the same range changes nothing.

    python -m bench.reclose                                   # 365 city days on PostgreSQL
    python -m bench.reclose --days 30 --backend sqlite
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.correctness import verify_store
from bench.generate import CSV_HEADER, DEFAULT_SEED, Dataset, generate
from bench.scenarios import DEFAULT_PG_ADMIN_URL, closeout_env, context_for, fresh_store

ACTOR, REASON = "bench (reclose)", "县里重报全年：补录一处隔离点"
EXTRA_ISOLATED = 5  # more isolated on the first day, carried in the stock; small enough never to be a jump


def publish_days(ctx, dataset: Dataset, connect, progress=print) -> None:
    """Every day closed and mailed once, as the cutoff runs did: the days a re-close may change."""
    from closeout.close.load import load_group
    from closeout.close.plan import plan_unit_groups
    from closeout.close.reconcile import reconcile_day
    from closeout.orchestration.pipeline import email_bulletin, render_bulletin

    codes = [code for group in plan_unit_groups(ctx) for code in group["codes"]]
    for n, day in enumerate(dataset.days, start=1):
        if n % 30 == 0:
            progress(f"  {n} days published")
        failed = [o for o in load_group(ctx, day, codes) if o.failed]
        if failed:
            raise RuntimeError(f"{day}: not loaded: {failed[0].lines}")
        reconcile_day(ctx, day)
        email_bulletin(ctx, render_bulletin(ctx, day), "closeout@bench.closeout.invalid", connect)


def correct_the_year(dataset: Dataset) -> str:
    """The first unit's year, corrected: the files rewritten and the truth the store is checked against."""
    code, first = dataset.unit_codes[0], dataset.days[0]
    dataset.figures[first][code]["new_confirmed"] += 1
    dataset.figures[first][code]["isolation_new"] += EXTRA_ISOLATED
    for day in dataset.days:
        dataset.figures[day][code]["isolation_central"] += EXTRA_ISOLATED
        rows = [f"{m},{v},{code},{day.isoformat()}," for m, v in dataset.figures[day][code].items()]
        (dataset.inbox / day.isoformat() / f"{code}.csv").write_text(
            "\n".join([CSV_HEADER, *rows]) + "\n", encoding="utf-8"
        )
    return code


def check_cascade(ctx, dataset: Dataset, code: str, result, editions_before: dict) -> list[str]:
    """Every change signed, one correction per re-sent stock, one recalculation per day, one new edition per day."""
    from closeout.publish.editions import editions_of

    problems = []
    signed = ctx.store.rows(
        "select_revisions_signed_since",
        {"first_date": dataset.days[0].isoformat(), "since": result.since, "recorded_by": result.signed_by},
    )
    corrections = [r for r in signed if r["kind"] == "correction"]
    recalculated = [r for r in signed if r["kind"] == "recalculated"]
    expected = len(dataset.days) + 2  # isolation_central every day; new_confirmed and isolation_new on the first
    if len(corrections) != expected or {r["unit_code"] for r in corrections} != {code}:
        problems.append(f"{len(corrections)} signed corrections, expected {expected} of {code}")
    if [(r["report_date"], r["unit_code"], r["metric"]) for r in recalculated] != [
        (d.isoformat(), code, "confirmed_cumulative") for d in dataset.days
    ]:
        problems.append(f"{len(recalculated)} recalculations, expected {code}'s cumulative on each of the days")
    new = [len(editions_of(ctx, d)) - editions_before[d] for d in dataset.days]
    if set(new) != {1} or len(result.editions) != len(dataset.days):
        problems.append(f"new editions per day {sorted(set(new))}, {len(result.editions)} reported; expected 1 each")
    if result.failed:
        problems.append(f"not loaded: {result.failed[:3]}")
    return problems


def run(days: int, backend: str, work: Path, pg_admin_url: str, seed: int = DEFAULT_SEED, progress=print) -> dict:
    """Generate, publish, correct, time the range re-close; the figures and any problems."""
    from closeout.core.clock import LOCAL_TZ
    from closeout.deliver.mailsink import sink_session, start_sink
    from closeout.deliver.reclose_summary import send_summary
    from closeout.orchestration.reclose import reclose_range
    from closeout.publish.editions import editions_of

    dataset = generate("city", work / "data", days=days, seed=seed)
    today = datetime.now(LOCAL_TZ).date()
    sink = start_sink(work / "mail")
    connect = sink_session(sink)
    try:
        with fresh_store(backend, "reclose", work, pg_admin_url) as url:
            ctx = context_for(closeout_env(dataset, url, work))
            try:
                started = time.perf_counter()
                publish_days(ctx, dataset, connect, progress)
                setup_s = time.perf_counter() - started
                progress(f"{days} city days closed and published once in {setup_s:.0f} s (untimed setup)")
                code = correct_the_year(dataset)
                editions_before = {d: len(editions_of(ctx, d)) for d in dataset.days}
                first, last = dataset.days[0], dataset.days[-1]
                started = time.perf_counter()
                result = reclose_range(ctx, first, last, [], REASON, ACTOR, today)
                reclose_s = time.perf_counter() - started
                progress(f"range re-close of {days} days: {reclose_s:.1f} s ({reclose_s / days:.2f} s per day)")
                started = time.perf_counter()
                subject = send_summary(ctx, first, last, result.since, result.signed_by, REASON, "b@x.invalid", connect)
                summary_s = time.perf_counter() - started
                problems = check_cascade(ctx, dataset, code, result, editions_before)
                if subject is None or send_summary(
                    ctx, first, last, result.since, result.signed_by, REASON, "b@x.invalid", connect
                ):
                    problems.append("the summary was not mailed exactly once")
                started = time.perf_counter()
                for day in dataset.days:  # the store against the corrected year (cumulatives included)
                    problems += verify_store(url, dataset, day)
                verify_s = time.perf_counter() - started
                mails = len(list((work / "mail").glob("*.eml")))
                if mails != days + 1:
                    problems.append(f"{mails} mails, expected {days} bulletins and one summary")
                progress(f"checked in {verify_s:.0f} s: {len(problems)} problems")
                # last, as the slowest check: the same range again records, renders and mails nothing
                started = time.perf_counter()
                again = reclose_range(ctx, first, last, [], REASON, ACTOR, today)
                again_s = time.perf_counter() - started
                if (
                    again.changed
                    or again.editions
                    or send_summary(ctx, first, last, again.since, again.signed_by, REASON, "b@x.invalid", connect)
                ):
                    problems.append(f"a second run changed {len(again.changed)} days, rendered {len(again.editions)}")
            finally:
                ctx.store.dispose()
    finally:
        sink.stop()
    return {
        "days": days,
        "backend": backend,
        "setup_s": setup_s,
        "reclose_s": reclose_s,
        "per_day_s": reclose_s / days,
        "summary_s": summary_s,
        "again_s": again_s,
        "verify_s": verify_s,
        "changed_days": len(result.changed),
        "editions": len(result.editions),
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--work-dir", type=Path, help="keep generated files, store and mails here")
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error("--days must be at least 2: the cascade needs a day after the corrected one")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="closeout-bench-reclose-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"closeout bench-reclose: {args.days} city days on {args.backend}; work dir {work}", flush=True)
    figures = run(args.days, args.backend, work, args.pg_admin_url, args.seed, lambda x: print(x, flush=True))
    print(
        f"range re-close of {figures['days']} days ({figures['changed_days']} changed, {figures['editions']} "
        f"更正 editions rendered): {figures['reclose_s']:.1f} s, {figures['per_day_s']:.2f} s per day "
        f"(target: 365 days ≤ 600 s); summary mail {figures['summary_s']:.2f} s; the same range again (no-op) "
        f"{figures['again_s']:.1f} s"
    )
    for problem in figures["problems"]:
        print("  PROBLEM " + problem, file=sys.stderr)
    if figures["problems"]:
        print(f"CORRECTNESS FAILED; work dir kept: {work}", file=sys.stderr)
        return 1
    print(
        "Correctness: the corrected year is in the store (figures, cumulatives, statuses, no findings), every change "
        "signed, one 更正 edition per day, one summary mail, a second run changed nothing."
    )
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
