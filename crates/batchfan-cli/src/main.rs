//! `batchfan`: the command line. Parsing and presentation only; the library does the work.

mod batch_cmd;
mod cli;
mod history_cmd;
mod plan_cmd;
mod present;
mod queue_cmd;
mod run_cmd;
mod runs_cmd;
mod scale_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use batchfan::contract::cli_exit as code;

use crate::cli::{Cli, Command};

/// Resolves on Ctrl-C, SIGTERM or SIGHUP (a closed terminal): how long-running commands learn
/// they should stop. All three take the same path: children drain, nothing is orphaned.
pub(crate) async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (term, hup) = (signal(SignalKind::terminate()), signal(SignalKind::hangup()));
    let recv = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
        match s {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = recv(term) => {}
        () = recv(hup) => {}
    }
}

/// The command line with the exit codes at the end of every command's `--help`, and the help of
/// `--input` saying where a local folder is not allowed.
fn with_exit_codes(command: clap::Command) -> clap::Command {
    let remote = matches!(command.get_name(), "submit" | "enqueue");
    let command = command.after_help(cli::EXIT_CODES).mut_subcommands(with_exit_codes);
    if remote {
        command.mut_arg("input", |a| {
            a.help("Input: s3://bucket/prefix/. A local folder is not allowed: AWS Batch jobs and queue workers cannot read this machine's files")
        })
    } else {
        command
    }
}

fn parse() -> Cli {
    let matches = with_exit_codes(Cli::command()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`batchfan status RUN | head`) panics
    // with exit 101. Restore the default: the process ends quietly, as `cat` does.
    // SAFETY: setting a signal's disposition to SIG_DFL at start-up, before any thread writes.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = parse();
    // The command's own diagnostics, the AWS SDK's retries among them, go to stderr only when
    // asked for: `RUST_LOG=debug batchfan ...` (or any tracing filter).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        // The SDK's TRACE events dump request and response bodies: never printed (issue 20).
        let no_secrets =
            tracing_subscriber::filter::filter_fn(|m| !batchfan::contract::secret_bearing_log(m.target(), m.level()));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .finish()
            .with(no_secrets)
            .try_init();
    }
    // One client for the process, from the standard AWS chain and BATCHFAN_* settings.
    let client = batchfan::Client::from_env().await;
    let result = match cli.command {
        Command::Plan(args) => plan_cmd::run(&client, args).await,
        Command::Run(args) => run_cmd::run(&client, args).await,
        Command::Register(args) => batch_cmd::register(&client, args).await,
        Command::Lint(args) => batch_cmd::lint(args),
        Command::Estimate(args) => plan_cmd::estimate(&client, *args).await,
        Command::IamPolicy(args) => batch_cmd::iam_policy(args),
        Command::Submit(args) => batch_cmd::submit(&client, *args).await,
        Command::Status(args) => runs_cmd::status(&client, args).await,
        Command::Wait(args) => runs_cmd::wait(&client, args).await,
        Command::Cancel(args) => runs_cmd::cancel(&client, args).await,
        Command::Redrive(args) => runs_cmd::redrive(&client, args).await,
        Command::Outputs(args) => runs_cmd::outputs(&client, args).await,
        Command::Cat(args) => runs_cmd::cat(&client, args).await,
        Command::Report(args) => runs_cmd::report(&client, args).await,
        Command::Logs(args) => history_cmd::logs(&client, args).await,
        Command::Runs(args) => history_cmd::runs(&client, args).await,
        Command::Enqueue(args) => queue_cmd::enqueue(&client, *args).await,
        Command::Workers(args) => queue_cmd::workers(&client, args).await,
        Command::Scale(command) => return scale_cmd::run(&client, command).await,
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut with_exit_codes(Cli::command()),
                "batchfan",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                batchfan::Error::Interrupted => code::INTERRUPTED,
                e if e.is_bad_input() => code::BAD_INPUT,
                e if e.is_transient() => code::TRANSIENT,
                _ => code::WORK_FAILED,
            })
        }
    }
}
