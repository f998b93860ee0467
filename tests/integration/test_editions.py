"""Editions, sign-off and the delivery record, on both stores with a real SMTP server on loopback."""

from datetime import date, datetime
from types import SimpleNamespace

import pytest
from conftest import SAMPLE_INBOX, copy_day, publish, received_mails
from days import DAY, change_isolation_new, close_day, figure, published_day, smtp_connect
from sqlalchemy import create_engine, text

from closeout.core.clock import LOCAL_TZ
from closeout.core.settings import load_settings
from closeout.deliver import notices
from closeout.deliver.mailer import mailed_sha256
from closeout.orchestration import pipeline
from closeout.publish import signoff
from closeout.publish.editions import EditionTampered, editions_of, sent_editions
from closeout.publish.masthead import allocate_issue, issue_of
from closeout.store.database import Store


def test_an_edition_is_rendered_once_kept_unchanged_and_mailed_exactly(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    late = (folder / "330803.csv").rename(tmp_path / "330803.csv")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx)
    first = pipeline.render_bulletin(ctx, DAY)
    assert (first.number, first.kind) == (1, "official")
    assert pipeline.render_bulletin(ctx, DAY) == first  # the same store: the same edition, no new files
    kept = {p.name: p.read_bytes() for p in first.folder(ctx).iterdir()}
    late.rename(folder / "330803.csv")  # 衢江 arrives before anything was sent
    close_day(ctx)
    second = pipeline.render_bulletin(ctx, DAY)
    assert (second.number, second.kind) == (2, "official") and second.sha256 != first.sha256
    assert {p.name: p.read_bytes() for p in first.folder(ctx).iterdir()} == kept  # never overwritten
    publish(ctx, DAY, smtp_connect(smtp_sink))
    [mail] = received_mails(smtp_sink.folder)
    assert mailed_sha256(mail) == second.sha256  # what was mailed is the edition, byte for byte
    assert mail["Date"] and mail["Message-ID"]
    [attempt] = ctx.store.rows("select_deliveries", {"report_date": "2022-03-19"})
    assert (attempt["edition_no"], attempt["status"], attempt["content_sha256"]) == (2, "sent", second.sha256)
    assert (second.folder(ctx) / "email-1.eml").read_bytes().split(b"\n\n", 1)[1].strip()  # the mail as sent


def test_edited_files_are_refused_not_mailed(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx)
    edition = pipeline.render_bulletin(ctx, DAY)
    page = edition.folder(ctx) / "bulletin.txt"
    page.write_text(page.read_text(encoding="utf-8").replace("新增", "新增 "), encoding="utf-8")
    with pytest.raises(EditionTampered, match="被改动"):
        pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink))
    assert received_mails(smtp_sink.folder) == []


