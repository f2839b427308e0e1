//! `batchfan register | submit`: AWS Batch.

use std::process::ExitCode;

use batchfan::batch::{JobDefinitionSpec, ShortForm};
use batchfan::size::count_of;
use batchfan::{Client, Error, Result, SubmitOptions};

use batchfan::lint::{Finding, LintOptions};

use crate::cli::{Format, IamPolicyArgs, LintArgs, RegisterArgs, SubmitArgs, run_spec};
use crate::present::{self, print_json};

fn read_definition(field: &str, file: &str) -> Result<(JobDefinitionSpec, Vec<String>)> {
    let path = file.strip_prefix("file://").unwrap_or(file);
    let text = std::fs::read_to_string(path).map_err(|e| Error::option(field, path, format!("cannot be read: {e}")))?;
    JobDefinitionSpec::from_pasted_json(&text)
}

/// Prints findings on stderr, one line each (register, submit).
fn print_findings(findings: &[Finding]) {
    for f in findings {
        eprintln!("lint {}[{}]: {}", f.severity, f.rule, f.message);
    }
}

/// Lints `spec` for register and submit: findings on stderr, errors refuse (exit 2).
fn lint_or_refuse(spec: &JobDefinitionSpec, options: &LintOptions) -> Result<()> {
    batchfan::lint::check_allow(&options.allow)?;
    let findings = batchfan::lint::lint(spec, options);
    print_findings(&findings);
    if batchfan::lint::has_errors(&findings) {
        return Err(batchfan::lint::refusal(&findings));
    }
    Ok(())
}

