//! rill: the BitTorrent client behind the `rill` command.
//!
//! - [`announce`]: trackers: the announce schedule and the HTTP and UDP clients.
//! - [`peer`]: peer connections and the listener.
//! - [`cli`]: the command line (clap types only).
//! - [`config`]: a session's settings (defaults, TOML file, then flags), without clap types.
//! - [`session`]: several torrents in one process behind one listen port (`rill download`, `rill seed`).
//! - [`summary`]: what `rill info` shows of a torrent or magnet link, as text or JSON.
//! - [`create`]: `rill create`, writing a new .torrent file safely.
//! - [`progress`]: progress display on the terminal (indicatif).
//! - [`torrent`]: a torrent's pure state machines (picker, choker, rates, state) and its task.
//! - [`storage`]: where a torrent's data lives on disk (piece to file layout).
//! - [`dht`]: the mainline DHT (BEP 5): routing table, lookups, tokens, and its UDP shell.
//! - [`metadata`]: fetching a magnet link's info dict from peers (BEP 9), pure.
//! - [`pex`]: peer exchange diffs and pacing (BEP 11), pure.

pub mod announce;
pub mod cli;
pub mod config;
pub mod create;
pub mod dht;
pub mod metadata;
pub mod peer;
pub mod pex;
pub mod progress;
pub mod session;
pub mod storage;
pub mod summary;
pub mod torrent;
