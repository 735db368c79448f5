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
    /// Download torrents (.torrent files or http(s) URLs of them).
    Download(DownloadArgs),
    /// Check data that is already complete and seed it.
    Seed(SeedArgs),
    /// Query the DHT, for debugging a network.
    Dht(DhtArgs),
}

/// `rill dht`.
#[derive(Debug, Args)]
pub struct DhtArgs {
    /// What to ask.
    #[command(subcommand)]
    pub query: DhtQuery,
    /// Bootstrap from this node (HOST:PORT) instead of the public routers; may be repeated.
    #[arg(long, value_name = "HOST:PORT", global = true)]
    pub dht_bootstrap: Vec<String>,
    /// The UDP port to use (default: any).
    #[arg(long, global = true)]
    pub port: Option<u16>,
}

/// A `rill dht` query.
#[derive(Debug, Subcommand)]
pub enum DhtQuery {
    /// Look up the peers of an info hash (40 hex digits or 32 base32 characters).
    GetPeers {
        /// The info hash.
        info_hash: String,
    },
    /// Ping a DHT node.
    Ping {
        /// The node's address.
        addr: String,
    },
}

/// `rill download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// .torrent files, http(s) URLs of .torrent files, or magnet links.
    #[arg(required = true, value_name = "TORRENT")]
    pub sources: Vec<String>,
    /// The folder to download into (each torrent's file or folder is created inside).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Keep seeding once complete (until --seed-ratio or --seed-time, or Ctrl-C).
    #[arg(long)]
    pub seed: bool,
    /// Download only these files: indexes as `rill info` lists them, from 0 (e.g. 0,2-4).
    #[arg(long, value_name = "LIST", value_parser = parse_file_list)]
    pub only_files: Option<FileList>,
    /// Download pieces in order (for playing media while it downloads).
    #[arg(long)]
    pub sequential: bool,
    /// Settings shared with `rill seed`.
    #[command(flatten)]
    pub session: SessionArgs,
}

/// File indexes given to `--only-files`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileList(pub Vec<usize>);

fn parse_file_list(text: &str) -> Result<FileList, String> {
    crate::config::parse_file_list(text).map(FileList)
}

/// `rill seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// The .torrent file (or an http(s) URL of one).
    #[arg(value_name = "TORRENT")]
    pub source: String,
    /// The folder holding the data (or the torrent's own folder or file).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Settings shared with `rill download`.
    #[command(flatten)]
    pub session: SessionArgs,
}

/// Settings of `rill download` and `rill seed`.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// Stop seeding once uploaded / size reaches this ratio (implies --seed).
    #[arg(long, value_name = "R")]
    pub seed_ratio: Option<f64>,
    /// Stop seeding after this long, e.g. 30m or 2h (implies --seed).
    #[arg(long, value_name = "D", value_parser = crate::config::parse_duration)]
    pub seed_time: Option<std::time::Duration>,
    /// The TCP port to listen on (default: 6881 or the next free one; 0: any).
    #[arg(long)]
    pub port: Option<u16>,
    /// Connections per torrent at most.
    #[arg(long, value_name = "N")]
    pub max_peers: Option<usize>,
    /// Connections at most for all torrents together (default 200).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Download limit in bytes per second (K, M suffixes: 500K, 2M).
    #[arg(long, value_name = "RATE", value_parser = crate::config::parse_rate)]
    pub max_down: Option<u64>,
    /// Upload limit in bytes per second (K, M suffixes: 500K, 2M).
    #[arg(long, value_name = "RATE", value_parser = crate::config::parse_rate)]
    pub max_up: Option<u64>,
    /// Connect to this peer directly (IP:PORT); may be repeated.
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<std::net::SocketAddr>,
    /// Do not run the DHT (also when $RILL_NO_DHT is set, unless --dht-bootstrap is given).
    #[arg(long, conflicts_with = "dht_bootstrap")]
    pub no_dht: bool,
    /// Bootstrap the DHT from this node (HOST:PORT) when no saved table is found; may be
    /// repeated; replaces the public routers used by default.
    #[arg(long, value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// A TOML config file (default: $RILL_CONFIG if set); flags win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// No progress display.
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,
    /// One JSON progress line per torrent per second on stdout, for scripts.
    #[arg(long)]
    pub json: bool,
    /// One progress bar per file.
    #[arg(short, long)]
    pub verbose: bool,
}

/// `rill info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A .torrent file or a magnet link.
    pub source: String,
    /// For a magnet link: fetch the info dict from peers (BEP 9) and describe the torrent.
    #[arg(long)]
    pub fetch: bool,
    /// For a magnet link: fetch the info dict and write the .torrent here (implies --fetch).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// With --fetch: ask this peer (IP:PORT) too; may be repeated.
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<std::net::SocketAddr>,
    /// With --fetch: bootstrap the DHT from this node (HOST:PORT); may be repeated.
    #[arg(long, value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// With --fetch: do not use the DHT.
    #[arg(long, conflicts_with = "dht_bootstrap")]
    pub no_dht: bool,
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
    fn download_flags_parse() {
        let cli = Cli::try_parse_from([
            "rill",
            "download",
            "a.torrent",
            "b.torrent",
            "-o",
            "out",
            "--seed-ratio",
            "1.5",
            "--peer",
            "127.0.0.1:7000",
            "--peer",
            "[::1]:7001",
            "--max-down",
            "2M",
            "--only-files",
            "0,2-3",
            "--json",
        ])
        .unwrap();
        let Command::Download(args) = cli.command else {
            panic!("not a download");
        };
        assert_eq!(args.sources, ["a.torrent", "b.torrent"]);
        assert_eq!(args.session.peers.len(), 2);
        assert_eq!(args.session.max_down, Some(2 << 20));
        assert_eq!(args.only_files, Some(FileList(vec![0, 2, 3])));
        assert!(args.session.json);
        assert!(Cli::try_parse_from(["rill", "download"]).is_err());
        assert!(Cli::try_parse_from(["rill", "seed", "a.torrent"]).is_err());
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
