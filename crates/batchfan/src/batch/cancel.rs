//! Cancelling a run: TerminateJob on every array.

use super::call;
use super::record::RunRecord;
use crate::client::Client;
use crate::error::Result;

/// Terminates every array of the run (running children are stopped, pending ones cancelled).
pub async fn cancel(client: &Client, record: &RunRecord, reason: &str) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for array in &record.arrays {
        call(client, "TerminateJob", |batch| batch.terminate_job().job_id(&array.job_id).reason(reason).send()).await?;
        done.push(array.job_id.clone());
    }
    Ok(done)
}
