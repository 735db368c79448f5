//! Drives python3-libtorrent through the scripts in `tests/drivers/`, run with
//! [`PYTHON`](crate::tools::PYTHON) (Debian's interpreter; the one on `PATH` may not import it).
//!
//! libtorrent reports exact sizes and flags BEP 47 pad files, and reads hybrid v1/v2
//! torrents (giving both info-hashes) and v2-only ones (`info_hash: None`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::tools::PYTHON;
use crate::view::ToolView;

/// `tests/drivers/NAME`.
pub fn driver(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("drivers")
        .join(name)
}

/// What libtorrent reports about the torrent at `path` (`tests/drivers/lt_info.py`).
/// Call [`crate::require_tool`]`("libtorrent")` first.
pub fn libtorrent_view(path: &Path) -> anyhow::Result<ToolView> {
    let output = run_driver("lt_info.py", [path.as_os_str()])?;
    serde_json::from_slice(&output).context("parsing lt_info.py's JSON")
}

/// Creates `out` from `source` (a file or folder) with libtorrent (`tests/drivers/lt_create.py`);
/// `options` are that script's flags, e.g. `["--v1-only", "--tracker", "http://127.0.0.1:1/announce"]`.
pub fn libtorrent_create<S: AsRef<OsStr>>(
    source: &Path,
    out: &Path,
    options: &[S],
) -> anyhow::Result<()> {
    let mut args: Vec<&OsStr> = options.iter().map(AsRef::as_ref).collect();
    args.extend([OsStr::new("-o"), out.as_os_str(), source.as_os_str()]);
    run_driver("lt_create.py", args).map(drop)
}

/// How many pieces libtorrent finds intact when it checks the data under `save_path` against
/// the torrent at `torrent` (`tests/drivers/lt_check.py`): `(pieces_ok, num_pieces)`.
/// Call [`crate::require_tool`]`("libtorrent")` first.
pub fn libtorrent_check(torrent: &Path, save_path: &Path) -> anyhow::Result<(u64, u64)> {
    let output = run_driver("lt_check.py", [torrent.as_os_str(), save_path.as_os_str()])?;
    let report: serde_json::Value =
        serde_json::from_slice(&output).context("parsing lt_check.py's JSON")?;
    let field = |name: &str| {
        report[name]
            .as_u64()
            .with_context(|| format!("lt_check.py gave no {name}: {report}"))
    };
    Ok((field("pieces_ok")?, field("num_pieces")?))
}

fn run_driver<'a>(
    script: &str,
    args: impl IntoIterator<Item = &'a OsStr>,
) -> anyhow::Result<Vec<u8>> {
    let output = Command::new(PYTHON)
        .arg(driver(script))
        .args(args)
        .output()
        .with_context(|| format!("running {PYTHON} {script}"))?;
    if !output.status.success() {
        bail!(
            "{script} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::valid_fixtures;
    use crate::tools::require_tool;

    #[test]
    fn libtorrent_reads_every_valid_fixture_as_recorded() {
        if !require_tool("libtorrent") {
            return;
        }
        for (path, expected) in valid_fixtures() {
            let view = libtorrent_view(&path).unwrap();
            assert!(view.exact);
            expected.assert_agrees(&view);
        }
    }

    #[test]
    fn created_torrent_has_pad_files_and_the_requested_metadata() {
        if !require_tool("libtorrent") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("data");
        std::fs::create_dir_all(source.join("sub")).unwrap();
        std::fs::write(source.join("a.bin"), vec![1u8; 20_000]).unwrap();
        std::fs::write(source.join("sub").join("b.bin"), vec![2u8; 5_000]).unwrap();
        let out = dir.path().join("t.torrent");
        let options = [
            "--v1-only",
            "--pad",
            "--piece-length",
            "16384",
            "--private",
            "--tracker",
            "http://127.0.0.1:1/announce,http://127.0.0.1:2/announce",
            "--comment",
            "made in a test",
        ];
        libtorrent_create(&source, &out, &options).unwrap();
        let view = libtorrent_view(&out).unwrap();
        assert_eq!(view.name, "data");
        assert!(view.private && view.multi_file);
        assert_eq!(view.info_hash_v2, None);
        assert_eq!(view.piece_length, 16_384);
        assert_eq!(view.trackers.len(), 1);
        assert_eq!(view.trackers[0].len(), 2);
        assert_eq!(view.comment.as_deref(), Some("made in a test"));
        assert!(view.files.iter().any(|file| file.pad), "{:?}", view.files);
        assert_eq!(view.total_size % 16_384, 0);
        assert!(libtorrent_view(&dir.path().join("missing.torrent")).is_err());
    }
}
