//! Command-line arguments.

use std::path::PathBuf;

use batchfan::plan::PlanOptions;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Fan out work over every object under an S3 prefix or local folder: plan it, run it on this
/// machine, or run it as one AWS Batch array job.
#[derive(Debug, Parser)]
#[command(name = "batchfan", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List and pack the input into chunks and print the plan; runs nothing.
    Plan(PlanArgs),
    /// Plan, write the manifest and run every chunk (with --local: as processes on this machine).
    Run(RunArgs),
}

/// Output format for results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// What to process and how to pack it.
#[derive(Debug, Args)]
pub struct PlanOptionArgs {
    /// Input: s3://bucket/prefix/ or a local folder.
    #[arg(long, value_name = "URI")]
    pub input: String,
    /// A file (local or s3://) listing keys under --input to process, one per line, instead of
    /// listing --input.
    #[arg(long, value_name = "URI")]
    pub input_list: Option<String>,
    /// Keep only keys matching this glob (repeatable; a glob without `/` matches file names).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip keys matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Most items per chunk [default when no packing option is given: 1000].
    #[arg(long, value_name = "N")]
    pub max_items_per_chunk: Option<u64>,
    /// Most bytes per chunk, e.g. 256MiB [default when no packing option is given: 1GiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_bytes_per_chunk: Option<u64>,
    /// About this many chunks, balanced by bytes.
    #[arg(long, value_name = "N")]
    pub children: Option<u64>,
    /// Split newline-delimited objects larger than SIZE into SIZE ranges at record boundaries.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub split_bytes: Option<u64>,
}

impl PlanOptionArgs {
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            max_items_per_chunk: self.max_items_per_chunk,
            max_bytes_per_chunk: self.max_bytes_per_chunk,
            children: self.children,
            split_bytes: self.split_bytes,
            ..PlanOptions::default()
        }
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    batchfan::size::parse_size(text).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub plan: PlanOptionArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run on this machine, each chunk a process of PROGRAM.
    #[arg(long)]
    pub local: bool,
    #[command(flatten)]
    pub plan: PlanOptionArgs,
    /// Where outputs go: s3://bucket/prefix/ or a local folder (part-NNNNN per chunk).
    #[arg(long, value_name = "URI")]
    pub output: String,
    /// Where to write the manifest [default: OUTPUT/_batchfan/runs/RUN/manifest.jsonl].
    #[arg(long, value_name = "URI")]
    pub manifest: Option<String>,
    /// Children at a time [default: number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Attempts per child; a failed child is retried until this many (1-10, as AWS Batch).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub attempts: u32,
    /// Delete earlier chunk outputs and markers in --output before running.
    #[arg(long)]
    pub overwrite: bool,
    /// Where child logs go [default: a folder under the system temp dir].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The program each child runs, and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM [ARGS]")]
    pub command: Vec<String>,
}
