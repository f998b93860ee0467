"""The same-day loop on a real store and a real SMTP server: receipts, reminders, the deadline alert, 标记缺报."""

import smtplib
from contextlib import contextmanager
from datetime import date, datetime

import pytest
from conftest import SAMPLE_INBOX, copy_day, publish, received_mails
from days import close_day, smtp_connect

from closeout.close.excusal import mark_absent
from closeout.core.clock import LOCAL_TZ
from closeout.deliver import notices
from closeout.orchestration import pipeline
from closeout.orchestration.cli import main as cli

DAY = date(2022, 3, 19)
SENDER = "closeout@test.invalid"


def at(hhmm: str, day: date = DAY) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=LOCAL_TZ)


def afternoon(db_url, ctx_for, tmp_path):
    """The 19th with 衢江 accepted, 柯城 rejected, three units not yet in; ops and unit contacts from the registry."""
    inbox = tmp_path / "inbox"
    folder = copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    for name in ("changshan.csv", "开化县.xlsx", "龙游县.csv", "jiangshan.csv"):
        (folder / name).unlink()
    bad = folder / "330802.csv"
    bad.write_text(bad.read_text(encoding="utf-8").replace("sampled,", "sampled,约", 1), encoding="utf-8")
    ctx = ctx_for(db_url, inbox, CLOSEOUT_OPS_EMAIL="ops@test.invalid")
    return ctx, folder


def test_each_judged_file_gets_one_receipt_naming_what_was_read_or_why_not(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, folder = afternoon(db_url, ctx_for, tmp_path)
    assert sorted(pipeline.judge_arrivals(ctx, DAY)) == ["330802", "330803"]
    sent = notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink))
    assert {(n.unit_code, n.kind) for n in sent} == {("330802", "receipt"), ("330803", "receipt")}
    mails = {m["To"]: m for m in received_mails(smtp_sink.folder)}
    accepted = mails["qujiang-report@example.invalid"]
    assert accepted["Subject"] == "【回执】衢江区3月19日日报已受理" and accepted["Message-ID"] and accepted["Date"]
    assert "采样人次：" in accepted.get_content() and "请核对" in accepted.get_content()
    rejected = mails["kecheng-report@example.invalid"]
    assert rejected["Subject"].startswith("【退回】柯城区3月19日日报未通过校验")
    body = rejected.get_content()
    assert "第" in body and "行" in body and "[rule: approximation_in_hard_metric]" in body and "21:00 前" in body
    # again, and after the cutoff run judged everything afresh: nothing more
    assert pipeline.judge_arrivals(ctx, DAY) == []
    close_day(ctx)
    assert notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink)) == []
    assert len(received_mails(smtp_sink.folder)) == 2
    # a corrected file gets its own receipt
    fixed = folder / "330802.csv"
    fixed.write_text(fixed.read_text(encoding="utf-8").replace("sampled,约", "sampled,"), encoding="utf-8")
    assert pipeline.judge_arrivals(ctx, DAY) == ["330802"]
    [again] = notices.send_notices(ctx, notices.receipts_due(ctx, DAY), SENDER, smtp_connect(smtp_sink))
    assert again.unit_code == "330802" and again.subject.startswith("【回执】")


def test_notices_share_smtp_sessions_up_to_the_per_session_cap(db_url, ctx_for, tmp_path, smtp_sink, monkeypatch):
    ctx, _ = afternoon(db_url, ctx_for, tmp_path)
    sessions = []
    real = smtp_connect(smtp_sink)

    @contextmanager
    def counted():
        with real() as send:
            sessions.append(send)
            yield send

    monkeypatch.setattr(notices, "MESSAGES_PER_SESSION", 3)
    due = notices.reminders_due(ctx, DAY, at("19:01"))
    assert len(due) == 6  # nobody has reported yet
    assert len(notices.send_notices(ctx, due, SENDER, counted)) == 6
    assert len(sessions) == 2 and len(received_mails(smtp_sink.folder)) == 6  # two logins for six messages
    assert notices.send_notices(ctx, due, SENDER, counted) == [] and len(sessions) == 2  # nothing left: no login


def recorded(ctx) -> dict[str, str]:
    return {r["unit_code"]: r["status"] for r in ctx.store.rows("select_notices", {"report_date": DAY.isoformat()})}


