//! Counts the AWS Batch requests of a 10,000-chunk run (register + submit + watch to completion)
//! against a per-chunk submitter, on the server in `AWS_ENDPOINT_URL` (scripts/bench.sh starts
//! moto and a queue named by `BENCH_QUEUE`). Prints a table.

use std::time::Instant;

use batchfan::batch::ShortForm;
use batchfan::{Location, PlanOptions, RunSpec, SubmitOptions, WaitOptions};

const CHUNKS: usize = 10_000;

fn row(what: &str, requests: u64, seconds: f64, note: &str) {
    println!("| {what:<46} | {requests:>8} | {seconds:>8.2} | {note} |");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        println!("skipped: needs a Batch endpoint; run scripts/bench.sh");
        return Ok(());
    }
    let queue = std::env::var("BENCH_QUEUE").unwrap_or_else(|_| "bench".into());
    let bucket = std::env::var("BENCH_BUCKET").unwrap_or_else(|_| "bench-requests".into());
    let client = batchfan::Client::from_env().await;
    let s3 = client.s3().await;
    let _ = s3.create_bucket().bucket(&bucket).send().await;
    s3.put_object().bucket(&bucket).key("in/records.txt").body(b"x\n".repeat(CHUNKS).into()).send().await?;

    println!("| {:<46} | {:>8} | {:>8} | note |", "step", "requests", "wall s");
    println!("|{}|{}|{}|------|", "-".repeat(48), "-".repeat(10), "-".repeat(10));
    let count = || client.batch_request_count();

    let start = (count(), Instant::now());
    let spec =
        ShortForm { name: "bench".into(), image: "worker:1".into(), vcpu: 1.0, memory: 2048, ..Default::default() }
            .to_spec();
    let registered = client.register(&spec).await?;
    row(
        "register (new revision)",
        count() - start.0,
        start.1.elapsed().as_secs_f64(),
        "DescribeJobDefinitions + RegisterJobDefinition",
    );
    let start = (count(), Instant::now());
    client.register(&spec).await?;
    row("register again (reused)", count() - start.0, start.1.elapsed().as_secs_f64(), "DescribeJobDefinitions only");

    let run_spec = RunSpec {
        input: Location::parse(&format!("s3://{bucket}/in/"))?,
        options: PlanOptions { split_bytes: Some(2), max_items_per_chunk: Some(1), ..Default::default() },
        output: Location::parse(&format!("s3://{bucket}/out/"))?,
        manifest: None,
        overwrite: true,
    };
    let options = SubmitOptions {
        job_queue: queue.clone(),
        job_definition: format!("bench:{}", registered.revision),
        ..Default::default()
    };
    let start = (count(), Instant::now());
    let run = client.submit(&run_spec, &options).await?;
    row(
        &format!("submit {} chunks", run.record().chunk_count),
        count() - start.0,
        start.1.elapsed().as_secs_f64(),
        "one array job",
    );
    let start = (count(), Instant::now());
    let polls = std::sync::atomic::AtomicU64::new(0);
    let polls = std::sync::Arc::new(polls);
    let counter = polls.clone();
    let mut wait = WaitOptions::default();
    wait.interval = std::time::Duration::from_millis(100);
    wait.on_progress = Some(std::sync::Arc::new(move |_: &batchfan::RunStatus| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }));
    let status = run.wait(&wait).await?;
    let polls = polls.load(std::sync::atomic::Ordering::Relaxed);
    row(
        "watch to completion",
        count() - start.0,
        start.1.elapsed().as_secs_f64(),
        &format!("{} succeeded; {polls} poll(s), 1 DescribeJobs each", status.counts.succeeded),
    );

    // The per-chunk way: one plain job per chunk, then DescribeJobs 100 at a time per poll.
    let start = (count(), Instant::now());
    let mut ids = Vec::with_capacity(CHUNKS);
    for i in 0..CHUNKS {
        let sent = client
            .batch()
            .await
            .submit_job()
            .job_name(format!("perchunk-{i}"))
            .job_queue(&options.job_queue)
            .job_definition(&options.job_definition)
            .send()
            .await?;
        ids.push(sent.job_id().unwrap_or_default().to_string());
    }
    row("per-chunk submitter: submit", count() - start.0, start.1.elapsed().as_secs_f64(), "one SubmitJob per chunk");
    let start = (count(), Instant::now());
    for batch_ids in ids.chunks(100) {
        client.batch().await.describe_jobs().set_jobs(Some(batch_ids.to_vec())).send().await?;
    }
    row(
        "per-chunk submitter: one poll",
        count() - start.0,
        start.1.elapsed().as_secs_f64(),
        "DescribeJobs of 100 ids each",
    );
    Ok(())
}
