//! Makes torrents with the other tools, for tests that compare Rill's `create` with theirs.
//! Call [`crate::require_tool`] for the tool first. libtorrent's is
//! [`crate::libtorrent::libtorrent_create`].

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// `mktorrent OPTIONS... -o OUT SOURCE` (mktorrent 1.1: `-l` takes log2 of the piece length,
/// 15..=28; `-a` comma-separated = one tier, repeated = more tiers; `-d` leaves out the date).
pub fn mktorrent<S: AsRef<OsStr>>(source: &Path, out: &Path, options: &[S]) -> anyhow::Result<()> {
    run("mktorrent", source, out, options)
}

/// `transmission-create OPTIONS... -o OUT SOURCE` (3.00: `-s` piece size in KiB, each `-t` its
/// own tier, always writes a creation date, leaves zero-length files out, and writes `private`
/// 0 into the info dictionary of public torrents, so its info-hashes differ from mktorrent's).
pub fn transmission_create<S: AsRef<OsStr>>(
    source: &Path,
    out: &Path,
    options: &[S],
) -> anyhow::Result<()> {
    run("transmission-create", source, out, options)
}

fn run<S: AsRef<OsStr>>(
    tool: &str,
    source: &Path,
    out: &Path,
    options: &[S],
) -> anyhow::Result<()> {
    let output = Command::new(tool)
        .args(options)
        .arg("-o")
        .arg(out)
        .arg(source)
        .output()
        .with_context(|| format!("running {tool}"))?;
    if !output.status.success() || !out.is_file() {
        bail!(
            "{tool} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libtorrent::libtorrent_view;
    use crate::tools::require_tool;

    #[test]
    fn both_tools_describe_the_same_single_file_alike() {
        if !require_tool("mktorrent") || !require_tool("transmission-create") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("data.bin");
        std::fs::write(
            &source,
            (0..100_000u32)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let mk = dir.path().join("mk.torrent");
        let tr = dir.path().join("tr.torrent");
        mktorrent(
            &source,
            &mk,
            &["-d", "-l", "15", "-a", "http://127.0.0.1:1/announce"],
        )
        .unwrap();
        transmission_create(
            &source,
            &tr,
            &["-s", "32", "-t", "http://127.0.0.1:1/announce"],
        )
        .unwrap();
        if !require_tool("libtorrent") {
            return;
        }
        let (mk, tr) = (libtorrent_view(&mk).unwrap(), libtorrent_view(&tr).unwrap());
        assert_eq!(mk.piece_count, 4);
        // transmission-create writes `private` 0 into public torrents' info dictionaries, so
        // the info-hashes differ; everything else agrees.
        assert_ne!(mk.info_hash, tr.info_hash);
        let diff: Vec<String> = mk
            .diff(&tr)
            .into_iter()
            .filter(|line| !line.starts_with("info_hash"))
            .collect();
        assert!(diff.is_empty(), "{diff:?}");
        assert!(
            mktorrent(
                &dir.path().join("missing"),
                &dir.path().join("x.torrent"),
                &["-d"]
            )
            .is_err()
        );
    }
}
