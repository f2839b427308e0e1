//! Whether a job queue's compute environments can ever run a job: the check that keeps a job
//! from sitting RUNNABLE forever (the most common AWS Batch complaint).
//!
//! Pure logic over described environments; the describing is in `batch::capacity`. A job
//! fits an environment when the environment is ENABLED and not INVALID, runs the job's platform
//! (Fargate or EC2), allows its vCPUs (`maxvCpus`; whole vCPUs on EC2; Fargate's pairs) and, on
//! EC2, one of its instance types is big enough. What cannot be known (an UNMANAGED environment,
//! an instance type missing from the table) counts as fitting: only certain refusals are made.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::limits;

/// Memory the ECS agent keeps on every EC2 instance of the default AMI (MiB).
pub const ECS_RESERVED_MIB: u64 = 32;
/// Share of an instance's installed memory the kernel and platform take before the ECS agent
/// registers it (AWS's example: an m4.large, 8,192 MiB installed, registers 7,985 MiB).
pub const KERNEL_OVERHEAD_PERCENT: u64 = 3;

/// One compute environment of a job queue, as DescribeComputeEnvironments tells it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ComputeEnvironment {
    /// Name.
    pub name: String,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    /// `VALID`, `INVALID`, `CREATING`, `UPDATING`, ...
    pub status: String,
    /// Why it is in that status, when AWS says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// `MANAGED` or `UNMANAGED`.
    pub kind: String,
    /// `EC2`, `SPOT`, `FARGATE` or `FARGATE_SPOT` (managed environments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<String>,
    /// Most vCPUs it may run at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_vcpus: Option<i64>,
    /// vCPUs it holds now (EC2: what it scaled to for the jobs it places).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_vcpus: Option<i64>,
    /// Instance types or families (`optimal`, `m5`, `c6g.4xlarge`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instance_types: Vec<String>,
}

impl ComputeEnvironment {
    /// True when it can place jobs (ENABLED and not INVALID).
    pub fn usable(&self) -> bool {
        self.state.eq_ignore_ascii_case("ENABLED") && !self.status.eq_ignore_ascii_case("INVALID")
    }

    /// True for Fargate and Fargate Spot environments.
    pub fn is_fargate(&self) -> bool {
        self.resources.as_deref().is_some_and(|r| r.to_ascii_uppercase().starts_with("FARGATE"))
    }

    /// True when its vCPUs are all in use (`desiredvCpus` at `maxvCpus`).
    pub fn at_max(&self) -> bool {
        matches!((self.desired_vcpus, self.max_vcpus), (Some(d), Some(m)) if m > 0 && d >= m)
    }

    fn describe_state(&self) -> String {
        let reason = self.status_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        format!("`{}` ({} and {}{reason})", self.name, self.state, self.status)
    }
}

/// What a job asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct JobShape {
    /// vCPUs (definition, or the submit's override).
    pub vcpu: Option<f64>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// The job definition runs on Fargate.
    pub fargate: bool,
}

impl std::fmt::Display for JobShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let vcpu = self.vcpu.map_or("default vCPU".to_string(), |v| format!("{v} vCPU"));
        let memory = self.memory_mib.map_or("default memory".to_string(), |m| format!("{m} MiB"));
        let platform = if self.fargate { "Fargate" } else { "EC2" };
        write!(f, "{vcpu} and {memory} on {platform}")
    }
}

/// The largest instance an instance type entry allows: (name, vCPUs, installed MiB).
fn largest_instance(entry: &str) -> Option<Vec<(String, u64, u64)>> {
    let table = table();
    if let Some(families) = table.aliases.get(entry) {
        return families.iter().map(|f| table.families.get(f).map(|x| family_max(f, x))).collect();
    }
    match entry.split_once('.') {
        Some((family, size)) => {
            let f = table.families.get(family)?;
            let vcpu = match size {
                "medium" => 1,
                "large" => 2,
                "xlarge" => 4,
                s => 4 * s.strip_suffix("xlarge")?.parse::<u64>().ok()?,
            };
            Some(vec![(entry.to_string(), vcpu.min(f.1), (f.0 * vcpu as f64 * 1024.0) as u64)])
        }
        None => table.families.get(entry).map(|f| vec![family_max(entry, f)]),
    }
}

fn family_max(family: &str, f: &(f64, u64, String)) -> (String, u64, u64) {
    (format!("{family} (largest: {} vCPU)", f.1), f.1, (f.0 * f.1 as f64 * 1024.0) as u64)
}

/// Memory a job can get on an instance of `installed` MiB.
pub fn usable_mib(installed: u64) -> u64 {
    (installed * (100 - KERNEL_OVERHEAD_PERCENT) / 100).saturating_sub(ECS_RESERVED_MIB)
}

