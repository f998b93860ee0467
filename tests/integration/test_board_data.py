"""The board's read-only data layer (closeout.board.queries, and closeout.board.views over it) against a store seeded
by hand: statuses, live facts of today, editions, filters, the unit-day, punctuality and its CSV. SQLite tests are
`unit`; the same scenario runs on PostgreSQL as `services`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest
from conftest import ROOT
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError

from closeout.board.export import punctuality_csv
from closeout.board.queries import StoreNotReady
from closeout.board.views import STATUSES, BoardReader, UnknownUnit, default_range
from closeout.core.clock import LOCAL_TZ
from closeout.core.registry import Registry, Unit
from closeout.store.database import Store

D1, D2, TODAY = "2022-03-18", "2022-03-19", "2022-03-20"
NOW = datetime(2022, 3, 20, 20, 45, tzinfo=LOCAL_TZ)  # today, after both reminders, before the 21:00 cutoff
STAMP = "2022-03-20T22:00:00.000+08:00"


def registry() -> Registry:
    """Two groups of two counties, and the city level (optional, a group of its own)."""
    units = [
        Unit("330802", "柯城区", "kecheng", group="east"),
        Unit("330803", "衢江区", "qujiang", group="east"),
        Unit("330822", "常山县", "changshan", group="west"),
        Unit("330824", "开化县", "kaihua", group="west"),
    ]
    city = Unit("330801", "市本级", "shibenji", group="330801", required=False)
    return Registry("330800", "衢州市", "quzhou", city, units, {"east": "东片", "west": "西片"})


def insert(engine, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    statement = text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})")
    with engine.begin() as conn:
        conn.execute(statement, rows)


def day(report_date: str, unit_code: str, status: str, detail: str = "") -> dict:
    return {"report_date": report_date, "unit_code": unit_code, "status": status, "detail": detail, "updated_at": STAMP}


def submission(report_date, unit_code, sha, received, status="loaded", reasons="", path="/nonexistent/f.csv"):
    return {
        "report_date": report_date,
        "unit_code": unit_code,
        "sha256": sha,
        "file_name": f"{unit_code}-{sha}.csv",
        "archived_path": path,
        "received_at": f"{report_date}T{received}:00.000+08:00",
        "status": status,
        "reasons": reasons,
        "processed_at": f"{report_date}T{received}:05.000+08:00",
    }


def notice(kind, report_date, unit_code, key, status="sent", sent="20:00"):
    return {
        "kind": kind,
        "report_date": report_date,
        "unit_code": unit_code,
        "notice_key": key,
        "status": status,
        "subject": f"{kind} {unit_code}",
        "recipients": "x@test.invalid",
        "message_id": f"<{uuid.uuid4().hex}@test>",
        "body": "",
        "started_at": f"{report_date}T{sent}:00.000+08:00",
        "sent_at": f"{report_date}T{sent}:01.000+08:00" if status == "sent" else None,
    }


def edition(report_date, no, kind):
    return {
        "report_date": report_date,
        "edition_no": no,
        "kind": kind,
        "subject": f"衢州市疫情防控工作日报 {report_date} 第{no}期",
        "content_sha256": "c" * 64,
        "attachment_name": "x.csv",
        "announces": "[]",
        "rendered_at": STAMP,
    }


def delivery(report_date, no, attempt, status, recipients="duty@test.invalid, office@test.invalid"):
    return {
        "report_date": report_date,
        "edition_no": no,
        "attempt": attempt,
        "status": status,
        "subject": "s",
        "recipients": recipients,
        "message_id": f"<{uuid.uuid4().hex}@test>",
        "content_sha256": "c" * 64,
        "started_at": STAMP,
        "sent_at": "2022-03-18T22:10:00.000+08:00" if status == "sent" else None,
    }


def signoff(report_date, no, decision):
    return {
        "report_date": report_date,
        "edition_no": no,
        "reasons": "不足半数",
        "requested_at": STAMP,
        "decision": decision,
    }


def seed(db_url: str, archive: Path) -> None:
    """The scenario every test reads. Through the project's own Store (so the schema is the real one), then plain
    INSERTs of exactly the rows the pipeline would have written."""
    store = Store(db_url, ROOT / "include" / "sql")
    engine = store.engine
    archive.mkdir(parents=True, exist_ok=True)
    kept = archive / "330824-b.csv"
    kept.write_bytes(b"metric,value\nsampled,100\n")  # 25 bytes: its size is read with os.stat
    insert(
        engine,
        "unit_day",
        [
            day(D1, "330802", "cleared"),
            day(D1, "330803", "loaded"),
            day(D1, "330822", "break", "[对账] 常山县 isolation_central 与前日接不上"),
            day(D1, "330824", "rejected", "[拒收] 开化县 sampled 不是整数"),
            day(D1, "330801", "absent", "本日无单独报送"),
            day(D2, "330802", "missing", "截至截止时间未收到"),
            day(D2, "330803", "excused", "停电（值班员 标记）"),
            day(D2, "330822", "cleared"),
            day(D2, "330824", "cleared"),
            day(D2, "330801", "absent", "本日无单独报送"),
            day(TODAY, "330802", "loaded"),
            day(TODAY, "330822", "received", "已收到 330822.csv，尚未入库"),
            day(TODAY, "999999", "cleared"),  # a unit the registry no longer lists: never shown
        ],
    )
    insert(
        engine,
        "unit_excusal",
        [{"report_date": D2, "unit_code": "330803", "reason": "停电", "marked_by": "值班员", "marked_at": STAMP}],
    )
    insert(
        engine,
        "submission",
        [
            submission(D1, "330802", "a1", "18:00"),
            submission(D1, "330824", "r1", "20:00", "rejected", "[拒收] 开化县 sampled 不是整数"),
            submission(D2, "330822", "late", "21:30"),  # after the cutoff: late
            submission(D2, "330824", "a", "20:00", "rejected", "第3行 数值不是数字\n第4行 指标名称为空"),
            submission(D2, "330824", "b", "21:10", "loaded", path=str(kept)),  # late file, but the first was on time
            submission(TODAY, "330802", "t1", "15:00"),
            submission(TODAY, "330822", "t2", "20:40"),
        ],
    )
    insert(
        engine,
        "notice",
        [
            notice("receipt", D2, "330824", "a", sent="20:01"),
            notice("receipt", D2, "330824", "b", sent="21:11"),
            notice("receipt", TODAY, "330822", "t2", sent="20:41"),
            notice("reminder", TODAY, "330803", "19:00", sent="19:00"),
            notice("reminder", TODAY, "330803", "20:30", sent="20:30"),
            notice("reminder", TODAY, "330824", "19:00", sent="19:00"),
            notice("reminder", TODAY, "330824", "20:30", status="sending", sent="20:30"),  # not (yet) sent
        ],
    )
    insert(
        engine,
        "finding",
        [
            {
                "report_date": D2,
                "unit_code": "330824",
                "stage": stage,
                "severity": severity,
                "rule": rule,
                "metric": "sampled",
                "file_name": "330824-a.csv",
                "row_no": row_no,
                "value": "x",
                "message": f"{rule} message",
                "line": f"[{severity}] 开化县 sampled {rule}",
            }
            for stage, severity, rule, row_no in (
                ("validate", "soft", "jump", None),
                ("load", "hard", "not_a_number", 3),
            )
        ],
    )
    insert(
        engine,
        "figure",
        [
            {
                "report_date": D2,
                "unit_code": "330824",
                "metric": metric,
                "value": value,
                "qualifier": qualifier,
                "note": "",
                "source_sha256": "b",
                "source_rows": "",
                "attributed_unit": "",
            }
            for metric, value, qualifier in (("donated_goods_kg", 25000.0, "余"), ("sampled", 100.0, ""))
        ],
    )
    insert(
        engine,
        "figure_revision",
        [
            {
                "report_date": D2,
                "unit_code": "330824",
                "metric": "sampled",
                "old_value": 90.0,
                "new_value": 100.0,
                "old_qualifier": "",
                "new_qualifier": "",
                "old_sha256": "a",
                "new_sha256": "b",
                "kind": "correction",
                "reason": "漏计一个采样点",
                "recorded_by": "ops1",
                "recorded_at": STAMP,
            }
        ],
    )
    insert(engine, "edition", [edition(D1, 1, "official"), edition(D1, 2, "late_report")])
    insert(engine, "edition", [edition(D2, 1, "official"), edition(D2, 2, "correction")])
    insert(engine, "delivery", [delivery(D1, 1, 1, "refused"), delivery(D1, 1, 2, "sent")])
    insert(engine, "edition_signoff", [signoff(D1, 2, "pending"), signoff(D2, 1, "rejected")])
    store.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.unit),
        pytest.param("postgresql", marks=pytest.mark.services),
    ]
)
def reader(request, tmp_path):
    """A BoardReader on the seeded scenario: an SQLite file, or a schema of its own on the machine's PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'closeout.db'}"
        seed(url, tmp_path / "archive")
        board = BoardReader(url, registry())
        yield board
        board.dispose()
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"b_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}?options=-csearch_path%3D{schema}"
    seed(url, tmp_path / "archive")
    board = BoardReader(url, registry())
    yield board
    board.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def cells_by_unit(board: dict) -> dict[str, dict[str, dict]]:
    return {u["code"]: {c["date"]: c for c in u["cells"]} for g in board["groups"] for u in g["units"]}


