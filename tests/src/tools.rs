//! Gates on the external programs interop tests drive.
//!
//! Invariant: a test never passes silently in CI without its peer. When a tool is missing,
//! [`require_tool`] panics if the `CI` environment variable is set (non-empty), and otherwise
//! prints `skipping: ... not installed` and returns `false` so the test can return early.

use std::env;
use std::path::Path;
use std::process::{Command, Stdio};

/// Debian's Python, the only interpreter here that imports `python3-libtorrent`.
pub const PYTHON: &str = "/usr/bin/python3";

/// Whether `tool` can be run: `"libtorrent"` means [`PYTHON`] can `import libtorrent`; any
/// other name is looked up as an executable on `PATH` (or taken as a path if it has a `/`).
pub fn tool_available(tool: &str) -> bool {
    if tool == "libtorrent" {
        return Command::new(PYTHON)
            .args(["-c", "import libtorrent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
    }
    if tool.contains('/') {
        return is_executable(Path::new(tool));
    }
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| is_executable(&dir.join(tool))))
}

/// Returns `true` when `tool` is there (see [`tool_available`]); otherwise panics in CI and
/// prints a skip line elsewhere. Tools: `transmission-show`, `transmission-create`,
/// `transmission-cli`, `mktorrent`, `opentracker`, `libtorrent`.
///
/// ```no_run
/// if !rill_tests::require_tool("transmission-show") {
///     return;
/// }
/// ```
pub fn require_tool(tool: &str) -> bool {
    require(tool, tool_available(tool), in_ci())
}

fn require(tool: &str, available: bool, ci: bool) -> bool {
    if available {
        return true;
    }
    let hint = install_hint(tool);
    if ci {
        panic!("{tool} is not installed but CI is set: install it ({hint})");
    }
    println!("skipping: {tool} not installed ({hint})");
    false
}

/// Whether we run under CI (the `CI` environment variable is set and not empty).
pub fn in_ci() -> bool {
    env::var_os("CI").is_some_and(|value| !value.is_empty())
}

fn install_hint(tool: &str) -> &'static str {
    match tool {
        "libtorrent" => "apt-get install python3-libtorrent; imported by /usr/bin/python3",
        "transmission-show" | "transmission-create" | "transmission-cli" => {
            "apt-get install transmission-cli"
        }
        "mktorrent" => "apt-get install mktorrent",
        "opentracker" => "apt-get install opentracker",
        _ => "see PEERS.md",
    }
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tool_on_path_and_misses_a_made_up_one() {
        assert!(tool_available("sh"));
        assert!(!tool_available("rill-no-such-tool-0d1f"));
        assert!(!tool_available("/nonexistent/rill-tool"));
    }

    #[test]
    fn present_tool_is_required_without_panicking() {
        assert!(require_tool("sh"));
        assert!(require("mktorrent", true, true));
    }

    #[test]
    fn missing_tool_is_skipped_outside_ci() {
        assert!(!require("mktorrent", false, false));
    }

    #[test]
    #[should_panic(expected = "mktorrent is not installed but CI is set")]
    fn missing_tool_fails_in_ci() {
        require("mktorrent", false, true);
    }
}
