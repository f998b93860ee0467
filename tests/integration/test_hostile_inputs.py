"""Every kind of hostile county file (tests/hostile_corpus.py) through the DAG's own loading path.

The clean sample day is copied into a private inbox, one unit's file is replaced by the hostile one
(柯城区's 330802.csv, or 开化县.xlsx), and the day is loaded group by group with closeout.close.load.load_group,
reconciled and rendered — on SQLite and on PostgreSQL. An accepted kind must store exactly what the county
meant; a refused kind must be rejected with one clear line per problem, kept byte for byte in quarantine,
and must not hold up the other five units. Whatever the file, the outputs stay inert and clean.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import resource
import threading
import unicodedata
from datetime import date
from pathlib import Path

import pytest
from conftest import SAMPLE_INBOX, copy_day
from hostile_corpus import KAIHUA, KINDS, SECRET, UNIT_NAMES, Kind
from sqlalchemy import text

from closeout.close.load import load_group
from closeout.close.plan import plan_unit_groups
from closeout.close.reconcile import reconcile_day
from closeout.orchestration import pipeline

pytestmark = pytest.mark.services

DAY = date(2022, 3, 19)
REQUIRED = ("330802", "330803", "330822", "330824", "330825", "330881")
BASE_ENV = {"CLOSEOUT_SETTLE_SECONDS": "0"}  # files written by the test are complete: judge them at once
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def close_day(ctx, day=DAY):
    """What the DAG does for a day, with the whole registry as one load group (as a province's group holds
    many units): load, then reconcile. One group, one validation run: the corpus runs in minutes."""
    codes = [code for group in plan_unit_groups(ctx) for code in group["codes"]]
    outcomes = load_group(ctx, day, codes)
    return {o.unit_code: o for o in outcomes}, reconcile_day(ctx, day)


class FifoWatchdog:
    """Opens a FIFO for writing whenever someone blocks reading it, so a loader that opens it gets EOF
    (and a wrong verdict) instead of hanging the test run."""

    def __init__(self, path: Path):
        self.path, self.stop = path, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.wait(0.2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # nobody is reading: fine
            os.close(fd)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)


def install(kind: Kind, folder: Path, tmp_path: Path) -> tuple[Path, bytes, FifoWatchdog | None]:
    """Put the hostile file in place of the unit's sample file; returns its inbox path and bytes."""
    (folder / ("开化县.xlsx" if kind.unit == KAIHUA else "330802.csv")).unlink()
    data = kind.build()
    target = folder / kind.target
    watchdog = None
    if kind.special == "symlink_outside":
        outside = tmp_path / "outside" / "report.csv"
        outside.parent.mkdir()
        outside.write_bytes(data)
        os.symlink(outside, target)
    elif kind.special == "symlink_inbox":
        os.symlink("龙游县.csv", target)  # another unit's file in the same folder
        data = (folder / "龙游县.csv").read_bytes()
    elif kind.special == "fifo":
        os.mkfifo(target)
        watchdog = FifoWatchdog(target)
    else:
        target.write_bytes(data)
    if kind.narrative is not None:
        (folder / ("开化县.md" if kind.unit == KAIHUA else "330802.md")).write_bytes(kind.narrative())
    return target, data, watchdog


def table(ctx, sql: str, **params) -> list[dict]:
    with ctx.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def unwanted_characters(value: str, keep: str = "") -> list[str]:
    return [f"U+{ord(ch):04X}" for ch in value if ch not in keep and unicodedata.category(ch) in ("Cc", "Cf")]


def store_texts(ctx) -> list[tuple[str, str, str]]:
    """(table.column, text, characters allowed) for every text a county can put in the store."""
    day = DAY.isoformat()
    texts = []
    for row in table(
        ctx, "SELECT rule, metric, file_name, value, message, line FROM finding WHERE report_date = :d", d=day
    ):
        texts += [(f"finding.{k}", str(v or ""), "") for k, v in row.items()]
    for row in table(ctx, "SELECT note FROM figure WHERE report_date = :d", d=day):
        texts.append(("figure.note", row["note"] or "", ""))
    for row in table(ctx, "SELECT headline, byline, body FROM narrative WHERE report_date = :d", d=day):
        texts += [("narrative.headline", row["headline"] or "", ""), ("narrative.byline", row["byline"] or "", "")]
        texts.append(("narrative.body", row["body"] or "", "\n\t"))
    return texts


