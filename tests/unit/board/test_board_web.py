"""The board's web app (closeout.board.web) without an api-server: FastAPI's TestClient on `create_app()`, the
caller faked through `dependency_overrides` (a Viewer or an Ops BoardUser), Airflow's REST API replaced by a fake
`_load_task`, the store an SQLite file seeded by hand. Three promises (issue 24, point 5):

- bad input answers one line with 4xx, never 500, on every route;
- no link comes from the request's Host header;
- figures before publication: a Viewer sees a day's figures, findings and verdict text only once its bulletin has
  been sent; Ops always (docs/operations.md, "看板的查看权限 · Who sees what on the board").
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import text

from closeout.board import web
from closeout.core.clock import LOCAL_TZ
from closeout.store.database import Store

DAY, UNIT, OTHER = "2022-03-19", "330824", "330802"  # 开化县 has figures; 柯城区 nothing
SHA = "ab" * 32
STAMP = "2022-03-19T22:00:00.000+08:00"
UI = "https://airflow.example.org/ui-prefix"  # CLOSEOUT_UI_BASE_URL, with a path: links keep it
UI_ORIGIN = "https://airflow.example.org"
# What must not reach a Viewer before publication: each is a value or a line quoting one.
FIGURE, FIGURE_SHOWN = 777777.0, "777,777"
OLD_FIGURE_SHOWN = "666,601"
DETAIL = "[对账] 开化县 sampled 777777 与前日 666601 接不上"
FINDING_LINE = "[hard] 开化县 sampled 值 54321 不是整数"
FILE_REASON = "第3行 数值 98765 不是数字"
SECRETS = (FIGURE_SHOWN, OLD_FIGURE_SHOWN, "777777", DETAIL, FINDING_LINE, FILE_REASON, "54321", "98765")
TASK = {"run_id": "scheduled__2022-03-19", "map_index": 3, "state": "success"}
TASK_URL = "/dags/daily_closeout/runs/scheduled__2022-03-19/tasks/load_unit_group/mapped/3"

pytestmark = pytest.mark.unit


def insert(conn, table: str, row: dict) -> None:
    columns = list(row)
    conn.execute(
        text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"), row
    )


def seed(url: str, archive: Path) -> None:
    """开化县 on DAY: a verdict with a detail quoting figures, a rejected and a loaded file, a finding, two figures,
    a revision, a receipt; the day's first edition, whose only delivery so far was refused (not published)."""
    archive.mkdir(parents=True, exist_ok=True)
    kept = archive / f"{UNIT}.csv"
    kept.write_bytes(b"metric,value\nsampled,777777\n")
    store = Store(url, ROOT / "include" / "sql")
    with store.engine.begin() as conn:
        insert(conn, "unit_day", {"report_date": DAY, "unit_code": UNIT, "status": "break", "detail": DETAIL,
                                  "updated_at": STAMP})  # fmt: skip
        for sha, status, reasons, path in (("cd" * 32, "rejected", FILE_REASON, ""), (SHA, "loaded", "", str(kept))):
            insert(conn, "submission", {
                "report_date": DAY, "unit_code": UNIT, "sha256": sha, "file_name": f"{UNIT}-{status}.csv",
                "archived_path": path, "received_at": f"{DAY}T20:00:00.000+08:00", "status": status,
                "reasons": reasons, "processed_at": f"{DAY}T20:00:05.000+08:00",
            })  # fmt: skip
        insert(conn, "finding", {
            "report_date": DAY, "unit_code": UNIT, "stage": "load", "severity": "hard", "rule": "not_a_number",
            "metric": "sampled", "file_name": f"{UNIT}-rejected.csv", "row_no": 3, "value": "54321", "message": "m",
            "line": FINDING_LINE,
        })  # fmt: skip
        for metric, value in (("sampled", FIGURE), ("donated_goods_kg", 25001.0)):
            insert(conn, "figure", {
                "report_date": DAY, "unit_code": UNIT, "metric": metric, "value": value, "qualifier": "", "note": "",
                "source_sha256": SHA, "source_rows": "", "attributed_unit": "",
            })  # fmt: skip
        insert(conn, "figure_revision", {
            "report_date": DAY, "unit_code": UNIT, "metric": "sampled", "old_value": 666601.0, "new_value": FIGURE,
            "old_qualifier": "", "new_qualifier": "", "old_sha256": "cd" * 32, "new_sha256": SHA,
            "kind": "correction", "reason": "漏计", "recorded_by": "ops1", "recorded_at": STAMP,
        })  # fmt: skip
        insert(conn, "edition", {
            "report_date": DAY, "edition_no": 1, "kind": "official", "subject": f"衢州市疫情防控工作日报 {DAY} 第1期",
            "content_sha256": "c" * 64, "attachment_name": "x.csv", "announces": "[]", "rendered_at": STAMP,
        })  # fmt: skip
        deliver(conn, attempt=1, status="refused")
    store.dispose()


