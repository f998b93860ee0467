-- Editions and their deliveries: at most one bulletin email per edition; the row is written before sending.

-- name: select_editions
SELECT report_date, edition_no, kind, subject, content_sha256, attachment_name, announces, outline, rendered_at
FROM edition WHERE report_date = :report_date ORDER BY edition_no;

-- name: insert_edition
INSERT INTO edition (report_date, edition_no, kind, subject, content_sha256, attachment_name, announces, outline,
                     rendered_at)
VALUES (:report_date, :edition_no, :kind, :subject, :content_sha256, :attachment_name, :announces, :outline,
        :rendered_at);

-- name: select_deliveries
-- Every attempt of the day, oldest first: the latest attempt of an edition decides what happens next.
SELECT report_date, edition_no, attempt, status, subject, recipients, message_id, content_sha256, started_at, sent_at
FROM delivery WHERE report_date = :report_date ORDER BY edition_no, attempt;

-- name: insert_delivery
INSERT INTO delivery (report_date, edition_no, attempt, status, subject, recipients, message_id, content_sha256,
                      started_at)
VALUES (:report_date, :edition_no, :attempt, 'sending', :subject, :recipients, :message_id, :content_sha256,
        :started_at);

-- name: mark_delivery_sent
UPDATE delivery SET status = 'sent', sent_at = :sent_at
WHERE report_date = :report_date AND edition_no = :edition_no AND attempt = :attempt;

-- name: mark_delivery_refused
-- The SMTP server refused: nothing was delivered, so the next try may send. The attempt stays on record.
UPDATE delivery SET status = 'refused'
WHERE report_date = :report_date AND edition_no = :edition_no AND attempt = :attempt AND status = 'sending';

-- name: set_delivery_status
UPDATE delivery SET status = :status, sent_at = :sent_at
WHERE report_date = :report_date AND edition_no = :edition_no AND attempt = :attempt;

-- name: insert_delivery_event
INSERT INTO delivery_event (report_date, edition_no, attempt, event, actor, reason, at)
VALUES (:report_date, :edition_no, :attempt, :event, :actor, :reason, :at);

-- name: select_delivery_events
SELECT report_date, edition_no, attempt, event, actor, reason, at FROM delivery_event
WHERE report_date = :report_date ORDER BY at;

-- name: mark_corrections_announced
-- Only the revisions a sent edition listed: earlier days' changes in a 正式 edition's notes.
UPDATE figure_revision SET announced_in = :announced_in
WHERE report_date = :report_date AND unit_code = :unit_code AND metric = :metric AND new_sha256 = :new_sha256
  AND announced_in IS NULL;

-- name: mark_changes_sent_in_edition
-- The day's own changes a 补报/更正 edition sent; the next day's 正式 edition still lists them.
UPDATE figure_revision SET in_edition = :edition_no
WHERE report_date = :report_date AND unit_code = :unit_code AND metric = :metric AND new_sha256 = :new_sha256
  AND in_edition IS NULL;

-- name: select_same_day_changes
-- Changes to a day already published that no edition of that day has sent yet.
SELECT report_date, unit_code, metric, old_value, new_value, old_qualifier, new_qualifier, new_sha256, kind, reason,
       recorded_at
FROM figure_revision
WHERE report_date = :report_date AND kind IN ('correction', 'late_report') AND in_edition IS NULL
ORDER BY unit_code, metric, recorded_at;

-- name: select_published
SELECT report_date FROM delivery WHERE report_date = :report_date AND status IN ('sending', 'sent');

-- name: select_signoffs
SELECT report_date, edition_no, reasons, requested_at, decision, decided_by, decided_at, comment
FROM edition_signoff WHERE report_date = :report_date ORDER BY edition_no;

-- name: insert_signoff_request
-- Asked once per edition; asking again (a re-run) leaves the request and any decision as they are.
INSERT INTO edition_signoff (report_date, edition_no, reasons, requested_at, decision)
SELECT :report_date, :edition_no, :reasons, :requested_at, 'pending'
WHERE NOT EXISTS (SELECT 1 FROM edition_signoff WHERE report_date = :report_date AND edition_no = :edition_no);

-- name: decide_signoff
UPDATE edition_signoff SET decision = :decision, decided_by = :decided_by, decided_at = :decided_at, comment = :comment
WHERE report_date = :report_date AND edition_no = :edition_no AND decision = 'pending';

-- name: select_corrections_register
-- Every change to a published figure, kept forever: the corrections register (closeout corrections).
SELECT r.report_date, r.unit_code, r.metric, r.old_value, r.new_value, r.old_qualifier, r.new_qualifier, r.kind,
       r.reason, r.recorded_at, r.recorded_by, r.announced_in, r.in_edition, r.new_sha256, s.file_name
FROM figure_revision r
LEFT JOIN submission s ON s.report_date = r.report_date AND s.unit_code = r.unit_code AND s.sha256 = r.new_sha256
WHERE r.kind IN ('correction', 'late_report', 'recalculated') AND r.report_date >= :since
ORDER BY r.recorded_at, r.report_date, r.unit_code, r.metric;

-- name: select_days_with_unsent_changes
-- Published days with late reports or corrections that no edition has sent yet (closeout.publish.reissue). Changes an
-- operator signed came from a re-close run, which renders and sends its own edition.
SELECT r.report_date, r.unit_code, r.recorded_at
FROM figure_revision r
WHERE r.kind IN ('correction', 'late_report') AND r.in_edition IS NULL AND r.recorded_by = ''
  AND EXISTS (SELECT 1 FROM delivery d WHERE d.report_date = r.report_date AND d.status = 'sent')
ORDER BY r.report_date, r.recorded_at;

-- name: allocate_bulletin_issue
-- The next number of the year, once per report date: a second call (a re-render, a re-run) changes nothing.
INSERT INTO bulletin_issue (report_date, year, issue_no, issued_on)
SELECT :report_date, :year, COALESCE(MAX(issue_no), 0) + 1, :issued_on FROM bulletin_issue WHERE year = :year
ON CONFLICT (report_date) DO NOTHING;

-- name: select_bulletin_issue
SELECT report_date, year, issue_no, issued_on FROM bulletin_issue WHERE report_date = :report_date;
