//! What a run costs before it runs: chunks × seconds per chunk × the price of the capacity, from
//! a price table kept as data (`data/prices.json`, with its date and region; a user's file of
//! the same shape overrides it), with Fargate's vCPU/memory rounding and the alternatives
//! (x86_64 or ARM64, on-demand or Spot) beside the choice.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::FARGATE_RESOURCES;

/// The default price table (built in).
pub const DEFAULT_PRICES: &str = include_str!("../data/prices.json");

/// Fargate prices of one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FargateRate {
    /// Per vCPU-hour.
    pub vcpu_hour: f64,
    /// Per GB-hour.
    pub gb_hour: f64,
}

/// The EC2 instance an architecture's EC2 estimate is priced on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ec2Rate {
    /// Instance type.
    pub instance: String,
    /// Its vCPUs.
    pub vcpu: f64,
    /// Its memory, GiB.
    pub gib: f64,
    /// On-demand price per hour.
    pub hour: f64,
}

/// A price table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prices {
    /// When the prices were taken.
    pub date: String,
    /// The region they are for.
    pub region: String,
    /// Currency.
    pub currency: String,
    /// Fargate, per architecture.
    pub fargate: Arch<FargateRate>,
    /// Fargate Spot's discount off on-demand (0.7 = 70% off).
    pub fargate_spot_discount: f64,
    /// Fargate bills each task at least this long.
    pub fargate_minimum_seconds: f64,
    /// EC2, per architecture.
    pub ec2: Arch<Ec2Rate>,
    /// EC2 Spot's typical discount.
    pub ec2_spot_discount: f64,
}

/// One value per CPU architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arch<T> {
    /// x86_64.
    pub x86_64: T,
    /// ARM64 (Graviton).
    pub arm64: T,
}

impl Prices {
    /// The built-in table.
    pub fn builtin() -> Result<Prices> {
        Prices::parse("the built-in price table", DEFAULT_PRICES)
    }

    /// A table from JSON; `origin` names it in errors.
    pub fn parse(origin: &str, json: &str) -> Result<Prices> {
        serde_json::from_str(json).map_err(|e| {
            Error::option(
                "--prices",
                origin,
                format!("a price table shaped like the built-in one (`batchfan estimate --format json` shows it): {e}"),
            )
        })
    }
}

/// Where the jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capacity {
    /// Fargate on-demand.
    Fargate,
    /// Fargate Spot.
    FargateSpot,
    /// EC2 on-demand.
    Ec2,
    /// EC2 Spot.
    Ec2Spot,
}

/// CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuArch {
    /// x86_64.
    X86_64,
    /// ARM64 (Graviton).
    Arm64,
}

/// What is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimateInput {
    /// Chunks (children).
    pub chunks: u64,
    /// Seconds one chunk takes.
    pub seconds_per_chunk: f64,
    /// vCPUs per child.
    pub vcpu: f64,
    /// Memory per child, MiB.
    pub memory_mib: u64,
}

/// The cost on one kind of capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostOption {
    /// Capacity.
    pub capacity: Capacity,
    /// Architecture.
    pub arch: CpuArch,
    /// vCPUs billed per child (Fargate rounds up to a valid pair).
    pub billed_vcpu: f64,
    /// Memory billed per child, MiB.
    pub billed_memory_mib: u64,
    /// Task-hours billed.
    pub task_hours: f64,
    /// The run's cost.
    pub cost: f64,
}

/// An estimate: the choice and every alternative, cheapest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// What was estimated.
    pub input: EstimateInput,
    /// The table's date, region and currency.
    pub prices: String,
    /// The capacity and architecture asked for.
    pub chosen: CostOption,
    /// All eight (capacity × architecture), cheapest first.
    pub alternatives: Vec<CostOption>,
}

/// The smallest Fargate pair with at least `vcpu` and `memory_mib`; `None` above 16 vCPU / 120 GiB.
pub fn fargate_round(vcpu: f64, memory_mib: u64) -> Option<(f64, u64)> {
    FARGATE_RESOURCES
        .iter()
        .filter(|(v, _)| *v + 1e-9 >= vcpu)
        .find_map(|(v, memories)| memories.iter().find(|m| u64::from(**m) >= memory_mib).map(|m| (*v, u64::from(*m))))
}

