//! Runs `transmission-show` (Transmission 3.00) and parses its report into a [`ToolView`].
//!
//! What its output gives and how it maps (quirks measured with 3.00):
//! - sizes are rounded for humans: files and total in SI units (`50.00 kB`, `307.2 kB`, even
//!   6 bytes is `0.01 kB`), piece size in binary units (`32.00 KiB`); the view is therefore
//!   marked `exact: false` and [`ToolView::diff`] compares sizes as printed;
//! - it does not know BEP 47: pad files are listed as plain files (`.pad/12768`);
//! - it refuses libtorrent's hybrid v1/v2 torrents (`Error parsing .torrent file`);
//! - file paths start with the torrent's name for multi-file torrents (stripped here); `-u`
//!   keeps torrent order (without it, files are sorted by name);
//! - `Created by:` may be empty, `Created on: Unknown` without a creation date; a comment with
//!   line breaks continues on lines of its own.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

use crate::view::{FileView, ToolView, parse_size};

/// Runs `transmission-show -u PATH` and parses its output. Errors when the tool fails
/// (it prints `Error parsing .torrent file` for torrents it refuses) or prints something
/// unexpected. Call [`crate::require_tool`]`("transmission-show")` first.
pub fn transmission_show(path: &Path) -> anyhow::Result<ToolView> {
    let output = Command::new("transmission-show")
        .arg("-u")
        .arg(path)
        .output()
        .context("running transmission-show")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "transmission-show {} failed ({}): {}{}",
            path.display(),
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut view = parse_show(&stdout)?;
    view.tool = version().to_owned();
    Ok(view)
}

/// `transmission-show --version`'s first words (`"transmission-show 3.00"`).
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        Command::new("transmission-show")
            .arg("--version")
            .output()
            .ok()
            .and_then(|out| {
                let text = [out.stdout, out.stderr].concat();
                let text = String::from_utf8_lossy(&text).into_owned();
                let mut words = text.split_whitespace();
                Some(format!("{} {}", words.next()?, words.next()?))
            })
            .unwrap_or_else(|| "transmission-show".to_owned())
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Head,
    General,
    Trackers,
    WebSeeds,
    Files,
}

