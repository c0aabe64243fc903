//! `kubectl drift`: review and act on DriftEvents from the terminal (kubectl plugin).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use driftwatch::plugin::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let session = plugin::connect(&cli).await?;
        plugin::run(&cli, &session).await
    });
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
