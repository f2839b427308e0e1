//! Cancelling a run: TerminateJob on every array.

use super::call;
use super::record::BatchRecord;
use crate::context::Context;
use crate::error::Result;

/// Terminates every array of the run (running children are stopped, pending ones cancelled);
/// returns the job ids.
pub(crate) async fn cancel(ctx: &Context, record: &BatchRecord, reason: &str) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for array in &record.arrays {
        call(ctx, "TerminateJob", |batch| batch.terminate_job().job_id(&array.job_id).reason(reason).send()).await?;
        done.push(array.job_id.clone());
    }
    Ok(done)
}