def matrix(reader: BoardReader, **filters) -> dict:
    return reader.matrix(date(2022, 3, 18), date(2022, 3, 21), NOW, **filters)


def test_each_stored_verdict_maps_to_its_board_status(reader):
    cells = cells_by_unit(matrix(reader))
    assert {code: cells[code][D1]["status"] for code in cells} == {
        "330802": "cleared",
        "330803": "open",  # loaded, not reconciled
        "330822": "open",  # break
        "330824": "rejected",
        "330801": "absent",  # optional and sent nothing
    }
    assert {code: cells[code][D2]["status"] for code in cells} == {
        "330802": "missing",
        "330803": "absent",  # excused by an operator (unit_excusal)
        "330822": "cleared",
        "330824": "cleared",
        "330801": "absent",
    }
    assert cells["330802"][D1]["label"] == "已结清" and cells["330803"][D2]["label"] == "已标记缺报"
    assert cells["330822"][D1]["detail"].startswith("[对账] 常山县")
    assert all(c["status"] == "pending" for unit in cells.values() for d, c in unit.items() if d == "2022-03-21")


def test_today_before_the_cutoff_shows_pending_with_the_live_facts(reader):
    board = matrix(reader)
    cells = cells_by_unit(board)
    assert (board["today"], board["now"], board["cutoff"]) == (TODAY, "2022-03-20T20:45:00+08:00", "21:00")
    received = cells["330822"][TODAY]  # its file is in, not yet loaded
    assert received["status"] == "pending"
    assert received["received_at"] == "2022-03-20T20:40:00.000+08:00"
    assert received["receipt_sent_at"] == "2022-03-20T20:41:01.000+08:00"
    assert received["file_name"] == "330822-t2.csv" and received["late"] is False
    reminded = cells["330803"][TODAY]  # nothing in, two reminders gone
    assert (reminded["status"], reminded["received_at"], reminded["receipt_sent_at"]) == ("pending", None, None)
    assert reminded["reminders_sent"] == 2
    assert cells["330824"][TODAY]["reminders_sent"] == 1  # the second reminder is still `sending`
    assert (cells["330801"][TODAY]["status"], cells["330801"][TODAY]["reminders_sent"]) == ("pending", 0)
    assert cells["330802"][TODAY]["status"] == "open"  # judged on arrival by intake: loaded


