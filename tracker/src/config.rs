//! The tracker's configuration: TOML, every key optional (`serde(default)`), unknown keys
//! refused with an error naming the key (`deny_unknown_fields`).
//!
//! Invariants: a [`Config`] that passed [`Config::validate`] has `min_interval <= interval`,
//! `default_numwant <= max_numwant`, a peer TTL longer than the longest announce interval,
//! a non-zero purge interval, scrape cap and flush interval, and a `database` URL that names
//! SQLite or PostgreSQL, or is [`MEMORY`] (no database: public mode only).
//!
//! The database when `database` is unset: [`DEFAULT_DATABASE`] in private mode, and for the
//! `rill-tracker` command in both modes (it calls [`Config::use_default_database`]); a
//! public tracker started through the library with `database` unset (as tests do) keeps
//! everything in memory and writes no file.
//! [`Config::print_default`] prints a commented file that parses back to [`Config::default`].

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

mod ip_range;

pub use ip_range::{IpRange, IpRangeError};

/// Why a configuration cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error (in the message, not a `source`).
        error: std::io::Error,
    },
    /// The TOML is invalid or has an unknown key (the message names it).
    #[error("{0}")]
    Parse(String),
    /// The values are inconsistent or not available yet.
    #[error("{0}")]
    Invalid(String),
}

/// The tracker mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Anyone may announce any torrent.
    #[default]
    Public,
    /// Users with passkeys, registered torrents, accounting in a database.
    Private,
}

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Public or private.
    pub mode: Mode,
    /// The database URL (`sqlite://PATH` or `postgres://…`), or [`MEMORY`] for none; `None`:
    /// see the module doc.
    pub database: Option<String>,
    /// The admin REST API's bearer token; `None` leaves the API off.
    pub admin_token: Option<String>,
    /// The HTTP tracker.
    pub http: HttpConfig,
    /// The UDP tracker (BEP 15).
    pub udp: UdpConfig,
    /// Announce replies.
    pub announce: AnnounceConfig,
    /// Scrapes.
    pub scrape: ScrapeConfig,
    /// The swarm store.
    pub swarm: SwarmSection,
    /// Private mode: persistence and limits.
    pub private: PrivateSection,
}

/// The database when `database` is not set (see the module doc): a SQLite file in the
/// working directory, created on first start.
pub const DEFAULT_DATABASE: &str = "sqlite://rill-tracker.db";

/// The `database` value that means no database: the swarms live in memory only (public
/// mode; private mode needs a database).
pub const MEMORY: &str = "memory";

/// `[http]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Whether to serve HTTP.
    pub enabled: bool,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Proxies whose `X-Forwarded-For`/`X-Real-IP` headers are believed.
    pub trusted_proxies: Vec<IpRange>,
    /// The URL clients reach this tracker at (`http://tracker.example:6969`), for the
    /// announce URLs the admin commands print; `None`: from `listen`.
    pub public_url: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 6969)),
            trusted_proxies: Vec::new(),
            public_url: None,
        }
    }
}

/// `[udp]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UdpConfig {
    /// Whether to serve UDP.
    pub enabled: bool,
    /// The address to listen on.
    pub listen: SocketAddr,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], 6969)),
        }
    }
}

/// `[announce]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnounceConfig {
    /// Seconds between regular announces (`interval`).
    pub interval_secs: u32,
    /// Random seconds added to `interval` (0 to this), so clients spread out.
    pub interval_jitter_secs: u32,
    /// `min interval`.
    pub min_interval_secs: u32,
    /// Peers in a reply when the client does not say.
    pub default_numwant: u32,
    /// Most peers in a reply, whatever the client asks.
    pub max_numwant: u32,
    /// Whether the `ip=` parameter (HTTP) and the address field (UDP) are believed (never
    /// in private mode).
    pub allow_ip_param: bool,
    /// `tracker id` sent in every HTTP announce reply, if set.
    pub tracker_id: Option<String>,
    /// `warning message` sent in every HTTP announce reply, if set.
    pub warning_message: Option<String>,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        AnnounceConfig {
            interval_secs: 1800,
            interval_jitter_secs: 180,
            min_interval_secs: 300,
            default_numwant: 50,
            max_numwant: 200,
            allow_ip_param: false,
            tracker_id: None,
            warning_message: None,
        }
    }
}

/// `[scrape]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Most info hashes in one HTTP scrape (UDP's limit is BEP 15's 74).
    pub max_hashes: usize,
    /// Whether a scrape without info hashes lists every torrent.
    pub full_scrape: bool,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            max_hashes: 64,
            full_scrape: false,
        }
    }
}

