//! `kubectl drift`: review and act on DriftEvents from the terminal (kubectl plugin).
#![forbid(unsafe_code)]

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "kubectl-drift",
    version,
    about = "Review drift events and approve retraining"
)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("kubectl-drift: no subcommands yet");
    std::process::exit(2);
}
