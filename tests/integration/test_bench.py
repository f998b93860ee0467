"""The benchmark's correctness check as CI runs it: a province's day (90 units, 11 prefectures) closed in process on
PostgreSQL leaves exactly the generated figures in the store. Timings are printed by `make bench`, never asserted."""

import pytest
from conftest import PG_ADMIN_URL

from bench.generate import generate
from bench.run import run_bench


@pytest.mark.unit
def test_generated_days_are_deterministic(tmp_path):
    first, second = generate("province", tmp_path / "a", days=2), generate("province", tmp_path / "b", days=2)
    assert first.figures == second.figures
    assert first.registry_path.read_bytes() == second.registry_path.read_bytes()
    assert len(first.unit_codes) == 90 and first.groups <= 12


@pytest.mark.services
def test_a_province_day_in_process_stores_exactly_the_generated_figures(tmp_path):
    (result,) = run_bench(
        scales=["province"],
        backends=["postgresql"],
        airflow_scales=[],
        work=tmp_path,
        pg_admin_url=PG_ADMIN_URL,
        progress=lambda line: None,
    )
    assert result.problems == []
    assert (result.units, result.figures) == (90, 90 * 25)
    assert result.limit_s is not None and result.in_process_s is not None  # measured; how long is not asserted


@pytest.mark.services
@pytest.mark.parametrize("worker", ["cold", "warm"])
def test_the_fresh_task_benchmark_loads_its_unit_in_a_new_or_a_forked_process(tmp_path, worker):
    """Cold: a new interpreter imports GX itself. Warm: forked after closeout.orchestration.worker's warm-up, it finds GX loaded."""
    from bench.task_cost import STEPS, measure

    (run,) = measure("postgresql", tmp_path, PG_ADMIN_URL, repeats=1, worker=worker)  # the task asserts "loaded"
    assert set(run) == {*STEPS, "total", "gx preloaded"}
    assert run["total"] >= sum(run[s] for s in STEPS) - run["start"]
    assert run["gx preloaded"] is (worker == "warm")


@pytest.mark.integration
def test_the_correctness_check_notices_a_figure_that_differs_from_the_files(tmp_path):
    """The check is not vacuous: one stored figure changed behind the pipeline's back is reported."""
    from sqlalchemy import create_engine, text

    from bench.correctness import verify_store
    from bench.scenarios import close_day_in_process, close_earlier_days, closeout_env, context_for

    dataset = generate("city", tmp_path / "data", days=2)
    db_url = f"sqlite:///{tmp_path / 'closeout.db'}"
    ctx = context_for(closeout_env(dataset, db_url, tmp_path))
    close_earlier_days(ctx, dataset)
    day = dataset.days[-1]
    close_day_in_process(ctx, day)
    ctx.store.dispose()
    assert verify_store(db_url, dataset, day) == []
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE figure SET value = value + 1 WHERE report_date = :day AND metric = 'sampled' AND unit_code = :u"
            ),
            {"day": day.isoformat(), "u": dataset.unit_codes[0]},
        )
    engine.dispose()
    problems = verify_store(db_url, dataset, day)
    assert any(f"{dataset.unit_codes[0]}/sampled stored" in p for p in problems)
    assert any("sampled stored (rows, sum)" in p for p in problems)


