//! Runs of the scheduled jobs (`cron_schedule`): claiming a scheduled run so that exactly one
//! server process performs it, recording how it ended, and forgetting old runs.

use super::{Store, StoreError, on_pool};

/// One recorded run of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    /// The run's slot: its scheduled time, or for a run by hand when it started.
    pub scheduled_at: i64,
    pub started_at: i64,
    /// `running`, `success` or `error`.
    pub status: String,
    pub deleted_rows: i64,
    /// Started by hand (`cron run`) rather than by the schedule.
    pub manual: bool,
}

/// Runs kept in `cron_schedule`, in seconds (a day).
const HISTORY_SECONDS: i64 = 86_400;

impl Store {
    /// Claims the run of `job` scheduled at `scheduled_at`; `false` when another process (or an
    /// earlier claim) has it. Old runs of the job are forgotten on the way.
    pub async fn claim_job_run(
        &self,
        job: &str,
        scheduled_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let claimed = on_pool!(self, |p| {
            sqlx::query("DELETE FROM cron_schedule WHERE job_code = $1 AND scheduled_at < $2")
                .bind(job)
                .bind(now - HISTORY_SECONDS)
                .execute(p)
                .await?;
            sqlx::query(
                "INSERT INTO cron_schedule (job_code, scheduled_at, started_at, status)
                 VALUES ($1, $2, $3, 'running') ON CONFLICT DO NOTHING",
            )
            .bind(job)
            .bind(scheduled_at)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
                == 1
        });
        Ok(claimed)
    }

    /// Records how a claimed run ended.
    pub async fn finish_job_run(
        &self,
        job: &str,
        scheduled_at: i64,
        finished_at: i64,
        result: Result<u64, &(dyn std::error::Error + Send + Sync)>,
    ) -> Result<(), StoreError> {
        let (status, deleted, message) = match result {
            Ok(n) => ("success", n as i64, String::new()),
            Err(e) => ("error", 0, e.to_string()),
        };
        on_pool!(self, |p| {
            sqlx::query(
            "UPDATE cron_schedule SET finished_at = $1, status = $2, deleted_rows = $3, message = $4
             WHERE job_code = $5 AND scheduled_at = $6"
        )
        .bind(finished_at)
        .bind(status)
        .bind(deleted)
        .bind(message)
        .bind(job)
        .bind(scheduled_at)
        .execute(p)
        .await
        .map(|_| ())?
        });
        Ok(())
    }

    /// Records the start of a run by hand (`cron run`); answers its slot (the key
    /// [`Store::finish_job_run`] takes): the second it started, moved on past any run already
    /// recorded at that second.
    pub async fn start_manual_run(&self, job: &str, now: i64) -> Result<i64, StoreError> {
        for slot in now..now + 60 {
            let inserted = on_pool!(self, |p| sqlx::query(
                "INSERT INTO cron_schedule (job_code, scheduled_at, started_at, status, run_by)
                 VALUES ($1, $2, $3, 'running', 'manual') ON CONFLICT DO NOTHING",
            )
            .bind(job)
            .bind(slot)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected());
            if inserted == 1 {
                return Ok(slot);
            }
        }
        Err(StoreError::Database(sqlx::Error::Protocol(format!(
            "no free slot to record a run of {job} by hand"
        ))))
    }

    /// The recorded runs of a job, newest first.
    pub async fn job_runs(&self, job: &str) -> Result<Vec<JobRun>, StoreError> {
        let rows: Vec<(i64, i64, String, i64, String)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT scheduled_at, started_at, status, deleted_rows, run_by FROM cron_schedule
             WHERE job_code = $1 ORDER BY started_at DESC, scheduled_at DESC"
        )
        .bind(job)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(
                |(scheduled_at, started_at, status, deleted_rows, run_by)| JobRun {
                    scheduled_at,
                    started_at,
                    status,
                    deleted_rows,
                    manual: run_by == "manual",
                },
            )
            .collect())
    }
}