#[derive(serde::Deserialize)]
struct Table {
    families: BTreeMap<String, (f64, u64, String)>,
    aliases: BTreeMap<String, Vec<String>>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("../data/ec2-instance-families.json"))
            .unwrap_or(Table { families: BTreeMap::new(), aliases: BTreeMap::new() })
    })
}

/// Why `job` can never run in `env`, or `None` when it can (or cannot be known).
pub fn why_not(job: &JobShape, env: &ComputeEnvironment) -> Option<String> {
    if !env.usable() {
        return Some(format!("{} places nothing", env.describe_state()));
    }
    if env.kind.eq_ignore_ascii_case("UNMANAGED") {
        return None;
    }
    if job.fargate != env.is_fargate() {
        let (job_p, env_p) = if job.fargate { ("Fargate", "EC2") } else { ("EC2", "Fargate") };
        return Some(format!(
            "`{}` is a {env_p} environment ({}) and the job definition is {job_p}",
            env.name,
            env.resources.as_deref().unwrap_or("?")
        ));
    }
    let vcpu = job.vcpu?;
    if let Some(max) = env.max_vcpus
        && vcpu > max as f64
    {
        return Some(format!("`{}` allows at most maxvCpus {max}, the job asks for {vcpu} vCPU", env.name));
    }
    if job.fargate {
        if let Some(memory) = job.memory_mib
            && let Err(e) = limits::check_fargate_resources(vcpu, memory.min(u32::MAX as u64) as u32)
        {
            return Some(format!("`{}` is Fargate: {e}", env.name));
        }
        return None;
    }
    if vcpu.fract() != 0.0 {
        return Some(format!(
            "`{}` is EC2, which takes whole vCPUs: the job asks for {vcpu} (fractions are Fargate only)",
            env.name
        ));
    }
    let mut instances = Vec::new();
    for entry in &env.instance_types {
        // An instance type the table does not know: cannot tell, so no refusal.
        instances.extend(largest_instance(entry)?);
    }
    if instances.is_empty() {
        return None;
    }
    let memory = job.memory_mib.unwrap_or(0);
    if instances.iter().any(|(_, v, m)| *v as f64 >= vcpu && usable_mib(*m) >= memory) {
        return None;
    }
    let sizes: Vec<String> = instances
        .iter()
        .map(|(name, v, m)| format!("{name}: {v} vCPU, {m} MiB installed, about {} MiB for jobs", usable_mib(*m)))
        .collect();
    Some(format!(
        "no instance type of `{}` is big enough: {} (the kernel takes about {KERNEL_OVERHEAD_PERCENT}% of an instance's memory and the ECS agent {ECS_RESERVED_MIB} MiB)",
        env.name,
        sizes.join("; ")
    ))
}

/// Refuses (bad input, naming each environment's limits) a job no environment of `queue` can
/// ever run, and a queue whose environments are all DISABLED or INVALID.
pub fn check_fits(queue: &str, job: &JobShape, envs: &[ComputeEnvironment]) -> Result<()> {
    if envs.is_empty() {
        return Ok(());
    }
    if envs.iter().all(|e| !e.usable()) {
        let states: Vec<String> = envs.iter().map(ComputeEnvironment::describe_state).collect();
        return Err(Error::option(
            "--job-queue",
            queue,
            format!(
                "a queue that can run jobs: its compute environments are all DISABLED or INVALID ({}), so jobs would stay RUNNABLE forever; enable one (`aws batch update-compute-environment --compute-environment NAME --state ENABLED`) or fix it",
                states.join(", ")
            ),
        ));
    }
    let reasons: Vec<String> = envs.iter().filter_map(|e| why_not(job, e)).collect();
    if reasons.len() < envs.len() {
        return Ok(());
    }
    Err(Error::option(
        "--job-queue",
        queue,
        format!(
            "a queue with a compute environment that can run a job of {job}; it would stay RUNNABLE forever: {}. Ask for less (--vcpu, --memory, or the job definition), or use a queue with larger environments",
            reasons.join("; ")
        ),
    ))
}

