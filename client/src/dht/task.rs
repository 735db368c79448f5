//! The DHT's one tokio shell: a UDP socket per address family (BEP 32), a timer, the saved
//! routing tables, and the [`Dht`] handle the rest of the client calls.
//!
//! Invariants: the task alone owns the [`Node`](super::Node); callers talk to it through a
//! channel and get answers on oneshots, so a dropped caller never blocks it. The tables are
//! saved to [`DhtConfig::state_file`] every [`DhtConfig::save_every`] and on shutdown,
//! written to a temporary file and renamed so a crash never leaves half a file. Start-up
//! bootstraps from the saved tables if there are any, else (or if that finds nobody) from the
//! configured nodes. Each socket carries one address family: the IPv6 one is IPv6-only, so it
//! can share the IPv4 socket's port number.
//!
//! This file holds the settings, errors and results; `handle` is the [`Dht`] API and binds
//! the sockets, `shell` the loop around them, and `state_file` the saved tables (nodes of
//! both families in one file).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rill_common::krpc::{CompactNode, NodeId};
use thiserror::Error;

use super::node::{NodeConfig, QueryFailure};

mod handle;
mod shell;
mod state_file;
#[cfg(test)]
mod tests;

pub use handle::Dht;

/// The well-known public bootstrap routers, used when the user names none (the CLI's
/// default); tests always pass their own loopback nodes.
pub const DEFAULT_BOOTSTRAP: &[&str] = &[
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// How to run the DHT.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// The UDP address to bind (port 0 picks one), IPv4 or IPv6.
    pub bind: SocketAddr,
    /// A second UDP address, IPv6, for the IPv6 DHT beside an IPv4 `bind` (BEP 32).
    pub bind6: Option<SocketAddr>,
    /// Bootstrap nodes as `HOST:PORT` (resolved at start); empty means none.
    pub bootstrap: Vec<String>,
    /// Where the routing table is saved and restored; `None` keeps nothing.
    pub state_file: Option<PathBuf>,
    /// BEP 43: answer no queries and ask others not to add us.
    pub read_only: bool,
    /// Our node id; `None` takes the saved one or a random one.
    pub node_id: Option<NodeId>,
    /// How often the table is saved.
    pub save_every: Duration,
    /// Settings of the pure node (timeouts, rate limits, peer store caps).
    pub node: NodeConfig,
}

impl DhtConfig {
    /// A node bound to `bind` with no bootstrap nodes and no state file.
    pub fn new(bind: SocketAddr) -> Self {
        DhtConfig {
            bind,
            bind6: None,
            bootstrap: Vec::new(),
            state_file: None,
            read_only: false,
            node_id: None,
            save_every: Duration::from_secs(5 * 60),
            node: NodeConfig::default(),
        }
    }
}

/// What can go wrong running the DHT.
#[derive(Debug, Error)]
pub enum DhtError {
    /// The UDP socket could not be bound.
    #[error("cannot bind the DHT socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The state file could not be written.
    #[error("cannot save the DHT state to {path}: {source}")]
    Save {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A query failed.
    #[error("DHT query failed: {0}")]
    Query(#[from] QueryFailure),
    /// The DHT task has stopped.
    #[error("the DHT has stopped")]
    Stopped,
}

/// Counters shown in `-v` output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhtStats {
    /// Nodes in the routing tables (both families).
    pub nodes: usize,
    /// Of those, nodes in the IPv6 DHT's table (BEP 32).
    pub nodes6: usize,
    /// Nodes in the tables that answered in the last 15 minutes.
    pub good_nodes: usize,
    /// Lookups started.
    pub lookups: u64,
    /// Lookups running.
    pub lookups_active: usize,
    /// Peers stored for others.
    pub peers_stored: usize,
    /// Queries answered.
    pub queries_answered: u64,
    /// Packets dropped (rate limit, junk, unmatched).
    pub packets_dropped: u64,
    /// Whether the first bootstrap lookup has finished.
    pub bootstrapped: bool,
}

/// The result of a finished lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupOutcome {
    /// Peers found.
    pub peers: Vec<SocketAddr>,
    /// The closest nodes that answered.
    pub nodes: Vec<CompactNode>,
    /// Nodes that acknowledged our `announce_peer`.
    pub announced: usize,
}