/// `[swarm]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwarmSection {
    /// Seconds after its last announce that a peer is forgotten.
    pub peer_ttl_secs: u64,
    /// Seconds between sweeps of expired peers.
    pub purge_interval_secs: u64,
    /// Independent locks the torrents are spread over (0: one per CPU, times 4).
    pub shards: usize,
    /// Seconds between saves of the swarms to the database (also saved at shutdown): what
    /// a `kill -9` can lose of them.
    pub save_interval_secs: u64,
}

impl Default for SwarmSection {
    fn default() -> Self {
        SwarmSection {
            // Two jittered intervals and four minutes of slack: one lost announce never drops
            // a peer.
            peer_ttl_secs: 2 * (1800 + 180) + 240,
            purge_interval_secs: 60,
            shards: 0,
            save_interval_secs: 5,
        }
    }
}

/// `[private]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivateSection {
    /// Seconds between writes of the accounting to the database.
    pub flush_interval_secs: u64,
    /// Seconds between reloads of users, torrents and the allow-list from the database
    /// (changes through the admin API are reloaded at once).
    pub reload_interval_secs: u64,
    /// Announces a user may make at once after a quiet spell; 0 turns the limit off.
    pub rate_limit_burst: u32,
    /// Sustained announces per user and minute.
    pub rate_limit_per_minute: u32,
}

impl Default for PrivateSection {
    fn default() -> Self {
        let limit = crate::private::RateLimit::default();
        PrivateSection {
            flush_interval_secs: 5,
            reload_interval_secs: 30,
            rate_limit_burst: limit.burst,
            rate_limit_per_minute: limit.per_minute,
        }
    }
}

impl PrivateSection {
    /// The flush interval as a duration.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_secs(self.flush_interval_secs)
    }

    /// The registry reload interval as a duration.
    pub fn reload_interval(&self) -> Duration {
        Duration::from_secs(self.reload_interval_secs)
    }

    /// The rate limit, `None` when off.
    pub fn rate_limit(&self) -> Option<crate::private::RateLimit> {
        (self.rate_limit_burst > 0).then_some(crate::private::RateLimit {
            burst: self.rate_limit_burst,
            per_minute: self.rate_limit_per_minute,
        })
    }
}

impl SwarmSection {
    /// The swarm save interval as a duration.
    pub fn save_interval(&self) -> Duration {
        Duration::from_secs(self.save_interval_secs)
    }

    /// The peer TTL as a duration.
    pub fn peer_ttl(&self) -> Duration {
        Duration::from_secs(self.peer_ttl_secs)
    }

    /// The purge interval as a duration.
    pub fn purge_interval(&self) -> Duration {
        Duration::from_secs(self.purge_interval_secs)
    }

    /// The shard count, `0` resolved to 4 per available CPU.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            return self.shards;
        }
        std::thread::available_parallelism().map_or(4, |n| n.get() * 4)
    }
}