def test_a_late_unit_after_publication_goes_out_once_as_a_late_report_edition(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    day = date(2022, 3, 18)
    late = (folder / "changshan.csv").rename(tmp_path / "changshan.csv")
    ctx = ctx_for(db_url, inbox)
    close_day(ctx, day)
    publish(ctx, day, smtp_connect(smtp_sink))
    late.rename(folder / "changshan.csv")  # 常山 sends the 18th after the bulletin went out
    close_day(ctx, day)
    edition = publish(ctx, day, smtp_connect(smtp_sink))
    assert edition.status == "sent"
    assert publish(ctx, day, smtp_connect(smtp_sink)).status == "already_sent"  # once
    official, late_report = received_mails(smtp_sink.folder)
    assert late_report["Subject"] == "衢州市疫情防控工作日报 2022年3月18日（补报）"
    body = late_report.get_body(("plain",)).get_content()
    assert "【补报】3月18日日报发出后，以下数据有变化，本期数字已全部更新：" in body
    assert "常山县数据于日报发出后补报，已计入本期各项合计。" in body
    assert "常山县数据截至发布时未报送" in official.get_body(("plain",)).get_content()
    assert "常山县数据截至发布时未报送" not in body  # the 补报 edition carries its figures
    editions = editions_of(ctx, day)
    assert [(e.number, e.kind) for e in editions] == [(1, "official"), (2, "late_report")]
    assert mailed_sha256(late_report) == editions[1].sha256
    # it carries the corrections register rows it lists; the 正式 edition before it listed none
    names = [part.get_filename() for part in late_report.iter_attachments()]
    assert names[1] == "更正登记.csv" and [p.get_content_type() for p in official.iter_attachments()][1:] == [
        "application/pdf"
    ]
    register = list(late_report.iter_attachments())[1].get_payload(decode=True).decode("utf-8-sig").splitlines()
    assert register[0].startswith("report_date,unit_code,unit_name,metric,metric_name,kind,old_value,new_value,reason")
    assert "announced_in" not in register[0]  # what changes after sending is not in the edition's bytes
    assert [line.split(",")[:6] for line in register[1:]] == [
        ["2022-03-18", "330822", "常山县", "", "（整份补报）", "补报"]
    ]
    close_day(ctx)
    publish(ctx, DAY, smtp_connect(smtp_sink))  # the next day's 正式 edition still lists it
    next_day = received_mails(smtp_sink.folder)[-1].get_body(("plain",)).get_content()
    assert "3月18日常山县数据于当日日报发布后补报，已计入3月18日合计。" in next_day


def test_only_the_changes_an_edition_listed_are_marked_announced(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, path, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    old, _ = figure(ctx, "330802", "isolation_new", day)
    close_day(ctx)
    rendered_before = pipeline.render_bulletin(ctx, DAY)  # the 19th rendered before the correction arrived
    change_isolation_new(path, int(old) + 6, "漏报一处隔离点")
    close_day(ctx, day)
    pipeline.email_bulletin(ctx, rendered_before, "closeout@test.invalid", smtp_connect(smtp_sink))
    rows = ctx.store.rows("select_corrections_to_announce", {"report_date": "2022-03-20"})
    assert [(r["unit_code"], r["metric"]) for r in rows] == [("330802", "isolation_new")]  # still to announce


@pytest.mark.parametrize(
    ("mode", "files", "waits"),
    [
        ("when-incomplete", 6, False),
        ("when-incomplete", 3, False),  # exactly half cleared: published unattended
        ("when-incomplete", 2, True),
        ("when-incomplete", 0, True),
        ("always", 6, True),
        ("off", 0, False),
    ],
)
def test_when_an_edition_waits_for_a_sign_off(db_url, ctx_for, tmp_path, mode, files, waits):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    for path in sorted(p for p in folder.iterdir() if not p.name.endswith(".md"))[files:]:
        path.unlink()
    ctx = ctx_for(db_url, inbox, CLOSEOUT_SIGNOFF=mode)
    close_day(ctx)
    edition = pipeline.render_bulletin(ctx, DAY)
    codes = [u.code for u in ctx.registry.all_units]
    assert signoff.check(ctx, edition, codes, codes).needed is waits
    assert signoff.check(ctx, edition, None, []).needed  # planning failed: always waits
    assert signoff.check(ctx, edition, codes, codes[:2]).needed  # loads that crashed: always waits


def test_a_pending_or_rejected_edition_is_never_mailed_and_an_approved_one_is(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox, CLOSEOUT_SIGNOFF="always", CLOSEOUT_OPS_EMAIL="ops@test.invalid")
    close_day(ctx)
    edition = pipeline.render_bulletin(ctx, DAY)
    codes = [u.code for u in ctx.registry.all_units]
    page = signoff.request(ctx, edition, signoff.check(ctx, edition, codes, codes))
    assert (
        page["subject"].startswith("审核签发：衢州市疫情防控工作日报 2022年3月19日") and "**总体情况**" in page["body"]
    )
    # the approver reads the edition's own text, the lines that will be mailed
    mailed_text = (edition.folder(ctx) / "bulletin.txt").read_text(encoding="utf-8")
    summary = next(line for line in mailed_text.splitlines() if line.startswith("3月19日0—24时，全市"))
    assert f"> {summary}  " in page["body"].splitlines()
    send = lambda: pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink))  # noqa: E731
    with pytest.raises(signoff.SignoffOutstanding, match="等待审核签发"):
        send()
    late = datetime(2022, 3, 19, 23, 31, tzinfo=LOCAL_TZ)
    [alert] = notices.deadline_alert_due(ctx, DAY, late)
    assert "第1版日报等待审核签发" in alert.body  # a sign-off still open at the deadline is in the alert
    signoff.record_decision(
        ctx,
        edition,
        {
            "chosen_options": [signoff.REJECT],
            "params_input": {"reason": "江山数字存疑"},
            "responded_by_user": {"name": "li"},
        },
    )
    with pytest.raises(signoff.SignoffOutstanding, match="已被li退回（江山数字存疑）"):
        send()
    assert received_mails(smtp_sink.folder) == []
    close_day(ctx)
    assert pipeline.render_bulletin(ctx, DAY) == edition  # nothing changed: still the rejected edition
    [row] = ctx.store.rows("select_signoffs", {"report_date": "2022-03-19"})
    assert (row["decision"], row["decided_by"], row["comment"]) == ("rejected", "li", "江山数字存疑")


