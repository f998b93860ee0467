-- The close-out board (closeout.board): read-only, one statement per view, whatever the number of units.
-- Each view is a UNION ALL of tagged selects (the `tag` column says which branch a row comes from); a branch pads
-- the columns it does not have with typed NULLs, so that PostgreSQL can match the branches' types.

-- name: board_matrix
-- 'cell': one row per unit and day with anything on record (a verdict, a file, a reminder, an excusal), with
-- the latest file, the first file's arrival (late or not), the latest file's receipt and the reminders sent.
-- 'edition': one row per bulletin edition, with its sign-off decision and its sent delivery, if any.
WITH files AS (
    SELECT report_date, unit_code, sha256, file_name, received_at,
           MIN(received_at) OVER (PARTITION BY report_date, unit_code) AS first_received_at,
           ROW_NUMBER() OVER (PARTITION BY report_date, unit_code ORDER BY received_at DESC, processed_at DESC) AS newest
    FROM submission
    WHERE report_date >= :first_date AND report_date <= :last_date
),
reminders AS (
    SELECT report_date, unit_code, COUNT(*) AS sent
    FROM notice
    WHERE kind = 'reminder' AND status = 'sent' AND report_date >= :first_date AND report_date <= :last_date
    GROUP BY report_date, unit_code
),
cell_keys AS (
    SELECT report_date, unit_code FROM unit_day WHERE report_date >= :first_date AND report_date <= :last_date
    UNION
    SELECT report_date, unit_code FROM files WHERE newest = 1
    UNION
    SELECT report_date, unit_code FROM reminders
    UNION
    SELECT report_date, unit_code FROM unit_excusal WHERE report_date >= :first_date AND report_date <= :last_date
)
SELECT 'cell' AS tag, k.report_date, k.unit_code,
       d.status, d.detail, x.reason AS excusal_reason,
       f.file_name, f.received_at, f.first_received_at, r.sent_at AS receipt_sent_at,
       COALESCE(m.sent, 0) AS reminders_sent,
       CAST(NULL AS INTEGER) AS edition_no, CAST(NULL AS TEXT) AS edition_kind, CAST(NULL AS TEXT) AS subject,
       CAST(NULL AS TEXT) AS signoff, CAST(NULL AS TEXT) AS sent_at, CAST(NULL AS TEXT) AS recipients
FROM cell_keys k
LEFT JOIN unit_day d ON d.report_date = k.report_date AND d.unit_code = k.unit_code
LEFT JOIN unit_excusal x ON x.report_date = k.report_date AND x.unit_code = k.unit_code
LEFT JOIN files f ON f.report_date = k.report_date AND f.unit_code = k.unit_code AND f.newest = 1
LEFT JOIN notice r ON r.kind = 'receipt' AND r.status = 'sent' AND r.report_date = f.report_date
     AND r.unit_code = f.unit_code AND r.notice_key = f.sha256
LEFT JOIN reminders m ON m.report_date = k.report_date AND m.unit_code = k.unit_code
UNION ALL
SELECT 'edition' AS tag, e.report_date, CAST(NULL AS TEXT) AS unit_code,
       CAST(NULL AS TEXT) AS status, CAST(NULL AS TEXT) AS detail, CAST(NULL AS TEXT) AS excusal_reason,
       CAST(NULL AS TEXT) AS file_name, CAST(NULL AS TEXT) AS received_at, CAST(NULL AS TEXT) AS first_received_at,
       CAST(NULL AS TEXT) AS receipt_sent_at, 0 AS reminders_sent,
       e.edition_no, e.kind AS edition_kind, e.subject, s.decision AS signoff, sent.sent_at, sent.recipients
FROM edition e
LEFT JOIN edition_signoff s ON s.report_date = e.report_date AND s.edition_no = e.edition_no
LEFT JOIN delivery sent ON sent.report_date = e.report_date AND sent.edition_no = e.edition_no AND sent.status = 'sent'
WHERE e.report_date >= :first_date AND e.report_date <= :last_date;

-- name: board_unit_day
-- Everything on record for one unit and day. Shared columns: `at` is the row's own time (updated, marked,
-- received, recorded, sent), `actor` who did it, `reason` a submission's reasons or a revision's or excusal's reason.
-- Borrowed columns: a finding's message in `detail`, a file's processed_at in `line`, a revision's new and old
-- qualifiers in `qualifier` and `note`, a revision's or figure's source file in `sha256`.
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
FROM notice WHERE report_date = :report_date AND unit_code = :unit_code;

-- name: board_punctuality
-- Per unit and day: the verdict ('day'), the first file's arrival and the rejected files ('files'), an excusal.
SELECT 'day' AS tag, report_date, unit_code, status, CAST(NULL AS TEXT) AS first_received_at, 0 AS rejected_files
FROM unit_day WHERE report_date >= :first_date AND report_date <= :last_date
UNION ALL
SELECT 'files', report_date, unit_code, CAST(NULL AS TEXT), MIN(received_at),
       SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END)
FROM submission WHERE report_date >= :first_date AND report_date <= :last_date
GROUP BY report_date, unit_code
UNION ALL
SELECT 'excusal', report_date, unit_code, CAST(NULL AS TEXT), CAST(NULL AS TEXT), 0
FROM unit_excusal WHERE report_date >= :first_date AND report_date <= :last_date;
