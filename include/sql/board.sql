-- The close-out board (closeout.board.queries; closeout.board.views builds the pages from the rows): read-only, one
-- statement per view, whatever the number of units.
-- Each view is a UNION ALL of tagged selects (the `tag` column says which branch a row comes from); a branch pads
-- the columns it does not have with typed NULLs, so that PostgreSQL can match the branches' types.

-- name: board_matrix
-- The whole board for a date range in one statement, whatever the number of units: no window, no de-duplication,
-- each branch a scan of one table joined on primary keys; the merging per unit and day is done in Python.
--   'day'       a verdict (unit_day), once per file received that day (with the time its receipt was sent), or
--               once with no file; every file has a verdict (load writes both in one transaction), so:
--   'file'      a file without a verdict: not expected, read so that none is ever lost from the board
--   'reminders' how many reminders went to the unit that day
--   'excusal'   an operator's 标记缺报, with its reason in `detail`
--   'edition'   every bulletin edition: the sign-off decision in `status`, its number in `n`, its sent delivery
SELECT 'day' AS tag, d.report_date, d.unit_code, d.status, d.detail,
       s.file_name, s.received_at, r.sent_at AS receipt_sent_at,
       0 AS n, CAST(NULL AS TEXT) AS edition_kind, CAST(NULL AS TEXT) AS subject, CAST(NULL AS TEXT) AS sent_at,
       CAST(NULL AS TEXT) AS recipients
FROM unit_day d
LEFT JOIN submission s ON s.report_date = d.report_date AND s.unit_code = d.unit_code
LEFT JOIN notice r ON r.kind = 'receipt' AND r.report_date = s.report_date AND r.unit_code = s.unit_code
     AND r.notice_key = s.sha256 AND r.status = 'sent'
WHERE d.report_date >= :first_date AND d.report_date <= :last_date
UNION ALL
SELECT 'file', s.report_date, s.unit_code, CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       s.file_name, s.received_at, r.sent_at,
       0, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM submission s
LEFT JOIN notice r ON r.kind = 'receipt' AND r.report_date = s.report_date AND r.unit_code = s.unit_code
     AND r.notice_key = s.sha256 AND r.status = 'sent'
WHERE s.report_date >= :first_date AND s.report_date <= :last_date
  AND NOT EXISTS (SELECT 1 FROM unit_day d WHERE d.report_date = s.report_date AND d.unit_code = s.unit_code)
UNION ALL
SELECT 'reminders', report_date, unit_code, CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       COUNT(*), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM notice
WHERE kind = 'reminder' AND status = 'sent' AND report_date >= :first_date AND report_date <= :last_date
GROUP BY report_date, unit_code
UNION ALL
SELECT 'excusal', report_date, unit_code, CAST(NULL AS TEXT), reason,
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       0, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM unit_excusal
WHERE report_date >= :first_date AND report_date <= :last_date
UNION ALL
SELECT 'edition', e.report_date, CAST(NULL AS TEXT), s.decision, CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       e.edition_no, e.kind, e.subject, sent.sent_at, sent.recipients
FROM edition e
LEFT JOIN edition_signoff s ON s.report_date = e.report_date AND s.edition_no = e.edition_no
LEFT JOIN delivery sent ON sent.report_date = e.report_date AND sent.edition_no = e.edition_no AND sent.status = 'sent'
WHERE e.report_date >= :first_date AND e.report_date <= :last_date;

-- name: board_unit_day
-- Everything on record for one unit and day. Shared columns: `at` is the row's own time (updated, marked,
-- received, recorded, sent), `actor` who did it, `reason` a submission's reasons or a revision's or excusal's reason.
-- Borrowed columns: a finding's message in `detail`, a file's processed_at in `line`, a revision's new and old
-- qualifiers in `qualifier` and `note`, a revision's or figure's source file in `sha256`.
-- 'published' rows (one per sent delivery of the day, with its sent_at in `at`) say the day's bulletin went out:
-- before that a Viewer sees no figure (closeout.board.views; docs/operations.md, who sees what on the board).
SELECT 'day' AS tag, status, detail, CAST(NULL AS TEXT) AS file_name, CAST(NULL AS TEXT) AS sha256,
       updated_at AS at, CAST(NULL AS TEXT) AS actor, CAST(NULL AS TEXT) AS reason,
       CAST(NULL AS TEXT) AS archived_path, CAST(NULL AS TEXT) AS stage, CAST(NULL AS TEXT) AS severity,
       CAST(NULL AS TEXT) AS rule, CAST(NULL AS TEXT) AS metric, CAST(NULL AS INTEGER) AS row_no,
       CAST(NULL AS TEXT) AS line, CAST(NULL AS DOUBLE PRECISION) AS value, CAST(NULL AS TEXT) AS qualifier,
       CAST(NULL AS TEXT) AS note, CAST(NULL AS DOUBLE PRECISION) AS old_value,
       CAST(NULL AS DOUBLE PRECISION) AS new_value, CAST(NULL AS TEXT) AS kind, CAST(NULL AS TEXT) AS subject
