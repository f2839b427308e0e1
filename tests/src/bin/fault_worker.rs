//! A worker for fault-injection tests: copies each item's records to the output, upper-cased,
//! after writing part of its output. Faults come from the environment:
//! `FAULT_SLEEP_MS` (pause after the first item, so a test can kill or SIGTERM it mid-chunk),
//! `FAULT_PANIC=1` (panic after the first item), `FAULT_FAIL_UNTIL_ATTEMPT=N` (fail attempts below N),
//! `FAULT_FAIL_CHUNK=N` (fail every attempt of chunk N: a poison chunk).

use std::process::ExitCode;

use batchfan_worker::{BoxError, Chunk, handler_fn};

async fn handler(chunk: Chunk) -> Result<(), BoxError> {
    let env_num = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    if env_num("FAULT_FAIL_CHUNK") == Some(chunk.index()) {
        return Err(format!("injected poison in chunk {}", chunk.index()).into());
    }
    if env_num("FAULT_FAIL_UNTIL_ATTEMPT").is_some_and(|n| u64::from(chunk.attempt()) < n) {
        return Err(format!("injected failure on attempt {}", chunk.attempt()).into());
    }
    let output = chunk.output();
    for (i, item) in chunk.items().iter().enumerate() {
        let mut reader = chunk.open(item).await?;
        while let Some(record) = reader.next_record().await? {
            output.write(&record.to_ascii_uppercase()).await?;
            output.write(b"\n").await?;
        }
        if i == 0 {
            if std::env::var("FAULT_PANIC").is_ok() {
                panic!("injected panic in chunk {}", chunk.index());
            }
            if let Some(ms) = env_num("FAULT_SLEEP_MS") {
                eprintln!("fault_worker: sleeping {ms} ms with partial output");
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    batchfan_worker::run(handler_fn(handler)).await
}
