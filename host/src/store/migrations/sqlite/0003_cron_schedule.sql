-- Runs of the scheduled jobs, as Magento's cron_schedule: one row per job and scheduled time.
-- The primary key lets exactly one of several server processes claim each scheduled run.
CREATE TABLE cron_schedule (
    job_code     TEXT    NOT NULL,
    scheduled_at INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    status       TEXT    NOT NULL CHECK (status IN ('running', 'success', 'error')),
    deleted_rows INTEGER NOT NULL DEFAULT 0,
    message      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (job_code, scheduled_at)
);
