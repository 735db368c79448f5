//! The command line, as clap types. Nothing here runs anything: `main.rs` turns these into calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Rill: a BitTorrent client for the terminal.
#[derive(Debug, Parser)]
#[command(name = "rill", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a .torrent file or magnet link describes.
    Info(InfoArgs),
    /// Make a .torrent file from a file or folder.
    Create(CreateArgs),
}

/// `rill info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A .torrent file or a magnet link.
    pub source: String,
    /// Print one JSON object instead of text, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// `rill create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The file or folder to share.
    pub path: PathBuf,
    /// Where to write the .torrent file.
    #[arg(short, long, value_name = "OUT.torrent")]
    pub output: PathBuf,
    /// A tracker announce URL. Each use adds a tier; several URLs separated by commas form one tier.
    #[arg(short, long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Mark the torrent private (BEP 27): peers come from its trackers only, never DHT or PEX.
    #[arg(long)]
    pub private: bool,
    /// Piece size in bytes, a power of two of at least 16 KiB; K and M suffixes allowed
    /// (e.g. 256K, 4M). Chosen from the total size when omitted.
    #[arg(long, value_name = "N", value_parser = parse_size)]
    pub piece_size: Option<u32>,
    /// A web seed URL (BEP 19); may be repeated.
    #[arg(short = 'w', long = "webseed", value_name = "URL")]
    pub web_seeds: Vec<String>,
    /// A comment stored in the torrent.
    #[arg(short, long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// The torrent's name; the file or folder name by default.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Add BEP 47 pad files so that every file starts on a piece boundary.
    #[arg(long)]
    pub pad_files: bool,
    /// Leave out the creation date, so that the same input always gives the same file.
    #[arg(long)]
    pub no_date: bool,
    /// Replace OUT.torrent if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Parses a byte count with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 10),
        Some((i, 'm' | 'M')) => (&text[..i], 20),
        Some((i, 'g' | 'G')) => (&text[..i], 30),
        _ => (text, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("`{text}` is not a size (like 262144, 256K or 4M)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("262144"), Ok(262_144));
        assert_eq!(parse_size("256K"), Ok(262_144));
        assert_eq!(parse_size("4m"), Ok(4 << 20));
        assert!(parse_size("4G").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("").is_err());
    }
}
