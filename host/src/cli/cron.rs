//! The scheduled cleanup jobs, run by hand or listed.

use clap::Subcommand;

use super::common::open_store;
use crate::clock::{iso8601, now};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Run one job now, or every job when none is named.
    Run {
        /// outdated_authentication_failures_cleanup, expired_tokens_cleanup, nonce_cleanup,
        /// stale_tokens_cleanup or event_outbox_cleanup.
        job: Option<String>,
    },
    /// List the jobs with their schedules and recent runs.
    List,
}

pub(super) async fn cron(settings: Settings, cmd: CronCommand) -> anyhow::Result<()> {
    use crate::jobs::Job;
    let store = open_store(&settings).await?;
    match cmd {
        CronCommand::Run { job } => {
            let jobs = match job {
                None => Job::ALL.to_vec(),
                Some(name) => vec![Job::parse(&name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown job `{name}`; jobs are {}",
                        Job::ALL.map(Job::name).join(", ")
                    )
                })?],
            };
            for job in jobs {
                // Recorded as the scheduler records its runs, so that `cron list` shows it.
                let slot = store.start_manual_run(job.name(), now()).await?;
                let result = job.run(&store, &settings).await;
                let outcome = result
                    .as_ref()
                    .map(|n| *n)
                    .map_err(|e| e as &(dyn std::error::Error + Send + Sync));
                store
                    .finish_job_run(job.name(), slot, now(), outcome)
                    .await?;
                println!("{}: deleted {} rows", job.name(), result?);
            }
        }
        CronCommand::List => {
            println!("{:<42} {:<14} LAST RUN", "JOB", "SCHEDULE");
            for job in Job::ALL {
                let last = store
                    .job_runs(job.name())
                    .await?
                    .into_iter()
                    .next()
                    .map(|run| {
                        format!(
                            "{} {}, {} rows{}",
                            iso8601(run.started_at),
                            run.status,
                            run.deleted_rows,
                            if run.manual { " (by hand)" } else { "" }
                        )
                    })
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<42} {:<14} {last}",
                    job.name(),
                    job.schedule(&settings).as_str()
                );
            }
        }
    }
    Ok(())
}
