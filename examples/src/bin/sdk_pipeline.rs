//! A Rust pipeline that embeds batchfan as it embeds any AWS crate: it builds its own
//! `SdkConfig` (explicit region, endpoint and static credentials, as code working in a second
//! account would), registers a job definition, submits a fan-out to AWS Batch, waits for it and
//! reads the chunk outputs.
//!
//! ```text
//! PIPELINE_ACCESS_KEY_ID=... PIPELINE_SECRET_ACCESS_KEY=... \
//! cargo run -p batchfan-examples --bin sdk_pipeline -- \
//!     --region eu-west-1 [--endpoint URL] --job-queue QUEUE --job-definition JOBDEF.json \
//!     --input s3://bucket/in/ --output s3://bucket/out/ [--children N]
//! ```
//! `JOBDEF.json` is the `aws batch register-job-definition --cli-input-json` document. Progress
//! and the run id go to stderr; the concatenated chunk outputs go to stdout.

use std::process::ExitCode;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use batchfan::batch::JobDefinitionSpec;
use batchfan::{Client, Error, Location, PlanOptions, RunSpec, RunStatus, SubmitOptions, WaitOptions};
use futures_util::TryStreamExt;

struct Args {
    region: String,
    endpoint: Option<String>,
    job_queue: String,
    job_definition: String,
    input: String,
    output: String,
    children: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut region, mut endpoint, mut queue, mut jobdef, mut input, mut output) = (None, None, None, None, None, None);
    let mut children = 4;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--region" => region = Some(value()?),
            "--endpoint" => endpoint = Some(value()?),
            "--job-queue" => queue = Some(value()?),
            "--job-definition" => jobdef = Some(value()?),
            "--input" => input = Some(value()?),
            "--output" => output = Some(value()?),
            "--children" => children = value()?.parse().map_err(|_| "--children takes a number".to_string())?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let need = |v: Option<String>, name: &str| v.ok_or(format!("{name} is required"));
    Ok(Args {
        region: need(region, "--region")?,
        endpoint,
        job_queue: need(queue, "--job-queue")?,
        job_definition: need(jobdef, "--job-definition")?,
        input: need(input, "--input")?,
        output: need(output, "--output")?,
        children,
    })
}

/// The pipeline's own AWS configuration: nothing comes from the process's default chain.
fn sdk_config(args: &Args) -> Result<SdkConfig, String> {
    let key = std::env::var("PIPELINE_ACCESS_KEY_ID").map_err(|_| "set PIPELINE_ACCESS_KEY_ID".to_string())?;
    let secret =
        std::env::var("PIPELINE_SECRET_ACCESS_KEY").map_err(|_| "set PIPELINE_SECRET_ACCESS_KEY".to_string())?;
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(args.region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(key, secret, None, None, "pipeline")));
    if let Some(endpoint) = &args.endpoint {
        config = config.endpoint_url(endpoint);
    }
    Ok(config.build())
}

async fn pipeline(args: &Args, config: &SdkConfig) -> batchfan::Result<bool> {
    let client = Client::builder(config).batch_requests_per_second(20.0).build();

    let text = std::fs::read_to_string(&args.job_definition)
        .map_err(|e| Error::option("--job-definition", &args.job_definition, format!("cannot be read: {e}")))?;
    let registered = client.register(&JobDefinitionSpec::from_json(&text)?).await?;
    eprintln!(
        "job definition {}:{} ({})",
        registered.name,
        registered.revision,
        if registered.reused { "reused" } else { "registered" }
    );

    let spec = RunSpec {
        input: Location::parse(&args.input)?,
        options: PlanOptions { children: Some(args.children), ..Default::default() },
        output: Location::parse(&args.output)?,
        manifest: None,
        overwrite: true,
    };
    let options = SubmitOptions {
        job_queue: args.job_queue.clone(),
        job_definition: format!("{}:{}", registered.name, registered.revision),
        ..Default::default()
    };
    // The run holds its output until it is seen finished: `wait` finishes it (report written,
    // output released), so the same pipeline can run again on the same output.
    let run = client.submit(&spec, &options).await?;
    let record = run.record();
    eprintln!("run {}: {} chunks, record {}", record.run_id, record.chunk_count, record.record_uri);

    let mut wait = WaitOptions::default();
    wait.interval = Duration::from_secs(1);
    wait.on_progress =
        Some(std::sync::Arc::new(|s: &RunStatus| eprintln!("  {} of {} chunks committed", s.committed, s.chunk_count)));
    let status = run.wait(&wait).await?;
    if !status.succeeded(&wait) {
        for failed in &status.failed {
            eprintln!("  chunk {} failed: {}", failed.index, failed.reason);
        }
        if !status.not_committed.is_empty() {
            eprintln!("  chunks ended without committing: {:?}", status.not_committed);
        }
        return Ok(false);
    }

    // Every chunk committed its output once: read them back in chunk order.
    use std::io::Write;
    let outputs = run.outputs().await?;
    for output in &outputs {
        let body: Vec<bytes::Bytes> = run.open_output(output).await?.try_collect().await?;
        for block in body {
            std::io::stdout().write_all(&block).map_err(|e| Error::Io {
                op: "writing",
                path: "stdout".into(),
                source: e,
            })?;
        }
    }
    eprintln!("{} chunk outputs read from {}", outputs.len(), record.output);
    Ok(true)
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args().and_then(|args| sdk_config(&args).map(|config| (args, config))) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match pipeline(&config.0, &config.1).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }
    }
}