def store_dump(ctx) -> str:
    """Every row of every table as text (to prove something is nowhere in the store)."""
    dump = []
    for name in ("submission", "figure", "figure_revision", "finding", "unit_day", "narrative"):
        dump += [repr(r) for r in table(ctx, f"SELECT * FROM {name}")]
    return "\n".join(dump)


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def check_outputs_are_inert(folder: Path) -> None:
    page = (folder / "bulletin.html").read_text(encoding="utf-8")
    for tag in ("script", "b", "svg", "iframe"):
        assert f"<{tag} " not in page.lower() and f"<{tag}>" not in page.lower(), f"raw <{tag}> in bulletin.html"
    images = re.findall(r"<img\b[^>]*>", page, re.IGNORECASE)
    assert all(re.match(r'<img src="cid:chart-[\w.-]+@closeout" ', tag) for tag in images), "an <img> not a chart"
    assert b"/JavaScript" not in (folder / "bulletin.pdf").read_bytes()
    texts = {
        p.name: p.read_bytes().decode("utf-8-sig") for p in folder.iterdir() if p.suffix in (".html", ".txt", ".csv")
    }
    for name, content in texts.items():
        bad = unwanted_characters(content, keep="\n\r\t")
        assert not bad, f"{name} carries control/invisible characters {bad}"
    (attachment,) = [p for p in folder.iterdir() if p.suffix == ".csv"]
    for record in csv.reader(io.StringIO(attachment.read_bytes().decode("utf-8-sig"))):
        for cell in record:
            if cell.startswith(FORMULA_START):
                try:
                    float(cell)
                except ValueError:
                    pytest.fail(f"attachment cell would run as a formula: {cell!r}")


def quarantined(archive_root: Path, unit: str) -> tuple[list[Path], list[Path]]:
    folder = archive_root / "quarantine" / DAY.isoformat() / unit
    files = sorted(folder.iterdir()) if folder.exists() else []
    reasons = [p for p in files if p.name.endswith(".reasons.txt")]
    return [p for p in files if p not in reasons], reasons


def matches(line: str, keyword) -> bool:
    return any(k in line for k in keyword) if isinstance(keyword, tuple) else keyword in line


