-- The same-day loop: receipts, reminders, the deadline alert and units marked 缺报 by an operator.

-- name: select_notice
SELECT status, message_id, sent_at FROM notice
WHERE kind = :kind AND report_date = :report_date AND unit_code = :unit_code AND notice_key = :notice_key;

-- name: claim_notice
-- One notice recorded just before it is handed to the server ('sending'; 'sent' at once for a notice with no
-- recipients, kept for the record, not mailed): a new row, or a released one (the server refused it, or an operator
-- found it never arrived) taken again under the same key. A notice being sent or sent is left as it is (0 rows):
-- never twice.
INSERT INTO notice (kind, report_date, unit_code, notice_key, status, subject, recipients, message_id, body, started_at,
                    sent_at)
VALUES (:kind, :report_date, :unit_code, :notice_key, :status, :subject, :recipients, :message_id, :body, :started_at,
        :sent_at)
ON CONFLICT (kind, report_date, unit_code, notice_key) DO UPDATE
SET status = excluded.status, subject = excluded.subject, recipients = excluded.recipients,
    message_id = excluded.message_id, body = excluded.body, started_at = excluded.started_at, sent_at = excluded.sent_at
WHERE notice.status = 'released';

-- name: mark_notice_sent
-- The server accepted it, or an operator confirmed it arrived.
UPDATE notice SET status = 'sent', sent_at = :sent_at
WHERE kind = :kind AND report_date = :report_date AND unit_code = :unit_code AND notice_key = :notice_key
  AND status = 'sending';

-- name: release_notice
-- Nothing was delivered (the server refused it, or an operator found it never arrived): the next run sends it again
-- under the same key. The row stays; what happened is a notice_event.
UPDATE notice SET status = 'released'
WHERE kind = :kind AND report_date = :report_date AND unit_code = :unit_code AND notice_key = :notice_key
  AND status = :status_was;

-- name: insert_notice_event
INSERT INTO notice_event (kind, report_date, unit_code, notice_key, event, message_id, actor, reason, at)
VALUES (:kind, :report_date, :unit_code, :notice_key, :event, :message_id, :actor, :reason, :at);

-- name: select_notice_events
SELECT kind, unit_code, notice_key, event, message_id, actor, reason, at FROM notice_event
WHERE report_date = :report_date ORDER BY at;

-- name: select_notices
SELECT kind, unit_code, notice_key, status, subject, recipients, message_id, started_at, sent_at FROM notice
WHERE report_date = :report_date ORDER BY started_at, kind, unit_code;

-- name: select_judged_submissions
-- Every file judged for the day (loaded, rejected or since superseded), oldest first: each gets one receipt.
SELECT unit_code, sha256, file_name, status, reasons, received_at, processed_at FROM submission
WHERE report_date = :report_date ORDER BY processed_at;

-- name: select_file_findings
-- The findings of the units' files, for their receipts (one query for every receipt due).
SELECT unit_code, file_name, severity, rule, line FROM finding
WHERE report_date = :report_date AND unit_code IN :unit_codes AND stage IN ('load', 'validate')
ORDER BY unit_code, file_name, row_no, rule;

-- name: select_figures_of_files
SELECT unit_code, source_sha256, metric, value, qualifier FROM figure
WHERE report_date = :report_date AND unit_code IN :unit_codes AND source_sha256 <> 'derived';

-- name: insert_excusal_history
-- Every decision is kept here; unit_excusal holds the one in force, the latest.
INSERT INTO unit_excusal_history (report_date, unit_code, reason, marked_by, marked_at)
VALUES (:report_date, :unit_code, :reason, :marked_by, :marked_at);

-- name: upsert_excusal
INSERT INTO unit_excusal (report_date, unit_code, reason, marked_by, marked_at)
VALUES (:report_date, :unit_code, :reason, :marked_by, :marked_at)
ON CONFLICT (report_date, unit_code) DO UPDATE
SET reason = excluded.reason, marked_by = excluded.marked_by, marked_at = excluded.marked_at;

-- name: select_excusal_history
SELECT unit_code, reason, marked_by, marked_at FROM unit_excusal_history
WHERE report_date = :report_date ORDER BY unit_code, marked_at;

-- name: select_excusals
SELECT unit_code, reason, marked_by, marked_at FROM unit_excusal WHERE report_date = :report_date;
