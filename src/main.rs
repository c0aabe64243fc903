//! The `driftwatch` command: controller, Job modes (check, package), local drift computation, CRD output.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use driftwatch::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "driftwatch",
    version,
    about = "Drift detection for embeddings in Qdrant, as a Kubernetes operator"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "DRIFTWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions (YAML) of DriftMonitor and DriftEvent.
    Crd {
        /// Write one file per CRD into this folder (e.g. crds/) instead of printing.
        #[arg(long)]
        output_dir: Option<std::path::PathBuf>,
    },
    /// Retrain-packaging Job: sample the comparison window, archive it to S3, call the retraining webhook.
    Package(Box<driftwatch::job::package::cli::PackageArgs>),
    /// Run one drift check: read both windows from Qdrant, run the detectors, report the result.
    //TMP Check(Box<driftwatch::job::check::CheckArgs>),
    /// Upsert embeddings (+ timestamps, confidence scores) from .npy/.jsonl into a Qdrant collection.
    QdrantLoad(Box<driftwatch::job::load::LoadArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Crd { output_dir } => match driftwatch::crd::emit(output_dir.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Package(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("error: starting the async runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let report = runtime.block_on(driftwatch::job::package::cli::execute(&args));
            driftwatch::job::package::cli::report(&args, &report)
        }
        //TMP Command::Check(args) => driftwatch::job::check::main(&args),
        Command::QdrantLoad(args) => match driftwatch::job::load::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