def test_each_message_is_claimed_just_before_it_goes_and_answered_right_after_and_a_refused_one_is_released(
    db_url, ctx_for, tmp_path, smtp_sink, monkeypatch
):
    ctx, _ = afternoon(db_url, ctx_for, tmp_path)
    monkeypatch.setattr(notices, "MESSAGES_PER_SESSION", 3)
    due = notices.reminders_due(ctx, DAY, at("19:01"))
    assert len(due) == 6
    transactions, seen_before_send, sessions = [], [], []
    real_transaction, real = ctx.store.transaction, smtp_connect(smtp_sink)

    def counted_transaction():
        transactions.append(1)
        return real_transaction()

    @contextmanager
    def watched():
        with real() as send:
            sessions.append(1)

            def send_checked(message):
                seen_before_send.append(dict(recorded(ctx)))  # what the store holds as the message goes
                return send(message)

            yield send_checked

    monkeypatch.setattr(ctx.store, "transaction", counted_transaction)
    refused = due[1]  # the second of the first batch: the server refuses it (451), once
    smtp_sink.handler.refuse_next(refused.recipients[0], 1)
    with pytest.raises(smtplib.SMTPDataError) as raised:
        notices.send_notices(ctx, due, SENDER, watched)
    assert "1 notice(s) refused" in "".join(getattr(raised.value, "__notes__", []))
    # one login per batch of three; a transaction per message (its claim, with the previous message's answer),
    # one more per batch for the last answer
    assert len(sessions) == 2 and len(transactions) == 8
    # as each message goes, it alone is claimed and unanswered: those before it answered, those after it unclaimed
    for i, seen in enumerate(seen_before_send):
        assert seen[due[i].unit_code] == "sending"
        assert all(seen[n.unit_code] in ("sent", "released") for n in due[:i])
        assert not any(n.unit_code in seen for n in due[i + 1 :])
    assert len(received_mails(smtp_sink.folder)) == 5 and smtp_sink.handler.refused == 1
    status = recorded(ctx)
    assert status[refused.unit_code] == "released"  # kept on record; a later run sends it under the same key
    assert all(status[n.unit_code] == "sent" for n in due if n is not refused)
    [event] = ctx.store.rows("select_notice_events", {"report_date": DAY.isoformat()})
    assert (event["unit_code"], event["event"]) == (refused.unit_code, "refused") and "451" in event["reason"]
    # the next run sends only the refused one; a rerun after that sends nothing twice
    again = notices.reminders_due(ctx, DAY, at("19:02"))
    assert [n.unit_code for n in again] == [refused.unit_code]
    assert notices.send_notices(ctx, again, SENDER, real) == again
    assert notices.send_notices(ctx, due, SENDER, real) == []
    assert len(received_mails(smtp_sink.folder)) == 6 and set(recorded(ctx).values()) == {"sent"}
    # each message is kept in the outbox as sent, the refused one as sent the second time
    kept = sorted((tmp_path / "outbox" / DAY.isoformat() / "notices").glob("reminder-*.eml"))
    assert len(kept) == 6 and all(p.name.endswith("-1900.eml") for p in kept)


def test_a_failure_mid_batch_leaves_only_the_message_in_flight_sending_and_never_sends_it_twice(
    db_url, ctx_for, tmp_path, smtp_sink, monkeypatch
):
    ctx, _ = afternoon(db_url, ctx_for, tmp_path)
    monkeypatch.setattr(notices, "MESSAGES_PER_SESSION", 3)
    due = notices.reminders_due(ctx, DAY, at("19:01"))
    real, calls = smtp_connect(smtp_sink), []

    @contextmanager
    def dropping():
        with real() as send:

            def send_or_drop(message):
                calls.append(message)
                if len(calls) == 2:  # the line drops: the server may or may not have taken it
                    raise smtplib.SMTPServerDisconnected("connection lost")
                return send(message)

            yield send_or_drop

    with pytest.raises(smtplib.SMTPServerDisconnected):
        notices.send_notices(ctx, due, SENDER, dropping)
    status = recorded(ctx)
    assert status == {due[0].unit_code: "sent", due[1].unit_code: "sending"}  # the third was never handed over
    # the next run sends the rest, never the uncertain one
    again = notices.reminders_due(ctx, DAY, at("19:02"))
    assert [n.unit_code for n in again] == [n.unit_code for n in due[2:]]
    assert [n.unit_code for n in notices.send_notices(ctx, due, SENDER, real)] == [n.unit_code for n in due[2:]]
    assert len(received_mails(smtp_sink.folder)) == 5 and recorded(ctx)[due[1].unit_code] == "sending"


