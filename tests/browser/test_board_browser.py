"""The 日清日结看板 in a real browser: Debian's headless Chromium, driven by Playwright, against a running Airflow
api-server that serves the plugin over a PostgreSQL store holding the sample week and the hard day.

Screenshots go to `artefacts/browser/` (CLOSEOUT_ARTEFACTS overrides; the README says where to look).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from board_stack import HARD_DAY, HOSTILE_NOTE, LATE, MISSING, REJECTED, WEEK, ApiServer, api_server_env, seed_fortnight
from conftest import ROOT, fresh_database, running_sink
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CLOSEOUT_CHROMIUM", "/usr/bin/chromium")
ARTEFACTS = Path(os.environ.get("CLOSEOUT_ARTEFACTS", ROOT / "artefacts")) / "browser"
# The flags this machine needs: no sandbox as root, and no calls home (the network is closed).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
BOARD_STATUS = {"cleared": "cleared", "loaded": "open", "break": "open", "rejected": "rejected",
                "missing": "missing", "absent": "absent"}  # fmt: skip


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    from closeout.deliver.mailsink import free_port, sink_session
    from closeout.store.context import Context

    work = tmp_path_factory.mktemp("board")
    port = free_port()
    with fresh_database("closeout_board") as store_url, running_sink(work / "mail") as sink:
        env = api_server_env(work, port, store_url)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                if key.startswith("CLOSEOUT_"):
                    patch.setenv(key, value)
            patch.setenv("CLOSEOUT_SETTLE_SECONDS", "0")
            seed_fortnight(Context.from_env(), work / "inbox", sink_session(sink))
        server = ApiServer(work, port, env)
        try:
            server.start()
            server.store_url = store_url
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is required at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page whose console errors, failed requests and HTTP errors are collected for the test to check."""

    def __init__(self, browser, server: ApiServer, user: str, width: int, height: int = 900):
        self.context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        self.context.add_cookies([{"name": "_token", "value": server.token(user), "url": server.base_url}])
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status} {r.url}"))

    def close(self) -> None:
        self.context.close()


def board_url(server: ApiServer) -> str:
    return f"{server.base_url}/closeout/board/?first={WEEK[0]}&last={HARD_DAY + timedelta(days=1)}"  # and a day to come


def shoot(page, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_board_shows_each_unit_day_and_opens_its_findings(board, chromium):
    watched = Watched(chromium, board, "duty-ops", 1280)
    page = watched.page
    page.goto(board_url(board))
    page.wait_for_selector("table#board td.cell")

    cells = page.eval_on_selector_all(
        "td.cell", "cells => cells.map(c => [c.dataset.unit, c.dataset.date, c.dataset.status, c.innerText])"
    )
    shown = {(unit, day): status for unit, day, status, _ in cells}
    engine = create_engine(board.store_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT unit_code, report_date, status FROM unit_day WHERE unit_code <> '330801'"))
        expected = {(u, d): BOARD_STATUS[s] for u, d, s in stored}
    engine.dispose()
    assert len(expected) == 6 * 8 and {k: shown[k] for k in expected} == expected
    hard = HARD_DAY.isoformat()
    assert shown[(REJECTED, hard)] == "rejected" and shown[(MISSING, hard)] == "missing"
    late_cell = next(text for unit, day, _, text in cells if (unit, day) == (LATE, hard))
    assert "22:05" in late_cell and "迟" in late_cell
    assert {shown[(u, d.isoformat())] for u in ("330803", "330824") for d in WEEK} == {"cleared"}
    label = page.inner_text(f"td.cell[data-unit='{REJECTED}'][data-date='{hard}'] a")
    assert label == "拒收"
    assert "正式 · 已发送" in page.inner_text(f"th[data-day='{hard}'] [data-edition='1']")
    assert "补报 · 已发送" in page.inner_text(f"th[data-day='{hard}'] [data-edition='2']")
    assert {shown[(u, (HARD_DAY + timedelta(days=1)).isoformat())] for u in ("330802", "330881")} == {"pending"}
    shoot(page, "board-1280.png")

    page.click(f"td.cell[data-unit='{REJECTED}'][data-date='{hard}'] a")
    dialog = page.wait_for_selector("dialog#unit-day[open] section.unit-day")
    findings = dialog.inner_text()
    assert "[拒收] 柯城区(330802) 文件 330802.csv 第" in findings and "approximation_in_hard_metric" in findings
    assert "330802.csv" in page.inner_text("dialog#unit-day table.files")
    shoot(page, "board-unit-day-1280.png")
    page.keyboard.press("Escape")

    page.click(f"td.cell[data-unit='330803'][data-date='{hard}'] a")  # a county's note with markup in it
    dialog = page.wait_for_selector("dialog#unit-day[open] section.unit-day[data-unit='330803']")
    assert HOSTILE_NOTE in dialog.inner_text() and page.evaluate("window.__xss") is None
    assert not watched.problems, watched.problems
    watched.close()


def test_the_board_reads_on_a_phone(board, chromium):
    watched = Watched(chromium, board, "city-viewer", 375, 812)
    page = watched.page
    page.goto(board_url(board))
    page.wait_for_selector("table#board td.cell")
    assert page.inner_text(f"td.cell[data-unit='{MISSING}'][data-date='{HARD_DAY}'] a") == "缺报"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1  # the table scrolls, not the page
    shoot(page, "board-375.png")
    page.goto(f"{board.base_url}/closeout/board/punctuality?first={WEEK[0]}&last={HARD_DAY}")
    row = page.inner_text(f"#punctuality tr[data-unit='{LATE}']")
    assert "开化县" in row
    shoot(page, "punctuality-375.png")
    assert not watched.problems, watched.problems
    watched.close()
