//! `batchfan-worker`: the default worker program, with built-in handlers.
//!
//! ```text
//! batchfan-worker wordcount    count words of newline-delimited text: `word<TAB>count` lines
//! batchfan-worker count        one `key<TAB>bytes<TAB>newlines` line per item
//! batchfan-worker exec [OPTIONS] -- PROGRAM ARGS...   any program as the worker (`exec --help`)
//! ```

mod count;
mod wordcount;

use std::process::ExitCode;

use std::sync::Arc;

use batchfan_worker::exec::{self, ExecOptions};
use batchfan_worker::{exit, handler_fn};

const USAGE: &str = "usage: batchfan-worker <HANDLER>
       batchfan-worker --version

Runs one AWS Batch array child (or a `batchfan run --local` child): reads its chunk from
the manifest in BATCHFAN_MANIFEST, runs the handler, commits OUTPUT/part-NNNNN once.

Handlers:
  wordcount   count words (split on ASCII whitespace, case kept) in newline-delimited text;
              writes `word<TAB>count` lines sorted by word; invalid UTF-8 is counted byte-wise
  count       one `key<TAB>bytes<TAB>newlines` line per item (of the decompressed bytes): a
              check of what a child reads, and the handler the read benchmarks use
  exec [OPTIONS] -- PROGRAM ARGS...
              run any program as the worker (it needs to know nothing of S3): once per item
              (the input as the file {input} or on stdin) or once per chunk ({inputs}); its
              output is committed exactly once. `batchfan-worker exec --help` has every option
              (--per-item, --per-chunk, --stdin, --suffix, --strip-compression-suffix, --raw,
              --ok-exit-codes, --item-failures, --tolerated-item-failures) and placeholder

Exit codes: 0 committed (or already), 1 handler failed, 2 bad configuration,
3 input changed since planning, 4 fenced (the run no longer holds its output: a stale child),
75 transient storage error (or a full disk), 143 SIGTERM before commit; under exec, a failed
program's own exit code";

fn main() -> ExitCode {
    // First, before the runtime's threads exist (they inherit it): a SIGTERM from here until the
    // worker's handler is installed waits for the handler instead of killing the process.
    batchfan_worker::hold_sigterm();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(serve()),
        Err(e) => {
            eprintln!("batchfan-worker: cannot start the async runtime: {e}");
            ExitCode::from(exit::TRANSIENT as u8)
        }
    }
}

async fn serve() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        // Every subcommand's `--help` is its own (before `--`, where the program's own begin).
        ["exec", rest @ ..] if rest.iter().take_while(|a| **a != "--").any(|a| matches!(*a, "-h" | "--help")) => {
            println!("{}", exec::HELP);
            ExitCode::SUCCESS
        }
        ["wordcount", "-h" | "--help"] => {
            println!("usage: batchfan-worker wordcount\n\n{}", handler_help("wordcount"));
            ExitCode::SUCCESS
        }
        ["count", "-h" | "--help"] => {
            println!("usage: batchfan-worker count\n\n{}", handler_help("count"));
            ExitCode::SUCCESS
        }
        ["wordcount"] => batchfan_worker::run(handler_fn(wordcount::handler)).await,
        ["count"] => batchfan_worker::run(handler_fn(count::handler)).await,
        ["exec", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            match ExecOptions::parse(&rest) {
                Ok(options) => {
                    let options = Arc::new(options);
                    batchfan_worker::run(handler_fn(move |chunk| exec::handle(options.clone(), chunk))).await
                }
                Err(e) => {
                    eprintln!("batchfan-worker exec: {e}\n\n{}", exec::HELP);
                    ExitCode::from(exit::CONFIG as u8)
                }
            }
        }
        ["-V" | "--version"] => {
            println!("batchfan-worker {}", batchfan_worker::VERSION);
            ExitCode::SUCCESS
        }
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

/// The lines of [`USAGE`] that describe handler `name`.
fn handler_help(name: &str) -> String {
    let lines: Vec<&str> = USAGE.lines().collect();
    let start = lines.iter().position(|l| l.trim_start().starts_with(name)).unwrap_or(0);
    let end = lines[start + 1..]
        .iter()
        .position(|l| !l.starts_with("              ") && !l.trim().is_empty() || l.trim().is_empty())
        .map_or(lines.len(), |p| start + 1 + p);
    lines[start..end].join("\n")
}
