//! `batchfan scale evaluate | simulate | export | init | run`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use batchfan::Client;
use batchfan::batch::WorkerJobs;
use batchfan::pool::{Pool, PoolEvent, PoolOptions};
use batchfan_scale::ScaleError;
use batchfan_scale::controller::{self, CapacityTarget};
use batchfan_scale::engine::{Decision, Observation, Scaler, evaluate};
use batchfan_scale::policy::{Capacity, ScalingConfig};
use batchfan_scale::simulate::{SimOptions, SimResult, Trace, oracle, simulate};
use batchfan_scale::targets::{BatchTarget, PoolTarget, PrintTarget, SqsSource};
use serde_json::json;

use crate::cli::{
    BoundsArgs, Format, ScaleCommand, ScaleEvaluateArgs, ScaleExportArgs, ScaleInitArgs, ScaleRunArgs,
    ScaleSimulateArgs, ScaleTarget,
};
use crate::code;

/// Runs a `scale` command; errors are printed here (exit 2 for bad input, 1 otherwise).
pub async fn run(client: &Client, command: ScaleCommand) -> ExitCode {
    let result = match command {
        ScaleCommand::Evaluate(args) => evaluate_cmd(args),
        ScaleCommand::Simulate(args) => simulate_cmd(args),
        ScaleCommand::Export(args) => export_cmd(args),
        ScaleCommand::Init(args) => init_cmd(args),
        ScaleCommand::Run(args) => run_cmd(client, args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_bad_input() { code::BAD_INPUT } else { code::WORK_FAILED })
        }
    }
}

fn option(field: &str, value: impl ToString, allowed: &str) -> ScaleError {
    ScaleError::Option { field: field.into(), value: value.to_string(), allowed: allowed.into() }
}

/// Reads and checks a scaling file; warnings go to stderr.
fn load(path: &Path) -> Result<ScalingConfig, ScaleError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| option("--policy", path.display(), &format!("cannot be read: {e}")))?;
    let config = ScalingConfig::from_json(&text)?;
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}

