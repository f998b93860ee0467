-- Loading one group of units for one day, set-based: each statement covers the whole group (`IN :unit_codes`)
-- or is run for many rows at once. The caller runs the writes in one transaction.

-- name: select_loaded_submissions
-- The file whose figures are stored now, per unit (at most one per unit and day).
SELECT unit_code, sha256, archived_path, received_at FROM submission
WHERE report_date = :report_date AND status = 'loaded';

-- name: upsert_submission
-- The same bytes judged again keep their row; only a changed verdict (a file sent back after another,
-- a rejection whose cause is gone) updates it.
INSERT INTO submission (report_date, unit_code, sha256, file_name, archived_path, received_at, status, reasons, processed_at)
VALUES (:report_date, :unit_code, :sha256, :file_name, :archived_path, :received_at, :status, :reasons, :processed_at)
ON CONFLICT (report_date, unit_code, sha256) DO UPDATE
SET status = excluded.status, reasons = excluded.reasons, file_name = excluded.file_name,
    processed_at = excluded.processed_at
WHERE submission.status <> excluded.status OR submission.reasons <> excluded.reasons;

-- name: supersede_loaded_submissions
UPDATE submission SET status = 'superseded'
WHERE report_date = :report_date AND unit_code IN :unit_codes AND status = 'loaded';

-- name: select_reported_figures
-- What the units themselves reported; derived (kind C) figures exist even for a unit that sent nothing.
SELECT unit_code, metric, value, qualifier, note, source_sha256 FROM figure
WHERE report_date = :report_date AND unit_code IN :unit_codes AND source_sha256 <> 'derived';

-- name: delete_unit_figures
-- Derived (kind C) figures go too: reconcile_day derives them again from the new flows.
DELETE FROM figure WHERE report_date = :report_date AND unit_code IN :unit_codes;

-- name: delete_load_findings
DELETE FROM finding WHERE report_date = :report_date AND unit_code IN :unit_codes AND stage IN ('load', 'validate');

-- name: insert_figure
INSERT INTO figure (report_date, unit_code, metric, value, qualifier, note, source_sha256, source_rows, attributed_unit)
VALUES (:report_date, :unit_code, :metric, :value, :qualifier, :note, :source_sha256, :source_rows, :attributed_unit);

-- name: insert_revision
INSERT INTO figure_revision (report_date, unit_code, metric, old_value, new_value, old_qualifier, new_qualifier,
                             old_sha256, new_sha256, kind, reason, recorded_at, recorded_by)
VALUES (:report_date, :unit_code, :metric, :old_value, :new_value, :old_qualifier, :new_qualifier,
        :old_sha256, :new_sha256, :kind, :reason, :recorded_at, :recorded_by);

-- name: delete_findings
DELETE FROM finding WHERE report_date = :report_date AND unit_code = :unit_code AND stage = :stage;

-- name: insert_finding
INSERT INTO finding (report_date, unit_code, stage, severity, rule, metric, file_name, row_no, value, message, line)
VALUES (:report_date, :unit_code, :stage, :severity, :rule, :metric, :file, :row, :value, :message, :line);

-- name: upsert_unit_day
-- A re-run changes nothing. (No comment after a statement: batched executemany joins statements with ";".)
INSERT INTO unit_day (report_date, unit_code, status, detail, updated_at)
VALUES (:report_date, :unit_code, :status, :detail, :updated_at)
ON CONFLICT (report_date, unit_code) DO UPDATE
SET status = excluded.status, detail = excluded.detail, updated_at = excluded.updated_at
WHERE unit_day.status <> excluded.status OR unit_day.detail <> excluded.detail;

-- name: upsert_narrative
INSERT INTO narrative (report_date, unit_code, headline, byline, body, sha256)
VALUES (:report_date, :unit_code, :headline, :byline, :body, :sha256)
ON CONFLICT (report_date, unit_code) DO UPDATE
SET headline = excluded.headline, byline = excluded.byline, body = excluded.body, sha256 = excluded.sha256
WHERE narrative.sha256 <> excluded.sha256;
