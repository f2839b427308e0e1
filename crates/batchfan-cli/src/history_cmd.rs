//! `batchfan logs | runs`: what runs did: their chunks' logs, and the past runs (the library
//! finds and reads them; this only prints).

use std::process::ExitCode;
use std::time::Duration;

use batchfan::logs::{LogLine, LogsOptions, utc_timestamp};
use batchfan::{Client, Error, Location, Result};

use crate::cli::{Format, LogsArgs, RunsArgs};
use crate::present;

pub async fn logs(client: &Client, args: LogsArgs) -> Result<ExitCode> {
    if !(args.interval.is_finite() && (0.1..=3600.0).contains(&args.interval)) {
        return Err(Error::option("--interval", args.interval, "0.1 to 3600 seconds"));
    }
    let run = client.find_run(&args.run.run).await?;
    let options =
        LogsOptions::chunks(args.chunks).failed(args.failed).attempt(args.attempt).since(args.since).tail(args.tail);
    let format = args.format;
    let mut print = move |lines: &[LogLine]| {
        for line in lines {
            match format {
                Format::Json => println!("{}", serde_json::to_string(line).unwrap_or_default()),
                Format::Text if line.notice => eprintln!("{}", line.prefixed()),
                Format::Text => println!("{}", line.prefixed()),
            }
        }
    };
    if args.follow {
        run.follow_logs(&options, Duration::from_secs_f64(args.interval), &mut print).await?;
    } else {
        print(&run.logs(&options).await?);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn runs(client: &Client, args: RunsArgs) -> Result<ExitCode> {
    let output = args.output.as_deref().map(Location::parse).transpose()?;
    let runs = client.runs(output.as_ref()).await?;
    match args.format {
        Format::Json => present::print_json(&runs),
        Format::Text => {
            println!(
                "{:<24} {:<6} {:<19} {:>9} {:>9} {:>7} {:>8} {:<10} OUTPUT",
                "RUN", "KIND", "STARTED (UTC)", "DURATION", "COMMITTED", "FAILED", "PENDING", "STATUS"
            );
            for r in &runs {
                let duration = r.duration_ms.map_or_else(|| "-".to_string(), |ms| human_duration(ms / 1000));
                println!(
                    "{:<24} {:<6} {:<19} {:>9} {:>9} {:>7} {:>8} {:<10} {}",
                    r.run_id,
                    r.kind.as_str(),
                    utc_timestamp(r.started_unix_ms),
                    duration,
                    r.committed,
                    r.failed,
                    r.pending,
                    r.status,
                    r.output
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `45s`, `12m05s`, `3h02m`.
fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}
