//! `batchfan scale evaluate | simulate | export | init | run`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use batchfan::Client;
use batchfan::batch::WorkerJobs;
use batchfan::pool::{Pool, PoolEvent, PoolOptions};
use batchfan_scale::ScaleError;
use batchfan_scale::controller::{self, CapacityTarget};
use batchfan_scale::engine::{Decision, Observation, Opinion, Scaler, evaluate, format_number};
use batchfan_scale::metric::Quantity;
use batchfan_scale::policy::{Capacity, Policy, ScalingConfig};
use batchfan_scale::simulate::{SimOptions, SimResult, Trace, oracle, simulate};
use batchfan_scale::targets::{BatchEvent, BatchTarget, PoolTarget, PrintTarget, SqsSource};
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

/// The flag of `evaluate` that gives a quantity.
fn evaluate_flag(q: &Quantity) -> &'static str {
    match q {
        Quantity::Visible => "--metric (or --visible)",
        Quantity::NotVisible => "--in-flight",
        Quantity::Delayed => "--delayed",
        Quantity::AgeOfOldestMessage => "--oldest-age",
        Quantity::Sent => "--sent",
        Quantity::Received => "--received",
        Quantity::Deleted => "--deleted",
        Quantity::RunningTasks => "--running",
        Quantity::DesiredTasks | Quantity::PendingTasks => "--capacity and --running",
        Quantity::Column(_) | Quantity::Unknown => "--metric-value NAME=VALUE",
    }
}