def test_late_is_the_first_file_of_the_day_after_the_cutoff(reader):
    cells = cells_by_unit(matrix(reader))
    assert cells["330822"][D2]["late"] is True  # its only file came at 21:30
    assert cells["330824"][D2]["late"] is False  # its first file came at 20:00, its second at 21:10
    assert cells["330824"][D2]["received_at"] == "2022-03-19T21:10:00.000+08:00"  # the latest file's
    assert cells["330824"][D2]["receipt_sent_at"] == "2022-03-19T21:11:01.000+08:00"  # the latest file's receipt
    assert cells["330802"][D2]["late"] is False  # no file at all: missing, not late


def test_counts_per_day_and_per_group(reader):
    board = matrix(reader)
    days = {d["date"]: d["counts"] for d in board["days"]}
    zero = dict.fromkeys((s["key"] for s in STATUSES), 0)
    assert days[D1] == zero | {"cleared": 1, "open": 2, "rejected": 1, "absent": 1}
    assert days[D2] == zero | {"cleared": 2, "missing": 1, "absent": 2}
    assert days[TODAY] == zero | {"open": 1, "pending": 4}
    groups = {g["key"]: g for g in board["groups"]}
    assert list(groups) == ["east", "west", "330801"]  # as the registry gives them
    assert (groups["east"]["name"], groups["330801"]["name"]) == ("东片", "市本级")
    assert groups["east"]["counts"][D1] == zero | {"cleared": 1, "open": 1}
    assert groups["west"]["counts"][D2] == zero | {"cleared": 2}
    assert [u["code"] for u in groups["east"]["units"]] == ["330802", "330803"]
    assert board["totals"] == {"units": 5, "shown_units": 5}
    assert board["dates"] == [D1, D2, TODAY, "2022-03-21"]
    assert json.loads(json.dumps(board, ensure_ascii=False)) == board  # JSON as it is


