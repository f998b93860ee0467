-- The reporting store. Portable SQL (SQLite and PostgreSQL); dates are ISO text 'YYYY-MM-DD',
-- times ISO text in Asia/Shanghai. Keys are natural: (report_date, unit_code, ...).

-- name: create_submission
CREATE TABLE IF NOT EXISTS submission (
    report_date    TEXT NOT NULL,
    unit_code      TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    archived_path  TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    status         TEXT NOT NULL,            -- loaded | rejected | superseded
    reasons        TEXT NOT NULL DEFAULT '', -- one line per hard finding
    processed_at   TEXT NOT NULL,
    PRIMARY KEY (report_date, unit_code, sha256)
);

-- name: create_figure
CREATE TABLE IF NOT EXISTS figure (
    report_date      TEXT NOT NULL,
    unit_code        TEXT NOT NULL,
    metric           TEXT NOT NULL,
    value            DOUBLE PRECISION NOT NULL,
    qualifier        TEXT NOT NULL DEFAULT '',  -- 余/约/… kept for soft metrics
    note             TEXT NOT NULL DEFAULT '',
    source_sha256    TEXT NOT NULL,             -- submission it came from; 'derived' for C metrics
    source_rows      TEXT NOT NULL DEFAULT '',
    attributed_unit  TEXT NOT NULL DEFAULT '',  -- another unit the figure belongs to, kept beside the reporter
    PRIMARY KEY (report_date, unit_code, metric)
);

