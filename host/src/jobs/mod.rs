//! Scheduled cleanups, as Magento's `crontab.xml` jobs of the Integration module, and the
//! scheduler that runs them inside `serve`.
//!
//! Each job deletes one kind of dead data in bounded batches (see [`crate::store`]), so that a
//! million expired rows never hold the database long enough to stall requests. The scheduler
//! computes each job's next run from its cron expression (UTC) and claims that run in
//! `cron_schedule` before starting it: when several server processes share a database, each
//! scheduled run happens exactly once. `integration-host cron run [JOB]` runs jobs at once.

use std::time::Duration;

use crate::clock::now;
use crate::config::{CronSchedule, Settings};
use crate::domain::AccountKind;
use crate::store::{Store, StoreError};

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Sign-in failure records whose lock has expired.
    OutdatedAuthenticationFailures,
    /// Expired opaque admin and customer tokens, and revocation entries that no unexpired
    /// token can predate.
    ExpiredTokens,
    /// Nonces older than the retention (and never younger than twice the timestamp window).
    Nonces,
    /// Integration verifier and request tokens never exchanged within the retention.
    StaleTokens,
    /// Events every async observer has taken, and events and given-up deliveries past
    /// `events.retention_hours`.
    EventOutbox,
}

impl Job {
    pub const ALL: [Job; 5] = [
        Job::OutdatedAuthenticationFailures,
        Job::ExpiredTokens,
        Job::Nonces,
        Job::StaleTokens,
        Job::EventOutbox,
    ];

    /// The job's name, as configuration and the CLI write it.
    pub fn name(self) -> &'static str {
        match self {
            Job::OutdatedAuthenticationFailures => "outdated_authentication_failures_cleanup",
            Job::ExpiredTokens => "expired_tokens_cleanup",
            Job::Nonces => "nonce_cleanup",
            Job::StaleTokens => "stale_tokens_cleanup",
            Job::EventOutbox => "event_outbox_cleanup",
        }
    }

    /// ```
    /// use integration_host::jobs::Job;
    /// assert_eq!(Job::parse("nonce_cleanup"), Some(Job::Nonces));
    /// assert_eq!(Job::parse("nonces"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    /// The configured schedule.
    pub fn schedule(self, settings: &Settings) -> &CronSchedule {
        let c = &settings.cron;
        match self {
            Job::OutdatedAuthenticationFailures => &c.outdated_authentication_failures_cleanup,
            Job::ExpiredTokens => &c.expired_tokens_cleanup,
            Job::Nonces => &c.nonce_cleanup,
            Job::StaleTokens => &c.stale_tokens_cleanup,
            Job::EventOutbox => &c.event_outbox_cleanup,
        }
    }

    /// Runs the job once; answers the rows deleted.
    pub async fn run(self, store: &Store, settings: &Settings) -> Result<u64, StoreError> {
        let t = now();
        let retention = (settings.cron.retention_minutes as i64).saturating_mul(60);
        match self {
            Job::OutdatedAuthenticationFailures => store.delete_expired_failures(t).await,
            Job::ExpiredTokens => {
                let tokens = &settings.tokens;
                let admin = i64::from(tokens.opaque_admin_lifetime_hours) * 3600;
                let customer = i64::from(tokens.opaque_customer_lifetime_hours) * 3600;
                let mut n = store
                    .delete_user_tokens_before(AccountKind::Admin, t - admin)
                    .await?;
                n += store
                    .delete_user_tokens_before(AccountKind::Customer, t - customer)
                    .await?;
                // A JWT issued before revoke_before lives at most the longest lifetime (plus
                // the clock skew its iat may have): after that the entry refuses nothing.
                let longest = i64::from(
                    tokens
                        .admin_lifetime_minutes
                        .max(tokens.customer_lifetime_minutes),
                ) * 60;
                n += store.delete_revocations_before(t - longest - 120).await?;
                n += store.delete_expired_admin_sessions(t).await?;
                Ok(n)
            }
            Job::Nonces => {
                let window = settings.oauth.timestamp_window_seconds as i64;
                let keep = retention.max(window.saturating_mul(2));
                store.delete_nonces_before(t - keep).await
            }
            Job::StaleTokens => {
                let window = settings.oauth.consumer_exchange_window_seconds as i64;
                store
                    .delete_stale_handshake_tokens(t - retention.max(window))
                    .await
            }
            Job::EventOutbox => {
                let keep = (settings.events.retention_hours as i64).saturating_mul(3600);
                store.delete_settled_events(t - keep).await
            }
        }
    }
}

/// Runs the jobs on their schedules until the returned handle is aborted.
pub fn spawn_scheduler(store: Store, settings: Settings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut next: Vec<(Job, i64)> = Job::ALL
            .iter()
            .map(|j| (*j, j.schedule(&settings).next_after(now())))
            .collect();
        loop {
            let due = next.iter().map(|(_, t)| *t).min().unwrap_or(i64::MAX);
            if due == i64::MAX {
                return;
            }
            let wait = (due - now()).max(0) as u64;
            tokio::time::sleep(Duration::from_secs(wait)).await;
            let t = now();
            for (job, at) in next.iter_mut() {
                if *at > t {
                    continue;
                }
                let scheduled = *at;
                *at = job.schedule(&settings).next_after(t);
                match store.claim_job_run(job.name(), scheduled, t).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(job = job.name(), error = %e, "cannot claim a scheduled run");
                        continue;
                    }
                }
                let result = job.run(&store, &settings).await;
                match &result {
                    Ok(n) => tracing::info!(job = job.name(), deleted = n, "scheduled job done"),
                    Err(e) => tracing::error!(job = job.name(), error = %e, "scheduled job failed"),
                }
                let outcome = result
                    .as_ref()
                    .map(|n| *n)
                    .map_err(|e| e as &(dyn std::error::Error + Send + Sync));
                if let Err(e) = store
                    .finish_job_run(job.name(), scheduled, now(), outcome)
                    .await
                {
                    tracing::warn!(job = job.name(), error = %e, "cannot record a scheduled run");
                }
            }
        }
    })
}
