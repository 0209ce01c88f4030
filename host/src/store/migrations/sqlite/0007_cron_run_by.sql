-- Runs started by hand (`cron run`) are recorded beside the scheduled ones, and say so.
ALTER TABLE cron_schedule ADD COLUMN run_by TEXT NOT NULL DEFAULT 'schedule';
