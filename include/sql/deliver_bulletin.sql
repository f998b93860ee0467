-- At most one bulletin email per report date: the row is written before sending.

-- name: select_delivery
SELECT status, message_id, recipients, content_sha256, sent_at FROM delivery WHERE report_date = :report_date;

-- name: insert_delivery
INSERT INTO delivery (report_date, status, subject, recipients, message_id, content_sha256, started_at)
VALUES (:report_date, 'sending', :subject, :recipients, :message_id, :content_sha256, :started_at);

-- name: mark_delivery_sent
UPDATE delivery SET status = 'sent', sent_at = :sent_at WHERE report_date = :report_date;

-- name: mark_corrections_announced
-- Only a bulletin that was sent announces the corrections it listed; a mere re-render does not.
UPDATE figure_revision SET announced_in = :report_date
WHERE kind IN ('correction', 'late_report') AND report_date < :report_date AND announced_in IS NULL;

-- name: select_published
SELECT report_date FROM delivery WHERE report_date = :report_date AND status IN ('sending', 'sent');

-- name: delete_unsent_delivery
-- The SMTP server refused or never answered: nothing was sent, so the next try may send.
DELETE FROM delivery WHERE report_date = :report_date AND status = 'sending';

-- name: delete_delivery
-- Operator's decision after checking the mailbox (closeout forget-delivery): allow one more send.
DELETE FROM delivery WHERE report_date = :report_date;
