//! Builds and runs the `rill` binary.
//!
//! [`rill_bin`] runs `cargo build -q -p rill --bin rill` once per test process (a
//! [`OnceLock`]); several test processes may build at once, which cargo's lock on the target
//! folder serialises.

use std::env;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The path of a freshly built `rill` binary (`target/debug/rill`, or under `CARGO_TARGET_DIR`).
/// Panics if the build fails.
pub fn rill_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = crate::workspace_root();
        let cargo = env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "rill", "--bin", "rill"])
            .current_dir(&root)
            .status()
            .unwrap_or_else(|err| panic!("running cargo build for rill: {err}"));
        assert!(
            status.success(),
            "cargo build -p rill --bin rill failed: {status}"
        );
        let target = env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), |dir| root.join(dir));
        target
            .join("debug")
            .join(format!("rill{}", env::consts::EXE_SUFFIX))
    })
    .clone()
}

/// A [`Command`] for the built `rill` binary, to add arguments, environment or a folder to.
/// `RILL_NO_DHT` is set so that nothing leaves loopback: a test that wants the DHT passes
/// `--dht-bootstrap` with a loopback node, which turns it back on.
pub fn rill_command() -> Command {
    let mut command = Command::new(rill_bin());
    command.env("RILL_NO_DHT", "1");
    command
}

/// Runs `rill ARGS...` to completion and returns its status and output.
/// Panics if it cannot be started.
pub fn run_rill<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    rill_command()
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running rill: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_binary_once_and_runs_it() {
        let bin = rill_bin();
        assert!(bin.is_file(), "{} missing after the build", bin.display());
        assert_eq!(rill_bin(), bin);
        let output = run_rill(["--help"]);
        // The CLI is being written; whatever it answers, it must have been started and exited.
        assert!(output.status.code().is_some(), "{output:?}");
    }
}
