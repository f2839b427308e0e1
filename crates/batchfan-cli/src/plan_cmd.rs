//! `batchfan plan`.

use std::process::ExitCode;

use batchfan::Client;
use batchfan::uri::Location;

use crate::cli::{Format, PlanArgs};
use crate::present;

pub async fn run(client: &Client, args: PlanArgs) -> batchfan::Result<ExitCode> {
    let mut options = args.plan.resolve(client).await?;
    // A plan shows what a submit would do: past 10,000 chunks a run is several arrays.
    options.max_chunks = options.max_chunks.max(batchfan::batch::MAX_RUN_CHUNKS);
    options.validate()?;
    let input = Location::parse(&args.plan.input)?.absolute()?;
    let plan = client.plan(&input, &options).await?;
    match args.format {
        Format::Json => println!("{}", present::plan_json(&plan)),
        Format::Text => println!("{}", present::plan_text(&plan)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `batchfan estimate`: the plan's chunk count priced.
pub async fn estimate(client: &Client, args: crate::cli::EstimateArgs) -> batchfan::Result<ExitCode> {
    use batchfan::price::{Capacity, CpuArch, EstimateInput, Prices};
    let prices = match &args.prices {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| batchfan::Error::option("--prices", path.display(), format!("cannot be read: {e}")))?;
            Prices::parse(&path.display().to_string(), &text)?
        }
        None => Prices::builtin()?,
    };
    let capacity = match args.capacity {
        crate::cli::CapacityArg::Fargate => Capacity::Fargate,
        crate::cli::CapacityArg::FargateSpot => Capacity::FargateSpot,
        crate::cli::CapacityArg::Ec2 => Capacity::Ec2,
        crate::cli::CapacityArg::Ec2Spot => Capacity::Ec2Spot,
    };
    let arch = match args.arch {
        crate::cli::ArchArg::X86_64 => CpuArch::X86_64,
        crate::cli::ArchArg::Arm64 => CpuArch::Arm64,
    };
    let mut options = args.plan.options();
    options.max_chunks = options.max_chunks.max(batchfan::batch::MAX_RUN_CHUNKS);
    options.validate()?;
    let input = Location::parse(&args.plan.input)?.absolute()?;
    // Everything priced is checked before a sample spends minutes running a chunk.
    let provisional = EstimateInput {
        chunks: 1,
        seconds_per_chunk: args.seconds_per_chunk.unwrap_or(1.0),
        vcpu: args.vcpu,
        memory_mib: args.memory,
    };
    batchfan::price::estimate(&prices, provisional, capacity, arch)?;
    let (chunks, sample) = match args.command.split_first() {
        Some((program, rest)) if args.sample => {
            let local = batchfan::LocalOptions::new(program, rest.to_vec());
            // Ctrl-C, SIGTERM and SIGHUP stop the sampled child through its drain path.
            let sample = client.sample(&input, &options, &local, crate::interrupted()).await?;
            (sample.chunk_count, Some(sample))
        }
        _ => (client.plan(&input, &options).await?.chunks.len() as u64, None),
    };
    let seconds_per_chunk = match (&sample, args.seconds_per_chunk) {
        (Some(sample), _) => sample.seconds_per_chunk,
        (None, Some(seconds)) => seconds,
        (None, None) => {
            return Err(batchfan::Error::option(
                "--seconds-per-chunk",
                "absent",
                "give it, or --sample -- PROGRAM ARGS",
            ));
        }
    };
    let input = EstimateInput { chunks, seconds_per_chunk, vcpu: args.vcpu, memory_mib: args.memory };
    let estimate = batchfan::price::estimate(&prices, input, capacity, arch)?;
    match args.format {
        Format::Json => {
            present::print_json(&serde_json::json!({"estimate": estimate, "sample": sample, "price_table": prices}))
        }
        Format::Text => {
            if let Some(s) = &sample {
                println!(
                    "sampled chunk {} ({} items, {}) in {:.2} s{}; scaled to the mean chunk ({}): {:.2} s per chunk",
                    s.chunk,
                    s.items,
                    batchfan::size::format_size(s.bytes),
                    s.seconds,
                    s.peak_rss_bytes
                        .map(|b| format!(", peak RSS {}", batchfan::size::format_size(b)))
                        .unwrap_or_default(),
                    batchfan::size::format_size(s.mean_chunk_bytes as u64),
                    s.seconds_per_chunk
                );
            }
            let c = &estimate.chosen;
            println!(
                "{} chunks x {} s = {:.2} task-hours at {} vCPU, {} MiB billed: {:.4} {} ({})",
                input.chunks,
                format!("{:.3}", input.seconds_per_chunk).trim_end_matches('0').trim_end_matches('.'),
                c.task_hours,
                c.billed_vcpu,
                c.billed_memory_mib,
                c.cost,
                prices.currency,
                estimate.prices
            );
            println!("{:<14} {:<8} {:>10}", "CAPACITY", "ARCH", "COST");
            for o in &estimate.alternatives {
                let mark = if o.capacity == c.capacity && o.arch == c.arch { "  <- chosen" } else { "" };
                let name = serde_json::to_value(o.capacity).ok().and_then(|v| v.as_str().map(str::to_string));
                let arch = serde_json::to_value(o.arch).ok().and_then(|v| v.as_str().map(str::to_string));
                println!("{:<14} {:<8} {:>10.4}{mark}", name.unwrap_or_default(), arch.unwrap_or_default(), o.cost);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