def deliver(conn, attempt: int, status: str) -> None:
    insert(conn, "delivery", {
        "report_date": DAY, "edition_no": 1, "attempt": attempt, "status": status, "subject": "s",
        "recipients": "duty@test.invalid", "message_id": f"<{attempt}@test>", "content_sha256": "c" * 64,
        "started_at": STAMP, "sent_at": "2022-03-19T22:10:00.000+08:00" if status == "sent" else None,
    })  # fmt: skip


class Board:
    """The app on the seeded store, with a client per role and the calls that reached Airflow (fake)."""

    def __init__(self, url: str):
        self.url = url
        self.app = web.create_app()
        self.role = "viewer"
        self.app.dependency_overrides[web.board_user] = lambda: web.BoardUser(
            SimpleNamespace(get_name=lambda: f"{self.role}1"), can_rerun=self.role == "ops"
        )
        self.client = TestClient(self.app, base_url="http://localhost:8080")
        self.load_task_calls: list[tuple[str, str]] = []
        self.task: dict | None = {**TASK, "url": TASK_URL}

    def as_(self, role: str) -> TestClient:
        self.role = role
        return self.client

    def publish(self) -> None:
        store = Store(self.url, ROOT / "include" / "sql")
        with store.engine.begin() as conn:
            deliver(conn, attempt=2, status="sent")
        store.dispose()


@pytest.fixture
def board(tmp_path, monkeypatch, make_env):
    url = f"sqlite:///{tmp_path / 'closeout.db'}"
    for key, value in make_env(url, CLOSEOUT_UI_BASE_URL=UI).items():
        monkeypatch.setenv(key, value)
    seed(url, tmp_path / "archive")
    web._reader.cache_clear()
    board = Board(url)

    async def load_task(request, report_date, unit_code):  # Airflow's REST API, faked
        board.load_task_calls.append((report_date.isoformat(), unit_code))
        return board.task

    monkeypatch.setattr(web, "_load_task", load_task)
    yield board
    web.reader().dispose()
    web._reader.cache_clear()


def one_line(response, status: int) -> str:
    """A refusal: the status asked, and one line in Chinese and English as its detail."""
    assert response.status_code == status, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and " / " in detail, detail
    assert re.search(r"[\u4e00-\u9fff]", detail), detail
    return detail


# --- 1. bad input answers 4xx, never 500 -------------------------------------------------------------------------

TODAY = datetime.now(LOCAL_TZ).date()
BEYOND = (TODAY + timedelta(days=367)).isoformat()
HEX = "0123456789abcdef" * 4  # 64 hex digits, not a file of the day

BAD_GETS = [
    # (path, status): every GET route and each of its parameters
    ("/board/?first=1999-12-31", 422),
    ("/board/?last=0001-01-01", 422),
    (f"/board/?first={BEYOND}&last={BEYOND}", 422),
    ("/board/?first=2022-03-20&last=2022-03-01", 422),
    ("/board/?first=2020-01-01&last=2022-03-01", 422),  # more than 367 days
    ("/board/?first=2022-02-30", 422),
    ("/board/?group=nowhere", 404),
    ("/board/?q=" + "x" * 61, 422),
    ("/board/api/matrix?first=20220319", 422),  # date.fromisoformat would take it: the board does not
    ("/board/api/matrix?last=9999-12-31", 422),
    ("/board/api/matrix?first=2022-W11-1", 422),
    ("/board/api/matrix?group=nowhere", 404),
    ("/board/unit-day?date=0001-01-01&unit=330824", 422),  # was a 500: the date arithmetic overflowed
    (f"/board/unit-day?date={BEYOND}&unit=330824", 422),
    ("/board/unit-day?date=2022-13-01&unit=330824", 422),
    ("/board/unit-day?date=%EF%BC%92022-03-19&unit=330824", 422),  # a full-width digit
    ("/board/unit-day?date=2022-03-19&unit=999999", 404),
    ("/board/unit-day?date=2022-03-19&unit=" + "9" * 500, 404),
    ("/board/unit-day?unit=330824", 422),  # no date
    ("/board/unit-day?date=2022-03-19", 422),  # no unit
    ("/board/unit-day?date=2022-03-19&unit=330824&fragment=perhaps", 422),
    ("/board/punctuality?first=1999-01-01", 422),
    ("/board/punctuality?last=2022-3-1", 422),
    (f"/board/punctuality.csv?last={BEYOND}", 422),
    ("/board/punctuality.csv?first=yesterday", 422),
    (f"/board/files/{DAY}/999999/{SHA}", 404),  # was a 500: the unknown unit's KeyError
    (f"/board/files/{DAY}/{UNIT}/not-a-hash", 404),
    (f"/board/files/{DAY}/{UNIT}/{SHA}00", 404),
    (f"/board/files/{DAY}/{UNIT}/{HEX}", 404),  # well formed, no such file that day
    (f"/board/files/{DAY}/{UNIT}/{'cd' * 32}", 404),  # the rejected file has no archived path here
    (f"/board/files/0001-01-01/{UNIT}/{SHA}", 422),
    (f"/board/files/19-03-2022/{UNIT}/{SHA}", 422),
]


