-- Reading a day and its history for reconciliation and the bulletin.

-- name: select_figures_between
SELECT report_date, unit_code, metric, value, qualifier, note, attributed_unit, source_sha256 FROM figure
WHERE report_date >= :first_date AND report_date <= :last_date
ORDER BY report_date, unit_code, metric;

-- name: delete_derived_figures
DELETE FROM figure WHERE report_date = :report_date AND source_sha256 = 'derived';

-- name: insert_derived_figure
INSERT INTO figure (report_date, unit_code, metric, value, qualifier, note, source_sha256, source_rows, attributed_unit)
VALUES (:report_date, :unit_code, :metric, :value, :qualifier, :note, :source_sha256, :source_rows, :attributed_unit);

-- name: select_unit_days
SELECT unit_code, status, detail FROM unit_day WHERE report_date = :report_date;

-- name: select_findings
SELECT unit_code, stage, severity, rule, metric, file_name, row_no, value, message, line FROM finding
WHERE report_date = :report_date ORDER BY unit_code, stage, row_no, rule;

-- name: select_latest_submissions
SELECT unit_code, status, file_name, reasons, received_at FROM submission
WHERE report_date = :report_date ORDER BY unit_code, processed_at;

-- name: select_day_revisions
SELECT report_date, unit_code, metric, old_value, new_value, old_qualifier, new_qualifier, kind, reason
FROM figure_revision WHERE report_date = :report_date AND kind = 'revision'
ORDER BY unit_code, metric, recorded_at;

-- name: select_corrections_to_announce
-- Corrections of earlier days go into the first bulletin rendered after them, and stay there on re-runs.
SELECT report_date, unit_code, metric, old_value, new_value, old_qualifier, new_qualifier, new_sha256, kind, reason
FROM figure_revision
WHERE kind IN ('correction', 'late_report') AND report_date < :report_date
  AND (announced_in IS NULL OR announced_in = :report_date)
ORDER BY report_date, unit_code, metric, recorded_at;



-- name: select_narratives
SELECT unit_code, headline, byline, body FROM narrative WHERE report_date = :report_date ORDER BY unit_code;

-- name: select_flow_totals_until
-- Cumulative (kind C) figures are derived by the city: the sum of the unit's flows since the round began.
SELECT unit_code, SUM(value) AS total FROM figure
WHERE metric = :metric AND report_date <= :report_date GROUP BY unit_code;

-- name: delete_stage_findings
DELETE FROM finding WHERE report_date = :report_date AND stage = :stage;

-- name: select_unit_days_between
SELECT report_date, unit_code, status FROM unit_day WHERE report_date >= :first_date AND report_date <= :last_date;

-- name: select_derived_figures
SELECT unit_code, metric, value FROM figure WHERE report_date = :report_date AND source_sha256 = 'derived';

-- name: select_published_days_after
-- The days closed after a re-closed one: their bulletins went out, and what they carried over may now change.
SELECT DISTINCT report_date FROM delivery WHERE status = 'sent' AND report_date > :report_date ORDER BY report_date;

-- name: select_hard_findings
SELECT unit_code, rule, metric, line FROM finding WHERE report_date = :report_date AND severity = 'hard'
ORDER BY unit_code, rule, metric;
