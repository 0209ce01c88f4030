//! Runs of the scheduled jobs (`cron_schedule`): claiming a scheduled run so that exactly one
//! server process performs it, recording how it ended, and forgetting old runs.

use super::{Store, StoreError, on_pool};

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

    /// The recorded runs of a job, newest first: (scheduled_at, status, deleted rows).
    pub async fn job_runs(&self, job: &str) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let rows = on_pool!(self, |p| sqlx::query_as(
            "SELECT scheduled_at, status, deleted_rows FROM cron_schedule
             WHERE job_code = $1 ORDER BY scheduled_at DESC"
        )
        .bind(job)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }
}
