"""The bulletin against golden files, its conventions, and the email it goes out in.

Golden files are reviewed when they change: `UPDATE_GOLDEN=1 pytest tests/unit/publish/test_bulletin.py` rewrites them.
"""

import csv
import io
import os
import re
from datetime import date
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from conftest import SAMPLE_INBOX, copy_day
from days import change_isolation_new, close_day, figure, published_day
from tools import poppler

from closeout.checks.validate import collapse
from closeout.close.load import load_group
from closeout.close.plan import plan_unit_groups
from closeout.close.reconcile import reconcile_day
from closeout.deliver.mailer import build_message
from closeout.intake.discovery import discover
from closeout.intake.rows import parse_submission
from closeout.publish.bulletin.model import build_bulletin
from closeout.publish.bulletin.render import content_sha256, render
from closeout.publish.masthead import Issue

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
DAY = date(2022, 3, 19)
ISSUE = Issue(78, date(2022, 3, 20))  # 第78期, issued the morning after: the head as a reader sees it


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{name} changed: review, then UPDATE_GOLDEN=1"


def check_pdf_golden(name: str, pdf: bytes, tmp_path: Path) -> None:
    """The PDF's text as pdftotext reads it (poppler-utils; required under CI)."""
    path = tmp_path / name.replace(".txt", "")
    path.write_bytes(pdf)
    check_golden(name, poppler("pdftotext", "-enc", "UTF-8", str(path), "-"))


def closed(ctx_for, tmp_path, edit=None, **env):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    if edit:
        edit(folder)
    ctx = ctx_for(f"sqlite:///{tmp_path / 'store.db'}", inbox, **env)
    for day in (date(2022, 3, 18), DAY):
        for group in plan_unit_groups(ctx):
            load_group(ctx, day, group["codes"])
        reconcile_day(ctx, day)
    return ctx


def test_clean_day_matches_golden(ctx_for, tmp_path):
    ctx = closed(ctx_for, tmp_path)
    rendered = render(ctx, build_bulletin(ctx, DAY, issue=ISSUE))
    check_golden("bulletin-2022-03-19.txt", rendered.text)
    check_golden("bulletin-2022-03-19.html", rendered.html)


def test_english_rendering_matches_golden(ctx_for, tmp_path):
    """The same day, the same templates, in English (CLOSEOUT_BULLETIN_LANGUAGE=en): labels from the catalogue,
    names from the registry's name_en, thousands separators instead of 万."""
    ctx = closed(ctx_for, tmp_path, break_two_units, CLOSEOUT_BULLETIN_LANGUAGE="en")
    rendered = render(ctx, build_bulletin(ctx, DAY, issue=ISSUE, signer="Duty Director"))
    check_golden("bulletin-2022-03-19-en.txt", rendered.text)
    check_golden("bulletin-2022-03-19-en.html", rendered.html)
    check_pdf_golden("bulletin-2022-03-19-en.pdf.txt", rendered.pdf, tmp_path)
    summary = rendered.text.split("【Overview】")[1].split("【")[0]
    assert not re.search(r"[\u4e00-\u9fff]", summary)  # English throughout, the units by their English names
    assert "718,346 samples taken" in summary and "万" not in summary  # thousands separators, never 万


def test_correction_edition_matches_golden(ctx_for, tmp_path, smtp_sink):
    """The 更正 edition after the 18th went out: its head keeps the day's 第N期, its first lines list the change."""
    ctx, path, day = published_day(f"sqlite:///{tmp_path / 'store.db'}", ctx_for, tmp_path, smtp_sink)
    old, _ = figure(ctx, "330802", "isolation_new", day)
    change_isolation_new(path, int(old) + 6, "县里电话确认：漏报一处隔离点")
    close_day(ctx, day)
    changes = ctx.store.rows("select_same_day_changes", {"report_date": day.isoformat()})
    bulletin = build_bulletin(ctx, day, "correction", changes, issue=Issue(77, date(2022, 3, 19)), signer="值班主任")
    rendered = render(ctx, bulletin)
    check_golden("bulletin-2022-03-18-correction.txt", rendered.text)
    check_golden("bulletin-2022-03-18-correction.html", rendered.html)
    check_pdf_golden("bulletin-2022-03-18-correction.pdf.txt", rendered.pdf, tmp_path)
    assert bulletin.title == "衢州市疫情防控工作日报（3月18日·更正）"
    assert f"3月18日柯城区新增集中隔离由{int(old)}人订正为{int(old) + 6}人" in rendered.text