@pytest.mark.parametrize(("path", "status"), BAD_GETS)
def test_each_bad_parameter_answers_one_line_4xx(board, path, status):
    one_line(board.as_("ops").get(path), status)
    assert board.load_task_calls == []  # refused before asking Airflow


def test_every_route_is_in_the_table_of_bad_input(board):
    """A new route without its bad-input cases fails here. POST /board/rerun's bodies are below; /board only
    redirects to /board/ (test_the_slash_less_address_redirects_without_the_host)."""

    def route_of(path: str) -> str:
        path = path.partition("?")[0]
        return "/board/files/{report_date}/{unit}/{sha256}" if path.startswith("/board/files/") else path

    routes = {route.path for route in board.app.routes if isinstance(route, APIRoute)}
    assert routes == {route_of(path) for path, _ in BAD_GETS} | {"/board/rerun", "/board"}


def test_good_parameters_still_answer(board):
    ops = board.as_("ops")
    assert ops.get(f"/board/?first={DAY}&last={DAY}&group={UNIT}").status_code == 200
    assert ops.get(f"/board/api/matrix?first={DAY}&last={DAY}").status_code == 200
    assert ops.get(f"/board/unit-day?date={DAY}&unit={UNIT}&fragment=1").status_code == 200
    assert ops.get(f"/board/punctuality?first={DAY}&last={DAY}").status_code == 200
    assert ops.get(f"/board/punctuality.csv?first={DAY}&last={DAY}").status_code == 200
    archived = ops.get(f"/board/files/{DAY}/{UNIT}/{SHA.upper()}")
    assert archived.status_code == 200 and archived.content == b"metric,value\nsampled,777777\n"
    assert ops.get("/board/").status_code == 200  # the default fortnight, ending today


BOARD_HEADER = {"X-Closeout-Board": "1"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 422),
        (b"not json", 422),
        (b"\xff\xfe\x00garbage", 422),
        (b"[1, 2]", 422),
        (b'"2022-03-19"', 422),
        (b"null", 422),
        (b"{}", 422),
        (b'{"date": "2022-03-19"}', 422),
        (b'{"unit": "330824"}', 422),
        (b'{"date": 20220319, "unit": "330824"}', 422),
        (b'{"date": "2022-03-19", "unit": ["330824"]}', 422),
        (b'{"date": "2022-03-19", "unit": 330824}', 422),
        (b'{"date": "0001-01-01", "unit": "330824"}', 422),  # was a 500 in _load_task's date arithmetic
        (b'{"date": "2022-02-30", "unit": "330824"}', 422),
        (b'{"date": "2022-03-19", "unit": "999999"}', 404),
        (b"[" * 4000, 422),  # nested past the parser's recursion limit
        (b'{"date": "2022-03-19", "unit": "330824", "pad": "' + b"x" * 5000 + b'"}', 413),
    ],
)
def test_a_bad_rerun_body_is_refused_before_airflow_is_asked(board, body, status):
    response = board.as_("ops").post("/board/rerun", content=body, headers=BOARD_HEADER)
    one_line(response, status)
    assert board.load_task_calls == []


def test_a_good_rerun_body_goes_on_to_airflow(board):
    board.task = None  # no run has loaded it: 409, after asking
    body = {"date": DAY, "unit": UNIT}
    response = board.as_("ops").post("/board/rerun", json=body, headers={**BOARD_HEADER, "Origin": UI_ORIGIN})
    one_line(response, 409)
    assert board.load_task_calls == [(DAY, UNIT)]


def test_viewers_and_cross_site_posts_are_refused_first(board):
    body = {"date": DAY, "unit": UNIT}
    one_line(board.as_("viewer").post("/board/rerun", json=body, headers=BOARD_HEADER), 403)
    ops = board.as_("ops")
    one_line(ops.post("/board/rerun", json=body), 403)  # no board header
    one_line(ops.post("/board/rerun", content=b"junk"), 403)  # CSRF before the body
    for origin in ("http://evil.invalid", "null", f"{UI_ORIGIN}.evil.invalid", "http://airflow.example.org"):
        one_line(ops.post("/board/rerun", json=body, headers={**BOARD_HEADER, "Origin": origin}), 403)
    # the Host header decides nothing: an Origin that matches a forged Host is still cross-site
    forged = {**BOARD_HEADER, "Host": "evil.invalid", "Origin": "http://evil.invalid"}
    one_line(ops.post("/board/rerun", json=body, headers=forged), 403)
    assert board.load_task_calls == []