def test_an_approved_edition_is_mailed_once(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox, CLOSEOUT_SIGNOFF="always")
    close_day(ctx)
    edition = pipeline.render_bulletin(ctx, DAY)
    codes = [u.code for u in ctx.registry.all_units]
    signoff.request(ctx, edition, signoff.check(ctx, edition, codes, codes))
    approval = {
        "chosen_options": [signoff.APPROVE],
        "params_input": {"reason": "同意"},
        "responded_by_user": {"name": "wang"},
    }
    signoff.record_decision(ctx, edition, approval)
    signoff.record_decision(ctx, edition, {**approval, "chosen_options": [signoff.REJECT]})  # a decision is final
    assert "签发人" not in (edition.folder(ctx) / "bulletin.txt").read_text(encoding="utf-8")  # rendered before
    assert pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink)).status == "sent"
    assert (
        pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink)).status == "already_sent"
    )
    [mail] = received_mails(smtp_sink.folder)
    # what goes out names the approver: a copy of the approved edition, the same but for the 签发人
    assert "签发人：wang" in mail.get_body(("plain",)).get_content()
    draft, signed = editions_of(ctx, DAY)
    assert (draft.number, signed.number) == (1, 2) and sent_editions(ctx, DAY) == {2}
    assert mailed_sha256(mail) == signed.sha256
    lines = lambda e: (e.folder(ctx) / "bulletin.txt").read_text(encoding="utf-8").splitlines()  # noqa: E731
    assert [line.split("　　签发人")[0] for line in lines(signed)] == lines(draft)
    records = {
        r["edition_no"]: (r["decision"], r["decided_by"])
        for r in ctx.store.rows("select_signoffs", {"report_date": "2022-03-19"})
    }
    assert records == {1: ("approved", "wang"), 2: ("approved", "wang")}


def test_an_approved_edition_whose_figures_changed_since_is_not_sent_as_signed(db_url, ctx_for, tmp_path, smtp_sink):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox, CLOSEOUT_SIGNOFF="always")
    close_day(ctx)
    edition = pipeline.render_bulletin(ctx, DAY)
    codes = [u.code for u in ctx.registry.all_units]
    signoff.request(ctx, edition, signoff.check(ctx, edition, codes, codes))
    approval = {"chosen_options": [signoff.APPROVE], "params_input": {}, "responded_by_user": {"name": "wang"}}
    signoff.record_decision(ctx, edition, approval)
    kecheng = folder / "330802.csv"  # 柯城 sends a new figure after the approval
    kecheng.write_text(
        "\n".join(
            ",".join([cells[0], str(int(cells[1]) + 6), *cells[2:]]) if line.startswith("isolation_new,") else line
            for line in kecheng.read_text(encoding="utf-8").splitlines()
            for cells in [line.split(",")]
        )
        + "\n",
        encoding="utf-8",
    )
    close_day(ctx)
    with pytest.raises(EditionTampered, match="签发后数据又有变化"):
        pipeline.email_bulletin(ctx, edition, "closeout@test.invalid", smtp_connect(smtp_sink))
    assert received_mails(smtp_sink.folder) == []


