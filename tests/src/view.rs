//! [`ToolView`]: what one tool reports about a torrent, in the shape of the fixtures' JSON.
//!
//! Invariants: `info_hash` is 40 lowercase hex digits (v1), `info_hash_v2` 64 (hybrids only);
//! `files` are in torrent order, their paths relative to the torrent's root folder and joined
//! with `/` (the bare name for a single-file torrent); `trackers` is a list of tiers (BEP 12).
//! When `exact` is false (transmission-show) sizes are what the tool printed, rounded, and pad
//! files are not flagged; [`ToolView::diff`] then compares sizes as Transmission would print them.

use serde::{Deserialize, Serialize};

/// A tool's view of a torrent; also the type of the fixtures' expectations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolView {
    /// The tool that reported this view, with its version: `"libtorrent 2.0.8.0"`.
    pub tool: String,
    /// The torrent's `created by`, if any.
    #[serde(default)]
    pub creator: Option<String>,
    /// The command that made the torrent (fixtures only).
    #[serde(default)]
    pub made_with: Option<String>,
    /// v1 info-hash, lowercase hex; `None` for a v2-only torrent.
    pub info_hash: Option<String>,
    /// v2 info-hash (SHA-256), lowercase hex, for torrents with v2 metadata.
    #[serde(default)]
    pub info_hash_v2: Option<String>,
    /// The `name` of the info dictionary.
    pub name: String,
    /// Bytes per piece.
    pub piece_length: u64,
    /// Number of pieces.
    pub piece_count: u64,
    /// Sum of the file lengths, BEP 47 pad files included.
    pub total_size: u64,
    /// BEP 27 private flag.
    pub private: bool,
    /// Whether the info dictionary has a `files` list.
    pub multi_file: bool,
    /// The files, in torrent order.
    pub files: Vec<FileView>,
    /// Announce URLs by tier (BEP 12; a lone `announce` is one tier of one URL).
    pub trackers: Vec<Vec<String>>,
    /// BEP 19 web seeds (`url-list`).
    pub web_seeds: Vec<String>,
    /// The torrent's comment, if any.
    pub comment: Option<String>,
    /// Whether sizes are exact byte counts (false for transmission-show's rounded sizes).
    #[serde(default = "exact_by_default")]
    pub exact: bool,
}

/// The expectations stored beside each valid fixture.
pub type Expected = ToolView;

/// One file of a [`ToolView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileView {
    /// Path below the torrent's root folder, components joined by `/`.
    pub path: String,
    /// Length in bytes (rounded when the view is not exact).
    pub length: u64,
    /// BEP 47 pad file (`attr` contains `p`); always false from transmission-show.
    #[serde(default)]
    pub pad: bool,
}

fn exact_by_default() -> bool {
    true
}

impl ToolView {
    /// Every difference between two views, as readable lines; empty when they agree.
    /// Ignores `tool`, `creator`, `made_with` and `exact`; `info_hash_v2` is compared only when
    /// both sides have it; sizes of an inexact side are compared as Transmission prints them,
    /// and pad flags only when both sides are exact.
    pub fn diff(&self, other: &ToolView) -> Vec<String> {
        let mut out = Vec::new();
        let exact = self.exact && other.exact;
        let mut check = |field: &str, same: bool, a: String, b: String| {
            if !same {
                out.push(format!(
                    "{field}: {} says {a}, {} says {b}",
                    self.tool, other.tool
                ));
            }
        };
        check(
            "info_hash",
            self.info_hash == other.info_hash,
            format!("{:?}", self.info_hash),
            format!("{:?}", other.info_hash),
        );
        if let (Some(a), Some(b)) = (&self.info_hash_v2, &other.info_hash_v2) {
            check("info_hash_v2", a == b, a.clone(), b.clone());
        }
        check(
            "name",
            self.name == other.name,
            self.name.clone(),
            other.name.clone(),
        );
        check(
            "piece_length",
            same_mem(exact, self.piece_length, other.piece_length),
            self.piece_length.to_string(),
            other.piece_length.to_string(),
        );
        check(
            "piece_count",
            self.piece_count == other.piece_count,
            self.piece_count.to_string(),
            other.piece_count.to_string(),
        );
        check(
            "total_size",
            same_size(exact, self.total_size, other.total_size),
            self.total_size.to_string(),
            other.total_size.to_string(),
        );
        check(
            "private",
            self.private == other.private,
            self.private.to_string(),
            other.private.to_string(),
        );
        check(
            "multi_file",
            self.multi_file == other.multi_file,
            self.multi_file.to_string(),
            other.multi_file.to_string(),
        );
        check(
            "file count",
            self.files.len() == other.files.len(),
            self.files.len().to_string(),
            other.files.len().to_string(),
        );
        for (index, (a, b)) in self.files.iter().zip(&other.files).enumerate() {
            let same = a.path == b.path
                && same_size(exact, a.length, b.length)
                && (!exact || a.pad == b.pad);
            check(
                &format!("file {index}"),
                same,
                format!("{a:?}"),
                format!("{b:?}"),
            );
        }
        check(
            "trackers",
            self.trackers == other.trackers,
            format!("{:?}", self.trackers),
            format!("{:?}", other.trackers),
        );
        check(
            "web_seeds",
            self.web_seeds == other.web_seeds,
            format!("{:?}", self.web_seeds),
            format!("{:?}", other.web_seeds),
        );
        check(
            "comment",
            self.comment == other.comment,
            format!("{:?}", self.comment),
            format!("{:?}", other.comment),
        );
        out
    }