def test_edition_states_in_the_day_header(reader):
    days = {d["date"]: d["editions"] for d in matrix(reader)["days"]}
    first, second = days[D1]
    assert (first["kind"], first["kind_label"], first["state"], first["state_label"]) == (
        "official",
        "正式",
        "sent",
        "已发送",
    )
    assert first["sent_at"] == "2022-03-18T22:10:00.000+08:00"
    assert first["recipients"] == ["duty@test.invalid", "office@test.invalid"]
    assert (second["kind_label"], second["state"], second["state_label"], second["sent_at"]) == (
        "补报",
        "held",
        "待签发",
        None,
    )
    assert [(e["edition_no"], e["kind_label"], e["state"]) for e in days[D2]] == [
        (1, "正式", "rejected"),
        (2, "更正", "unsent"),
    ]
    assert days[TODAY] == []


def test_group_and_search_filters(reader):
    west = matrix(reader, group="west")
    assert [g["key"] for g in west["groups"]] == ["west"]
    assert [u["code"] for u in west["groups"][0]["units"]] == ["330822", "330824"]
    assert west["totals"] == {"units": 5, "shown_units": 2}
    assert west["days"][0]["counts"]["open"] == 2 and west["days"][0]["shown_counts"]["open"] == 1
    by_name = matrix(reader, search="衢江")
    assert [u["code"] for g in by_name["groups"] for u in g["units"]] == ["330803"]
    by_code = matrix(reader, search="0824")
    assert [u["label"] for g in by_code["groups"] for u in g["units"]] == ["开化县(330824)"]
    assert matrix(reader, group="east", search="开化")["groups"] == []


