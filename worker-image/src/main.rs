//! `batchfan-worker`: the default worker program, with built-in handlers.
//!
//! ```text
//! batchfan-worker wordcount    count words of newline-delimited text: `word<TAB>count` lines
//! ```

mod wordcount;

use std::process::ExitCode;

use batchfan_worker::{exit, handler_fn};

const USAGE: &str = "usage: batchfan-worker <HANDLER>

Runs one AWS Batch array child (or a `batchfan run --local` child): reads its chunk from
the manifest in BATCHFAN_MANIFEST, runs the handler, commits OUTPUT/part-NNNNN once.

Handlers:
  wordcount   count words (split on ASCII whitespace, case kept) in newline-delimited text;
              writes `word<TAB>count` lines sorted by word; invalid UTF-8 is counted byte-wise

Exit codes: 0 committed (or already), 1 handler failed, 2 bad configuration,
3 input changed since planning, 75 transient storage error, 143 SIGTERM before commit";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["wordcount"] => batchfan_worker::run(handler_fn(wordcount::handler)).await,
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("batchfan-worker: unknown arguments {args:?}\n\n{USAGE}");
            ExitCode::from(exit::CONFIG as u8)
        }
    }
}