impl Config {
    /// Parses TOML; unknown keys and invalid values are errors naming the key.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse(msg) => ConfigError::Parse(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Checks what serde cannot: consistency between keys, and features not available yet.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if let Some(url) = &self.database {
            let known = ["sqlite://", "postgres://", "postgresql://"];
            if url != MEMORY && !known.iter().any(|scheme| url.starts_with(scheme)) {
                return Err(ConfigError::Invalid(format!(
                    "database {url:?} is not a sqlite://PATH or postgres://… URL, or \"{MEMORY}\""
                )));
            }
            if url == MEMORY && self.mode == Mode::Private {
                return invalid(
                    "private mode needs a database: database = \"memory\" is for public mode",
                );
            }
        }
        if self.private.flush_interval_secs == 0 {
            return invalid("private.flush_interval_secs must be at least 1");
        }
        if self.private.reload_interval_secs == 0 {
            return invalid("private.reload_interval_secs must be at least 1");
        }
        if self.swarm.save_interval_secs == 0 {
            return invalid("swarm.save_interval_secs must be at least 1");
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return invalid("admin_token must be at least 16 characters");
        }
        if self.admin_token.is_some() && self.database_url().is_none() {
            return invalid(
                "admin_token needs a database: set mode = \"private\" or database = \"…\"",
            );
        }
        let a = &self.announce;
        if a.interval_secs == 0 {
            return invalid("announce.interval_secs must be at least 1");
        }
        if a.min_interval_secs > a.interval_secs {
            return invalid("announce.min_interval_secs must not exceed announce.interval_secs");
        }
        if a.default_numwant > a.max_numwant {
            return invalid("announce.default_numwant must not exceed announce.max_numwant");
        }
        if self.scrape.max_hashes == 0 {
            return invalid("scrape.max_hashes must be at least 1");
        }
        if self.swarm.purge_interval_secs == 0 {
            return invalid("swarm.purge_interval_secs must be at least 1");
        }
        let longest_interval = u64::from(a.interval_secs) + u64::from(a.interval_jitter_secs);
        if self.swarm.peer_ttl_secs <= longest_interval {
            return Err(ConfigError::Invalid(format!(
                "swarm.peer_ttl_secs ({}) must exceed announce.interval_secs plus \
                 announce.interval_jitter_secs ({longest_interval}), or peers expire between \
                 their announces",
                self.swarm.peer_ttl_secs
            )));
        }
        Ok(())
    }

    /// The database to open: the configured URL, or [`DEFAULT_DATABASE`] in private mode;
    /// `None` for [`MEMORY`], and in public mode when unset.
    pub fn database_url(&self) -> Option<&str> {
        match (&self.database, self.mode) {
            (Some(url), _) if url == MEMORY => None,
            (Some(url), _) => Some(url),
            (None, Mode::Private) => Some(DEFAULT_DATABASE),
            (None, Mode::Public) => None,
        }
    }

    /// The tracker's public HTTP URL without a path (`http.public_url`, or from `listen`).
    pub fn public_url(&self) -> String {
        if let Some(url) = &self.http.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let addr = self.http.listen;
        match addr.ip() {
            ip if ip.is_unspecified() => format!("http://localhost:{}", addr.port()),
            std::net::IpAddr::V6(v6) => format!("http://[{v6}]:{}", addr.port()),
            std::net::IpAddr::V4(v4) => format!("http://{v4}:{}", addr.port()),
        }
    }

    /// Sets `database` to [`DEFAULT_DATABASE`] if it is unset: what the `rill-tracker`
    /// command does, so that with no configuration it keeps its swarms (and, in private
    /// mode, everything else) in a SQLite file created on first start.
    pub fn use_default_database(&mut self) {
        self.database
            .get_or_insert_with(|| DEFAULT_DATABASE.to_owned());
    }

    /// The default configuration as a commented TOML file (what `--print-config` prints).
    pub fn print_default() -> String {
        DEFAULT_TOML.to_owned()
    }
}

/// Keep in step with the `Default` impls: a unit test parses it back.
const DEFAULT_TOML: &str = r#"# rill-tracker configuration. Every key is optional; the values below are the defaults.
# An unknown key is an error.

# "public": anyone may announce any torrent.
# "private": users announce to /announce/<passkey> (HTTP) or udp://HOST:PORT/announce/<passkey>
# (BEP 41), registered torrents only, per-user accounting kept in the database.
mode = "public"
# The database: "sqlite://PATH" (created, and migrated, on first start) or
# "postgres://USER@HOST/DB". Both modes keep the swarms there (peers and scrape counts), so
# a restart loses neither; private mode also keeps users, torrents and the accounting.
# "memory": no database, nothing survives a restart (public mode only).
# Unset: "sqlite://rill-tracker.db" in the working directory.
# database = "sqlite://rill-tracker.db"
# A bearer token (16 characters or more) that turns the admin REST API on. Unset: off.
# admin_token = "change-me-to-a-long-random-string"

[http]
# Serve announces and scrapes over HTTP (BEP 3, 7, 23, 48), plus /health and /stats.
enabled = true
listen = "0.0.0.0:6969"
# Proxy address ranges (CIDR) whose X-Forwarded-For / X-Real-IP headers are believed. The
# client is the right-most address in X-Forwarded-For that is not in these ranges. Requests
# from other addresses use the socket's address and their headers are ignored.
trusted_proxies = []
# The URL clients reach this tracker at, used in the announce URLs that `rill-tracker user
# add` prints. Unset: http:// and the listen address (0.0.0.0 shown as localhost).
# public_url = "http://tracker.example.org:6969"

[udp]
# Serve announces and scrapes over UDP (BEP 15).
enabled = true
listen = "0.0.0.0:6969"

[announce]
# Seconds between a client's regular announces (`interval`) ...
interval_secs = 1800
# ... plus a random 0 to this many seconds, so that clients spread out.
interval_jitter_secs = 180
# `min interval`: clients should not announce more often than this.
min_interval_secs = 300
# Peers in a reply when the client sends no `numwant`.
default_numwant = 50
# Most peers in a reply, whatever `numwant` asks.
max_numwant = 200
# Believe the address a client claims (HTTP `ip=`, UDP address field) instead of the one
# it connects from. Off: anyone could insert any address into a swarm.
allow_ip_param = false
# Sent as `tracker id` in every HTTP announce reply (clients echo it back as `trackerid`).
# tracker_id = "rill"
# Sent as `warning message` in every HTTP announce reply (clients show it to the user).
# warning_message = "maintenance on Sunday"