/// Parses the text `transmission-show` prints (run with `-u`) into an inexact [`ToolView`]
/// whose `tool` is `"transmission-show"`.
pub fn parse_show(text: &str) -> anyhow::Result<ToolView> {
    let mut view = ToolView {
        tool: "transmission-show".to_owned(),
        creator: None,
        made_with: None,
        info_hash: None,
        info_hash_v2: None,
        name: String::new(),
        piece_length: 0,
        piece_count: 0,
        total_size: 0,
        private: false,
        multi_file: false,
        files: Vec::new(),
        trackers: Vec::new(),
        web_seeds: Vec::new(),
        comment: None,
        exact: false,
    };
    let mut section = Section::Head;
    let mut in_comment = false;
    let mut raw_files: Vec<(String, u64)> = Vec::new();
    let (mut have_name, mut have_count, mut have_piece, mut have_total, mut have_privacy) =
        (false, false, false, false, false);

    for line in text.lines() {
        match line {
            "GENERAL" => section = Section::General,
            "TRACKERS" => section = Section::Trackers,
            "WEBSEEDS" => section = Section::WebSeeds,
            "FILES" => section = Section::Files,
            _ => {}
        }
        if matches!(line, "GENERAL" | "TRACKERS" | "WEBSEEDS" | "FILES") {
            in_comment = false;
            continue;
        }
        match section {
            Section::Head => {}
            Section::General => {
                let field = line
                    .strip_prefix("  ")
                    .and_then(|rest| rest.split_once(": "));
                let field = field.or_else(|| {
                    // `Created by: ` with nothing after it loses its trailing space to no one,
                    // but keep the empty value apart from a comment continuation.
                    line.strip_prefix("  ")
                        .and_then(|rest| rest.strip_suffix(':'))
                        .map(|key| (key, ""))
                });
                let known = field.filter(|(key, _)| {
                    matches!(
                        *key,
                        "Name"
                            | "Hash"
                            | "Created by"
                            | "Created on"
                            | "Comment"
                            | "Piece Count"
                            | "Piece Size"
                            | "Total Size"
                            | "Privacy"
                            | "Source"
                    )
                });
                let Some((key, value)) = known else {
                    if in_comment {
                        let comment = view.comment.get_or_insert_with(String::new);
                        comment.push('\n');
                        comment.push_str(line);
                    }
                    continue;
                };
                in_comment = false;
                match key {
                    "Name" => {
                        view.name = value.to_owned();
                        have_name = true;
                    }
                    "Hash" => view.info_hash = Some(value.to_ascii_lowercase()),
                    "Created by" => {
                        view.creator = (!value.is_empty()).then(|| value.to_owned());
                    }
                    "Comment" => {
                        view.comment = Some(value.to_owned());
                        in_comment = true;
                    }
                    "Piece Count" => {
                        view.piece_count = value
                            .parse()
                            .with_context(|| format!("piece count {value:?}"))?;
                        have_count = true;
                    }
                    "Piece Size" => {
                        view.piece_length =
                            parse_size(value).with_context(|| format!("piece size {value:?}"))?;
                        have_piece = true;
                    }
                    "Total Size" => {
                        view.total_size =
                            parse_size(value).with_context(|| format!("total size {value:?}"))?;
                        have_total = true;
                    }
                    "Privacy" => {
                        view.private = match value {
                            "Private torrent" => true,
                            "Public torrent" => false,
                            other => bail!("unknown privacy {other:?}"),
                        };
                        have_privacy = true;
                    }
                    _ => {}
                }
            }
            Section::Trackers => {
                if let Some(rest) = line.strip_prefix("  Tier #") {
                    rest.parse::<usize>()
                        .with_context(|| format!("tier line {line:?}"))?;
                    view.trackers.push(Vec::new());
                } else if let Some(url) = line.strip_prefix("  ").filter(|url| !url.is_empty()) {
                    match view.trackers.last_mut() {
                        Some(tier) => tier.push(url.to_owned()),
                        None => bail!("tracker {url:?} before any tier"),
                    }
                }
            }
            Section::WebSeeds => {
                if let Some(url) = line.strip_prefix("  ").filter(|url| !url.is_empty()) {
                    view.web_seeds.push(url.to_owned());
                }
            }
            Section::Files => {
                if let Some(entry) = line.strip_prefix("  ").filter(|entry| !entry.is_empty()) {
                    let (path, size) = entry
                        .rsplit_once(" (")
                        .and_then(|(path, size)| Some((path, size.strip_suffix(')')?)))
                        .with_context(|| format!("file line {line:?}"))?;
                    let length =
                        parse_size(size).with_context(|| format!("file size in {line:?}"))?;
                    raw_files.push((path.to_owned(), length));
                }
            }
        }
    }
    if !(have_name && have_count && have_piece && have_total && have_privacy) {
        bail!("transmission-show output lacks a general field:\n{text}");
    }
    if view.info_hash.as_ref().is_none_or(|hash| hash.len() != 40) {
        bail!("transmission-show output has no 40-digit hash:\n{text}");
    }
    view.trackers.retain(|tier| !tier.is_empty());
    // A multi-file torrent's paths all start with `NAME/`; a single file's path is NAME.
    let prefix = format!("{}/", view.name);
    view.multi_file = raw_files.iter().any(|(path, _)| path.starts_with(&prefix));
    view.files = raw_files
        .into_iter()
        .map(|(path, length)| {
            let path = if view.multi_file {
                path.strip_prefix(&prefix)
                    .map(str::to_owned)
                    .unwrap_or(path)
            } else {
                path
            };
            FileView {
                path,
                length,
                pad: false,
            }
        })
        .collect();
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{captured_show_output, valid_fixtures};

    /// `transmission-show -u lt_webseed.torrent` (3.00), captured by `fixtures/regenerate.sh`.
    const WEB_SEED_SAMPLE: &str = "Name: single.bin
File: lt_webseed.torrent

GENERAL

  Name: single.bin
  Hash: 6b0236f55611643d216b8840e0aad26fc245bf74
  Created by: 
  Created on: Unknown
  Comment: web seeds and a comment
  Piece Count: 10
  Piece Size: 32.00 KiB
  Total Size: 307.2 kB
  Privacy: Public torrent

TRACKERS

  Tier #1
  http://tracker.example/announce

WEBSEEDS

  http://seed.example/files/
  http://seed2.example/single.bin

FILES

  single.bin (307.2 kB)

";

    /// `transmission-show -u` of a private multi-file torrent with three tiers (3.00, made by
    /// transmission-create; the tiers were added by hand to this copy).
    const PRIVATE_TIERS_SAMPLE: &str = "Name: album
File: tr_private.torrent

GENERAL

  Name: album
  Hash: 3CF0031D125F2D65A9C808094F288BD8E6C19163
  Created by: Transmission/3.00 (bb6b5a062e)
  Created on: Tue Nov 24 19:17:15 2026
  Comment: first line
second line
  Piece Count: 3
  Piece Size: 64.00 KiB
  Total Size: 176.8 kB
  Privacy: Private torrent

TRACKERS

  Tier #1
  http://a.example/announce
  http://b.example/announce

  Tier #2
  udp://c.example:6969/announce

  Tier #3
  http://tracker.example/announce?passkey=0123456789abcdef

FILES

  album/cover.jpg (20.00 kB)
  album/disc 1/01 track.flac (90.00 kB)
  album/disc 1/extras/notes/readme.txt (1.23 kB)
  album/disc 2/02 track (take 2).flac (65.54 kB)

";

    #[test]
    fn parses_a_single_file_torrent_with_web_seeds() {
        let view = parse_show(WEB_SEED_SAMPLE).unwrap();
        assert_eq!(view.name, "single.bin");
        assert_eq!(
            view.info_hash.as_deref(),
            Some("6b0236f55611643d216b8840e0aad26fc245bf74")
        );
        assert_eq!(view.creator, None);
        assert_eq!(view.comment.as_deref(), Some("web seeds and a comment"));
        assert_eq!((view.piece_count, view.piece_length), (10, 32_768));
        assert_eq!(view.total_size, 307_200);
        assert!(!view.private && !view.multi_file && !view.exact);
        assert_eq!(
            view.trackers,
            vec![vec!["http://tracker.example/announce".to_owned()]]
        );
        assert_eq!(
            view.web_seeds,
            [
                "http://seed.example/files/",
                "http://seed2.example/single.bin"
            ]
        );
        assert_eq!(
            view.files,
            [FileView {
                path: "single.bin".into(),
                length: 307_200,
                pad: false
            }]
        );
    }

    #[test]
    fn parses_tiers_privacy_multiline_comment_and_nested_paths() {
        let view = parse_show(PRIVATE_TIERS_SAMPLE).unwrap();
        assert_eq!(
            view.info_hash.as_deref(),
            Some("3cf0031d125f2d65a9c808094f288bd8e6c19163")
        );
        assert_eq!(
            view.creator.as_deref(),
            Some("Transmission/3.00 (bb6b5a062e)")
        );
        assert_eq!(view.comment.as_deref(), Some("first line\nsecond line"));
        assert!(view.private && view.multi_file);
        assert_eq!(view.piece_length, 65_536);
        assert_eq!(view.trackers.len(), 3);
        assert_eq!(view.trackers[0].len(), 2);
        assert_eq!(view.trackers[1], ["udp://c.example:6969/announce"]);
        let paths: Vec<&str> = view.files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "cover.jpg",
                "disc 1/01 track.flac",
                "disc 1/extras/notes/readme.txt",
                "disc 2/02 track (take 2).flac"
            ]
        );
        assert_eq!(view.files[2].length, 1_230);
        assert!(view.web_seeds.is_empty());
    }

    #[test]
    fn refuses_output_without_the_general_fields() {
        assert!(parse_show("").is_err());
        assert!(parse_show("Error parsing .torrent file \"x.torrent\"\n").is_err());
        let no_hash =
            WEB_SEED_SAMPLE.replace("  Hash: 6b0236f55611643d216b8840e0aad26fc245bf74\n", "");
        assert!(parse_show(&no_hash).is_err());
        let bad_size = WEB_SEED_SAMPLE.replace("307.2 kB)", "lots)");
        assert!(parse_show(&bad_size).is_err());
    }

    /// Every captured transmission-show output agrees with the libtorrent expectations beside
    /// it: checks the parser, the size formatter and the fixtures against each other, offline.
    #[test]
    fn captured_outputs_agree_with_the_fixture_expectations() {
        let mut compared = 0;
        for (path, expected) in valid_fixtures() {
            let name = path.file_stem().unwrap().to_str().unwrap();
            let Some(text) = captured_show_output(name) else {
                continue;
            };
            if text.contains("Error parsing") {
                // transmission-show 3.00 refuses hybrids.
                assert!(
                    expected.info_hash_v2.is_some(),
                    "{name} refused by transmission-show"
                );
                continue;
            }
            let view = parse_show(&text).unwrap_or_else(|err| panic!("{name}: {err:#}"));
            let diff = expected.diff(&view);
            assert!(diff.is_empty(), "{name}:\n  {}", diff.join("\n  "));
            compared += 1;
        }
        assert!(compared >= 10, "only {compared} captured outputs");
    }

    /// The live tool agrees with the expectations (hybrids excepted: it refuses them).
    #[test]
    fn live_transmission_show_agrees_with_the_fixture_expectations() {
        if !crate::tools::require_tool("transmission-show") {
            return;
        }
        for (path, expected) in valid_fixtures() {
            match transmission_show(&path) {
                Ok(view) => {
                    assert!(view.tool.starts_with("transmission-show"), "{}", view.tool);
                    expected.assert_agrees(&view);
                }
                Err(err) => assert!(
                    expected.info_hash_v2.is_some(),
                    "{}: {err:#}",
                    path.display()
                ),
            }
        }
    }
}
