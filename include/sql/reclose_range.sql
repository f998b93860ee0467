-- Re-closing a range of published days in one run (closeout.close.reclose_range).

-- name: select_published_days_between
SELECT DISTINCT report_date FROM delivery
WHERE status IN ('sending', 'sent') AND report_date >= :first_date AND report_date <= :last_date
ORDER BY report_date;

-- name: select_revisions_signed_since
-- What one re-close changed: the changes to published figures it signed, from its first day on (later days'
-- recalculations included), recorded since it started; a re-run of the same range adds none.
SELECT report_date, unit_code, metric, kind, new_sha256
FROM figure_revision
WHERE kind IN ('correction', 'late_report', 'recalculated') AND report_date >= :first_date
  AND recorded_by = :recorded_by AND recorded_at >= :since
ORDER BY report_date, unit_code, metric, recorded_at;
