//! What a download or seed session runs with: no clap types, so the library is driven the same
//! way by `main.rs` and by tests.
//!
//! Settings come from three places, later ones winning: built-in defaults, an optional TOML
//! file (`--config FILE`, or the `RILL_CONFIG` environment variable), then command-line flags.
//! The file has the same names as the flags (`port`, `max-peers`, `max-connections`,
//! `max-down`, `max-up`, `output`, `seed-ratio`, `seed-time`, `sequential`); unknown keys are
//! refused, so a typo is an error rather than a silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// The port tried first when none is given (the range BitTorrent clients traditionally use).
pub const DEFAULT_PORT: u16 = 6881;

/// How progress is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Display {
    /// Progress bars on a terminal (none if stderr is not one); `verbose` adds one per file.
    #[default]
    Bars,
    /// Bars with one per file.
    Verbose,
    /// One JSON object per line on stdout, every second, for scripts.
    Json,
    /// Nothing but errors.
    Quiet,
}

/// When a finished torrent stops.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SeedPolicy {
    /// Keep seeding after the download (always true for `rill seed`).
    pub seed: bool,
    /// Stop seeding once uploaded / size reaches this.
    pub ratio: Option<f64>,
    /// Stop seeding after this long.
    pub time: Option<Duration>,
}

/// A whole session's settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Where downloads go (each torrent's file or folder is created inside).
    pub output: PathBuf,
    /// The TCP port to listen on; `None`: [`DEFAULT_PORT`] or the next free one; `Some(0)`: any.
    pub port: Option<u16>,
    /// Connections per torrent.
    pub max_peers: usize,
    /// Connections of the whole process, all torrents together.
    pub max_connections: usize,
    /// Download limit, bytes per second (`None`: unlimited).
    pub max_down: Option<u64>,
    /// Upload limit, bytes per second (`None`: unlimited).
    pub max_up: Option<u64>,
    /// Only these files (indexes as `rill info` lists them, from 0); empty: all.
    pub only_files: Vec<usize>,
    /// Download pieces in order.
    pub sequential: bool,
    /// What to do once complete.
    pub seed: SeedPolicy,
    /// Peers to connect to directly, besides the trackers'.
    pub peers: Vec<SocketAddr>,
    /// How to show progress.
    pub display: Display,
    /// The DHT's bootstrap nodes (`HOST:PORT`), used when no saved table is found; `None`:
    /// no DHT.
    pub dht: Option<Vec<String>>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            output: PathBuf::from("."),
            port: None,
            max_peers: 50,
            max_connections: 200,
            max_down: None,
            max_up: None,
            only_files: Vec::new(),
            sequential: false,
            seed: SeedPolicy::default(),
            peers: Vec::new(),
            display: Display::Bars,
            dht: None,
        }
    }
}

/// The optional config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// `port = 6881`
    pub port: Option<u16>,
    /// `max-peers = 50`
    pub max_peers: Option<usize>,
    /// `max-connections = 200`
    pub max_connections: Option<usize>,
    /// `max-down = "2M"` (bytes per second, K/M/G suffixes)
    pub max_down: Option<String>,
    /// `max-up = "512K"`
    pub max_up: Option<String>,
    /// `output = "/data/torrents"`
    pub output: Option<PathBuf>,
    /// `seed-ratio = 2.0`
    pub seed_ratio: Option<f64>,
    /// `seed-time = "2h"`
    pub seed_time: Option<String>,
    /// `sequential = true`
    pub sequential: Option<bool>,
}

/// Why the config file cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// It cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not valid TOML or has an unknown key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, one line.
        message: String,
    },
}

impl FileConfig {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|err| err.message().replace('\n', " "))
    }

    /// The session config these file settings give over the defaults (flags go on top).
    pub fn apply(&self, config: &mut SessionConfig) -> Result<(), String> {
        if let Some(port) = self.port {
            config.port = Some(port);
        }
        if let Some(max_peers) = self.max_peers {
            config.max_peers = max_peers;
        }
        if let Some(max_connections) = self.max_connections {
            config.max_connections = max_connections;
        }
        if let Some(rate) = &self.max_down {
            config.max_down = Some(parse_rate(rate)?);
        }
        if let Some(rate) = &self.max_up {
            config.max_up = Some(parse_rate(rate)?);
        }
        if let Some(output) = &self.output {
            config.output.clone_from(output);
        }
        if let Some(ratio) = self.seed_ratio {
            config.seed.ratio = Some(ratio);
        }
        if let Some(time) = &self.seed_time {
            config.seed.time = Some(parse_duration(time)?);
        }
        if let Some(sequential) = self.sequential {
            config.sequential = sequential;
        }
        Ok(())
    }
}

/// Parses a rate in bytes per second with an optional K, M or G suffix (powers of 1024).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let lower = lower.trim_end_matches("/s").trim_end_matches('b');
    let (digits, shift) = match lower.char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 10),
        Some((i, 'm')) => (&lower[..i], 20),
        Some((i, 'g')) => (&lower[..i], 30),
        _ => (lower, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("`{text}` is not a rate (like 500K or 2M, bytes per second)"))
}

/// Parses a duration like `90s`, `30m`, `2h` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|err| format!("`{text}` is not a duration (like 30m or 2h): {err}"))
}

/// Parses `--only-files`: indexes and ranges separated by commas, e.g. `0,2-4`.
pub fn parse_file_list(text: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("`{text}` is not a list of file indexes (like 0,2-4)");
    let mut files = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        match part.split_once('-') {
            Some((first, last)) => {
                let first: usize = first.trim().parse().map_err(|_| bad())?;
                let last: usize = last.trim().parse().map_err(|_| bad())?;
                if last < first || last - first > 1 << 20 {
                    return Err(bad());
                }
                files.extend(first..=last);
            }
            None => files.push(part.parse().map_err(|_| bad())?),
        }
    }
    if files.is_empty() {
        return Err(bad());
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("500K"), Ok(500 << 10));
        assert_eq!(parse_rate("2m"), Ok(2 << 20));
        assert_eq!(parse_rate("2MB/s"), Ok(2 << 20));
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn file_lists() {
        assert_eq!(parse_file_list("0,2-4"), Ok(vec![0, 2, 3, 4]));
        assert_eq!(parse_file_list("7"), Ok(vec![7]));
        assert!(parse_file_list("4-2").is_err());
        assert!(parse_file_list("").is_err());
        assert!(parse_file_list("a").is_err());
    }

    #[test]
    fn file_settings_apply_and_flags_win_after() {
        let file = FileConfig::parse(
            "port = 7000\nmax-peers = 9\nmax-up = \"1M\"\nseed-time = \"2h\"\nsequential = true\n",
        )
        .unwrap();
        let mut config = SessionConfig::default();
        file.apply(&mut config).unwrap();
        assert_eq!(config.port, Some(7000));
        assert_eq!(config.max_peers, 9);
        assert_eq!(config.max_up, Some(1 << 20));
        assert_eq!(config.seed.time, Some(Duration::from_secs(7200)));
        assert!(config.sequential);
        // A flag given afterwards replaces the file's value.
        config.port = Some(7001);
        assert_eq!(config.port, Some(7001));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = FileConfig::parse("prot = 7000\n").unwrap_err();
        assert!(err.contains("prot"), "{err}");
    }
}
