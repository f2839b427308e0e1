//! A Rust pipeline that plans a fan-out through the library and runs it on this machine.
//!
//! ```text
//! cargo run -p batchfan-examples --bin pipeline -- INPUT OUTPUT PROGRAM [ARGS...]
//! cargo run -p batchfan-examples --bin pipeline -- .demo/input /tmp/out target/debug/batchfan-worker wordcount
//! ```
//! The same `RunSpec` goes to AWS Batch unchanged; only the executor differs.

use std::process::ExitCode;

use batchfan::local::Event;
use batchfan::{Client, LocalOptions, Location, PlanOptions, RunSpec};

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
    let mut options = LocalOptions::new(&args[2], args[3..].to_vec());
    options.attempts = 2;
    let on_event = |event: &Event| match event {
        Event::Planned { run_id, items, chunks, .. } => println!("run {run_id}: {items} items in {chunks} chunks"),
        Event::Finished { index, succeeded, counts, .. } => println!(
            "chunk {index}: {} ({}/{} done)",
            if *succeeded { "ok" } else { "FAILED" },
            counts.terminal(),
            counts.total()
        ),
        _ => {}
    };
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let local = client.run_local(&spec, &options, &on_event, ctrl_c).await?;
    println!("{}", serde_json::to_string_pretty(&local.summary).unwrap_or_default());
    // What the run committed, read back in chunk order.
    for output in local.run.outputs().await? {
        println!("chunk {}: {} ({} bytes)", output.chunk, output.uri, output.bytes);
    }
    Ok(local.summary.failed.is_empty())
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