@pytest.mark.parametrize("kind", [pytest.param(k, id=k.name) for k in KINDS])
def test_hostile_file(kind: Kind, db_url, ctx_for, tmp_path):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / DAY.isoformat(), inbox, DAY.isoformat())
    path, data, watchdog = install(kind, folder, tmp_path)
    ctx = ctx_for(db_url, inbox, **BASE_ENV, **kind.env)
    archive_root = tmp_path / "archive"
    try:
        if kind.max_memory_mb:  # what the process loads once anyway (GX, openpyxl) does not count
            from closeout.checks.engine import GxRunner

            GxRunner()
            import openpyxl  # noqa: F401

            peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcomes, statuses = close_day(ctx)
        if kind.max_memory_mb:
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) // 1024
            assert grown <= kind.max_memory_mb, f"peak memory grew by {grown} MB loading the day"
        out = pipeline.render_bulletin(ctx, DAY).folder(ctx)
        unit, name = kind.unit, UNIT_NAMES[kind.unit]
        outcome = outcomes[unit]
        findings = table(
            ctx,
            "SELECT unit_code, stage, severity, rule, metric, file_name, row_no, value, message, line FROM finding "
            "WHERE report_date = :d",
            d=DAY.isoformat(),
        )
        mine = [f for f in findings if f["unit_code"] == unit]
        stored = {
            r["metric"]: r
            for r in ctx.store.rows("select_reported_figures", {"report_date": DAY.isoformat(), "unit_codes": [unit]})
        }

        # --- whatever the file: the others load, the bulletin is written, nothing reaches the outputs raw
        others = {code: outcomes[code].status for code in REQUIRED if code != unit}
        assert others == dict.fromkeys(others, "loaded"), f"other units: {others}"
        assert (out / "bulletin.html").exists()
        check_outputs_are_inert(out)
        for column, value, keep in store_texts(ctx):
            assert not unwanted_characters(value, keep), (
                f"{column} stores {unwanted_characters(value, keep)}: {value!r}"
            )
        for f in findings:
            assert "\n" not in f["line"] and "\r" not in f["line"], f"finding is not one line: {f['line']!r}"
            assert len(f["line"]) <= 1000, f"finding line of {len(f['line'])} characters"

        if kind.special == "unmatched":  # a name that names no unit: listed, kept, never loaded
            assert outcome.status == "missing" and statuses[unit] == "missing", outcome
            assert not stored
            unknown = [f for f in findings if f["rule"] == "unknown_unit"]
            assert unknown, "the unrecognised file is not listed"
            kept, reasons = quarantined(archive_root, "unmatched")
            assert any(p.read_bytes() == data for p in kept), "unrecognised file not kept byte for byte"
            return

        if kind.refused:
            lines = outcome.lines
            assert outcome.status == "rejected", f"{outcome.status}: {lines}"
            assert statuses[unit] == "rejected"
            tag = f"[rule: {kind.refused}]"
            ruled = [ln for ln in lines if tag in ln]
            assert ruled, f"no {tag} among: {lines}"
            for line in lines:
                assert (name in line or unit in line) and "[rule: " in line, f"line lacks unit or rule: {line}"
                assert "\n" not in line
            for keyword in kind.keywords:
                assert any(matches(ln, keyword) for ln in ruled), f"{keyword!r} not in {ruled}"
            assert not stored, f"a refused file stored figures: {sorted(stored)}"
            kept, reasons = quarantined(archive_root, unit)
            assert reasons and any(tag in p.read_text(encoding="utf-8") for p in reasons), "no reasons.txt with rule"
            if kind.special in ("symlink_outside", "symlink_inbox", "fifo"):
                assert not any(p.read_bytes() == data for p in kept if data), "a link's target was copied"
            else:
                assert any(p.read_bytes() == data for p in kept), "quarantined copy is not byte-identical"
            assert path.exists() or path.is_symlink(), "the inbox file was removed"
            if kind.special == "symlink_outside":
                secret = SECRET.encode()
                leaked = [str(p) for p in files_under(archive_root, tmp_path / "outbox") if secret in p.read_bytes()]
                assert not leaked, f"target content copied to {leaked}"
                assert SECRET not in store_dump(ctx)
            if kind.special == "symlink_inbox":
                own = files_under(
                    archive_root / "archive" / DAY.isoformat() / unit,
                    archive_root / "quarantine" / DAY.isoformat() / unit,
                )
                assert not [p for p in own if p.read_bytes() == data], "the linked file was archived as 柯城区's"
            return

        # --- accepted: exactly what the county meant
        assert outcome.status == "loaded", f"{outcome.status}: {outcome.lines}"
        hard = [f["line"] for f in mine if f["severity"] == "hard"]
        assert not hard, f"unexpected hard findings: {hard}"
        assert statuses[unit] == "cleared", statuses[unit]
        expected = {m: v if isinstance(v, tuple) else (v, "") for m, v in kind.stored.items()}
        got = {m: (r["value"], r["qualifier"]) for m, r in stored.items()}
        assert set(got) == set(expected), (
            f"metrics: extra {set(got) - set(expected)}, lacking {set(expected) - set(got)}"
        )
        wrong = {
            m: (got[m], expected[m]) for m in expected if got[m][0] != expected[m][0] or got[m][1] != expected[m][1]
        }
        assert not wrong, f"stored (got, expected): {wrong}"
        for metric, note in kind.notes.items():
            assert stored[metric]["note"] == note, f"{metric} note {stored[metric]['note']!r}, expected {note!r}"
        missing = sorted((f["metric"], f["rule"]) for f in mine if f["severity"] == "missing")
        assert [rule for _, rule in missing] == ["value_unknown"] * len(kind.unknown), missing
        for metric in kind.unknown:
            assert any(metric in m for m, _ in missing), f"{metric} not kept apart as unknown: {missing}"
        soft = {f["rule"] for f in mine if f["severity"] == "soft"}
        assert set(kind.soft) <= soft, f"soft findings {soft}, expected {kind.soft}"
        if kind.narrative_text:
            (story,) = table(
                ctx,
                "SELECT headline, byline, body FROM narrative WHERE report_date = :d AND unit_code = :u",
                d=DAY.isoformat(),
                u=unit,
            )
            whole = "\n".join(str(v) for v in story.values())
            page = (out / "bulletin.html").read_text(encoding="utf-8")
            for piece in kind.narrative_text:
                assert piece in whole, f"{piece!r} not in the stored narrative"
                assert html.escape(piece, quote=False) in page, f"{piece!r} not shown (escaped) in bulletin.html"
    finally:
        if watchdog:
            watchdog.close()
        ctx.store.dispose()


def test_a_file_refused_while_being_written_is_judged_again_when_whole(db_url, ctx_for, tmp_path):
    """A pre-sized copy read during a pause is refused (file_incomplete), never published blank; the whole file,
    arriving later, has another hash and loads."""
    from hostile_corpus import KECHENG, b_presized, figures, kecheng_csv

    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / DAY.isoformat(), inbox, DAY.isoformat())
    whole = kecheng_csv()
    (folder / "330802.csv").write_bytes(b_presized(whole, 0.5))
    ctx = ctx_for(db_url, inbox, **BASE_ENV)
    try:
        outcomes, statuses = close_day(ctx)
        assert outcomes[KECHENG].status == "rejected" and statuses[KECHENG] == "rejected"
        assert any("[rule: file_incomplete]" in line for line in outcomes[KECHENG].lines), outcomes[KECHENG].lines
        query = {"report_date": DAY.isoformat(), "unit_codes": [KECHENG]}
        assert not list(ctx.store.rows("select_reported_figures", query))
        (folder / "330802.csv").write_bytes(whole)
        outcomes, statuses = close_day(ctx)
        assert outcomes[KECHENG].status == "loaded" and statuses[KECHENG] == "cleared", outcomes[KECHENG].lines
        stored = {r["metric"]: r["value"] for r in ctx.store.rows("select_reported_figures", query)}
        assert stored == figures()
    finally:
        ctx.store.dispose()