-- name: create_figure_revision
-- History is never overwritten: every changed figure keeps old and new, and why.
CREATE TABLE IF NOT EXISTS figure_revision (
    report_date    TEXT NOT NULL,
    unit_code      TEXT NOT NULL,
    metric         TEXT NOT NULL,
    old_value      DOUBLE PRECISION,
    new_value      DOUBLE PRECISION,
    old_qualifier  TEXT NOT NULL DEFAULT '',
    new_qualifier  TEXT NOT NULL DEFAULT '',
    old_sha256     TEXT NOT NULL,
    new_sha256     TEXT NOT NULL,
    kind           TEXT NOT NULL,               -- revision (before publication) | correction (after) | late_report
                                                -- (补报, metric '') | recalculated (a later day's derived figure)
    reason         TEXT NOT NULL DEFAULT '',
    recorded_by    TEXT NOT NULL DEFAULT '',    -- the Airflow user who signed it; '' when the county's file said so
    recorded_at    TEXT NOT NULL,
    announced_in   TEXT,                        -- report date of the next day's bulletin that listed it
    in_edition     INTEGER,                     -- the same-day 补报/更正 edition that sent it to readers
    PRIMARY KEY (report_date, unit_code, metric, new_sha256)
);

-- name: create_finding
CREATE TABLE IF NOT EXISTS finding (
    report_date  TEXT NOT NULL,
    unit_code    TEXT NOT NULL,
    stage        TEXT NOT NULL,   -- load | validate | reconcile | narrative
    severity     TEXT NOT NULL,   -- hard | soft | missing
    rule         TEXT NOT NULL,
    metric       TEXT NOT NULL DEFAULT '',
    file_name    TEXT NOT NULL DEFAULT '',
    row_no       INTEGER,
    value        TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL,
    line         TEXT NOT NULL
);

-- name: create_finding_index
CREATE INDEX IF NOT EXISTS finding_by_day ON finding (report_date, unit_code, stage);

-- name: create_unit_day
CREATE TABLE IF NOT EXISTS unit_day (
    report_date  TEXT NOT NULL,
    unit_code    TEXT NOT NULL,
    status       TEXT NOT NULL,   -- loaded | cleared | break | rejected | missing | absent
    detail       TEXT NOT NULL DEFAULT '',
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (report_date, unit_code)
);

-- name: create_narrative
CREATE TABLE IF NOT EXISTS narrative (
    report_date  TEXT NOT NULL,
    unit_code    TEXT NOT NULL,
    headline     TEXT NOT NULL,
    byline       TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL DEFAULT '',
    sha256       TEXT NOT NULL,
    PRIMARY KEY (report_date, unit_code)
);

-- name: create_edition
-- Every bulletin rendered is an edition: immutable, its files under <outbox>/<date>/<NN>/, never overwritten.
-- Approval and email act on an edition; what is mailed is exactly its files (content_sha256 checked).
CREATE TABLE IF NOT EXISTS edition (
    report_date     TEXT NOT NULL,
    edition_no      INTEGER NOT NULL,
    kind            TEXT NOT NULL,   -- official (正式) | late_report (补报) | correction (更正)
    subject         TEXT NOT NULL,
    content_sha256  TEXT NOT NULL,   -- of bulletin.html + bulletin.txt + the CSV, as written
    attachment_name TEXT NOT NULL,
    announces       TEXT NOT NULL DEFAULT '[]',  -- JSON: the figure revisions it lists, each [date, unit, metric, sha]
    outline         TEXT NOT NULL DEFAULT '{}',  -- JSON: the summary, edition lines and notes the approver reads
    rendered_at     TEXT NOT NULL,
    PRIMARY KEY (report_date, edition_no)
);

-- name: create_edition_signoff
-- 审核签发: an edition that must wait for a person before it is mailed, and their decision (kept forever).
CREATE TABLE IF NOT EXISTS edition_signoff (
    report_date   TEXT NOT NULL,
    edition_no    INTEGER NOT NULL,
    reasons       TEXT NOT NULL,   -- why it waits, one per line
    requested_at  TEXT NOT NULL,
    decision      TEXT NOT NULL,   -- pending | approved | rejected
    decided_by    TEXT,
    decided_at    TEXT,
    comment       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (report_date, edition_no)
);

-- name: create_delivery
-- One row per attempt to mail an edition, written before sending; never deleted. At most one attempt per
-- edition is `sent`; an operator's decision about an attempt is a delivery_event, not a deletion.
CREATE TABLE IF NOT EXISTS delivery (
    report_date     TEXT NOT NULL,
    edition_no      INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    status          TEXT NOT NULL,   -- sending | sent | refused (the server said no) | released (an operator: did not arrive)
    subject         TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    content_sha256  TEXT NOT NULL,   -- the edition's hash, checked against its files just before sending
    started_at      TEXT NOT NULL,
    sent_at         TEXT,
    PRIMARY KEY (report_date, edition_no, attempt)
);

-- name: create_delivery_event
-- Who changed a delivery's state by hand, when and why (closeout confirm-delivery / retry-delivery); found_on_disk:
-- a message in the outbox the store had no record of (its file and Message-ID in `reason`), recorded as unconfirmed.
CREATE TABLE IF NOT EXISTS delivery_event (
    report_date  TEXT NOT NULL,
    edition_no   INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    event        TEXT NOT NULL,   -- confirmed | released | released_after_sent | found_on_disk
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           TEXT NOT NULL
);

-- name: create_notice
-- Every message to a county or to ops other than the bulletin: receipts (key: the file's SHA-256),
-- reminders (key: the reminder time), the deadline alert. At most one per key: written before sending.
CREATE TABLE IF NOT EXISTS notice (
    kind         TEXT NOT NULL,   -- receipt | reminder | deadline_alert
    report_date  TEXT NOT NULL,
    unit_code    TEXT NOT NULL,   -- '' for a day-level notice
    notice_key   TEXT NOT NULL,
    status       TEXT NOT NULL,   -- sending | sent | released (refused, or an operator: did not arrive; sent again)
    subject      TEXT NOT NULL,
    recipients   TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    body         TEXT NOT NULL,   -- the text as sent, for the record
    started_at   TEXT NOT NULL,
    sent_at      TEXT,
    PRIMARY KEY (kind, report_date, unit_code, notice_key)
);

-- name: create_notice_event
-- Appended, never changed: a notice released by a refusal, found in the outbox without a record, or decided by an
-- operator (closeout confirm-notice / retry-notice), with who, why and the Message-ID of the attempt it was about.
CREATE TABLE IF NOT EXISTS notice_event (
    kind         TEXT NOT NULL,
    report_date  TEXT NOT NULL,
    unit_code    TEXT NOT NULL,
    notice_key   TEXT NOT NULL,
    event        TEXT NOT NULL,   -- refused | found_on_disk | confirmed | released | released_after_sent
    message_id   TEXT NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           TEXT NOT NULL
);

-- name: create_unit_excusal
-- An operator's decision that a unit will not report on a day (标记缺报): the day may close without it.
CREATE TABLE IF NOT EXISTS unit_excusal (
    report_date  TEXT NOT NULL,
    unit_code    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    marked_by    TEXT NOT NULL,
    marked_at    TEXT NOT NULL,
    PRIMARY KEY (report_date, unit_code)
);

-- name: create_unit_excusal_history
-- Every 标记缺报 decision, appended, never changed: unit_excusal holds the latest, this holds them all.
CREATE TABLE IF NOT EXISTS unit_excusal_history (
    report_date  TEXT NOT NULL,
    unit_code    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    marked_by    TEXT NOT NULL,
    marked_at    TEXT NOT NULL
);

-- name: create_bulletin_issue
-- 第N期: the day's bulletin takes the next number of its report date's year the first time it is rendered, kept
-- forever; its 补报/更正 editions and every re-render carry the same number (an issue is never renumbered).
CREATE TABLE IF NOT EXISTS bulletin_issue (
    report_date   TEXT NOT NULL PRIMARY KEY,
    year          INTEGER NOT NULL,
    issue_no      INTEGER NOT NULL,
    issued_on     TEXT NOT NULL,   -- the local date it was first rendered: the 印发 date on every edition
    UNIQUE (year, issue_no)
);

-- name: backfill_bulletin_issues
-- A store from before 第N期: every day with an edition takes its number in report-date order within its year.
INSERT INTO bulletin_issue (report_date, year, issue_no, issued_on)
SELECT report_date, CAST(SUBSTR(report_date, 1, 4) AS INTEGER),
       ROW_NUMBER() OVER (PARTITION BY SUBSTR(report_date, 1, 4) ORDER BY report_date),
       SUBSTR(MIN(rendered_at), 1, 10)
FROM edition GROUP BY report_date;

-- name: backfill_excusal_history
INSERT INTO unit_excusal_history (report_date, unit_code, reason, marked_by, marked_at)
SELECT report_date, unit_code, reason, marked_by, marked_at FROM unit_excusal;