fn evaluate_cmd(args: ScaleEvaluateArgs) -> Result<ExitCode, ScaleError> {
    let mut config = load(&args.policy)?;
    let numbers = [
        ("--metric", args.metric),
        ("--in-flight", args.in_flight),
        ("--delayed", args.delayed),
        ("--oldest-age", args.oldest_age),
        ("--sent", args.sent),
        ("--received", args.received),
        ("--deleted", args.deleted),
        ("--running", args.running),
    ];
    for (field, value) in numbers {
        if let Some(v) = value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(option(field, v, "a number, 0 or more"));
        }
    }
    let mut columns = Vec::new();
    for pair in &args.metric_value {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(option("--metric-value", pair, "NAME=VALUE"));
        };
        let value: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| option("--metric-value", pair, "NAME=VALUE with a number"))?;
        config.bind(name.trim())?;
        columns.push((name.trim().to_string(), value));
    }
    let given = |q: &Quantity| match q {
        Quantity::Visible => args.metric.is_some(),
        Quantity::NotVisible => args.in_flight.is_some(),
        Quantity::Delayed => args.delayed.is_some(),
        Quantity::AgeOfOldestMessage => args.oldest_age.is_some(),
        Quantity::Sent => args.sent.is_some(),
        Quantity::Received => args.received.is_some(),
        Quantity::Deleted => args.deleted.is_some(),
        Quantity::RunningTasks | Quantity::DesiredTasks | Quantity::PendingTasks => true,
        Quantity::Column(_) => true,
        Quantity::Unknown => false,
    };
    for (policy, id, metric, quantity) in config.watched() {
        if !given(quantity) {
            let query = if id.is_empty() { String::new() } else { format!(" (query `{id}`)") };
            let message = if *quantity == Quantity::Unknown {
                format!(
                    "metric {metric}{query} cannot be computed by batchfan (it knows the AWS/SQS queue metrics and ECS/ContainerInsights task counts): give its value with --metric-value {}=VALUE",
                    metric.name
                )
            } else {
                format!("metric {metric}{query} needs the {}: give {}", quantity.describe(), evaluate_flag(quantity))
            };
            return Err(ScaleError::Invalid { policy: policy.to_string(), step: None, message });
        }
    }
    for policy in &config.policies {
        if let Policy::Keda(k) = policy {
            let missing = [
                (true, args.metric.is_none(), "--metric (visible messages)"),
                (k.scale_on_in_flight, args.in_flight.is_none(), "--in-flight (scaleOnInFlight)"),
                (k.scale_on_delayed, args.delayed.is_none(), "--delayed (scaleOnDelayed)"),
            ];
            if let Some((_, _, flag)) = missing.iter().find(|(needed, absent, _)| *needed && *absent) {
                return Err(ScaleError::Invalid {
                    policy: k.name.clone(),
                    step: None,
                    message: format!("KEDA counts it: give {flag}"),
                });
            }
        }
    }
    let observation = Observation {
        visible: args.metric.unwrap_or(0.0),
        in_flight: args.in_flight.unwrap_or(0.0),
        delayed: args.delayed.unwrap_or(0.0),
        oldest_age: args.oldest_age,
        sent: args.sent,
        received: args.received,
        deleted: args.deleted,
        running: Some(args.running.unwrap_or(f64::from(args.capacity))),
        pending: Some((f64::from(args.capacity) - args.running.unwrap_or(f64::from(args.capacity))).max(0.0)),
        columns,
    };
    let d = evaluate(&config, bounds(&config, args.bounds)?, &observation, args.capacity);
    match args.format {
        Format::Json => print_json(&json!({
            "capacity": d.capacity,
            "new_capacity": d.new_capacity,
            "adjustment": d.adjustment,
            "policy": d.applied,
            "step": d.applied_opinion().and_then(|o| o.step),
            "reason": d.reason,
            "opinions": d.opinions,
        })),
        Format::Text => {
            println!("capacity {} -> {} ({:+}): {}", d.capacity, d.new_capacity, d.adjustment, d.reason);
            for (o, policy) in d.opinions.iter().zip(&config.policies) {
                let step = o.step.map(|s| format!(" step {s}")).unwrap_or_default();
                let watched = policy.metric().map(|m| format!(" [{}]", m.describe())).unwrap_or_default();
                println!("  {}{step}: asks for {} ({}){watched}", o.policy, o.proposed, o.reason);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn totals(result: &SimResult, slo: Option<f64>) -> serde_json::Value {
    json!({
        "task_hours": result.task_hours,
        "worst_message_age_s": result.worst_age,
        "slo_s": slo,
        "slo_violations": result.slo_violations,
        "messages": result.messages,
        "finished": result.finished,
        "in_flight": result.in_flight,
        "still_waiting": result.waiting,
        "oldest_still_waiting_age_s": result.oldest_waiting_age,
        "end_s": result.end,
        "peak_capacity": result.peak_capacity,
        "minutes": result.minutes.len(),
    })
}

/// Seconds as `1h 02m 03s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

fn simulate_cmd(args: ScaleSimulateArgs) -> Result<ExitCode, ScaleError> {
    let mut config = load(&args.policy)?;
    for (field, value) in [("--service-time", args.service_time), ("--startup-delay", args.startup_delay)] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(option(field, value, "seconds, 0 or more"));
        }
    }
    if args.service_time <= 0.0 {
        return Err(option("--service-time", args.service_time, "seconds per message, above 0"));
    }
    if let Some(slo) = args.slo
        && !(slo.is_finite() && slo > 0.0)
    {
        return Err(option("--slo", slo, "seconds, above 0"));
    }
    let text = std::fs::read_to_string(&args.trace)
        .map_err(|e| option("--trace", args.trace.display(), &format!("cannot be read: {e}")))?;
    let trace = Trace::parse_csv(&text)?;
    for column in &args.metric_column {
        if !trace.columns.contains(column) {
            return Err(option(
                "--metric-column",
                column,
                &format!(
                    "a column named in the trace's header (seconds,messages,{column}); {} names {}",
                    args.trace.display(),
                    if trace.columns.is_empty() { "none".to_string() } else { trace.columns.join(", ") }
                ),
            ));
        }
        config.bind(column)?;
    }
    config.require(
        &|q| *q != Quantity::Unknown,
        "simulated",
        "give its values as a column of the trace (a header line seconds,messages,NAME) and --metric-column NAME",
    )?;
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
        let svg = batchfan_scale::plot::svg(&result, &title, args.slo)?;
        std::fs::write(path, svg).map_err(|e| option("--plot", path.display(), &format!("cannot be written: {e}")))?;
    }
    match args.format {
        Format::Json => print_json(&json!({
            "totals": totals(&result, args.slo),
            "oracle": best.as_ref().map(|b| totals(b, args.slo)),
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
            println!();
            let mut fate = format!("{} finished", result.finished);
            if result.in_flight > 0 {
                fate.push_str(&format!(", {} in flight", result.in_flight));
            }
            if result.waiting > 0 {
                fate.push_str(&format!(
                    ", {} STILL WAITING when the simulation ended at {} (the oldest for {:.0} s)",
                    result.waiting,
                    duration(result.end as f64),
                    result.oldest_waiting_age
                ));
            }
            println!("messages: {} in the trace: {fate}", result.messages);
            println!(
                "oldest waiting age seen: {:.0} s; task-hours {:.2}; peak capacity {}",
                result.worst_age, result.task_hours, result.peak_capacity
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
    if let Some(slo) = args.slo
        && result.slo_violations > 0
    {
        eprintln!(
            "error: {} of {} messages waited longer than the SLO of {slo:.0} s{}",
            result.slo_violations,
            result.messages,
            if result.waiting > 0 { format!(" ({} never started)", result.waiting) } else { String::new() }
        );
        return Ok(ExitCode::from(code::WORK_FAILED));
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
    let activation = if args.min == 0 {
        format!(
            "; with --min 0, a message visible for {:.0} s gets a worker asked for (the activation step)",
            batchfan_scale::init::ACTIVATION
        )
    } else {
        String::new()
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, format!("{text}\n"))
                .map_err(|e| option("--output", path.display(), &format!("cannot be written: {e}")))?;
            eprintln!(
                "wrote {}{activation}: check it with `batchfan scale simulate --policy {} --trace TRACE --slo {}`",
                path.display(),
                path.display(),
                args.slo
            );
        }
        None => {
            println!("{text}");
            if !activation.is_empty() {
                eprintln!("note: {}", activation.trim_start_matches("; "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn log_event(event: &PoolEvent) {
    let line = match event {
        PoolEvent::Started { slot, pid } => format!("worker {slot} started (pid {pid})"),
        PoolEvent::Stopping { slot } => format!("worker {slot} asked to stop: it drains, then exits"),
        PoolEvent::Exited { slot, code, signal, restart } => {
            let how = match (code, signal) {
                (Some(c), _) => format!("exited with code {c}"),
                (None, Some(s)) => format!("was killed by signal {s}"),
                (None, None) => "exited".to_string(),
            };
            format!("worker {slot} {how}{}", if *restart { "; restarting it" } else { "" })
        }
        other => format!("{other:?}"),
    };
    eprintln!("{} pool: {line}", clock());
}

fn log_batch(event: &BatchEvent) {
    let line = match event {
        BatchEvent::Submitted { count, job_id } => format!("submitted {count} worker job(s): {job_id}"),
        BatchEvent::Terminated { job_ids } => {
            format!("terminated {} worker job(s) (they drain): {}", job_ids.len(), job_ids.join(", "))
        }
    };
    eprintln!("{} batch: {line}", clock());
}

/// The wall clock, UTC `HH:MM:SSZ`.
fn clock() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}Z", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}

/// What `run` watches, and when it first decides, in one line.
fn plan_line(config: &ScalingConfig, scaler: &Scaler, args: &ScaleRunArgs) -> String {
    let target = match args.target {
        ScaleTarget::Local => "the local pool".to_string(),
        ScaleTarget::Batch => format!("worker jobs on {}", args.job_queue.as_deref().unwrap_or("?")),
        ScaleTarget::Print => "nothing (print only)".to_string(),
    };
    let policies: Vec<String> = config
        .policies
        .iter()
        .map(|p| match p {
            Policy::Step(s) => format!(
                "`{}` on alarm `{}` ({} of {} datapoints of {} s: {} {} {})",
                s.name,
                s.alarm.name,
                s.alarm.datapoints_to_alarm,
                s.alarm.evaluation_periods,
                s.alarm.metric.period,
                s.alarm.metric.describe(),
                s.alarm.comparison.name(),
                format_number(s.alarm.threshold)
            ),
            Policy::TargetTracking(t) => {
                format!("`{}` tracking {} at {}", t.name, t.metric.describe(), format_number(t.target_value))
            }
            Policy::Keda(k) => format!("`{}` (KEDA) every {} s", k.name, k.polling_interval),
        })
        .collect();
    format!(
        "polling {} every {} s (GetQueueAttributes: visible, in flight, delayed; workers: {target}); first decision in about {} s; policies: {}",
        args.queue_url,
        format_number(args.interval),
        format_number(scaler.first_decision()),
        policies.join("; ")
    )
}

async fn run_cmd(client: &Client, args: ScaleRunArgs) -> Result<ExitCode, ScaleError> {
    let config = load(&args.policy)?;
    if !(args.interval.is_finite() && args.interval > 0.0) {
        return Err(option("--interval", args.interval, "seconds, above 0"));
    }
    config.require(
        &controller::observable,
        "read by `scale run`",
        "run reads GetQueueAttributes (visible, in flight, delayed messages) and the target's worker counts (running, asked for, starting); the other CloudWatch metrics it cannot see: simulate or export this policy, or watch those",
    )?;
    let bounds = bounds(&config, args.bounds)?;
    let mut scaler = Scaler::new(&config, bounds);
    if args.target == ScaleTarget::Batch && (args.job_queue.is_none() || args.job_definition.is_none()) {
        return Err(option("--target batch", "without --job-queue/--job-definition", "give both"));
    }
    let mut source = SqsSource::new(client.clone(), &args.queue_url).await?;
    let first = plan_line(&config, &scaler, &args);
    match args.format {
        Format::Text => println!("{} {first}", clock()),
        Format::Json => eprintln!("{} {first}", clock()),
    }
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
            Box::new(BatchTarget::new(client.clone(), jobs, log_batch))
        }
    };
    let format = args.format;
    let mut on_decision = move |obs: &Observation, d: &Decision| log_decision(format, obs, d);
    let stop = async {
        let limit = async {
            match args.duration {
                Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = crate::interrupted() => {}
            () = limit => {}
        }
    };
    let every = Duration::from_secs_f64(args.interval);
    let changes = controller::run(&mut scaler, &mut source, target.as_mut(), every, stop, &mut on_decision).await;
    // The local pool drains through its workers' SIGTERM path.
    let _ = target.set_capacity(0).await;
    if args.target == ScaleTarget::Local {
        let deadline = std::time::Instant::now() + batchfan::local::default_stop_deadline();
        while target.capacity().await.unwrap_or(0) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let changes = changes?;
    eprintln!("{} stopped after {changes} capacity change(s)", clock());
    Ok(if args.duration.is_some() { ExitCode::SUCCESS } else { ExitCode::from(code::INTERRUPTED) })
}

/// One policy's part of a decision, for people: the alarm's datapoints and state, the step
/// that fired, what it asks for.
fn opinion_text(o: &Opinion) -> String {
    let mut text = format!("{}: ", o.policy);
    match &o.alarm {
        Some(alarm) => {
            let points: Vec<String> =
                alarm.datapoints.iter().map(|p| p.map_or("missing".into(), format_number)).collect();
            text.push_str(&format!("alarm `{}` {} on [{}]", alarm.name, alarm.state.name(), points.join(", ")));
            // The reason reads "alarm `a` ALARM at 700: step 1 (+5)[; cooldown note]".
            let (fired, note) = match o.reason.split_once(": ").map(|(_, rest)| rest) {
                Some(rest) => rest.split_once("; ").map_or((rest, None), |(a, b)| (a, Some(b))),
                None => ("", None),
            };
            match o.step {
                Some(_) if o.acts => text.push_str(&format!(", {fired} fired: asks for {}", o.proposed)),
                _ if !o.acts => text.push_str(", not invoked"),
                _ => {}
            }
            if let Some(note) = note {
                text.push_str(&format!(" ({note})"));
            }
        }
        None => text.push_str(&format!("{}: asks for {}", o.reason, o.proposed)),
    }
    text
}

fn log_decision(format: Format, obs: &Observation, d: &Decision) {
    let step = d.applied_opinion().and_then(|o| o.step);
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "time_s": d.time,
                "clock": clock(),
                "visible": obs.visible,
                "in_flight": obs.in_flight,
                "running": obs.running,
                "capacity": d.capacity,
                "new_capacity": d.new_capacity,
                "policy": d.applied,
                "step": step,
                "reason": d.reason,
                "opinions": d.opinions,
            })
        ),
        Format::Text => {
            let opinions: Vec<String> = d.opinions.iter().map(opinion_text).collect();
            println!(
                "{} +{}s  capacity {} -> {}  visible {} in flight {}  {}",
                clock(),
                format_number(d.time.round()),
                d.capacity,
                d.new_capacity,
                format_number(obs.visible),
                format_number(obs.in_flight),
                opinions.join("; ")
            );
        }
    }
}