def break_two_units(folder: Path) -> None:
    (folder / "changshan.csv").unlink()  # 常山 sends nothing
    path = folder / "330802.csv"  # 柯城 writes an approximation into a hard metric
    lines = [
        ("counseling_sessions,600余,330802,2022-03-19," if ln.startswith("counseling_sessions,") else ln)
        for ln in path.read_text(encoding="utf-8").splitlines()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_day_with_missing_and_rejected_units_matches_golden(ctx_for, tmp_path):
    ctx = closed(ctx_for, tmp_path, break_two_units)
    bulletin = build_bulletin(ctx, DAY, issue=ISSUE)
    rendered = render(ctx, bulletin)
    check_golden("bulletin-2022-03-19-gaps.txt", rendered.text)
    check_golden("bulletin-2022-03-19-gaps.html", rendered.html)
    check_pdf_golden("bulletin-2022-03-19-gaps.pdf.txt", rendered.pdf, tmp_path)
    assert "（常山县数据截至发布时未报送，按缺报处理，次日补报后订正）" in bulletin.summary
    # the leaders read the problem plainly: no file names, English keys or rule ids (those go to ops and counties)
    assert "柯城区报送的数据未通过核验，已退回更正：心理咨询“600余”，硬性指标须为确数，不接受约数。" in bulletin.notes
    notes = rendered.text.split("【数据说明】")[1].split("附件：")[0]
    assert not any(token in notes for token in ("[rule:", ".csv", "counseling_sessions", "330802"))
    statuses = {line.name: line.status_label for line in bulletin.lines}
    assert statuses["常山县"] == "缺报" and statuses["柯城区"] == "拒收" and statuses["市本级"] == "无单独报送"
    sampled = next(r for s in bulletin.sections for r in s["rows"] if r["label"] == "采样人次")
    assert sampled["cells"][0] == "—" and sampled["cells"][2] == "—"  # missing is "—", never 0
    assert sampled["change"].endswith("※") and bulletin.words["like_with_like"] in bulletin.notes  # like with like


def test_conventions(ctx_for, tmp_path):
    ctx = closed(ctx_for, tmp_path)
    bulletin = build_bulletin(ctx, DAY)
    assert bulletin.title == "衢州市疫情防控工作日报（3月19日）"
    assert bulletin.window == "统计时段：3月19日0—24时"
    assert bulletin.subject == "衢州市疫情防控工作日报 2022年3月19日"
    assert [line.code for line in bulletin.lines] == [
        "330802",
        "330803",
        "330822",
        "330824",
        "330825",
        "330881",
        "330801",
    ]
    text = render(ctx, bulletin).text
    assert not re.search(r"新增[^，。；（]*?(?<!\d)0(例|人)", text)  # a zero is "无新增X", never "新增0例"


def test_zero_flows_read_no_new(ctx_for, tmp_path):
    def no_cases(folder: Path) -> None:
        for path in folder.glob("*.csv"):
            raw = path.read_bytes()
            encoding = "gbk" if path.name == "330803.csv" else "utf-8-sig"
            text = raw.decode(encoding)
            for key in (
                "new_confirmed",
                "新增本土确诊",
                "new_asymptomatic",
                "新增无症状感染者",
                "asymptomatic_to_confirmed",
                "无症状转确诊",
            ):
                text = "\n".join(_zero(line, key) for line in text.splitlines())
            path.write_bytes(text.encode(encoding))

    ctx = closed(ctx_for, tmp_path, no_cases)
    summary = build_bulletin(ctx, DAY).summary[0]
    assert summary.startswith("3月19日0—24时，全市无新增本土确诊，无新增无症状感染者。"), summary


def _zero(line: str, key: str) -> str:
    cells = line.split(",")
    if cells and cells[0] == key:
        cells[1] = "0"
    return ",".join(cells)


def test_attachment_totals_are_the_sums_of_the_unit_files(ctx_for, tmp_path):
    ctx = closed(ctx_for, tmp_path)
    rendered = render(ctx, build_bulletin(ctx, DAY))
    assert rendered.attachment.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese correctly
    rows = list(csv.DictReader(io.StringIO(rendered.attachment.decode("utf-8-sig"))))
    totals = {r["metric"]: float(r["value"]) for r in rows if r["unit_code"] == "330800" and r["value"]}
    expected: dict[str, float] = {}
    found = discover(SAMPLE_INBOX, DAY, ctx.registry)
    for code, (path,) in found.figure_files.items():
        for fig in collapse(parse_submission(path, ctx.registry.get(code), DAY, ctx.catalogue, ctx.registry)):
            expected[fig.metric] = expected.get(fig.metric, 0) + fig.value
    assert {k: v for k, v in totals.items() if k != "confirmed_cumulative"} == expected
    assert totals["sampled"] == 1174133  # the sample week's own arithmetic, independent of the parser


def test_email_is_utf8_multipart_with_rfc2231_attachment(ctx_for, tmp_path):
    ctx = closed(ctx_for, tmp_path)
    bulletin = build_bulletin(ctx, DAY)
    rendered = render(ctx, bulletin)
    message = build_message(
        bulletin.subject,
        rendered,
        bulletin.attachment_name,
        "closeout@test.invalid",
        ("a@test.invalid", "b@test.invalid"),
        "<id@x>",
    )
    raw = message.as_bytes()
    assert b"filename*" in raw  # RFC 2231 for the Chinese file name
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "衢州市疫情防控工作日报 2022年3月19日"
    assert parsed.get_body(("plain",)).get_content() == rendered.text
    assert parsed.get_body(("html",)).get_content() == rendered.html
    attachment, pdf = list(parsed.iter_attachments())
    assert attachment.get_filename() == "衢州市疫情防控工作日报数据_2022-03-19.csv"
    assert attachment.get_content_type() == "text/csv" and attachment.get_content_charset() == "utf-8"
    assert attachment.get_payload(decode=True) == rendered.attachment
    assert (
        pdf.get_filename() == "衢州市疫情防控工作日报_2022年3月19日.pdf" and pdf.get_content_type() == "application/pdf"
    )
    assert parsed["Date"] and parsed["Message-ID"] == "<id@x>"
    # text and HTML are alternatives; the HTML and the charts it shows by Content-ID are related
    assert parsed.get_content_type() == "multipart/mixed"
    alternative = next(parsed.iter_parts())
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "multipart/related"]
    related = list(alternative.get_body(("related",)).iter_parts())
    images = {p["Content-ID"].strip("<>"): p.get_payload(decode=True) for p in related[1:]}
    assert set(images) == set(re.findall(r'src="cid:([^"]+)"', rendered.html)) and len(images) == 3
    assert all(data.startswith(b"\x89PNG") for data in images.values())
    # what is mailed hashes to the edition's hash: each part carries the rendered bytes unchanged
    parts = [parsed.get_body((kind,)).get_payload(decode=True) for kind in ("html", "plain")]
    attached = [attachment.get_payload(decode=True), pdf.get_payload(decode=True)]
    assert content_sha256(*parts, *attached, *images.values()) == rendered.sha256


@pytest.mark.parametrize(
    "name",
    [
        "bulletin-2022-03-19.txt",
        "bulletin-2022-03-19.html",
        "bulletin-2022-03-19-gaps.txt",
        "bulletin-2022-03-19-gaps.html",
        "bulletin-2022-03-18-correction.txt",
        "bulletin-2022-03-18-correction.html",
        "bulletin-2022-03-19-en.txt",
        "bulletin-2022-03-19-en.html",
    ],
)
def test_golden_files_are_committed(name):
    assert (GOLDEN / name).stat().st_size > 1000


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x.invalid","点击")', '\'=HYPERLINK("http://x.invalid","点击")'),
        ("+1+2", "'+1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("-5", "-5"),  # a negative change stays a number
        ("+3", "+3"),
        ("12.5", "12.5"),
        ("柯城区", "柯城区"),
        (7, 7),
    ],
)
def test_attachment_cells_cannot_become_formulas(cell, written):
    from closeout.publish.bulletin.spreadsheet import inert_cell

    assert inert_cell(cell) == written