def test_matrix_is_one_sql_statement(reader):
    matrix(reader)  # the first connection's dialect set-up is not the view's
    statements = []
    event.listen(reader.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    matrix(reader, search="开化")
    assert len(statements) == 1


def test_the_reader_cannot_write(reader):
    with pytest.raises(DBAPIError), reader.engine.begin() as conn:
        conn.execute(text("DELETE FROM unit_day"))
    assert matrix(reader)["days"][0]["counts"]["cleared"] == 1


def test_unit_day_has_files_findings_figures_revisions_and_notices(reader):
    view = reader.unit_day(date(2022, 3, 19), "330824")
    assert (view["date"], view["status"], view["label"]) == (D2, "cleared", "已结清")
    assert view["unit"] == {"code": "330824", "name": "开化县", "label": "开化县(330824)", "group": "west"}
    rejected, kept = view["files"]
    assert (rejected["file_name"], rejected["status"], rejected["size"]) == ("330824-a.csv", "rejected", None)
    assert rejected["reasons"] == ["第3行 数值不是数字", "第4行 指标名称为空"]
    assert (kept["sha256"], kept["status"], kept["size"]) == ("b", "loaded", 25)
    assert kept["received_at"] == "2022-03-19T21:10:00.000+08:00" and kept["archived_path"].endswith("330824-b.csv")
    assert [(f["stage"], f["severity"], f["rule"], f["row_no"]) for f in view["findings"]] == [
        ("load", "hard", "not_a_number", 3),
        ("validate", "soft", "jump", None),
    ]
    assert view["findings"][0]["line"] == "[hard] 开化县 sampled not_a_number"
    assert [(f["metric"], f["label"], f["value"], f["qualifier"]) for f in view["figures"]] == [
        ("sampled", "采样人次", 100, ""),  # catalogue order, the catalogue's label
        ("donated_goods_kg", "捐赠物资", 25000, "余"),
    ]
    assert view["figures"][0]["source_sha256"] == "b"
    (revision,) = view["revisions"]
    assert revision == revision | {
        "metric": "sampled",
        "old_value": 90,
        "new_value": 100,
        "kind": "correction",
        "kind_label": "更正",
        "reason": "漏计一个采样点",
        "recorded_by": "ops1",
        "recorded_at": STAMP,
    }
    assert [(n["kind"], n["status"], n["sent_at"]) for n in view["notices"]] == [
        ("receipt", "sent", "2022-03-19T20:01:01.000+08:00"),
        ("receipt", "sent", "2022-03-19T21:11:01.000+08:00"),
    ]
    json.dumps(view)


def test_unit_day_of_an_excused_day_and_of_an_unknown_unit(reader):
    excused = reader.unit_day(date(2022, 3, 19), "330803")
    assert (excused["status"], excused["detail"]) == ("absent", "停电（值班员 标记）")
    assert excused["excusal"]["marked_by"] == "值班员"
    empty = reader.unit_day(date(2022, 3, 25), "330802")
    assert (empty["status"], empty["files"], empty["figures"], empty["notices"]) == ("pending", [], [], [])
    with pytest.raises(UnknownUnit):
        reader.unit_day(date(2022, 3, 19), "999999")


@pytest.mark.unit
def test_before_the_first_run_there_is_no_store_and_every_unit_is_pending(tmp_path):
    path = tmp_path / "not-yet" / "closeout.db"
    reader = BoardReader(f"sqlite:///{path}", registry())
    board = matrix(reader)
    assert board["days"][0]["counts"]["pending"] == 5 and board["days"][0]["editions"] == []
    assert reader.unit_day(date(2022, 3, 19), "330802")["status"] == "pending"
    assert [r["days"] for r in reader.punctuality(date(2022, 3, 13), date(2022, 3, 19))] == [0] * 5
    reader.dispose()
    assert not path.exists() and not path.parent.exists()  # looking creates nothing


@pytest.mark.unit
def test_a_reader_from_the_pipelines_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOSEOUT_DB_URL", f"sqlite:///{tmp_path / 'closeout.db'}")
    monkeypatch.setenv("CLOSEOUT_CUTOFF", "20:30")
    reader = BoardReader.from_env()
    assert reader.cutoff == "20:30" and [u.code for u in reader.registry.all_units][-1] == "330801"
    assert reader.matrix(date(2022, 3, 19), date(2022, 3, 19), NOW)["totals"]["units"] == 7
    reader.dispose()


@pytest.mark.unit
def test_a_store_with_only_some_tables_is_named_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE unit_day (report_date TEXT, unit_code TEXT, status TEXT)"))
    engine.dispose()
    reader = BoardReader(url, registry())
    with pytest.raises(StoreNotReady, match="submission"):
        matrix(reader)
    reader.dispose()


@pytest.mark.unit
def test_punctuality_over_a_hand_made_week(tmp_path):
    url = f"sqlite:///{tmp_path / 'closeout.db'}"
    store = Store(url, ROOT / "include" / "sql")
    week = [f"2022-03-{n:02d}" for n in range(13, 20)]
    # 330802: on time ×3 (20:00, 20:30, exactly 21:00), late once (21:30), 缺报 once, excused once, rejected once
    # (its only file at 19:00 was refused: on time, but the day ends rejected)
    times = {week[0]: "20:00", week[1]: "20:30", week[2]: "21:00", week[3]: "21:30", week[6]: "19:00"}
    insert(store.engine, "submission", [submission(d, "330802", f"s{d}", t) for d, t in times.items()])
    insert(
        store.engine,
        "unit_day",
        [day(d, "330802", "cleared") for d in week[:4]]
        + [day(week[4], "330802", "missing"), day(week[5], "330802", "excused"), day(week[6], "330802", "rejected")]
        + [day(d, "330801", "absent") for d in week],
    )
    insert(
        store.engine,
        "unit_excusal",
        [{"report_date": week[5], "unit_code": "330802", "reason": "停电", "marked_by": "ops", "marked_at": STAMP}],
    )
    store.dispose()
    reader = BoardReader(url, registry())
    rows = {r["code"]: r for r in reader.punctuality(date(2022, 3, 13), date(2022, 3, 19))}
    reader.dispose()
    assert list(rows) == ["330802", "330803", "330822", "330824", "330801"]
    assert rows["330802"] == rows["330802"] | {
        "name": "柯城区",
        "group": "east",
        "days": 6,
        "on_time": 4,
        "late": 1,
        "missing": 1,
        "rejected": 1,
        "absent": 1,
        "median_submission_time": "20:30",
    }
    assert rows["330802"]["on_time_rate"] == pytest.approx(4 / 6)
    assert rows["330803"]["on_time_rate"] is None
    assert (rows["330803"]["days"], rows["330803"]["median_submission_time"]) == (0, None)
    assert (rows["330801"]["absent"], rows["330801"]["days"]) == (7, 0)


@pytest.mark.unit
def test_punctuality_csv_is_bilingual_and_neutralises_formulas():
    rows = [
        {
            "code": "330802",
            "name": '=HYPERLINK("http://evil.invalid","点我")',
            "group": "@east",
            "days": 6,
            "on_time": 4,
            "on_time_rate": 4 / 6,
            "median_submission_time": "20:30",
            "late": 1,
            "missing": 1,
            "rejected": 0,
            "absent": 0,
        },
        {"code": "-1+1", "name": "+cmd", "group": "g", "days": 0, "on_time": 0, "on_time_rate": None},
    ]
    body = punctuality_csv(rows)
    assert body.startswith("\ufeff")
    header, first, second = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert header[0] == "单位代码 code" and header[5] == "按时率 on_time_rate"
    assert first[1] == '\'=HYPERLINK("http://evil.invalid","点我")' and first[2] == "'@east"
    assert first[5] == "0.6667" and first[6] == "20:30"
    assert (second[0], second[1], second[5], second[6]) == ("'-1+1", "'+cmd", "", "")


@pytest.mark.unit
def test_default_range_is_fourteen_days_ending_today():
    assert default_range(date(2022, 3, 20)) == (date(2022, 3, 7), date(2022, 3, 20))
    assert default_range(date(2022, 3, 20), days=1) == (date(2022, 3, 20), date(2022, 3, 20))


@pytest.mark.unit
def test_statuses_legend():
    assert [(s["key"], s["label"]) for s in STATUSES] == [
        ("cleared", "已结清"),
        ("open", "未结清"),
        ("rejected", "拒收"),
        ("missing", "缺报"),
        ("pending", "待报"),
        ("absent", "已标记缺报"),
    ]
    colours = [s["colour"] for s in STATUSES]
    assert len(set(colours)) == len(colours) and all(len(c) == 7 and c.startswith("#") for c in colours)
    assert all(s["meaning"] for s in STATUSES)


@pytest.mark.integration  # a fresh interpreter: over a second on a busy machine
def test_the_board_module_imports_no_pandas_gx_or_airflow():
    """The api-server imports the board's app and reader: it must not pay for the pipeline's heavy dependencies
    (the app imports Airflow only inside its handlers, where the api-server has it already)."""
    probe = (
        "import sys, closeout.board.queries, closeout.board.views, closeout.board.web; "
        "closeout.board.web.create_app(); "
        "print([m for m in ('pandas', 'great_expectations', 'airflow') if m in sys.modules])"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == "[]"
