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
    /// Run the drift detectors on local .npy files, or on the bundled example data without arguments.
    Compute(driftwatch::compute::ComputeArgs),
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
        Command::Compute(args) => match driftwatch::compute::run(&args) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error ({}): {err}", err.kind());
                ExitCode::from(2)
            }
        },
    }
}
