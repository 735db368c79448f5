//! The `rill-tracker` command. The tracker server is not built yet; until it is, the command
//! says so and fails rather than pretending to serve.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "rill-tracker {}: the tracker server is not available yet",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::FAILURE
}
