"""The benchmark's correctness check: after every measurement, what the store holds for a day against what was
generated; any difference is a problem of the run, which then exits non-zero."""

from __future__ import annotations

from datetime import date

from bench.generate import Dataset


def verify_store(db_url: str, dataset: Dataset, day: date, delivered: bool = False) -> list[str]:
    """What the store says about `day` against what was generated; [] when they agree.

    Every reported figure of every unit, the per-metric sums, the derived cumulatives (one per unit, their sum
    the flow summed to this day), every unit cleared and the optional city level absent, not one finding (the
    data is generated clean), an edition rendered — and, for an Airflow run, the bulletin mailed once."""
    from sqlalchemy import create_engine, text

    problems = []
    key = {"report_date": day.isoformat()}
    engine = create_engine(db_url)
    with engine.connect() as conn:
        figures = conn.execute(
            text("SELECT unit_code, metric, value, source_sha256 FROM figure WHERE report_date = :report_date"), key
        ).all()
        statuses = dict(
            conn.execute(
                text("SELECT status, COUNT(*) FROM unit_day WHERE report_date = :report_date GROUP BY status"), key
            ).all()
        )
        findings = conn.execute(
            text(
                "SELECT severity, rule, COUNT(*) FROM finding WHERE report_date = :report_date "
                "GROUP BY severity, rule ORDER BY 3 DESC"
            ),
            key,
        ).all()
        editions = conn.execute(text("SELECT COUNT(*) FROM edition WHERE report_date = :report_date"), key).scalar()
        sent = conn.execute(
            text("SELECT COUNT(*) FROM delivery WHERE report_date = :report_date AND status = 'sent'"), key
        ).scalar()
    engine.dispose()

    reported = [f for f in figures if f.source_sha256 != "derived"]
    derived = [f for f in figures if f.source_sha256 == "derived"]
    expected_rows = dataset.figure_count(day)
    if len(reported) != expected_rows:
        problems.append(f"{day}: {len(reported)} reported figure rows stored, {expected_rows} generated")
    truth = dataset.figures[day]
    wrong = [
        f"{f.unit_code}/{f.metric} stored {f.value} generated {truth.get(f.unit_code, {}).get(f.metric)}"
        for f in reported
        if truth.get(f.unit_code, {}).get(f.metric) != f.value
    ]
    if wrong:
        problems.append(f"{day}: {len(wrong)} figures differ from the files, e.g. " + "; ".join(wrong[:5]))
    units = len(dataset.unit_codes)
    problems += compare_sums(
        f"{day} reported figures",
        _sums(reported),
        {metric: (units, total) for metric, total in dataset.sums(day).items()},
    )
    problems += compare_sums(
        f"{day} derived figures",
        _sums(derived),
        {metric: (units, total) for metric, total in dataset.cumulative_sums(day).items()},
    )
    if statuses != {"cleared": units, "absent": 1}:
        problems.append(f"{day}: unit statuses {statuses}, expected {units} cleared and the city level absent")
    if findings:
        problems.append(
            f"{day}: findings on generated-clean data: " + ", ".join(f"{s}/{r}×{n}" for s, r, n in findings)
        )
    if not editions:
        problems.append(f"{day}: no bulletin edition rendered")
    if delivered and sent != 1:
        problems.append(f"{day}: {sent} bulletin deliveries sent, expected exactly 1")
    return problems


def _sums(rows) -> dict[str, tuple[int, float]]:
    sums: dict[str, tuple[int, float]] = {}
    for row in rows:
        count, total = sums.get(row.metric, (0, 0.0))
        sums[row.metric] = (count + 1, total + row.value)
    return sums


def compare_sums(what: str, stored: dict, expected: dict) -> list[str]:
    """Per metric: (rows, sum) stored against generated; sums of whole numbers compared exactly."""
    problems = []
    for metric in sorted(set(stored) | set(expected)):
        have, want = stored.get(metric), expected.get(metric)
        if have is None or want is None or have[0] != want[0] or float(have[1]) != float(want[1]):
            problems.append(f"{what}: {metric} stored (rows, sum) {have}, generated {want}")
    return problems
