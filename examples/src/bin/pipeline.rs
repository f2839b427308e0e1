//! A Rust pipeline that plans a fan-out through the library and runs it on this machine.
//!
//! ```text
//! cargo run -p batchfan-examples --bin pipeline -- INPUT OUTPUT PROGRAM [ARGS...]
//! cargo run -p batchfan-examples --bin pipeline -- .demo/input /tmp/out target/debug/batchfan-worker wordcount
//! ```
//! The same `RunSpec` goes to AWS Batch unchanged; only the executor differs.

use std::process::ExitCode;

use batchfan::Client;
use batchfan::local::{self, Event, LocalOptions};
use batchfan::plan::PlanOptions;
use batchfan::run::RunSpec;
use batchfan::uri::Location;

async fn pipeline(args: &[String]) -> batchfan::Result<bool> {
    // The standard AWS chain; a pipeline with its own `SdkConfig` uses `Client::new(&config)`.
    let client = Client::from_env().await;
    let spec = RunSpec {
        input: Location::parse(&args[0])?,
        options: PlanOptions { children: Some(4), split_bytes: Some(1 << 20), ..Default::default() },
        output: Location::parse(&args[1])?,
        manifest: None,
        overwrite: true,
    };
    let program = local::resolve_program(&args[2])?;
    let prepared = client.prepare_run(&spec).await?;
    let header = prepared.manifest.header();
    println!("run {}: {} items in {} chunks", prepared.run_id, header.item_count, header.chunk_count);
    let options = LocalOptions {
        program,
        args: args[3..].to_vec(),
        parallel: local::default_parallel(),
        attempts: 2,
        log_dir: std::env::temp_dir().join("batchfan-pipeline").join(&prepared.run_id),
        stop_deadline: local::default_stop_deadline(),
        chunks: None,
    };
    let on_event = |event: &Event| {
        if let Event::Finished { index, succeeded, counts, .. } = event {
            println!(
                "chunk {index}: {} ({}/{} done)",
                if *succeeded { "ok" } else { "FAILED" },
                counts.terminal(),
                counts.total()
            );
        }
    };
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let summary = client.run_local(&prepared, &options, &on_event, ctrl_c).await?;
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    Ok(summary.failed.is_empty())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: pipeline INPUT OUTPUT PROGRAM [ARGS...]");
        return ExitCode::from(2);
    }
    match pipeline(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}