[scrape]
# Most info hashes in one HTTP scrape (UDP allows 74, what fits in a datagram).
max_hashes = 64
# Answer a scrape without info_hash with every torrent (can be large).
full_scrape = false

[swarm]
# Seconds after its last announce that a peer is dropped: more than two intervals with
# jitter, so that one lost announce does not drop a peer.
peer_ttl_secs = 4200
# Seconds between sweeps that drop expired peers and empty torrents.
purge_interval_secs = 60
# Locks the torrents are spread over; 0 picks 4 per CPU.
shards = 0
# Seconds between saves of the swarms to the database (they are also saved at shutdown):
# after a `kill -9` at most this much is lost.
save_interval_secs = 5

[private]
# Seconds between writes of the accounting to the database. After a `kill -9` at most
# this much accounting is lost; SIGINT/SIGTERM write everything first.
flush_interval_secs = 5
# Seconds between reloads of users, torrents and the client allow-list (what
# `rill-tracker user add` and friends change from another process). A reload reads every
# row; changes made through the admin REST API are reloaded at once.
reload_interval_secs = 30
# Per-user announce rate limit: this many at once after a quiet spell (0: no limit) ...
rate_limit_burst = 240
# ... refilled at this many a minute.
rate_limit_per_minute = 120
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_default_parses_back_to_the_default() {
        let printed = Config::print_default();
        assert_eq!(Config::from_toml(&printed).unwrap(), Config::default());
        // And every key in it is commented.
        assert!(printed.lines().filter(|l| l.starts_with('#')).count() > 10);
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = Config::from_toml("[announce]\nintervall_secs = 5\n").unwrap_err();
        assert!(err.to_string().contains("intervall_secs"), "{err}");
        let err = Config::from_toml("colour = \"blue\"\n").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn private_mode_defaults_to_a_sqlite_file() {
        let config = Config::from_toml("mode = \"private\"\n").unwrap();
        assert_eq!(config.database_url(), Some(DEFAULT_DATABASE));
        assert_eq!(
            Config::default().database_url(),
            None,
            "public through the library: in memory"
        );
        let mut command = Config::default();
        command.use_default_database();
        assert_eq!(
            command.database_url(),
            Some(DEFAULT_DATABASE),
            "the command"
        );
        let memory = Config::from_toml("database = \"memory\"\n").unwrap();
        assert_eq!(memory.database_url(), None);
        let mut kept = memory.clone();
        kept.use_default_database();
        assert_eq!(kept.database_url(), None, "an explicit choice is kept");
        let err = Config::from_toml("mode = \"private\"\ndatabase = \"memory\"\n").unwrap_err();
        assert!(
            err.to_string().contains("private mode needs a database"),
            "{err}"
        );
        // The swarms live in the database: there is no swarm file to name.
        let err = Config::from_toml("[private]\nswarm_file = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("swarm_file"), "{err}");
        assert!(Config::from_toml("[swarm]\nsave_interval_secs = 0\n").is_err());
        assert!(Config::from_toml("mode = \"secret\"\n").is_err());
        let err = Config::from_toml("database = \"mysql://h/db\"\n").unwrap_err();
        assert!(err.to_string().contains("mysql://h/db"), "{err}");
        assert!(Config::from_toml("admin_token = \"short\"\n").is_err());
        assert!(Config::from_toml("[private]\nflush_interval_secs = 0\n").is_err());
        assert!(Config::from_toml("[private]\nreload_interval_secs = 0\n").is_err());
        let config = Config::from_toml("[private]\nrate_limit_burst = 0\n").unwrap();
        assert_eq!(config.private.rate_limit(), None);
    }

    #[test]
    fn inconsistent_values_are_refused() {
        let cases = [
            "[announce]\nmin_interval_secs = 4000\n",
            "[announce]\ndefault_numwant = 500\n",
            "[scrape]\nmax_hashes = 0\n",
            "[swarm]\npeer_ttl_secs = 0\n",
            "[swarm]\npeer_ttl_secs = 1980\n",
            "[swarm]\npurge_interval_secs = 0\n",
        ];
        for case in cases {
            assert!(Config::from_toml(case).is_err(), "{case}");
        }
    }

    #[test]
    fn sections_override_defaults() {
        let config = Config::from_toml(
            "[http]\nenabled = false\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n\
             [udp]\nlisten = \"[::]:7000\"\n[scrape]\nfull_scrape = true\n",
        )
        .unwrap();
        assert!(!config.http.enabled);
        assert_eq!(config.http.trusted_proxies.len(), 2);
        assert_eq!(config.udp.listen, "[::]:7000".parse().unwrap());
        assert!(config.scrape.full_scrape);
        assert_eq!(config.announce, AnnounceConfig::default());
    }
}
