//! `batchfan run --local`.

use std::process::ExitCode;
use std::time::Instant;

use batchfan::local::{self, LocalOptions};
use batchfan::{Client, Error, contract};

use crate::cli::{Format, RunArgs, run_spec};
use crate::present;

pub async fn run(client: &Client, args: RunArgs) -> batchfan::Result<ExitCode> {
    if !args.local {
        return Err(Error::option(
            "--local",
            "absent",
            "`batchfan run` runs on this machine and needs --local; use `batchfan submit` for AWS Batch",
        ));
    }
    let spec = run_spec(client, &args.plan, &args.out).await?;
    let mut options = LocalOptions::new(&args.command[0], args.command[1..].to_vec());
    options.parallel = args.parallel.unwrap_or_else(local::default_parallel);
    options.attempts = args.attempts;
    options.log_dir = args.log_dir.clone();
    options.resume = args.resume;
    let (bar, on_event) = present::local_progress(args.format, options.parallel);
    let started = Instant::now();
    // The library installs no signal handler: Ctrl-C, SIGTERM and SIGHUP are this command's
    // choice. They stop the children through their own SIGTERM path.
    let ran = client.run_local(&spec, &options, &on_event, crate::interrupted()).await;
    bar.finish_and_clear();
    let local = ran?;
    if let Some(replaced) = local.run.replaced() {
        eprintln!("note: the output was held by run {replaced}, which has finished; this run took it over");
    }
    match args.format {
        Format::Json => present::print_json(&local.summary),
        Format::Text => present::print_summary(&local.summary, started.elapsed()),
    }
    Ok(if local.summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(contract::cli_exit::WORK_FAILED)
    })
}
