//! A worker whose handler stacks ecosystem readers and writers on the harness: every CSV input
//! (decompressed when it is `.csv.gz` or `.csv.zst`) is parsed by `csv-async` straight off the
//! [`batchfan_worker::ItemReader`] (an `AsyncRead`), and each row is written as one JSON object
//! line through a tokio `BufWriter` over the chunk's [`batchfan_worker::Output`] (an `AsyncWrite`).
//!
//! ```text
//! batchfan run --local --input data/ --output rows/ -- csv_to_jsonl
//! ```
//!
//! A CSV header is only in an object's first line, so plan CSV inputs without `--split-bytes`.

use std::process::ExitCode;

use batchfan_worker::{BoxError, Chunk, handler_fn};
use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};

async fn handler(chunk: Chunk) -> Result<(), BoxError> {
    let mut out = BufWriter::new(chunk.output());
    for item in chunk.items() {
        let reader = chunk.open(item).await?;
        let mut csv = csv_async::AsyncReaderBuilder::new().create_reader(reader);
        let headers = csv.headers().await?.clone();
        let mut records = csv.records();
        while let Some(record) = records.next().await {
            let record = record?;
            let mut row = serde_json::Map::new();
            row.insert("_key".into(), item.key.clone().into());
            for (name, value) in headers.iter().zip(record.iter()) {
                row.insert(name.into(), value.into());
            }
            let mut line = serde_json::to_vec(&row)?;
            line.push(b'\n');
            out.write_all(&line).await?;
        }
    }
    // Flushes the buffer into the output; the harness commits it after the handler returns.
    out.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    batchfan_worker::run(handler_fn(handler)).await
}
