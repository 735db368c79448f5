//! `rill info`: what a .torrent file or a magnet link describes, as text for people or JSON
//! for scripts. Building the [`Summary`] and rendering it are pure; [`run`] reads the input.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use indicatif::BinaryBytes;
use rill_common::magnet::Magnet;
use rill_common::metainfo::{MetaVersion, Metainfo};
use serde::Serialize;

use crate::cli::InfoArgs;

/// The largest .torrent file read: a torrent of a few TiB in 256 KiB pieces has a few
/// hundred MiB of piece hashes at most in theory, but real ones stay far below this.
pub const MAX_TORRENT_FILE: u64 = 64 << 20;

/// Everything `rill info` reports. Fields that a magnet link does not carry are `None`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    /// The torrent's name (or the magnet's `dn`).
    pub name: Option<String>,
    /// The v1 info-hash, 40 hex digits.
    pub info_hash: String,
    /// The v2 info-hash of a hybrid torrent, 64 hex digits.
    pub info_hash_v2: Option<String>,
    /// Total bytes of all files, pad files included.
    pub total_size: Option<u64>,
    /// Bytes per piece.
    pub piece_length: Option<u32>,
    /// Number of pieces.
    pub piece_count: Option<usize>,
    /// Whether the torrent is private (BEP 27).
    pub private: Option<bool>,
    /// Whether the torrent is a folder (its info has a `files` list).
    pub multi_file: Option<bool>,
    /// Files in torrent order, paths relative to the torrent's root.
    pub files: Option<Vec<FileSummary>>,
    /// Trackers by tier (BEP 12).
    pub trackers: Vec<Vec<String>>,
    /// Web seeds (BEP 19, or `ws` in a magnet).
    pub web_seeds: Vec<String>,
    /// Peer addresses given by a magnet's `x.pe`.
    pub peers: Vec<String>,
    /// The torrent's comment.
    pub comment: Option<String>,
    /// The program that made the torrent.
    pub created_by: Option<String>,
    /// When the torrent was made, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// A magnet link for the torrent.
    pub magnet: String,
}

/// One file of a torrent.
#[derive(Debug, Serialize, PartialEq)]
pub struct FileSummary {
    /// Path below the torrent's root, components joined with `/`.
    pub path: String,
    /// Size in bytes.
    pub length: u64,
    /// Whether it is a BEP 47 pad file (padding, never written to disk).
    pub pad: bool,
}

impl Summary {
    /// The summary of a parsed torrent.
    pub fn of_metainfo(meta: &Metainfo) -> Self {
        let info = &meta.info;
        let magnet = Magnet {
            info_hash: meta.info_hash,
            display_name: Some(info.name.clone()),
            trackers: meta.trackers().into_iter().flatten().collect(),
            web_seeds: meta.url_list.clone(),
            ..Magnet::new(meta.info_hash)
        };
        Summary {
            name: Some(info.name.clone()),
            info_hash: meta.info_hash.to_hex(),
            info_hash_v2: meta
                .info_hash_v2
                .filter(|_| meta.version() == MetaVersion::Hybrid)
                .map(|h| h.iter().map(|b| format!("{b:02x}")).collect()),
            total_size: Some(info.total_length()),
            piece_length: Some(info.piece_length),
            piece_count: Some(info.piece_count()),
            private: Some(info.private),
            multi_file: Some(info.multi_file),
            files: Some(
                info.files
                    .iter()
                    .map(|f| FileSummary {
                        path: f.path.join("/"),
                        length: f.length,
                        pad: f.attr.pad,
                    })
                    .collect(),
            ),
            trackers: meta.trackers(),
            web_seeds: meta.url_list.clone(),
            peers: Vec::new(),
            comment: meta.comment.clone(),
            created_by: meta.created_by.clone(),
            creation_date: meta.creation_date,
            magnet: magnet.to_string(),
        }
    }

    /// The summary of a magnet link: only what the link itself says.
    pub fn of_magnet(magnet: &Magnet) -> Self {
        Summary {
            name: magnet.display_name.clone(),
            info_hash: magnet.info_hash.to_hex(),
            info_hash_v2: None,
            total_size: None,
            piece_length: None,
            piece_count: None,
            private: None,
            multi_file: None,
            files: None,
            trackers: magnet.trackers.iter().map(|t| vec![t.clone()]).collect(),
            web_seeds: magnet.web_seeds.clone(),
            peers: magnet.peers.iter().map(ToString::to_string).collect(),
            comment: None,
            created_by: None,
            creation_date: None,
            magnet: magnet.to_string(),
        }
    }

