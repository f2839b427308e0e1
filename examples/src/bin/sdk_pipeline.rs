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
use batchfan::batch::{JobDefinitionSpec, RunStatus, SubmitOptions};
use batchfan::contract;
use batchfan::plan::PlanOptions;
use batchfan::run::RunSpec;
use batchfan::store::read_all;
use batchfan::uri::Location;
use batchfan::{Client, Error};

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
    let submitted = client.submit(&spec, &options).await?;
    let record = submitted.record;
    eprintln!("run {}: {} chunks, record {}", record.run_id, record.chunk_count, record.record_uri);

    let on_poll = |s: &RunStatus| eprintln!("  {} of {} children finished", s.counts.terminal(), s.counts.total());
    let status = client.wait(&record, Duration::from_secs(1), &on_poll).await?;
    if status.counts.failed > 0 {
        for failed in client.failed_children(&record, &status).await?.children {
            eprintln!("  chunk {} failed: {}", failed.index, failed.reason);
        }
        return Ok(false);
    }

    // Every chunk committed its output once, under the contract's key.
    let output = client.store(&Location::parse(&record.output)?)?;
    for index in 0..record.chunk_count {
        let body = read_all(output.as_ref(), &contract::part_key(index), None, None).await?;
        use std::io::Write;
        std::io::stdout().write_all(&body).map_err(|e| Error::Io {
            op: "writing",
            path: "stdout".into(),
            source: e,
        })?;
    }
    eprintln!("{} chunk outputs read from {}", record.chunk_count, record.output);
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