# --- 2. links never come from the Host header ---------------------------------------------------------------------


def test_a_forged_host_appears_nowhere(board):
    ops = board.as_("ops")
    forged = {"Host": "evil.invalid"}
    for path in (
        f"/board/?first={DAY}&last={DAY}",
        f"/board/unit-day?date={DAY}&unit={UNIT}",
        f"/board/unit-day?date={DAY}&unit={UNIT}&fragment=1",
        f"/board/punctuality?first={DAY}&last={DAY}",
        f"/board/punctuality.csv?first={DAY}&last={DAY}",
        f"/board/api/matrix?first={DAY}&last={DAY}",
    ):
        response = ops.get(path, headers=forged)
        assert response.status_code == 200, path
        assert "evil.invalid" not in response.text, path
        assert all("evil.invalid" not in value for value in response.headers.values()), path
    page = ops.get(f"/board/unit-day?date={DAY}&unit={UNIT}", headers=forged).text
    assert f'href="{UI}{TASK_URL}"' in page  # the task's link from CLOSEOUT_UI_BASE_URL, its path kept
    assert not re.search(r'(href|src|action)="(https?:)?//(?!airflow\.example\.org)', page)


def test_the_slash_less_address_redirects_without_the_host(board):
    response = board.as_("viewer").get(f"/board?first={DAY}", headers={"Host": "evil.invalid"}, follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == f"/closeout/board/?first={DAY}"


# --- 3. figures before publication --------------------------------------------------------------------------------


def unit_day_page(board, role: str) -> str:
    response = board.as_(role).get(f"/board/unit-day?date={DAY}&unit={UNIT}&fragment=1")
    assert response.status_code == 200
    return response.text


def matrix_cell(board, role: str) -> tuple[dict, dict]:
    view = board.as_(role).get(f"/board/api/matrix?first={DAY}&last={DAY}").json()
    (cell,) = next(u["cells"] for g in view["groups"] for u in g["units"] if u["code"] == UNIT)
    return view, cell


def test_a_viewer_sees_no_figure_of_an_unpublished_day(board):
    page = unit_day_page(board, "viewer")
    assert not [s for s in SECRETS if s in page], page
    assert "data-figures-hidden" in page and "仅运维可见" in page
    assert "已隐去 1 条问题、2 个数字、1 条修订" in page
    assert f"{UNIT}-loaded.csv" in page and SHA in page and "20:00" in page  # files: name, hash, arrival
    assert 'data-status="open"' in page  # and the status
    view, cell = matrix_cell(board, "viewer")
    assert cell["detail"] == "" and cell["status"] == "open" and cell["received_at"].startswith(f"{DAY}T20:00")
    assert view["figures_hidden"] is True and view["days"][0]["published"] is False
    assert not [s for s in SECRETS if s in json.dumps(view, ensure_ascii=False)]
    html = board.as_("viewer").get(f"/board/?first={DAY}&last={DAY}").text
    assert not [s for s in SECRETS if s in html] and "data-figures-hidden" in html
    csv = board.as_("viewer").get(f"/board/punctuality.csv?first={DAY}&last={DAY}").text
    assert not [s for s in SECRETS if s in csv]


def test_ops_see_every_figure_before_publication(board):
    page = unit_day_page(board, "ops")
    assert all(s in page for s in (FIGURE_SHOWN, OLD_FIGURE_SHOWN, FINDING_LINE, FILE_REASON, DETAIL)), page
    assert "data-figures-hidden" not in page
    view, cell = matrix_cell(board, "ops")
    assert cell["detail"] == DETAIL and view["figures_hidden"] is False
    assert "data-figures-hidden" not in board.as_("ops").get(f"/board/?first={DAY}&last={DAY}").text


def test_once_the_bulletin_is_sent_a_viewer_sees_the_figures(board):
    board.publish()
    page = unit_day_page(board, "viewer")
    assert all(s in page for s in (FIGURE_SHOWN, OLD_FIGURE_SHOWN, FINDING_LINE, FILE_REASON, DETAIL)), page
    assert "data-figures-hidden" not in page
    view, cell = matrix_cell(board, "viewer")
    assert cell["detail"] == DETAIL and view["figures_hidden"] is False and view["days"][0]["published"] is True
    assert "data-figures-hidden" not in board.as_("viewer").get(f"/board/?first={DAY}&last={DAY}").text
    assert FIGURE_SHOWN in unit_day_page(board, "ops")


def test_a_viewer_still_cannot_download_a_county_file(board):
    board.publish()
    one_line(board.as_("viewer").get(f"/board/files/{DAY}/{UNIT}/{SHA}"), 403)