FROM unit_day WHERE report_date = :report_date AND unit_code = :unit_code
UNION ALL
SELECT 'excusal', CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       marked_at, marked_by, reason, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS INTEGER), CAST(NULL AS TEXT),
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS DOUBLE PRECISION),
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM unit_excusal WHERE report_date = :report_date AND unit_code = :unit_code
UNION ALL
SELECT 'file', status, CAST(NULL AS TEXT), file_name, sha256,
       received_at, CAST(NULL AS TEXT), reasons, archived_path, CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS INTEGER), processed_at,
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS DOUBLE PRECISION),
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM submission WHERE report_date = :report_date AND unit_code = :unit_code
UNION ALL
SELECT 'finding', CAST(NULL AS TEXT), message, file_name, CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), stage, severity,
       rule, metric, row_no, line,
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS DOUBLE PRECISION),
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM finding WHERE report_date = :report_date AND unit_code = :unit_code
UNION ALL
SELECT 'figure', CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), source_sha256,
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), metric, CAST(NULL AS INTEGER), CAST(NULL AS TEXT),
       value, qualifier, note, CAST(NULL AS DOUBLE PRECISION),
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM figure WHERE report_date = :report_date AND unit_code = :unit_code
UNION ALL
SELECT 'revision', CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), new_sha256,
       recorded_at, recorded_by, reason, CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), metric, CAST(NULL AS INTEGER), CAST(NULL AS TEXT),
       CAST(NULL AS DOUBLE PRECISION), new_qualifier, old_qualifier, old_value,
       new_value, kind, CAST(NULL AS TEXT)
FROM figure_revision WHERE report_date = :report_date AND unit_code = :unit_code
UNION ALL
SELECT 'notice', status, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       COALESCE(sent_at, started_at), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS INTEGER), CAST(NULL AS TEXT),
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS DOUBLE PRECISION),
       CAST(NULL AS DOUBLE PRECISION), kind, subject
FROM notice WHERE report_date = :report_date AND unit_code = :unit_code
UNION ALL
SELECT 'published', status, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       sent_at, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT),
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS INTEGER), CAST(NULL AS TEXT),
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS DOUBLE PRECISION),
       CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT), CAST(NULL AS TEXT)
FROM delivery WHERE report_date = :report_date AND status = 'sent';

-- name: board_punctuality
-- Per unit and day: the verdict with the first file's arrival and the rejected files ('day'), a file without a
-- verdict ('files': not expected, see board_matrix), an operator's 标记缺报 ('excusal').
WITH files AS (
    SELECT report_date, unit_code, MIN(received_at) AS first_received_at,
           SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END) AS rejected_files
    FROM submission
    WHERE report_date >= :first_date AND report_date <= :last_date
    GROUP BY report_date, unit_code
)
SELECT 'day' AS tag, d.report_date, d.unit_code, d.status, f.first_received_at,
       COALESCE(f.rejected_files, 0) AS rejected_files
FROM unit_day d
LEFT JOIN files f ON f.report_date = d.report_date AND f.unit_code = d.unit_code
WHERE d.report_date >= :first_date AND d.report_date <= :last_date
UNION ALL
SELECT 'files', f.report_date, f.unit_code, CAST(NULL AS TEXT), f.first_received_at, f.rejected_files
FROM files f
WHERE NOT EXISTS (SELECT 1 FROM unit_day d WHERE d.report_date = f.report_date AND d.unit_code = f.unit_code)
UNION ALL
SELECT 'excusal', report_date, unit_code, CAST(NULL AS TEXT), CAST(NULL AS TEXT), 0
FROM unit_excusal
WHERE report_date >= :first_date AND report_date <= :last_date;
