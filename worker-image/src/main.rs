//! `batchfan-worker`: the default worker program, with built-in handlers.
//!
//! ```text
//! batchfan-worker wordcount    count words of newline-delimited text: `word<TAB>count` lines
//! batchfan-worker count        one `key<TAB>bytes<TAB>newlines` line per item
//! batchfan-worker exec [--per-item | --per-chunk] [--stdin] [--suffix EXT] [--raw] -- PROGRAM ARGS...
//! ```

mod count;
mod wordcount;

use std::process::ExitCode;

use std::sync::Arc;

use batchfan_worker::exec::{self, ExecOptions};
use batchfan_worker::{exit, handler_fn};

const USAGE: &str = "usage: batchfan-worker <HANDLER>

Runs one AWS Batch array child (or a `batchfan run --local` child): reads its chunk from
the manifest in BATCHFAN_MANIFEST, runs the handler, commits OUTPUT/part-NNNNN once.

Handlers:
  wordcount   count words (split on ASCII whitespace, case kept) in newline-delimited text;
              writes `word<TAB>count` lines sorted by word; invalid UTF-8 is counted byte-wise
  count       one `key<TAB>bytes<TAB>newlines` line per item (of the decompressed bytes): a
              check of what a child reads, and the handler the read benchmarks use
  exec [--per-item | --per-chunk] [--stdin] [--suffix EXT] [--raw] -- PROGRAM ARGS...
              run any program as the worker (it needs to know nothing of S3):
              --per-item (default): once per item; the input (decompressed unless --raw) is
                the file {input}, or stdin with --stdin; the program writes {output}, or stdout;
                that is committed as OUTPUT/<input key><EXT> (a 1:1 transform mirrors the
                input tree; a split range adds .range-START-END before EXT)
              --per-chunk: once per chunk; {inputs} is a file listing the local copies of the
                chunk's inputs, one path a line; {output} (or stdout) becomes OUTPUT/part-NNNNN
              placeholders in ARGS: {input} {output} {inputs} {key} {index} {attempt}
              a non-zero exit fails the chunk with the program's exit code and its last stderr
              lines; after SIGTERM the program runs on until BATCHFAN_STOP_TIMEOUT, then its
              process group gets SIGTERM and, 3 s later, SIGKILL. The chunk's completion marker
              (written after all its outputs) is what says the chunk is complete: readers of
              mirrored outputs trust the markers (or the run report), not the objects alone.

Exit codes: 0 committed (or already), 1 handler failed, 2 bad configuration,
3 input changed since planning, 75 transient storage error (or a full disk), 143 SIGTERM
before commit; under exec, a failed program's own exit code";

#[tokio::main]
async fn main() -> ExitCode {
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
