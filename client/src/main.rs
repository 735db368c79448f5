//! The `rill` command: parse the arguments, run the command, turn the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;
use rill::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Info(args) => rill::summary::run(&args),
        Command::Create(args) => rill::create::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error and its causes, outermost first.
            let causes: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("rill: error: {}", causes.join(": "));
            ExitCode::FAILURE
        }
    }
}
