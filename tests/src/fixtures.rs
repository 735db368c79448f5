//! The committed fixtures under `fixtures/` (see `fixtures/README.md`).
//!
//! Invariants: every `fixtures/torrents/valid/NAME.torrent` has a `NAME.json` beside it
//! (a [`ToolView`] written by `fixtures/regenerate.sh` from libtorrent), and every file in
//! `fixtures/torrents/malformed/` except `EXPECTED` and `CASES.md` is listed in `EXPECTED`.

use std::fs;
use std::path::PathBuf;

use anyhow::Context;

use crate::view::{Expected, ToolView};

/// The workspace's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    crate::workspace_root().join("fixtures")
}

/// Every valid torrent with its expectations, sorted by file name. Panics on a missing or
/// unreadable JSON file: the fixtures are part of the tests.
pub fn valid_fixtures() -> Vec<(PathBuf, Expected)> {
    try_valid_fixtures().unwrap_or_else(|err| panic!("valid fixtures: {err:#}"))
}

/// Every malformed torrent with the `MetainfoError` variant name it must produce, in the
/// order of `EXPECTED`. Panics if `EXPECTED` is unreadable or names a missing file.
pub fn malformed_fixtures() -> Vec<(PathBuf, String)> {
    try_malformed_fixtures().unwrap_or_else(|err| panic!("malformed fixtures: {err:#}"))
}

/// `transmission-show`'s captured output for valid fixture `name` (`fixtures/tool-output/`),
/// if `regenerate.sh` recorded one.
pub fn captured_show_output(name: &str) -> Option<String> {
    fs::read_to_string(
        fixtures_dir()
            .join("tool-output")
            .join(format!("{name}.txt")),
    )
    .ok()
}

fn try_valid_fixtures() -> anyhow::Result<Vec<(PathBuf, Expected)>> {
    let dir = fixtures_dir().join("torrents").join("valid");
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "torrent") {
            let json = path.with_extension("json");
            let text =
                fs::read_to_string(&json).with_context(|| format!("reading {}", json.display()))?;
            let expected: ToolView = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", json.display()))?;
            out.push((path, expected));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    anyhow::ensure!(!out.is_empty(), "no torrents in {}", dir.display());
    Ok(out)
}

fn try_malformed_fixtures() -> anyhow::Result<Vec<(PathBuf, String)>> {
    let dir = fixtures_dir().join("torrents").join("malformed");
    let list = dir.join("EXPECTED");
    let text = fs::read_to_string(&list).with_context(|| format!("reading {}", list.display()))?;
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (file, variant) = line
            .split_once(' ')
            .with_context(|| format!("EXPECTED line {}: {line:?}", number + 1))?;
        let path = dir.join(file);
        anyhow::ensure!(path.is_file(), "EXPECTED names a missing file {file}");
        out.push((path, variant.trim().to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_torrent_has_expectations() {
        let fixtures = valid_fixtures();
        assert!(fixtures.len() >= 10);
        for (path, expected) in &fixtures {
            assert!(!expected.name.is_empty(), "{}", path.display());
            let sum: u64 = expected.files.iter().map(|file| file.length).sum();
            assert_eq!(sum, expected.total_size, "{}", path.display());
            let pieces = expected.total_size.div_ceil(expected.piece_length);
            assert_eq!(pieces, expected.piece_count, "{}", path.display());
        }
    }

    #[test]
    fn every_malformed_file_is_listed_once() {
        let listed = malformed_fixtures();
        let dir = fixtures_dir().join("torrents").join("malformed");
        let mut on_disk: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "torrent"))
            .collect();
        on_disk.sort();
        let mut names: Vec<PathBuf> = listed.iter().map(|(path, _)| path.clone()).collect();
        names.sort();
        assert_eq!(names, on_disk);
        assert!(listed.iter().any(|(_, variant)| variant == "V2Only"));
    }
}