fn option(prices: &Prices, input: &EstimateInput, capacity: Capacity, arch: CpuArch) -> Result<CostOption> {
    let pick = |a: CpuArch| match a {
        CpuArch::X86_64 => (&prices.fargate.x86_64, &prices.ec2.x86_64),
        CpuArch::Arm64 => (&prices.fargate.arm64, &prices.ec2.arm64),
    };
    let (fargate, ec2) = pick(arch);
    let chunks = input.chunks as f64;
    match capacity {
        Capacity::Fargate | Capacity::FargateSpot => {
            let (vcpu, memory) = fargate_round(input.vcpu, input.memory_mib).ok_or_else(|| {
                Error::option(
                    "--vcpu/--memory",
                    format!("{} vCPU, {} MiB", input.vcpu, input.memory_mib),
                    "at most 16 vCPU and 122880 MiB on Fargate",
                )
            })?;
            let seconds = input.seconds_per_chunk.max(prices.fargate_minimum_seconds);
            let task_hours = chunks * seconds / 3600.0;
            let hourly = vcpu * fargate.vcpu_hour + memory as f64 / 1024.0 * fargate.gb_hour;
            let discount = if capacity == Capacity::FargateSpot { 1.0 - prices.fargate_spot_discount } else { 1.0 };
            Ok(CostOption {
                capacity,
                arch,
                billed_vcpu: vcpu,
                billed_memory_mib: memory,
                task_hours,
                cost: task_hours * hourly * discount,
            })
        }
        Capacity::Ec2 | Capacity::Ec2Spot => {
            // A child's share of an instance: the larger of its vCPU and memory shares.
            let vcpu = input.vcpu.ceil().max(1.0);
            let share = (vcpu / ec2.vcpu).max(input.memory_mib as f64 / 1024.0 / ec2.gib);
            let task_hours = chunks * input.seconds_per_chunk / 3600.0;
            let discount = if capacity == Capacity::Ec2Spot { 1.0 - prices.ec2_spot_discount } else { 1.0 };
            Ok(CostOption {
                capacity,
                arch,
                billed_vcpu: vcpu,
                billed_memory_mib: input.memory_mib,
                task_hours,
                cost: task_hours * share * ec2.hour * discount,
            })
        }
    }
}

/// The run's cost on `capacity` and `arch`, beside every alternative.
pub fn estimate(prices: &Prices, input: EstimateInput, capacity: Capacity, arch: CpuArch) -> Result<Estimate> {
    if !(input.seconds_per_chunk.is_finite() && input.seconds_per_chunk > 0.0) {
        return Err(Error::option("--seconds-per-chunk", input.seconds_per_chunk, "a number of seconds above 0"));
    }
    if !(input.vcpu.is_finite() && input.vcpu > 0.0) {
        return Err(Error::option("--vcpu", input.vcpu, "a number of vCPUs above 0"));
    }
    let chosen = option(prices, &input, capacity, arch)?;
    let mut alternatives = Vec::new();
    for c in [Capacity::Fargate, Capacity::FargateSpot, Capacity::Ec2, Capacity::Ec2Spot] {
        for a in [CpuArch::X86_64, CpuArch::Arm64] {
            if let Ok(o) = option(prices, &input, c, a) {
                alternatives.push(o);
            }
        }
    }
    alternatives.sort_by(|a, b| a.cost.total_cmp(&b.cost));
    Ok(Estimate {
        input,
        prices: format!("{} prices of {} ({})", prices.region, prices.date, prices.currency),
        chosen,
        alternatives,
    })
}