pub fn lint(args: LintArgs) -> Result<ExitCode> {
    batchfan::lint::check_allow(&args.lint.allow)?;
    let (spec, _) = read_definition("FILE", &args.file)?;
    let options = LintOptions { allow: args.lint.allow.clone(), spot: args.spot, retry_on_spot: false };
    let findings = batchfan::lint::lint(&spec, &options);
    match args.format {
        Format::Json => print_json(&serde_json::json!({
            "definition": spec.job_definition_name,
            "errors": findings.iter().filter(|f| f.severity == batchfan::lint::Severity::Error).count(),
            "findings": findings,
        })),
        Format::Text if findings.is_empty() => println!("{}: no findings", spec.job_definition_name),
        Format::Text => {
            for f in &findings {
                println!("{}[{}]: {}", f.severity, f.rule, f.message);
            }
        }
    }
    Ok(if batchfan::lint::has_errors(&findings) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub async fn register(client: &Client, args: RegisterArgs) -> Result<ExitCode> {
    let spec = match (&args.cli_input_json, &args.name, &args.image) {
        (Some(file), _, _) => {
            let (spec, notes) = read_definition("--cli-input-json", file)?;
            for note in notes {
                eprintln!("note: {note}");
            }
            spec
        }
        (None, Some(name), Some(image)) => ShortForm {
            name: name.clone(),
            image: image.clone(),
            vcpu: args.vcpu.unwrap_or(1.0),
            memory: args.memory.unwrap_or(2048),
            fargate: args.fargate,
            job_role: args.job_role.clone(),
            execution_role: args.execution_role.clone(),
            command: args.command.clone(),
        }
        .to_spec(),
        _ => {
            return Err(Error::option(
                "register",
                "no job definition",
                "give --cli-input-json FILE, or --name --image --vcpu --memory",
            ));
        }
    };
    lint_or_refuse(&spec, &LintOptions { allow: args.lint.allow.clone(), ..Default::default() })?;
    let registered = client.register(&spec).await?;
    match args.format {
        Format::Json => print_json(&registered),
        Format::Text if registered.reused => println!(
            "reused {}:{} (identical to the latest ACTIVE revision)\n{}",
            registered.name, registered.revision, registered.arn
        ),
        Format::Text => {
            println!("registered {}:{} (new revision)\n{}", registered.name, registered.revision, registered.arn)
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn submit(client: &Client, args: SubmitArgs) -> Result<ExitCode> {
    let spec = run_spec(client, &args.plan, &args.out).await?;
    let wait = present::wait_options(&args.tolerance)?;
    let mut options = SubmitOptions {
        job_queue: args.job_queue.clone(),
        job_definition: args.job_definition.clone(),
        name: args.name.clone(),
        depends_on: args.depends_on.clone(),
        sequential: args.sequential,
        max_concurrency: args.max_concurrency,
        attempts: args.attempts,
        retry_on_spot: args.retry_on_spot,
        timeout_seconds: args.timeout,
        tags: args.tag.iter().cloned().collect(),
        propagate_tags: args.propagate_tags,
        share_identifier: args.share_identifier.clone(),
        priority: args.priority,
        env: args.env.clone(),
        vcpu: args.vcpu,
        memory: args.memory,
        estimate: None,
    };
    // The definition as it will run, checked against practice before anything is written.
    batchfan::lint::check_allow(&args.lint.allow)?;
    if let Ok(definition) = client.job_definition(&args.job_definition).await {
        let spot = client
            .compute_environments(&args.job_queue)
            .await
            .map(|envs| envs.iter().any(|e| e.resources.as_deref().is_some_and(|r| r.ends_with("SPOT"))))
            .unwrap_or(false);
        let options = LintOptions { allow: args.lint.allow.clone(), spot, retry_on_spot: args.retry_on_spot };
        lint_or_refuse(&definition, &options)?;
    }
    if args.dry_run {
        // The exact requests, nothing written or sent.
        let plan = client.submit_dry_run(&spec, &options).await?;
        present::lanes(&plan);
        match args.estimate {
            Some(seconds) => {
                let prices = batchfan::price::Prices::builtin()?;
                let estimate = client.estimate_submit(&options, plan.chunk_count, seconds, &prices).await?;
                let mut value = serde_json::to_value(&plan).unwrap_or_default();
                if let Some(map) = value.as_object_mut() {
                    map.insert("estimate".into(), serde_json::to_value(&estimate).unwrap_or_default());
                }
                print_json(&value);
            }
            None => print_json(&plan),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(seconds) = args.estimate {
        // The chunk count comes from the same checks and plan a submit makes (one extra listing).
        let plan = client.submit_dry_run(&spec, &options).await?;
        let prices = batchfan::price::Prices::builtin()?;
        let e = client.estimate_submit(&options, plan.chunk_count, seconds, &prices).await?;
        let cheapest = e.alternatives.first().unwrap_or(&e.chosen);
        eprintln!(
            "estimate: {} chunks x {seconds} s on {:?} {:?}, {} vCPU and {} MiB billed: {:.4} {} ({}); cheapest alternative {:?} {:?}: {:.4}",
            plan.chunk_count,
            e.chosen.capacity,
            e.chosen.arch,
            e.chosen.billed_vcpu,
            e.chosen.billed_memory_mib,
            e.chosen.cost,
            prices.currency,
            e.prices,
            cheapest.capacity,
            cheapest.arch,
            cheapest.cost
        );
        options.estimate = Some(e);
    }
    let run = client.submit(&spec, &options).await?;
    if let Some(replaced) = run.replaced() {
        eprintln!("note: the output was held by run {replaced}, which has finished; this run took it over");
    }
    let record = run.record();
    match args.format {
        Format::Json if !args.wait => print_json(record),
        Format::Json => {}
        Format::Text => {
            let arrays = match &record.detail {
                batchfan::run::RecordDetail::Batch(batch) => batch.arrays.clone(),
                _ => Vec::new(),
            };
            println!(
                "run {}: {} in {} as {}",
                record.run_id,
                count_of(record.item_count, "item", "items"),
                count_of(record.chunk_count, "chunk", "chunks"),
                count_of(arrays.len() as u64, "job", "jobs")
            );
            for a in &arrays {
                println!("  {}  {}  {}", a.job_id, a.job_name, count_of(a.size, "child", "children"));
            }
            println!("record:   {}", record.record_uri);
            println!("manifest: {}", record.manifest);
        }
    }
    if args.wait {
        return present::wait_for(&run, wait, args.format).await;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn iam_policy(args: IamPolicyArgs) -> Result<ExitCode> {
    let input = batchfan::iam::PolicyInput {
        input: args.input,
        output: args.output,
        manifest: args.manifest,
        queue_url: args.queue_url,
        dead_letter_queue: args.dead_letter_queue,
        secrets: args.secrets,
        image: args.image,
        log_group: args.log_group,
    };
    let documents = batchfan::iam::documents(&input)?;
    if input.queue_url.is_some() && input.dead_letter_queue.is_none() {
        eprintln!(
            "note: no --dead-letter-queue: the job role cannot move a message that can never succeed to the queue's dead-letter queue (give its URL or ARN)"
        );
    }
    match args.format {
        Format::Json => print_json(&documents),
        Format::Text => println!("{}", serde_json::to_string_pretty(&documents).unwrap_or_default()),
    }
    Ok(ExitCode::SUCCESS)
}
