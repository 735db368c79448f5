//! The `rill` command: parse the arguments, run the command, turn the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use rill::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!(
                "rill: {} (see `rill --help`)",
                usage_error_line(&err.to_string())
            );
            return ExitCode::from(2);
        }
    };
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

/// clap's message up to its usage section, folded onto one line.
fn usage_error_line(rendered: &str) -> String {
    rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}
