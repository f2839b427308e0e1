//! Command-line arguments.

use std::path::PathBuf;

use batchfan::{Location, PlanOptions, RunSpec};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// `batchfan --version`: the version and the commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("BATCHFAN_COMMIT"), ")");

/// Fan out work over every object under an S3 prefix or local folder: plan it, run it on this
/// machine, or run it as one AWS Batch array job.
#[derive(Debug, Parser)]
#[command(name = "batchfan", version = VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List and pack the input into chunks and print the plan; runs nothing.
    Plan(PlanArgs),
    /// Plan, write the manifest and run every chunk (with --local: as processes on this machine).
    Run(RunArgs),
    /// Register an AWS Batch job definition, or reuse the latest ACTIVE revision when identical.
    ///
    /// The batchfan worker image's ENTRYPOINT is the worker, so a job definition's command is
    /// the worker's arguments. Examples:
    ///   batchfan register --cli-input-json worker-image/jobdefs/fargate.json
    ///   batchfan register --name wordcount --image ACCOUNT.dkr.ecr.REGION.amazonaws.com/batchfan-worker:0.1.0 \
    ///       --vcpu 1 --memory 2048 --command wordcount
    ///   batchfan register --name to-json --image ACCOUNT.dkr.ecr.REGION.amazonaws.com/python-jq-worker:1 \
    ///       --vcpu 1 --memory 2048 --command exec --command=-- --command python3 \
    ///       --command /opt/job/job.py --command '{input}' --command '{output}'
    #[command(verbatim_doc_comment)]
    Register(RegisterArgs),
    /// Check a job definition (register-job-definition JSON) against AWS security and cost
    /// practice: exit 1 on errors, 0 with only warnings.
    ///
    /// Rules (errors): plaintext-secret, privileged, fargate-no-execution-role,
    /// ec2-fractional-vcpu. (warnings): image-not-pinned, same-role, no-job-role, writable-root,
    /// no-log-configuration, no-timeout, no-retry-strategy, spot-without-reclaim-retry. (info):
    /// arm64-not-used. `register` and `submit` run them too; `--allow RULE` skips one.
    Lint(LintArgs),
    /// What a run would cost: chunks from the plan × seconds per chunk × the price of the
    /// capacity (a built-in table with its date and region, or --prices FILE), beside the
    /// alternatives (x86_64 or ARM64, on-demand or Spot), Fargate's rounding applied.
    Estimate(Box<EstimateArgs>),
    /// Print least-privilege IAM policy documents for the job role and the execution role
    /// (with their ECS-tasks trust policy), as JSON.
    IamPolicy(IamPolicyArgs),
    /// Plan, write the manifest to S3 and submit the run as AWS Batch array jobs.
    Submit(Box<SubmitArgs>),
    /// Show a run's progress: chunks committed, failed and pending, and why they failed.
    Status(StatusArgs),
    /// Wait for a run to finish; exit 0 if every chunk committed (within the tolerance), else 1.
    Wait(WaitArgs),
    /// Cancel a run: terminate its AWS Batch jobs (or stop a local run's process), release its output.
    Cancel(CancelArgs),
    /// Run a finished run's chunks without a completion marker again: a new AWS Batch array over
    /// exactly them, a queue run's dead-lettered chunks sent again, a local run's run now.
    Redrive(RedriveArgs),
    /// List what a run committed, in chunk order, from its completion markers.
    Outputs(OutputsArgs),
    /// Stream everything a run committed to stdout, in chunk order (a gather step is one pipe).
    Cat(CatArgs),
    /// A run's report: per chunk its status, attempts, exit code and reason; with --html, a
    /// self-contained page with a timeline, distributions, stragglers and failures.
    Report(ReportArgs),
    /// Print the logs of a run's chunks, every line prefixed `[CHUNK/ATTEMPT]`, merged in time
    /// order: local attempt files, AWS Batch children's CloudWatch Logs streams, queue workers'.
    Logs(LogsArgs),
    /// List past runs, newest first: id, kind, start, duration, chunks committed/failed/pending.
    Runs(RunsArgs),
    /// Plan, write the manifest and send one SQS message per chunk, for queue workers.
    Enqueue(Box<EnqueueArgs>),
    /// Run N queue workers on this machine: restarted when they crash, drained on Ctrl-C/SIGTERM.
    Workers(WorkersArgs),
    /// Scale queue workers on SQS depth: evaluate, simulate, export, init and run policies.
    #[command(subcommand)]
    Scale(ScaleCommand),
    /// Print a shell completion script: `batchfan completions bash > /etc/bash_completion.d/batchfan`.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Printed at the end of every `--help`.
pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 work failed (children failed, a run did not finish within --timeout), \
2 bad input (nothing was written or sent), 75 transient (network, throttling, a full disk: retry), \
130 interrupted (Ctrl-C, SIGTERM)";

#[derive(Debug, Subcommand)]
pub enum ScaleCommand {
    /// The decision for one state of the queue and the workers: new capacity, adjustment, which
    /// policy and step fired, computed from the metric each policy names.
    Evaluate(ScaleEvaluateArgs),
    /// Replay an arrival trace (CSV `seconds,messages`) through the policies and a worker model.
    Simulate(ScaleSimulateArgs),
    /// Print the documents that install the policies natively for an ECS service.
    Export(ScaleExportArgs),
    /// Write a recommended policy for a service time and a latency objective.
    Init(ScaleInitArgs),
    /// Poll a queue, decide, and apply the decisions to a capacity target.
    Run(ScaleRunArgs),
}

/// Capacity bounds given on the command line (override the file's ScalableTarget).
#[derive(Debug, Args, Clone, Copy)]
pub struct BoundsArgs {
    /// Least capacity [default: the file's MinCapacity].
    #[arg(long, value_name = "N")]
    pub min: Option<u32>,
    /// Most capacity [default: the file's MaxCapacity].
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ScaleEvaluateArgs {
    /// The scaling file (AWS CLI input documents, or `scale export` output; see `batchfan scale init`).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Visible messages (ApproximateNumberOfMessagesVisible): each policy's metric is computed
    /// from the queue values given, as its document says.
    #[arg(long, value_name = "N", visible_alias = "visible")]
    pub metric: Option<f64>,
    /// Messages in flight (ApproximateNumberOfMessagesNotVisible).
    #[arg(long, value_name = "N")]
    pub in_flight: Option<f64>,
    /// Delayed messages (ApproximateNumberOfMessagesDelayed).
    #[arg(long, value_name = "N")]
    pub delayed: Option<f64>,
    /// Age of the oldest message (ApproximateAgeOfOldestMessage), seconds.
    #[arg(long, value_name = "S")]
    pub oldest_age: Option<f64>,
    /// Messages sent per minute (NumberOfMessagesSent).
    #[arg(long, value_name = "N")]
    pub sent: Option<f64>,
    /// Messages received per minute (NumberOfMessagesReceived).
    #[arg(long, value_name = "N")]
    pub received: Option<f64>,
    /// Messages deleted per minute (NumberOfMessagesDeleted).
    #[arg(long, value_name = "N")]
    pub deleted: Option<f64>,
    /// Workers running (RunningTaskCount) [default: --capacity].
    #[arg(long, value_name = "N")]
    pub running: Option<f64>,
    /// The value of a metric batchfan cannot compute (CPU, memory, a custom namespace): NAME is
    /// its MetricName, its query Id, or any name when the policies name only one such metric.
    #[arg(long, value_name = "NAME=VALUE")]
    pub metric_value: Vec<String>,
    /// The current capacity (DesiredTaskCount).
    #[arg(long, value_name = "N")]
    pub capacity: u32,
    #[command(flatten)]
    pub bounds: BoundsArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ScaleSimulateArgs {
    /// The scaling file (or `scale export` output).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Arrivals: CSV lines `seconds,messages[,COLUMN...]` (a header line names extra columns).
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// Seconds of work per message.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub service_time: f64,
    /// Seconds from asking for a worker until it takes messages.
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    pub startup_delay: f64,
    /// The latency objective: messages that wait longer (or are still waiting at the end) are
    /// counted, the oracle is run, and the exit code is 1 when any did.
    #[arg(long, value_name = "SECONDS")]
    pub slo: Option<f64>,
    /// A trace column that feeds a metric batchfan cannot compute (CPU, memory, a custom
    /// namespace): the column named NAME in the trace's header feeds the metric whose MetricName
    /// or query Id is NAME, or the one such metric the policies name.
    #[arg(long, value_name = "NAME")]
    pub metric_column: Vec<String>,
    #[command(flatten)]
    pub bounds: BoundsArgs,
    /// Draw arrivals, backlog, workers and the oldest message's age to this SVG file.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ScaleExportArgs {
    /// The scaling file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The ECS service: service/CLUSTER/SERVICE.
    #[arg(long, value_name = "ID")]
    pub resource_id: String,
    /// The SQS queue's name (the alarms' QueueName dimension).
    #[arg(long, value_name = "Q")]
    pub queue_name: String,
}

#[derive(Debug, Args)]
pub struct ScaleInitArgs {
    /// Seconds of work per message.
    #[arg(long, value_name = "S")]
    pub service_time: f64,
    /// Seconds within which every message should start.
    #[arg(long, value_name = "S")]
    pub slo: f64,
    /// Least capacity.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min: u32,
    /// Most capacity.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max: u32,
    /// The SQS queue's name (for the alarm's dimension).
    #[arg(long, value_name = "Q", default_value = "QUEUE")]
    pub queue_name: String,
    /// Where to write the scaling file [default: stdout].
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// What `scale run` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaleTarget {
    /// A `batchfan workers` pool of PROGRAM on this machine.
    Local,
    /// Worker jobs on AWS Batch (--job-queue, --job-definition).
    Batch,
    /// Nothing: print the decisions (a dry run).
    Print,
}

#[derive(Debug, Args)]
pub struct ScaleRunArgs {
    /// The queue whose depth drives the capacity.
    #[arg(long, value_name = "URL")]
    pub queue_url: String,
    /// The scaling file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// What to scale.
    #[arg(long, value_enum)]
    pub target: ScaleTarget,
    #[command(flatten)]
    pub bounds: BoundsArgs,
    /// Seconds between polls of the queue's attributes.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub interval: f64,
    /// Stop after this many seconds [default: until Ctrl-C or SIGTERM].
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// --target local: where worker logs go.
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// --target batch: the job queue of the worker jobs.
    #[arg(long, value_name = "QUEUE")]
    pub job_queue: Option<String>,
    /// --target batch: the job definition whose container serves the queue.
    #[arg(long, value_name = "NAME[:REV]")]
    pub job_definition: Option<String>,
    /// --target batch: worker job names start with this.
    #[arg(long, value_name = "PREFIX", default_value = "batchfan-worker")]
    pub name_prefix: String,
    /// One JSON line per decision instead of text.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// --target local: the worker program and its arguments.
    #[arg(last = true, value_name = "PROGRAM [ARGS]")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The work queue's URL (`aws sqs get-queue-url --queue-name NAME`).
    #[arg(long, value_name = "URL")]
    pub queue_url: String,
    #[command(flatten)]
    pub plan: PlanOptionArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Print what would be sent; write and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// The queue the workers serve (each gets it as BATCHFAN_QUEUE_URL).
    #[arg(long, value_name = "URL")]
    pub queue_url: String,
    /// Workers to run.
    #[arg(long, value_name = "N")]
    pub count: usize,
    /// Where worker logs go (worker-NNN.log) [default: a folder under the system temp dir].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Seconds the workers get to drain after Ctrl-C/SIGTERM before they are killed
    /// [default: their BATCHFAN_STOP_TIMEOUT (25) plus 5].
    #[arg(long, value_name = "SECS")]
    pub stop_deadline: Option<f64>,
    /// The worker program (e.g. `batchfan-worker wordcount`) and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM [ARGS]")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// The job definition: the JSON of `aws batch register-job-definition --cli-input-json`
    /// (a path, or file://PATH).
    #[arg(value_name = "FILE")]
    pub file: String,
    #[command(flatten)]
    pub lint: LintOptionArgs,
    /// The jobs run on Spot capacity (EC2 Spot or Fargate Spot).
    #[arg(long)]
    pub spot: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Capacity an estimate prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CapacityArg {
    /// Fargate on-demand.
    Fargate,
    /// Fargate Spot.
    FargateSpot,
    /// EC2 on-demand.
    Ec2,
    /// EC2 Spot.
    Ec2Spot,
}

/// CPU architecture an estimate prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// x86_64.
    #[value(name = "x86_64")]
    X86_64,
    /// ARM64 (Graviton).
    Arm64,
}

#[derive(Debug, Args)]
pub struct EstimateArgs {
    #[command(flatten)]
    pub plan: PlanOptionArgs,
    /// vCPUs per child.
    #[arg(long)]
    pub vcpu: f64,
    /// Memory per child, MiB.
    #[arg(long)]
    pub memory: u64,
    /// Seconds one chunk takes (or let `--sample` measure it).
    #[arg(long, value_name = "S", required_unless_present = "sample", conflicts_with = "sample")]
    pub seconds_per_chunk: Option<f64>,
    /// Measure the seconds per chunk: run the chunk of median input bytes on this machine as a
    /// process of PROGRAM (as `batchfan run --local` would, its output in a scratch folder that
    /// is removed), scaled by input bytes to the mean chunk.
    #[arg(long, requires = "command")]
    pub sample: bool,
    /// CPU architecture.
    #[arg(long, value_enum, default_value_t = ArchArg::X86_64)]
    pub arch: ArchArg,
    /// Capacity.
    #[arg(long, value_enum, default_value_t = CapacityArg::Fargate)]
    pub capacity: CapacityArg,
    /// A price table of the built-in shape (`--format json` shows it) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// With `--sample`: the program a chunk runs, and its arguments (a batchfan worker).
    #[arg(last = true, value_name = "PROGRAM [ARGS]")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The input location the children read (s3://bucket/prefix/).
    #[arg(long, value_name = "URI")]
    pub input: String,
    /// The output location they write.
    #[arg(long, value_name = "URI")]
    pub output: String,
    /// A manifest kept outside the output.
    #[arg(long, value_name = "URI")]
    pub manifest: Option<String>,
    /// The SQS queue queue workers serve.
    #[arg(long, value_name = "URL")]
    pub queue_url: Option<String>,
    /// That queue's dead-letter queue (URL or ARN): workers send messages that can never
    /// succeed there at once (sqs:GetQueueUrl and sqs:SendMessage on it only).
    #[arg(long, value_name = "URL|ARN", requires = "queue_url")]
    pub dead_letter_queue: Option<String>,
    /// A Secrets Manager or SSM parameter ARN the job definition's `secrets` name (repeatable).
    #[arg(long, value_name = "ARN")]
    pub secrets: Vec<String>,
    /// The image, when pulled from ECR: the execution role may pull that repository only.
    #[arg(long)]
    pub image: Option<String>,
    /// The awslogs group [default: /aws/batch/job].
    #[arg(long)]
    pub log_group: Option<String>,
    /// Output format (both are JSON documents; text pretty-prints them).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Lint rules to skip (`register`, `submit`, `lint`).
#[derive(Debug, Args, Clone)]
pub struct LintOptionArgs {
    /// Skip this lint rule (repeatable), e.g. `--allow no-timeout`; `batchfan lint --help` lists them.
    #[arg(long, value_name = "RULE")]
    pub allow: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub lint: LintOptionArgs,
    /// The JSON of `aws batch register-job-definition --cli-input-json` (a path, or file://PATH).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "image"])]
    pub cli_input_json: Option<String>,
    /// Short form: the job definition name.
    #[arg(long, requires = "image")]
    pub name: Option<String>,
    /// Short form: the image (pin a tag or digest).
    #[arg(long, requires_all = ["name", "vcpu", "memory"])]
    pub image: Option<String>,
    /// Short form: vCPUs (Fargate: 0.25, 0.5, 1, 2, 4, 8, 16).
    #[arg(long)]
    pub vcpu: Option<f64>,
    /// Short form: memory in MiB.
    #[arg(long)]
    pub memory: Option<u32>,
    /// Short form: run on Fargate (else EC2).
    #[arg(long)]
    pub fargate: bool,
    /// Short form: the role the job's code uses.
    #[arg(long, value_name = "ARN")]
    pub job_role: Option<String>,
    /// Short form: the role the agent uses (pull image, logs, secrets); needed on Fargate.
    #[arg(long, value_name = "ARN")]
    pub execution_role: Option<String>,
    /// Short form: the container's command, one argument per flag; the batchfan worker image
    /// hands it to its ENTRYPOINT (the worker): `--command wordcount`, or `--command exec
    /// --command=-- --command jq ...`. An image without that ENTRYPOINT names the program first.
    #[arg(long, value_name = "ARG")]
    pub command: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// When `wait` counts a run as failed.
#[derive(Debug, Args, Clone, Copy)]
pub struct ToleranceArgs {
    /// Failed children allowed, as a percentage of all children.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    pub tolerated_failure_percent: f64,
    /// Failed children allowed, as a count.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub tolerated_failure_count: u64,
    /// Seconds between polls (one DescribeJobs call each; for queue runs, a marker listing and
    /// the queue's counts).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub interval: f64,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job queue.
    #[arg(long, value_name = "QUEUE")]
    pub job_queue: String,
    /// The job definition, NAME or NAME:REVISION.
    #[arg(long, value_name = "NAME[:REV]")]
    pub job_definition: String,
    #[command(flatten)]
    pub plan: PlanOptionArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub lint: LintOptionArgs,
    /// Job name [default: the run id]; arrays of a large run get -0, -1, ...
    #[arg(long)]
    pub name: Option<String>,
    /// A dependency: JOB, JOB:N_TO_N or JOB:SEQUENTIAL (repeatable, at most 20).
    #[arg(long, value_name = "JOB[:TYPE]")]
    pub depends_on: Vec<String>,
    /// Chain the arrays of a run of more than 10,000 chunks one after another.
    #[arg(long)]
    pub sequential: bool,
    /// At most K children at once (a database or an API that takes K connections): the chunks
    /// are dealt round-robin over K arrays ("lanes") whose children run one after another
    /// (dependsOn SEQUENTIAL); a failed child stops the rest of its lane. At most K x 10,000 chunks.
    #[arg(long, value_name = "K")]
    pub max_concurrency: Option<u32>,
    /// Attempts per child (1-10).
    #[arg(long, value_name = "N")]
    pub attempts: Option<u32>,
    /// Retry Spot reclaims (`Host EC2*`) and the worker's retryable exits (75, 143); exit on anything else.
    #[arg(long)]
    pub retry_on_spot: bool,
    /// Timeout per attempt in seconds (at least 60).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u32>,
    /// A tag, k=v (repeatable).
    #[arg(long, value_name = "K=V", value_parser = parse_pair)]
    pub tag: Vec<(String, String)>,
    /// Propagate tags to the ECS tasks.
    #[arg(long)]
    pub propagate_tags: bool,
    /// Fair-share identifier.
    #[arg(long)]
    pub share_identifier: Option<String>,
    /// Scheduling priority override (0-9999).
    #[arg(long)]
    pub priority: Option<i32>,
    /// An environment variable for the children, k=v (repeatable; never work items).
    #[arg(long, value_name = "K=V", value_parser = parse_pair)]
    pub env: Vec<(String, String)>,
    /// vCPU override.
    #[arg(long)]
    pub vcpu: Option<f64>,
    /// Memory override in MiB.
    #[arg(long)]
    pub memory: Option<u32>,
    /// Print the exact requests as JSON; write and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Price the run first (as `batchfan estimate`, on the queue's capacity and the job
    /// definition's resources), this many seconds per chunk; printed on stderr (`estimate` in
    /// the dry run's JSON).
    #[arg(long, value_name = "SECONDS_PER_CHUNK")]
    pub estimate: Option<f64>,
    /// Wait for the run to finish (as `batchfan wait`).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    /// Output format (json: the run record, whose run_id the other commands take).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Which run a command acts on.
#[derive(Debug, Args)]
pub struct RunArg {
    /// The run: its id (from this machine's `run`, `submit` or `enqueue`), the URI of its run
    /// record or manifest, or its output location (the newest run there; a relative path works).
    pub run: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Exit 1 when the run has failed children (or dead-lettered chunks), for scripts.
    #[arg(long)]
    pub exit_status: bool,
    /// AWS Batch runs: children RUNNABLE (since submission) for at least this many seconds are
    /// shown with AWS's statusReason and what the queue's compute environments say.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub stuck_after: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub run: RunArg,
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    /// Give up after this many seconds: print the current counts and exit 1.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Reason recorded on the jobs.
    #[arg(long, default_value = "cancelled with batchfan cancel")]
    pub reason: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Only this chunk (repeatable; default: every chunk).
    #[arg(long = "chunk", value_name = "N")]
    pub chunks: Vec<u64>,
    /// Only the chunks not committed (failed, or not run yet).
    #[arg(long)]
    pub failed: bool,
    /// Only this attempt of each chunk (from 1; default: every attempt).
    #[arg(long, value_name = "A")]
    pub attempt: Option<u32>,
    /// Only lines of the last DURATION: `90s`, `15m`, `2h`, `1d` (a bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Only the last N lines of each attempt's log.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Keep printing new lines until the chunks are committed or the run is complete.
    #[arg(long)]
    pub follow: bool,
    /// Seconds between polls with --follow.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub interval: f64,
    /// Output format (json: one JSON object per line).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Also the runs whose records are under this output location (s3:// or a folder).
    #[arg(long, value_name = "URI")]
    pub output: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// A duration as `--since` takes it: a number with `s`, `m`, `h` or `d` (none: seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text.find(|c: char| c.is_ascii_alphabetic()).map_or((text, ""), |at| text.split_at(at));
    let scale = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(format!("unit `{unit}` is not one of s, m, h, d (e.g. 15m)")),
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 && n * scale <= 3.2e9 => Ok(std::time::Duration::from_secs_f64(n * scale)),
        _ => Err(format!("`{text}` is not a duration such as 90s, 15m, 2h or 1d")),
    }
}

#[derive(Debug, Args)]
pub struct CatArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Decompress outputs committed compressed (`.gz`, `.zst`, ...) as they stream.
    #[arg(long)]
    pub decompress: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Write the HTML report to FILE (a local path or s3://bucket/key): one file that fetches
    /// nothing, to open from disk or a presigned URL. A finished run also has it beside its
    /// report.json, at OUTPUT/_batchfan/runs/RUN/report.html.
    #[arg(long, value_name = "FILE")]
    pub html: Option<String>,
    /// Output format (json: the report).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Print the request and the chunks; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output format for results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// What to process and how to pack it.
#[derive(Debug, Args)]
pub struct PlanOptionArgs {
    /// Input: s3://bucket/prefix/ or a local folder.
    #[arg(long, value_name = "URI")]
    pub input: String,
    /// A file (local or s3://) listing keys under --input to process, one per line, instead of
    /// listing --input.
    #[arg(long, value_name = "URI")]
    pub input_list: Option<String>,
    /// An S3 Inventory report (local or s3://) naming the objects under --input to process,
    /// instead of listing --input: its manifest.json, or the inventory configuration's folder
    /// (s3://DEST/SOURCE-BUCKET/CONFIG-ID/: the newest complete delivery). CSV or Parquet, with
    /// the Size and ETag fields; items are pinned by the inventory's ETags.
    #[arg(long, value_name = "URI", conflicts_with = "input_list")]
    pub input_inventory: Option<String>,
    /// Keep only keys matching this glob (repeatable; a glob without `/` matches file names).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Skip keys matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Most items per chunk [default when no packing option is given: 1000].
    #[arg(long, value_name = "N")]
    pub max_items_per_chunk: Option<u64>,
    /// Most bytes per chunk, e.g. 256MiB [default when no packing option is given: 1GiB].
    /// Sizes: K, KiB = 1024 and KB = 1000 (likewise M/MiB/MB, G/GiB/GB, T/TiB/TB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_bytes_per_chunk: Option<u64>,
    /// This many chunks (fewer only when there are fewer items), balanced by bytes.
    #[arg(long, value_name = "N")]
    pub children: Option<u64>,
    /// Split newline-delimited objects larger than SIZE into SIZE ranges at record boundaries
    /// (compressed objects are never split). K and KiB are 1024, KB is 1000.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub split_bytes: Option<u64>,
    /// An input with nothing to plan (a daily partition with no files) is a run of zero chunks,
    /// exit 0, with a run record and a report, instead of an error (exit 2).
    #[arg(long)]
    pub allow_empty: bool,
    /// Key ranges of an S3 input listed at once (1: one ListObjectsV2 stream). Ranges are cut at
    /// common prefixes and, as listing goes, wherever a range holds more than a page; the plan is
    /// the same whatever the number.
    #[arg(long, value_name = "N", default_value_t = batchfan::listing::DEFAULT_CONCURRENCY)]
    pub list_concurrency: usize,
    /// Plan only objects modified after TIME (2026-11-30, 2026-11-30T06:00:00Z) or after the start
    /// of run RUN (an id or output location): a daily re-run takes only what arrived since.
    #[arg(long, value_name = "TIME|RUN")]
    pub modified_after: Option<String>,
    /// Leave out objects that runs in OUTPUT already committed at the same version (ETag, or
    /// local mtime and size): a run over grown data processes only the new objects (repeatable:
    /// yesterday's and older outputs).
    #[arg(long, value_name = "OUTPUT")]
    pub skip_done: Vec<String>,
}

impl PlanOptionArgs {
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            max_items_per_chunk: self.max_items_per_chunk,
            max_bytes_per_chunk: self.max_bytes_per_chunk,
            children: self.children,
            split_bytes: self.split_bytes,
            input_list: self.input_list.clone(),
            input_inventory: self.input_inventory.clone(),
            allow_empty: self.allow_empty,
            list_concurrency: self.list_concurrency,
            skip_done: self.skip_done.clone(),
            ..PlanOptions::default()
        }
    }

    /// The options, with `--modified-after` resolved: a time as written, or the start of a run.
    pub async fn resolve(&self, client: &batchfan::Client) -> batchfan::Result<PlanOptions> {
        let mut options = self.options();
        if let Some(after) = self.modified_after.as_deref() {
            options.modified_after_ms = Some(match batchfan::time::parse_time(after) {
                Some(ms) => ms,
                None => match client.find_run(after).await {
                    Ok(run) => run.record().created_unix_ms,
                    Err(e) => {
                        return Err(batchfan::Error::option(
                            "--modified-after",
                            after,
                            format!(
                                "a time (2026-11-30 or 2026-11-30T06:00:00Z) or an earlier run (its id or output location): it is neither ({e})"
                            ),
                        ));
                    }
                },
            });
        }
        Ok(options)
    }
}

/// Where a run's results and manifest go.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Where outputs go: s3://bucket/prefix/ or (for --local) a local folder; part-NNNNN per chunk.
    #[arg(long, value_name = "URI")]
    pub output: String,
    /// Where to write the manifest [default: OUTPUT/_batchfan/runs/RUN/manifest.jsonl].
    #[arg(long, value_name = "URI")]
    pub manifest: Option<String>,
    /// Delete earlier chunk outputs and markers in --output first.
    #[arg(long)]
    pub overwrite: bool,
}

/// The run the plan and output options describe.
pub async fn run_spec(client: &batchfan::Client, plan: &PlanOptionArgs, out: &OutputArgs) -> batchfan::Result<RunSpec> {
    Ok(RunSpec {
        input: Location::parse(&plan.input)?,
        options: plan.resolve(client).await?,
        output: Location::parse(&out.output)?,
        manifest: out.manifest.clone(),
        overwrite: out.overwrite,
    })
}

fn parse_size(text: &str) -> Result<u64, String> {
    batchfan::size::parse_size(text).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub plan: PlanOptionArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run on this machine, each chunk a process of PROGRAM.
    #[arg(long)]
    pub local: bool,
    #[command(flatten)]
    pub plan: PlanOptionArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Children at a time [default: number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Attempts per child; a failed child is retried until this many (1-10, as AWS Batch).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub attempts: u32,
    /// Where child logs go [default: a folder under the system temp dir].
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Resume the newest earlier run of the same plan in --output: run only its chunks without
    /// a completion marker (refused when the plan changed since).
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The program each child runs, and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM [ARGS]")]
    pub command: Vec<String>,
}