def test_reminders_go_once_per_unit_and_time_to_units_still_open_copied_to_ops(db_url, ctx_for, tmp_path, smtp_sink):
    ctx, _ = afternoon(db_url, ctx_for, tmp_path)
    pipeline.judge_arrivals(ctx, DAY)
    mark_absent(ctx, DAY, "龙游县", "通信中断，今日无法报送", "duty")
    assert notices.reminders_due(ctx, DAY, at("18:59")) == []
    first = notices.send_notices(ctx, notices.reminders_due(ctx, DAY, at("19:01")), SENDER, smtp_connect(smtp_sink))
    # 衢江 accepted, 龙游 excused: 柯城 (rejected), 常山, 开化, 江山 (nothing yet) are reminded
    assert sorted(n.unit_code for n in first) == ["330802", "330822", "330824", "330881"]
    assert all(n.key == "19:00" and "ops@test.invalid" in n.recipients for n in first)
    assert "未通过校验" in next(n.subject for n in first if n.unit_code == "330802")
    assert notices.reminders_due(ctx, DAY, at("19:30")) == []  # once per time, even on a re-run
    second = notices.reminders_due(ctx, DAY, at("20:31"))
    assert sorted(n.unit_code for n in second) == ["330802", "330822", "330824", "330881"]
    assert notices.reminders_due(ctx, DAY, at("21:00")) == []  # after the cutoff: no reminder
    assert notices.reminders_due(ctx, DAY, at("20:59")) != []  # 20:30 not yet recorded: sent late, not lost
    notices.send_notices(ctx, second, SENDER, smtp_connect(smtp_sink))
    assert len(received_mails(smtp_sink.folder)) == 8


def test_deadline_alert_names_each_open_unit_once_and_an_excused_unit_does_not_hold_the_day(
    db_url, ctx_for, tmp_path, smtp_sink
):
    ctx, _ = afternoon(db_url, ctx_for, tmp_path)
    close_day(ctx)
    mark_absent(ctx, DAY, "longyou", "通信中断", "duty")
    close_day(ctx)
    assert notices.deadline_alert_due(ctx, DAY, at("23:29")) == []
    [alert] = notices.send_notices(
        ctx, notices.deadline_alert_due(ctx, DAY, at("23:31")), SENDER, smtp_connect(smtp_sink)
    )
    assert alert.recipients == ("ops@test.invalid",)
    for name in ("柯城区", "常山县", "开化县", "江山市", "日报尚未发出"):
        assert name in alert.body
    assert "龙游县" not in alert.body and "衢江区" not in alert.body
    assert notices.deadline_alert_due(ctx, DAY, at("23:59")) == []
    statuses = {r["unit_code"]: r["status"] for r in ctx.store.rows("select_unit_days", {"report_date": "2022-03-19"})}
    assert statuses["330825"] == "excused"


def test_a_closed_day_raises_no_alert_and_status_says_which_store_and_exits_zero(
    db_url, ctx_for, tmp_path, smtp_sink, capsys
):
    inbox = tmp_path / "inbox"
    copy_day(SAMPLE_INBOX / "2022-03-18", inbox, "2022-03-18")
    copy_day(SAMPLE_INBOX / "2022-03-19", inbox, "2022-03-19")
    ctx = ctx_for(db_url, inbox, CLOSEOUT_OPS_EMAIL="ops@test.invalid")
    close_day(ctx, date(2022, 3, 18))
    close_day(ctx)
    assert cli(["status", "2022-03-19"]) == 1  # all cleared, bulletin not sent yet
    publish(ctx, DAY, smtp_connect(smtp_sink))
    assert notices.deadline_alert_due(ctx, DAY, at("23:45")) == []
    capsys.readouterr()
    assert cli(["status", "2022-03-19"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("store: ") and ("closeout.db" in out.splitlines()[0] or "postgresql" in out.splitlines()[0])


def test_mark_absent_needs_a_known_unit_and_a_reason(db_url, ctx_for, tmp_path):
    ctx = ctx_for(db_url, tmp_path / "inbox")
    import pytest

    with pytest.raises(ValueError, match="原因"):
        mark_absent(ctx, DAY, "龙游县", "  ", "duty")
    with pytest.raises(ValueError, match="没有单位"):
        mark_absent(ctx, DAY, "杭州市", "x", "duty")
    assert cli(["mark-absent", "2022-03-19", "330825", "--reason", "停电"]) == 0
    assert [r["reason"] for r in ctx.store.rows("select_excusals", {"report_date": "2022-03-19"})] == ["停电"]