    /// The text `rill info` prints.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: &str| {
            let _ = writeln!(out, "{:<13} {value}", format!("{label}:"));
        };
        line("Name", self.name.as_deref().unwrap_or("(none)"));
        line("Info hash", &self.info_hash);
        if let Some(v2) = &self.info_hash_v2 {
            line("Info hash v2", v2);
        }
        if let Some(total) = self.total_size {
            line("Size", &format!("{} ({total} bytes)", BinaryBytes(total)));
        }
        if let (Some(length), Some(count)) = (self.piece_length, self.piece_count) {
            line(
                "Pieces",
                &format!("{count} of {}", BinaryBytes(u64::from(length))),
            );
        }
        if let Some(private) = self.private {
            line("Private", if private { "yes" } else { "no" });
        }
        if let Some(by) = &self.created_by {
            line("Created by", by);
        }
        if let Some(date) = self.creation_date {
            line("Created on", &format_date(date));
        }
        if let Some(comment) = &self.comment {
            line("Comment", comment);
        }
        line("Magnet", &self.magnet);
        if self.files.is_none() {
            out.push_str(
                "(a magnet link: the file list comes from peers once downloading starts)\n",
            );
        }
        render_list(&mut out, "Trackers", &self.trackers);
        let seeds: Vec<Vec<String>> = self.web_seeds.iter().map(|s| vec![s.clone()]).collect();
        render_list(&mut out, "Web seeds", &seeds);
        let peers: Vec<Vec<String>> = self.peers.iter().map(|p| vec![p.clone()]).collect();
        render_list(&mut out, "Peers", &peers);
        if let Some(files) = &self.files {
            render_files(&mut out, self.name.as_deref().unwrap_or(""), files);
        }
        out
    }
}

/// Trackers by tier (or a plain list when every group has one entry).
fn render_list(out: &mut String, title: &str, groups: &[Vec<String>]) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    let tiered = title == "Trackers" && groups.len() > 1;
    for (i, group) in groups.iter().enumerate() {
        for (j, entry) in group.iter().enumerate() {
            match (tiered, j) {
                (true, 0) => {
                    let _ = writeln!(out, "  tier {}: {entry}", i + 1);
                }
                (true, _) => {
                    let _ = writeln!(out, "          {entry}");
                }
                (false, _) => {
                    let _ = writeln!(out, "  {entry}");
                }
            }
        }
    }
}

/// A folder of the file tree: subfolders and files by name.
#[derive(Default)]
struct Folder<'a> {
    folders: BTreeMap<&'a str, Folder<'a>>,
    files: Vec<(&'a str, u64)>,
}

/// The file tree, pad files left out (they are counted in a note).
fn render_files(out: &mut String, name: &str, files: &[FileSummary]) {
    let pads = files.iter().filter(|f| f.pad).count();
    let real: Vec<&FileSummary> = files.iter().filter(|f| !f.pad).collect();
    let _ = write!(out, "Files ({}", real.len());
    if pads > 0 {
        let _ = write!(out, ", and {pads} pad files not shown");
    }
    out.push_str("):\n");
    let single = files.len() == 1 && files.iter().all(|f| f.path == name);
    if single {
        if let Some(file) = files.first() {
            let _ = writeln!(out, "  {}  {}", file.path, BinaryBytes(file.length));
        }
        return;
    }
    let mut root = Folder::default();
    for file in real {
        let mut parts: Vec<&str> = file.path.split('/').collect();
        let leaf = parts.pop().unwrap_or_default();
        let folder = parts
            .into_iter()
            .fold(&mut root, |f, part| f.folders.entry(part).or_default());
        folder.files.push((leaf, file.length));
    }
    let _ = writeln!(out, "  {name}/");
    render_folder(out, &root, 2);
}

fn render_folder(out: &mut String, folder: &Folder<'_>, depth: usize) {
    let indent = "  ".repeat(depth);
    for (name, sub) in &folder.folders {
        let _ = writeln!(out, "{indent}{name}/");
        render_folder(out, sub, depth + 1);
    }
    for (name, length) in &folder.files {
        let _ = writeln!(out, "{indent}{name}  {}", BinaryBytes(*length));
    }
}

/// A creation date as RFC 3339 in UTC; out-of-range values are shown as the raw number.
fn format_date(seconds: i64) -> String {
    u64::try_from(seconds)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| seconds.to_string())
}

/// Reads and parses a .torrent file, refusing files too large to be one.
pub fn read_torrent(path: &Path) -> anyhow::Result<Metainfo> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > MAX_TORRENT_FILE {
        anyhow::bail!(
            "{} is {} bytes, too large for a .torrent file (limit {MAX_TORRENT_FILE})",
            path.display(),
            size
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid torrent", path.display()))
}

/// `rill info SOURCE [--json]`.
pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let summary = if args.source.starts_with("magnet:") {
        let magnet = Magnet::parse(&args.source).context("invalid magnet link")?;
        Summary::of_magnet(&magnet)
    } else {
        Summary::of_metainfo(&read_torrent(Path::new(&args.source))?)
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_text());
    }
    Ok(())
}