@pytest.mark.services
def test_a_national_day_closes_on_postgresql_and_its_attachment_totals_are_the_files_sums(tmp_path):
    """A generated country (2,850 county-level units by province, some names shared across provinces), two days
    closed in process on PostgreSQL: the store holds exactly the files' figures; the bulletin shows provinces, not
    2,850 columns, and its mail stays far under a mail server's 10 MB; the attached spreadsheet has a row per unit
    and totals each metric to the sum of the day's files."""
    import io

    import openpyxl
    from conftest import fresh_database

    from bench.correctness import verify_store
    from bench.scenarios import close_day_in_process, closeout_env, context_for
    from closeout.deliver.mailer import build_message
    from closeout.orchestration.pipeline import render_bulletin
    from closeout.publish.editions import editions_of, read_files

    dataset = generate("country", tmp_path / "data", days=2)
    assert len(dataset.unit_codes) == 2850
    with fresh_database("closeout_country") as db_url:
        ctx = context_for(closeout_env(dataset, db_url, tmp_path))
        for day in dataset.days:
            close_day_in_process(ctx, day)
        day = dataset.days[-1]
        [edition] = editions_of(ctx, day)
        rendered = read_files(ctx, edition)
        assert render_bulletin(ctx, day) == edition  # the same store gives the same bytes: no second edition
        ctx.store.dispose()
        assert verify_store(db_url, dataset, day) == []
    message = bytes(
        build_message(edition.subject, rendered, edition.attachment_name, "a@x.invalid", ("b@x.invalid",), "<id@x>")
    )
    assert len(message) < 3_000_000, f"the national bulletin's mail is {len(message):,} bytes"
    assert edition.attachment_name.endswith(".xlsx")
    headers = rendered.html.count("<th ") + rendered.html.count("<th>")  # the inliner gives most a style
    assert 0 < headers < 100  # a table per section with a column per metric, none per unit
    assert "浙江省" in rendered.html and "新疆维吾尔自治区" in rendered.text  # the provinces are the rows
    rows = list(
        openpyxl.load_workbook(io.BytesIO(rendered.attachment), read_only=True).active.iter_rows(values_only=True)
    )
    header, units, total = rows[0], rows[1:-1], rows[-1]
    assert [row[0] for row in units] == [*dataset.unit_codes, "100001"]  # every unit, then 国家本级
    expected = {**dataset.sums(day), **dataset.cumulative_sums(day)}
    labels = {f"{m.label}（{m.unit}）": m.key for m in ctx.catalogue.metrics}
    totals = {labels[name]: value for name, value in zip(header[4:], total[4:], strict=True)}
    assert totals == expected


@pytest.mark.integration
def test_the_range_reclose_bench_checks_its_cascade_on_a_few_days(tmp_path):
    """`make bench-reclose` reduced to three days: the corrected county's cascade, the summary and the no-op re-run
    are checked (timings printed by the bench, never asserted)."""
    from bench.reclose import run

    figures = run(3, "sqlite", tmp_path, PG_ADMIN_URL, progress=lambda line: None)
    assert figures["problems"] == []
    assert (figures["changed_days"], figures["editions"]) == (3, 3)


@pytest.mark.unit
def test_the_board_bench_serves_exactly_what_it_filled(tmp_path):
    """bench/board.py's check (every cell's status and late flag, every day's counts) on a province fortnight, on
    SQLite; and it is not vacuous: one verdict changed behind its back is reported."""
    from sqlalchemy import create_engine, text

    from bench.board import check_board, fill_store, measure
    from closeout.board.views import BoardReader
    from closeout.core.registry import load_registry

    dataset = generate("province", tmp_path / "data", days=0)
    timing = measure("sqlite", dataset.registry_path, tmp_path, PG_ADMIN_URL, days=14)
    assert timing.problems == [] and (timing.units, timing.cells) == (91, 91 * 14)

    registry = load_registry(dataset.registry_path)
    url = f"sqlite:///{tmp_path / 'changed.db'}"
    filled = fill_store(url, registry, days=3)
    day, code = filled.dates[0].isoformat(), registry.units[0].code
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE unit_day SET status = 'missing' WHERE report_date = :d AND unit_code = :u"),
            {"d": day, "u": code},
        )
    engine.dispose()
    reader = BoardReader(url, registry)
    board = reader.matrix(filled.dates[0], filled.dates[-1], filled.now)
    reader.dispose()
    problems = check_board(board, filled)
    assert any(f"('{day}', '{code}')" in p for p in problems)
    assert any(p.startswith(f"{day}: counts") for p in problems)


@pytest.mark.services
def test_the_board_bench_on_postgresql(tmp_path):
    from bench.board import measure

    dataset = generate("city", tmp_path / "data", days=0)
    timing = measure("postgresql", dataset.registry_path, tmp_path, PG_ADMIN_URL, days=14)
    assert timing.problems == [] and timing.cells == 7 * 14


def test_the_render_bench_checks_its_edition(tmp_path):
    """`make bench-render` at city scale: a fortnight in the store, the edition rendered with its PDF and three
    charts, its email under 10 MB (timings printed by the bench, never asserted)."""
    from bench.render import DAYS, measure

    dataset = generate("city", tmp_path / "data", days=DAYS)
    result = measure(dataset, "sqlite", tmp_path, "", repeats=1)
    assert result.problems == []
    assert result.sizes["pdf"] > 0 and result.sizes["email"] > result.sizes["pdf"]