fn bounds(config: &ScalingConfig, args: BoundsArgs) -> Result<Option<Capacity>, ScaleError> {
    let (min, max) = match (config.capacity, args.min, args.max) {
        (_, None, None) => return Ok(config.capacity),
        (Some(c), min, max) => (min.unwrap_or(c.min), max.unwrap_or(c.max)),
        (None, min, max) => (min.unwrap_or(0), max.unwrap_or(u32::MAX)),
    };
    if min > max {
        return Err(option("--min", min, &format!("at most --max ({max})")));
    }
    Ok(Some(Capacity { min, max }))
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

fn evaluate_cmd(args: ScaleEvaluateArgs) -> Result<ExitCode, ScaleError> {
    let config = load(&args.policy)?;
    if !args.metric.is_finite() {
        return Err(option("--metric", args.metric, "a number"));
    }
    let d = evaluate(&config, bounds(&config, args.bounds)?, args.metric, args.capacity);
    match args.format {
        Format::Json => print_json(&json!({
            "capacity": d.capacity,
            "new_capacity": d.new_capacity,
            "adjustment": d.adjustment,
            "policy": d.applied,
            "step": d.opinions.iter().find(|o| Some(&o.policy) == d.applied.as_ref()).and_then(|o| o.step),
            "reason": d.reason,
            "opinions": d.opinions,
        })),
        Format::Text => {
            println!("capacity {} -> {} ({:+}): {}", d.capacity, d.new_capacity, d.adjustment, d.reason);
            for o in &d.opinions {
                let step = o.step.map(|s| format!(" step {s}")).unwrap_or_default();
                println!("  {}{step}: asks for {} ({})", o.policy, o.proposed, o.reason);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn totals(result: &SimResult) -> serde_json::Value {
    json!({
        "task_hours": result.task_hours,
        "worst_message_age_s": result.worst_age,
        "slo_violations": result.slo_violations,
        "messages": result.messages,
        "finished": result.finished,
        "peak_capacity": result.peak_capacity,
        "minutes": result.minutes.len(),
    })
}

fn simulate_cmd(args: ScaleSimulateArgs) -> Result<ExitCode, ScaleError> {
    let config = load(&args.policy)?;
    for (field, value) in [("--service-time", args.service_time), ("--startup-delay", args.startup_delay)] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(option(field, value, "seconds, 0 or more"));
        }
    }
    if args.service_time <= 0.0 {
        return Err(option("--service-time", args.service_time, "seconds per message, above 0"));
    }
    let text = std::fs::read_to_string(&args.trace)
        .map_err(|e| option("--trace", args.trace.display(), &format!("cannot be read: {e}")))?;
    let trace = Trace::parse_csv(&text)?;
    let options = SimOptions {
        service_time: args.service_time,
        startup_delay: args.startup_delay,
        initial_capacity: None,
        slo: args.slo,
    };
    let result = simulate(&config, bounds(&config, args.bounds)?, &trace, &options);
    let best = args.slo.map(|slo| oracle(&trace, args.service_time, slo));
    if let Some(path) = &args.plot {
        let title = format!("{} on {}", args.policy.display(), args.trace.display());
        let svg = batchfan_scale::plot::svg(&result, &title)?;
        std::fs::write(path, svg).map_err(|e| option("--plot", path.display(), &format!("cannot be written: {e}")))?;
    }
    match args.format {
        Format::Json => print_json(&json!({
            "totals": totals(&result),
            "oracle": best.as_ref().map(totals),
            "minutes": result.minutes,
            "changes": result.changes,
        })),
        Format::Text => {
            println!("minute  capacity  ready  backlog  oldest_age_s");
            for m in &result.minutes {
                println!(
                    "{:>6}  {:>8}  {:>5}  {:>7}  {:>12.0}",
                    m.minute, m.capacity, m.ready, m.backlog, m.oldest_age
                );
            }
            println!(
                "\ntask-hours {:.2}, worst message age {:.0} s, peak capacity {}, {} of {} messages finished",
                result.task_hours, result.worst_age, result.peak_capacity, result.finished, result.messages
            );
            if let (Some(slo), Some(best)) = (args.slo, &best) {
                println!(
                    "SLO {slo:.0} s: {} messages waited longer; the oracle needs {:.2} task-hours ({:.2}x)",
                    result.slo_violations,
                    best.task_hours,
                    result.task_hours / best.task_hours.max(1e-9)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export_cmd(args: ScaleExportArgs) -> Result<ExitCode, ScaleError> {
    let config = load(&args.policy)?;
    print_json(&batchfan_scale::export::export(&config, &args.resource_id, &args.queue_name)?);
    Ok(ExitCode::SUCCESS)
}

fn init_cmd(args: ScaleInitArgs) -> Result<ExitCode, ScaleError> {
    let file = batchfan_scale::init::recommended(args.service_time, args.slo, args.min, args.max, &args.queue_name)?;
    let text = serde_json::to_string_pretty(&file).unwrap_or_default();
    match &args.output {
        Some(path) => {
            std::fs::write(path, format!("{text}\n"))
                .map_err(|e| option("--output", path.display(), &format!("cannot be written: {e}")))?;
            eprintln!(
                "wrote {}: check it with `batchfan scale simulate --policy {} --trace TRACE`",
                path.display(),
                path.display()
            );
        }
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn log_event(event: &PoolEvent) {
    eprintln!("pool: {event:?}");
}

async fn run_cmd(client: &Client, args: ScaleRunArgs) -> Result<ExitCode, ScaleError> {
    let config = load(&args.policy)?;
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(option("--interval", args.interval, "seconds, above 0"));
    }
    if config.policies.iter().any(|p| matches!(p, batchfan_scale::policy::Policy::Step(s) if s.alarm.metric == batchfan_scale::policy::SqsMetric::AgeOfOldestMessage)) {
        return Err(option(
            "--policy",
            args.policy.display(),
            "an alarm on ApproximateAgeOfOldestMessage cannot be evaluated from the queue's attributes (CloudWatch only): simulate it, export it, or alarm on the message counts",
        ));
    }
    let bounds = bounds(&config, args.bounds)?;
    let mut scaler = Scaler::new(&config, bounds);
    let mut source = SqsSource::new(client.clone(), &args.queue_url).await?;
    let mut target: Box<dyn CapacityTarget> = match args.target {
        ScaleTarget::Print => Box::new(PrintTarget { capacity: scaler.bounds().min }),
        ScaleTarget::Local => {
            let Some(program) = args.command.first() else {
                return Err(option(
                    "--target local",
                    "no PROGRAM",
                    "give the worker after --, e.g. -- batchfan-worker wordcount",
                ));
            };
            let program =
                batchfan::local::resolve_program(program).map_err(|e| option("PROGRAM", program, &e.to_string()))?;
            let log_dir = args
                .log_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("batchfan-scale").join(std::process::id().to_string()));
            let options =
                PoolOptions { program, args: args.command[1..].to_vec(), queue_url: args.queue_url.clone(), log_dir };
            let mut pool = Pool::new(options).map_err(|e| ScaleError::Io(Box::new(e)))?;
            pool.scale_to(scaler.bounds().min as usize).map_err(|e| ScaleError::Io(Box::new(e)))?;
            Box::new(PoolTarget::new(pool, log_event))
        }
        ScaleTarget::Batch => {
            let (Some(job_queue), Some(job_definition)) = (&args.job_queue, &args.job_definition) else {
                return Err(option("--target batch", "without --job-queue/--job-definition", "give both"));
            };
            let jobs = WorkerJobs {
                job_queue: job_queue.clone(),
                job_definition: job_definition.clone(),
                name_prefix: args.name_prefix.clone(),
                queue_url: args.queue_url.clone(),
            };
            Box::new(BatchTarget::new(client.clone(), jobs))
        }
    };
    let format = args.format;
    let mut on_decision = move |obs: &Observation, d: &Decision| log_decision(format, obs, d);
    let stop = async {
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match sigterm.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let limit = async {
            match args.duration {
                Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
            () = limit => {}
        }
    };
    let every = Duration::from_secs_f64(args.interval);
    let changes = controller::run(&mut scaler, &mut source, target.as_mut(), every, stop, &mut on_decision).await;
    // The local pool drains through its workers' SIGTERM path.
    let stop_timeout: f64 =
        std::env::var(batchfan::contract::env::STOP_TIMEOUT).ok().and_then(|v| v.parse().ok()).unwrap_or(25.0);
    let _ = target.set_capacity(0).await;
    if args.target == ScaleTarget::Local {
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(stop_timeout + 5.0);
        while target.capacity().await.unwrap_or(0) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let changes = changes?;
    eprintln!("stopped after {changes} capacity change(s)");
    Ok(if args.duration.is_some() { ExitCode::SUCCESS } else { ExitCode::from(code::INTERRUPTED) })
}

fn log_decision(format: Format, obs: &Observation, d: &Decision) {
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "time_s": d.time,
                "visible": obs.visible,
                "in_flight": obs.in_flight,
                "capacity": d.capacity,
                "new_capacity": d.new_capacity,
                "policy": d.applied,
                "step": d.opinions.iter().find(|o| Some(&o.policy) == d.applied.as_ref()).and_then(|o| o.step),
                "reason": d.reason,
            })
        ),
        Format::Text => {
            let step = d.opinions.iter().find(|o| Some(&o.policy) == d.applied.as_ref()).and_then(|o| o.step);
            println!(
                "t={:.0}s visible={} in_flight={} capacity {} -> {}{}: {}",
                d.time,
                obs.visible,
                obs.in_flight,
                d.capacity,
                d.new_capacity,
                step.map(|s| format!(" (step {s})")).unwrap_or_default(),
                d.reason
            );
        }
    }
}
