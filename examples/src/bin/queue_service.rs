//! A queue-driven service whose messages are not batchfan chunks, on the same harness: the same
//! long polling, visibility heartbeat, delete-after-success and SIGTERM drain as chunk workers.
//!
//! Each message is a line of text; the service writes it upper-cased to `OUT_DIR/<id>.txt`. A
//! message starting with `poison` can never succeed: the handler says so with [`DeadLetter`],
//! and the harness moves it to the dead-letter queue at once instead of retrying it.
//!
//! ```text
//! BATCHFAN_QUEUE_URL=https://sqs.../work OUT_DIR=/tmp/out cargo run -p batchfan-examples --bin queue_service
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use batchfan_worker::BoxError;
use batchfan_worker::queue::{DeadLetter, Message, message_handler_fn};

async fn handle(message: Message) -> Result<(), BoxError> {
    if message.body().starts_with("poison") {
        return Err(DeadLetter(format!("cannot process `{}`: retrying will not help", message.body())).into());
    }
    let dir = PathBuf::from(std::env::var("OUT_DIR").map_err(|_| "set OUT_DIR")?);
    let path = dir.join(format!("{}.txt", message.id()));
    tokio::fs::write(&path, message.body().to_uppercase()).await?;
    batchfan_worker::tracing::info!(attempt = message.receive_count(), path = %path.display(), "handled");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    batchfan_worker::queue::run(message_handler_fn(handle)).await
}