def test_a_store_from_before_editions_keeps_its_deliveries(db_url, ctx_for, tmp_path):
    """The old one-row-per-day delivery table becomes attempt 1 of edition 1; nothing is dropped."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE delivery (report_date TEXT NOT NULL PRIMARY KEY, status TEXT NOT NULL, subject TEXT NOT "
                "NULL, recipients TEXT NOT NULL, message_id TEXT NOT NULL, content_sha256 TEXT NOT NULL, started_at "
                "TEXT NOT NULL, sent_at TEXT)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO delivery VALUES ('2022-03-18', 'sent', 's', 'a@test.invalid', '<m@x>', 'abc', "
                "'2022-03-18T21:00', '2022-03-18T21:01')"
            )
        )
    engine.dispose()
    ctx = ctx_for(db_url, tmp_path / "inbox")
    [row] = ctx.store.rows("select_deliveries", {"report_date": "2022-03-18"})
    assert (row["edition_no"], row["attempt"], row["status"], row["message_id"]) == (1, 1, "sent", "<m@x>")
    assert ctx.store.rows("select_published", {"report_date": "2022-03-18"})


def test_the_corrections_register_lists_every_change_with_its_source(db_url, ctx_for, tmp_path, smtp_sink):
    import csv
    import io

    from closeout.orchestration.cli import corrections

    ctx, path, day = published_day(db_url, ctx_for, tmp_path, smtp_sink)
    old, _ = figure(ctx, "330802", "isolation_new", day)
    change_isolation_new(path, int(old) + 6, "漏报一处隔离点")
    close_day(ctx, day)
    out = io.StringIO()
    corrections(ctx, date(2022, 3, 18), out)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (row["unit_name"], row["metric_name"], row["kind"]) == ("柯城区", "新增集中隔离", "更正")
    assert (row["old_value"], row["new_value"], row["reason"]) == (str(int(old)), str(int(old) + 6), "漏报一处隔离点")
    assert row["source"] == "县报送文件 330802.csv" and row["recorded_at"].startswith("20")
    out = io.StringIO()
    corrections(ctx, date(2022, 3, 19), out)
    assert out.getvalue().count("\n") == 1  # only the header: --since leaves the 18th out


def _section(body: str, heading: str, until: tuple[str, ...]) -> list[str]:
    """The quoted lines of the approver's page under `heading`, up to the next of `until`."""
    lines = body.splitlines()
    start = lines.index(heading) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(until))
    return [line.removeprefix("> ").removesuffix("  ") for line in lines[start:end] if line.startswith("> ")]


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("layout", ["by_unit", "by_group"])
def test_the_approver_reads_the_editions_summary_and_notes_in_every_layout_and_language(
    tmp_path, ctx_for, layout, language
):
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    (folder / "开化县.xlsx").unlink()  # 开化 sends nothing: a note for the approver to read
    max_units = "12" if layout == "by_unit" else "3"  # Quzhou's 6 units: a column each, or its groups
    ctx = ctx_for(
        f"sqlite:///{tmp_path / 'closeout.db'}",
        inbox,
        CLOSEOUT_SIGNOFF="always",
        CLOSEOUT_BULLETIN_LANGUAGE=language,
        CLOSEOUT_BULLETIN_TABLE_MAX_UNITS=max_units,
    )
    close_day(ctx)
    edition = pipeline.render_bulletin(ctx, DAY)
    text = (edition.folder(ctx) / "bulletin.txt").read_text(encoding="utf-8")
    assert ("【分地区数据】" in text) is (layout == "by_unit" and language == "zh")  # the words the old page split on
    codes = [u.code for u in ctx.registry.all_units]
    body = signoff.request(ctx, edition, signoff.check(ctx, edition, codes, codes))["body"]
    summary = _section(body, "**总体情况**", ("**未结清单位**", "**各单位均已结清**"))
    notes = _section(body, "**数据说明**", ("选择",))
    assert summary == edition.outline["summary"] and summary  # the edition's own sentences, nothing else
    assert all(sentence in text for sentence in summary)  # as mailed
    assert notes == [f"{n}. {note}" for n, note in enumerate(edition.outline["notes"], start=1)] and notes
    assert all(note.split(". ", 1)[1] in text for note in notes)
    assert any(("开化" in note or "Kaihua" in note) for note in notes)


def test_issue_numbers_are_allocated_once_per_day_and_restart_each_year(db_url):
    ctx = SimpleNamespace(store=Store(db_url, load_settings({}).include_dir / "sql"))
    first = allocate_issue(ctx, date(2022, 3, 19))
    assert first.number == 1
    assert allocate_issue(ctx, date(2022, 3, 19)) == first  # a re-render or a re-run: never renumbered
    assert allocate_issue(ctx, date(2022, 3, 21)).number == 2
    assert allocate_issue(ctx, date(2022, 3, 20)).number == 3  # in the order the days were first rendered
    assert allocate_issue(ctx, date(2023, 1, 1)).number == 1  # numbered per calendar year
    assert issue_of(ctx, date(2022, 3, 19)) == first and issue_of(ctx, date(2022, 3, 22)) is None
    # the schema is created again on every start: the numbers stay
    again = SimpleNamespace(store=Store(db_url, load_settings({}).include_dir / "sql"))
    assert allocate_issue(again, date(2022, 3, 21)).number == 2
