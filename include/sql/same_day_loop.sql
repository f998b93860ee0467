-- The same-day loop: receipts, reminders, the deadline alert and units marked 缺报 by an operator.

-- name: select_notice
SELECT status, message_id, sent_at FROM notice
WHERE kind = :kind AND report_date = :report_date AND unit_code = :unit_code AND notice_key = :notice_key;

-- name: insert_notice
INSERT INTO notice (kind, report_date, unit_code, notice_key, status, subject, recipients, message_id, body, started_at)
VALUES (:kind, :report_date, :unit_code, :notice_key, 'sending', :subject, :recipients, :message_id, :body, :started_at);

-- name: mark_notice_sent
UPDATE notice SET status = 'sent', sent_at = :sent_at
WHERE kind = :kind AND report_date = :report_date AND unit_code = :unit_code AND notice_key = :notice_key;

-- name: delete_unsent_notice
DELETE FROM notice
WHERE kind = :kind AND report_date = :report_date AND unit_code = :unit_code AND notice_key = :notice_key
  AND status = 'sending';

-- name: select_notices
SELECT kind, unit_code, notice_key, status, subject, recipients, started_at, sent_at FROM notice
WHERE report_date = :report_date ORDER BY started_at, kind, unit_code;

-- name: select_judged_submissions
-- Every file judged for the day (loaded, rejected or since superseded), oldest first: each gets one receipt.
SELECT unit_code, sha256, file_name, status, reasons, received_at, processed_at FROM submission
WHERE report_date = :report_date ORDER BY processed_at;

-- name: select_file_findings
SELECT severity, rule, line FROM finding
WHERE report_date = :report_date AND unit_code = :unit_code AND file_name = :file_name AND stage IN ('load', 'validate')
ORDER BY row_no, rule;

-- name: select_figures_of_file
SELECT metric, value, qualifier FROM figure
WHERE report_date = :report_date AND unit_code = :unit_code AND source_sha256 = :sha256;

-- name: upsert_excusal
INSERT INTO unit_excusal (report_date, unit_code, reason, marked_by, marked_at)
VALUES (:report_date, :unit_code, :reason, :marked_by, :marked_at)
ON CONFLICT (report_date, unit_code) DO UPDATE
SET reason = excluded.reason, marked_by = excluded.marked_by, marked_at = excluded.marked_at;

-- name: select_excusals
SELECT unit_code, reason, marked_by, marked_at FROM unit_excusal WHERE report_date = :report_date;
