//! A custom worker on the harness: per item, count records and their bytes, and write
//! `key<TAB>range_start<TAB>records<TAB>bytes` lines. Run it as the program of a fan-out:
//!
//! ```text
//! batchfan run --local --input DATA --output OUT --split-bytes 64MiB -- target/debug/custom_worker
//! ```

use std::process::ExitCode;

use batchfan_worker::{BoxError, Chunk, handler_fn};

async fn record_stats(chunk: Chunk) -> Result<(), BoxError> {
    let output = chunk.output();
    for item in chunk.items() {
        let mut reader = chunk.open(item).await?;
        let (mut records, mut bytes) = (0u64, 0u64);
        while let Some(record) = reader.next_record().await? {
            records += 1;
            bytes += record.len() as u64;
        }
        let start = item.range.map_or(0, |r| r[0]);
        // Logged with the chunk's run id, index and attempt (the harness's span).
        batchfan_worker::tracing::info!(key = %item.key, start, records, bytes, "item done");
        output.write(format!("{}\t{start}\t{records}\t{bytes}\n", item.key).as_bytes()).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    batchfan_worker::run(handler_fn(record_stats)).await
}
