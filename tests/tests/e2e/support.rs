//! Helpers shared by the e2e modules.

use std::fs;
use std::path::Path;

use rill_tests::{ToolView, run_rill};

/// What `rill info --json PATH` reports, as a [`ToolView`] (exact sizes, `tool` = "rill").
pub fn rill_view(torrent: &Path) -> ToolView {
    let output = run_rill(["info".as_ref(), "--json".as_ref(), torrent.as_os_str()]);
    assert!(
        output.status.success(),
        "rill info {} failed: {}",
        torrent.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("rill info --json prints JSON");
    json["tool"] = "rill".into();
    serde_json::from_value(json).expect("rill info --json has the fields of a ToolView")
}

/// Writes `len` bytes of deterministic, incompressible-looking data to `path` (xorshift from `seed`).
pub fn write_data(path: &Path, len: usize, seed: u64) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let mut state = seed | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    fs::write(path, data).unwrap();
}

/// Asserts that a run failed with exactly one line on stderr starting `rill: error:` and
/// printed nothing on stdout.
pub fn assert_one_line_error(output: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{what}: should fail");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{what}: one line, got {stderr:?}"
    );
    assert!(stderr.starts_with("rill: error: "), "{what}: {stderr:?}");
    assert!(output.stdout.is_empty(), "{what}: nothing on stdout");
}
