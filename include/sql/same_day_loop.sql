-- The same-day loop: receipts, reminders, the deadline alert and units marked 缺报 by an operator.

-- name: select_notice
SELECT status, message_id, sent_at FROM notice
WHERE kind = :kind AND report_date = :report_date AND unit_code = :unit_code AND notice_key = :notice_key;

-- name: insert_notice
INSERT INTO notice (kind, report_date, unit_code, notice_key, status, subject, recipients, message_id, body, started_at)
VALUES (:kind, :report_date, :unit_code, :notice_key, 'sending', :subject, :recipients, :message_id, :body, :started_at);

-- name: claim_notices
-- A batch of notices recorded at once (COPY on PostgreSQL): 'sending' just before their session sends them,
-- or 'sent' at once for a notice with no recipients (kept for the record, not mailed).
INSERT INTO notice (kind, report_date, unit_code, notice_key, status, subject, recipients, message_id, body, started_at, sent_at)
VALUES (:kind, :report_date, :unit_code, :notice_key, :status, :subject, :recipients, :message_id, :body, :started_at, :sent_at);

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
-- The findings of the units' files, for their receipts (one query for every receipt due).
SELECT unit_code, file_name, severity, rule, line FROM finding
WHERE report_date = :report_date AND unit_code IN :unit_codes AND stage IN ('load', 'validate')
ORDER BY unit_code, file_name, row_no, rule;

-- name: select_figures_of_files
SELECT unit_code, source_sha256, metric, value, qualifier FROM figure
WHERE report_date = :report_date AND unit_code IN :unit_codes AND source_sha256 <> 'derived';

-- name: upsert_excusal
INSERT INTO unit_excusal (report_date, unit_code, reason, marked_by, marked_at)
VALUES (:report_date, :unit_code, :reason, :marked_by, :marked_at)
ON CONFLICT (report_date, unit_code) DO UPDATE
SET reason = excluded.reason, marked_by = excluded.marked_by, marked_at = excluded.marked_at;

-- name: select_excusals
SELECT unit_code, reason, marked_by, marked_at FROM unit_excusal WHERE report_date = :report_date;