/// The estimate of a submit: the capacity from the queue's compute environments (Spot when
/// every usable one is, Fargate when they are Fargate), the architecture from the job
/// definition's `runtimePlatform`, vCPU and memory from the definition and the overrides.
pub fn for_submit(
    prices: &Prices,
    chunks: u64,
    seconds_per_chunk: f64,
    job: &crate::capacity::JobShape,
    arm64: bool,
    environments: &[crate::capacity::ComputeEnvironment],
) -> Result<Estimate> {
    let usable: Vec<&crate::capacity::ComputeEnvironment> = environments.iter().filter(|e| e.usable()).collect();
    let spot = !usable.is_empty() && usable.iter().all(|e| e.resources.as_deref().is_some_and(|r| r.ends_with("SPOT")));
    let capacity = match (job.fargate, spot) {
        (true, false) => Capacity::Fargate,
        (true, true) => Capacity::FargateSpot,
        (false, false) => Capacity::Ec2,
        (false, true) => Capacity::Ec2Spot,
    };
    let input = EstimateInput {
        chunks,
        seconds_per_chunk,
        vcpu: job.vcpu.unwrap_or(1.0),
        memory_mib: job.memory_mib.unwrap_or(2048),
    };
    estimate(prices, input, capacity, if arm64 { CpuArch::Arm64 } else { CpuArch::X86_64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(vcpu: f64, memory: u64) -> EstimateInput {
        EstimateInput { chunks: 1000, seconds_per_chunk: 360.0, vcpu, memory_mib: memory }
    }

    #[test]
    fn the_builtin_table_reads_and_names_its_date_and_region() {
        let p = Prices::builtin().unwrap();
        assert_eq!((p.region.as_str(), p.currency.as_str()), ("us-east-1", "USD"));
        assert!(p.fargate.arm64.vcpu_hour < p.fargate.x86_64.vcpu_hour);
        assert!(Prices::parse("mine.json", "{}").unwrap_err().to_string().contains("mine.json"));
    }

    #[test]
    fn fargate_rounds_up_to_a_valid_pair() {
        assert_eq!(fargate_round(0.25, 512), Some((0.25, 512)));
        assert_eq!(fargate_round(0.3, 600), Some((0.5, 1024)));
        assert_eq!(fargate_round(1.0, 9000), Some((2.0, 9216)));
        assert_eq!(fargate_round(0.25, 3000), Some((0.5, 3072)));
        assert_eq!(fargate_round(17.0, 1024), None);
    }

    #[test]
    fn fargate_cost_is_task_hours_times_rates_with_the_minimum_minute() {
        let p = Prices::builtin().unwrap();
        // 1000 chunks × 6 min = 100 task-hours at 1 vCPU, 2 GB.
        let e = estimate(&p, input(1.0, 2048), Capacity::Fargate, CpuArch::X86_64).unwrap();
        let expected = 100.0 * (0.04048 + 2.0 * 0.004445);
        assert!((e.chosen.cost - expected).abs() < 1e-9, "{e:?}");
        assert_eq!(e.alternatives.len(), 8);
        assert_eq!(e.alternatives[0].capacity, Capacity::FargateSpot, "Spot is cheapest: {:?}", e.alternatives);
        let arm = e.alternatives.iter().find(|o| o.capacity == Capacity::Fargate && o.arch == CpuArch::Arm64).unwrap();
        assert!(arm.cost < e.chosen.cost * 0.81, "ARM64 about 20% cheaper");
        let short = EstimateInput { seconds_per_chunk: 5.0, ..input(1.0, 2048) };
        let e = estimate(&p, short, Capacity::Fargate, CpuArch::X86_64).unwrap();
        assert!((e.chosen.task_hours - 1000.0 * 60.0 / 3600.0).abs() < 1e-9, "billed at least a minute");
        assert!(
            estimate(&p, EstimateInput { seconds_per_chunk: 0.0, ..short }, Capacity::Ec2, CpuArch::X86_64).is_err()
        );
    }

    #[test]
    fn ec2_cost_is_the_larger_share_of_an_instance() {
        let p = Prices::builtin().unwrap();
        // 1 vCPU, 8 GiB of an m6i.xlarge (4 vCPU, 16 GiB): half of it, by memory.
        let e = estimate(&p, input(1.0, 8192), Capacity::Ec2, CpuArch::X86_64).unwrap();
        assert!((e.chosen.cost - 100.0 * 0.5 * 0.192).abs() < 1e-9, "{e:?}");
        let spot = estimate(&p, input(1.0, 8192), Capacity::Ec2Spot, CpuArch::X86_64).unwrap();
        assert!((spot.chosen.cost - e.chosen.cost * 0.4).abs() < 1e-9);
    }
}