    /// Panics with every difference from `other` (see [`ToolView::diff`]).
    pub fn assert_agrees(&self, other: &ToolView) {
        let diff = self.diff(other);
        assert!(
            diff.is_empty(),
            "views of {:?} differ:\n  {}",
            self.name,
            diff.join("\n  ")
        );
    }
}

fn same_size(exact: bool, a: u64, b: u64) -> bool {
    if exact {
        a == b
    } else {
        format_size(a) == format_size(b)
    }
}

fn same_mem(exact: bool, a: u64, b: u64) -> bool {
    if exact {
        a == b
    } else {
        format_mem(a) == format_mem(b)
    }
}

/// A byte count as Transmission 3.00 prints file and total sizes: SI units (`kB` = 1000,
/// `MB`, `GB`, `TB`), never plain bytes, two decimals below 100 and one above: 6 -> `0.01 kB`.
pub fn format_size(bytes: u64) -> String {
    format_units(bytes, 1000, ["kB", "MB", "GB", "TB"])
}

/// A byte count as Transmission 3.00 prints piece sizes: binary units (`KiB` = 1024, ...).
pub fn format_mem(bytes: u64) -> String {
    format_units(bytes, 1024, ["KiB", "MiB", "GiB", "TiB"])
}

/// Parses a size printed by Transmission (`"40.78 kB"`, `"16.00 KiB"`) back to bytes,
/// rounded to the nearest byte.
pub fn parse_size(text: &str) -> Option<u64> {
    let (number, unit) = text.trim().split_once(' ')?;
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    if !(value >= 0.0 && value.is_finite()) {
        return None;
    }
    // Test support: sizes of fixtures fit easily in the exact range of f64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((value * scale).round() as u64)
}

#[allow(clippy::cast_precision_loss)]
fn format_units(bytes: u64, base: u64, names: [&str; 4]) -> String {
    // Transmission picks the largest unit not above the value, but never goes below the first.
    let mut unit = base;
    let mut index = 0;
    while index + 1 < names.len() && bytes >= unit * base {
        unit *= base;
        index += 1;
    }
    let value = bytes as f64 / unit as f64;
    let precision = if value < 100.0 { 2 } else { 1 };
    format!(
        "{value:.precision$} {}",
        names.get(index).copied().unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_transmission_prints_them() {
        assert_eq!(format_size(0), "0.00 kB");
        assert_eq!(format_size(6), "0.01 kB");
        assert_eq!(format_size(777), "0.78 kB");
        assert_eq!(format_size(40_777), "40.78 kB");
        assert_eq!(format_size(213_000), "213.0 kB");
        assert_eq!(format_size(307_213), "307.2 kB");
        assert_eq!(format_size(2_500_000), "2.50 MB");
        assert_eq!(format_mem(16_384), "16.00 KiB");
        assert_eq!(format_mem(4 << 20), "4.00 MiB");
    }

    #[test]
    fn printed_sizes_parse_back() {
        assert_eq!(parse_size("16.00 KiB"), Some(16_384));
        assert_eq!(parse_size("40.78 kB"), Some(40_780));
        assert_eq!(parse_size("1.5 MB"), Some(1_500_000));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size("-1.0 kB"), None);
        for bytes in [0, 6, 777, 40_777, 213_011, 307_213, 2_500_001] {
            let shown = format_size(bytes);
            assert_eq!(format_size(parse_size(&shown).unwrap()), shown);
        }
    }

    fn sample() -> ToolView {
        ToolView {
            tool: "a".into(),
            creator: None,
            made_with: None,
            info_hash: Some("00".repeat(20)),
            info_hash_v2: None,
            name: "n".into(),
            piece_length: 16_384,
            piece_count: 1,
            total_size: 40_777,
            private: false,
            multi_file: true,
            files: vec![
                FileView {
                    path: "x.bin".into(),
                    length: 40_000,
                    pad: false,
                },
                FileView {
                    path: "y/z.txt".into(),
                    length: 777,
                    pad: false,
                },
            ],
            trackers: vec![vec!["http://t/a".into()]],
            web_seeds: vec![],
            comment: None,
            exact: true,
        }
    }

    #[test]
    fn diff_is_empty_for_equal_views_and_names_each_difference() {
        let a = sample();
        assert!(a.diff(&a).is_empty());
        let mut b = sample();
        b.tool = "b".into();
        b.private = true;
        b.files[1].length = 778;
        b.total_size = 40_778;
        let diff = a.diff(&b);
        assert_eq!(diff.len(), 3, "{diff:?}");
        assert!(diff.iter().any(|line| line.starts_with("private")));
        assert!(diff.iter().any(|line| line.starts_with("file 1")));
        assert!(diff.iter().any(|line| line.starts_with("total_size")));
    }

    #[test]
    fn inexact_views_compare_sizes_as_printed() {
        let a = sample();
        let mut b = sample();
        b.exact = false;
        b.total_size = 40_780;
        b.files[1].length = 780;
        b.files[0].pad = true;
        assert!(a.diff(&b).is_empty(), "{:?}", a.diff(&b));
        b.files[1].length = 790;
        assert_eq!(a.diff(&b).len(), 1);
    }
}