/// Why a RUNNABLE job of `job`'s shape is not moving, from the queue's environments: each
/// DISABLED or INVALID environment, each at its `maxvCpus`, and the job fitting none.
pub fn diagnose(job: &JobShape, envs: &[ComputeEnvironment]) -> Vec<String> {
    let mut out = Vec::new();
    for env in envs {
        if !env.usable() {
            out.push(format!("compute environment {} places nothing", env.describe_state()));
        } else if env.at_max() {
            out.push(format!(
                "compute environment `{}` has all its vCPUs in use (desiredvCpus {} of maxvCpus {}): jobs wait for others to finish; raise maxvCpus to run more at once",
                env.name,
                env.desired_vcpus.unwrap_or(0),
                env.max_vcpus.unwrap_or(0)
            ));
        }
    }
    if let Err(e) = check_fits("", job, envs)
        && envs.iter().any(ComputeEnvironment::usable)
    {
        let text = e.to_string();
        let reason = text.split_once(" forever: ").map_or(text.as_str(), |(_, r)| r);
        out.push(format!("no compute environment can ever run a job of {job}: {reason}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec2(name: &str, max: i64, types: &[&str]) -> ComputeEnvironment {
        ComputeEnvironment {
            name: name.into(),
            state: "ENABLED".into(),
            status: "VALID".into(),
            kind: "MANAGED".into(),
            resources: Some("EC2".into()),
            max_vcpus: Some(max),
            instance_types: types.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    fn job(vcpu: f64, memory: u64, fargate: bool) -> JobShape {
        JobShape { vcpu: Some(vcpu), memory_mib: Some(memory), fargate }
    }

    #[test]
    fn ec2_limits_name_max_vcpus_and_instance_sizes() {
        let envs = [ec2("small", 16, &["m5.large"])];
        assert!(check_fits("q", &job(2.0, 4096, false), &envs).is_ok());
        let err = check_fits("q", &job(32.0, 4096, false), &envs).unwrap_err().to_string();
        assert!(err.contains("maxvCpus 16") && err.contains("32 vCPU"), "{err}");
        // m5.large: 8,192 MiB installed; a job asking for all of it never fits.
        let err = check_fits("q", &job(2.0, 8192, false), &envs).unwrap_err().to_string();
        assert!(err.contains("m5.large: 2 vCPU, 8192 MiB installed"), "{err}");
        assert!(check_fits("q", &job(2.0, 7900, false), &envs).is_ok());
        let err = check_fits("q", &job(0.5, 1024, false), &envs).unwrap_err().to_string();
        assert!(err.contains("whole vCPUs"), "{err}");
        // Families and `optimal`: the largest size counts.
        assert!(check_fits("q", &job(64.0, 200_000, false), &[ec2("o", 256, &["optimal"])]).is_ok());
        assert!(check_fits("q", &job(8.0, 1_000_000, false), &[ec2("o", 256, &["optimal"])]).is_err());
        // A type the table does not know is never refused.
        assert!(check_fits("q", &job(8.0, 1_000_000, false), &[ec2("u", 256, &["zz9.huge"])]).is_ok());
    }

    #[test]
    fn fargate_pairs_platform_and_disabled_environments() {
        let mut fargate = ec2("fg", 4, &[]);
        fargate.resources = Some("FARGATE_SPOT".into());
        assert!(check_fits("q", &job(2.0, 4096, true), std::slice::from_ref(&fargate)).is_ok());
        let err = check_fits("q", &job(8.0, 16384, true), std::slice::from_ref(&fargate)).unwrap_err().to_string();
        assert!(err.contains("maxvCpus 4"), "{err}");
        let err = check_fits("q", &job(1.0, 1024, true), std::slice::from_ref(&fargate)).unwrap_err().to_string();
        assert!(err.contains("Fargate allows with 1 vCPU"), "{err}");
        let err = check_fits("q", &job(1.0, 2048, false), std::slice::from_ref(&fargate)).unwrap_err().to_string();
        assert!(err.contains("job definition is EC2"), "{err}");
        let mut off = ec2("off", 16, &["m5"]);
        off.state = "DISABLED".into();
        let mut bad = ec2("bad", 16, &["m5"]);
        bad.status = "INVALID".into();
        bad.status_reason = Some("role missing".into());
        let err = check_fits("q", &job(1.0, 1024, false), &[off.clone(), bad]).unwrap_err().to_string();
        assert!(err.contains("all DISABLED or INVALID") && err.contains("role missing"), "{err}");
        // One usable environment that fits is enough.
        assert!(check_fits("q", &job(1.0, 1024, false), &[off, ec2("on", 16, &["m5"])]).is_ok());
    }

    #[test]
    fn diagnosis_names_full_disabled_and_too_small_environments() {
        let mut full = ec2("full", 16, &["m5"]);
        full.desired_vcpus = Some(16);
        let mut off = ec2("off", 16, &["m5"]);
        off.state = "DISABLED".into();
        let lines = diagnose(&job(1.0, 1024, false), &[full.clone(), off.clone()]);
        assert!(lines.iter().any(|l| l.contains("desiredvCpus 16 of maxvCpus 16")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("`off` (DISABLED")), "{lines:?}");
        let lines = diagnose(&job(64.0, 1024, false), &[full]);
        assert!(lines.iter().any(|l| l.contains("no compute environment can ever run")), "{lines:?}");
    }
}
