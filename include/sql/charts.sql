-- The bulletin's charts (closeout.publish.charts): a few key series over the last 14 days, one query.

-- name: select_series_between
SELECT report_date, unit_code, metric, value FROM figure
WHERE report_date >= :first_date AND report_date <= :last_date AND metric IN :metrics
ORDER BY report_date, unit_code, metric;
