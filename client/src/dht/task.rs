//! The DHT's one tokio shell: a UDP socket, a timer, the saved routing table, and the [`Dht`]
//! handle the rest of the client calls.
//!
//! Invariants: the task alone owns the [`Node`]; callers talk to it through a channel and
//! get answers on oneshots, so a dropped caller never blocks it. The table is saved to
//! [`DhtConfig::state_file`] every [`DhtConfig::save_every`] and on shutdown, written to a
//! temporary file and renamed so a crash never leaves half a file. Start-up bootstraps from
//! the saved table if there is one, else (or if that finds nobody) from the configured nodes.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::InfoHash;
use rill_common::krpc::{CompactNode, NodeId};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::node::{Action, LookupKind, Node, NodeConfig, QueryFailure, RequestId};
use super::routing_table::Status;

/// The well-known public bootstrap routers, used when the user names none (the CLI's
/// default); tests always pass their own loopback nodes.
pub const DEFAULT_BOOTSTRAP: &[&str] = &[
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// Largest state file read back (a full table is about 1,300 nodes of ~80 bytes).
const MAX_STATE_FILE: u64 = 1 << 20;
/// How often the node's timers run.
const TICK: Duration = Duration::from_millis(100);
/// Retry the configured bootstrap nodes this often while the table is empty.
const REBOOTSTRAP_EVERY: Duration = Duration::from_secs(30);

/// How to run the DHT.
#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// The UDP address to bind (port 0 picks one).
    pub bind: SocketAddr,
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
    /// Nodes in the routing table.
    pub nodes: usize,
    /// Nodes in the table that answered in the last 15 minutes.
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

enum Command {
    Ping(SocketAddr, oneshot::Sender<Result<NodeId, QueryFailure>>),
    Lookup {
        target: NodeId,
        kind: LookupKind,
        found: Option<mpsc::UnboundedSender<SocketAddr>>,
        done: oneshot::Sender<LookupOutcome>,
    },
    Nodes(oneshot::Sender<Vec<CompactNode>>),
    Shutdown(oneshot::Sender<()>),
}

/// A running DHT node: a handle on its task.
#[derive(Debug)]
pub struct Dht {
    commands: mpsc::Sender<Command>,
    stats: watch::Receiver<DhtStats>,
    local_addr: SocketAddr,
    id: NodeId,
    task: JoinHandle<Result<(), DhtError>>,
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    id: String,
    nodes: Vec<SavedNode>,
}

#[derive(Serialize, Deserialize)]
struct SavedNode {
    id: String,
    addr: SocketAddr,
}

fn parse_id(hex: &str) -> Option<NodeId> {
    InfoHash::from_hex(hex).ok().map(NodeId::from)
}

/// Reads a saved table; a missing, oversized or unreadable file counts as none.
async fn load_state(path: &Path) -> Option<(NodeId, Vec<CompactNode>)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    if meta.len() > MAX_STATE_FILE {
        tracing::warn!(path = %path.display(), "DHT state file too large; ignored");
        return None;
    }
    let bytes = tokio::fs::read(path).await.ok()?;
    let state: SavedState = match serde_json::from_slice(&bytes) {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "DHT state file unreadable; ignored");
            return None;
        }
    };
    let id = parse_id(&state.id)?;
    let nodes = state
        .nodes
        .iter()
        .filter_map(|n| {
            Some(CompactNode {
                id: parse_id(&n.id)?,
                addr: n.addr,
            })
        })
        .collect();
    Some((id, nodes))
}

async fn save_state(path: &Path, node: &Node) -> Result<(), DhtError> {
    let now = Instant::now();
    let state = SavedState {
        id: node.id().to_string(),
        nodes: node
            .table()
            .entries()
            .filter(|e| e.status(now) != Status::Bad)
            .map(|e| SavedNode {
                id: e.node.id.to_string(),
                addr: e.node.addr,
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&state).map_err(|e| DhtError::Save {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = async {
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, path).await
    }
    .await;
    result.map_err(|source| DhtError::Save {
        path: path.to_path_buf(),
        source,
    })
}

/// Resolves `HOST:PORT` strings; names that do not resolve are skipped with a warning.
async fn resolve(hosts: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for host in hosts {
        match tokio::net::lookup_host(host.as_str()).await {
            Ok(addrs) => out.extend(addrs.filter(SocketAddr::is_ipv4)),
            Err(error) => tracing::warn!(%host, %error, "DHT bootstrap node does not resolve"),
        }
    }
    out
}

impl Dht {
    /// Binds the socket, restores the saved table (if any) and starts bootstrapping.
    pub async fn start(config: DhtConfig) -> Result<Dht, DhtError> {
        let socket = UdpSocket::bind(config.bind)
            .await
            .map_err(|source| DhtError::Bind {
                addr: config.bind,
                source,
            })?;
        let local_addr = socket.local_addr().map_err(|source| DhtError::Bind {
            addr: config.bind,
            source,
        })?;
        let saved = match &config.state_file {
            Some(path) => load_state(path).await,
            None => None,
        };
        let mut rng = StdRng::from_os_rng();
        let id = config
            .node_id
            .or(saved.as_ref().map(|(id, _)| *id))
            .unwrap_or_else(|| NodeId::random(&mut rng));
        let mut node_config = config.node.clone();
        node_config.read_only = config.read_only;
        let node = Node::new(id, node_config, Instant::now(), &mut rng);
        let (commands, receiver) = mpsc::channel(64);
        let (stats_tx, stats) = watch::channel(DhtStats::default());
        let shell = Shell {
            socket: Arc::new(socket),
            node,
            rng,
            config,
            saved: saved.map(|(_, nodes)| nodes).unwrap_or_default(),
            stats: stats_tx,
            pings: HashMap::new(),
            lookups: HashMap::new(),
            bootstrap: None,
            last_bootstrap: Instant::now(),
            bootstrapped: false,
        };
        let task = tokio::spawn(shell.run(receiver));
        Ok(Dht {
            commands,
            stats,
            local_addr,
            id,
            task,
        })
    }

    /// The UDP address the node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Current counters.
    pub fn stats(&self) -> DhtStats {
        *self.stats.borrow()
    }

    /// Waits until the first bootstrap lookup has finished.
    pub async fn wait_bootstrapped(&self) -> Result<DhtStats, DhtError> {
        let mut stats = self.stats.clone();
        let done = stats
            .wait_for(|s| s.bootstrapped)
            .await
            .map_err(|_| DhtError::Stopped)?;
        Ok(*done)
    }

    /// Waits until a lookup has somewhere to start: a node in the table has answered us, or
    /// the first bootstrap lookup has finished. An iterative lookup from one good node
    /// finds the closer ones itself, so lookups need not wait out the whole bootstrap.
    pub async fn wait_usable(&self) -> Result<DhtStats, DhtError> {
        let mut stats = self.stats.clone();
        let done = stats
            .wait_for(|s| s.bootstrapped || s.good_nodes > 0)
            .await
            .map_err(|_| DhtError::Stopped)?;
        Ok(*done)
    }

    /// Pings a node at `addr`; its id if it answers.
    pub async fn ping(&self, addr: SocketAddr) -> Result<NodeId, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Ping(addr, tx)).await?;
        Ok(rx.await.map_err(|_| DhtError::Stopped)??)
    }

    async fn send(&self, command: Command) -> Result<(), DhtError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| DhtError::Stopped)
    }

    async fn lookup(
        &self,
        target: NodeId,
        kind: LookupKind,
        found: Option<mpsc::UnboundedSender<SocketAddr>>,
    ) -> Result<oneshot::Receiver<LookupOutcome>, DhtError> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Lookup {
            target,
            kind,
            found,
            done,
        })
        .await?;
        Ok(rx)
    }

    /// Looks up peers of `info_hash`; returns every peer found once the lookup is over.
    pub async fn get_peers(&self, info_hash: InfoHash) -> Result<Vec<SocketAddr>, DhtError> {
        let rx = self
            .lookup(NodeId::from(info_hash), LookupKind::GetPeers, None)
            .await?;
        Ok(rx.await.map_err(|_| DhtError::Stopped)?.peers)
    }

    /// Looks up peers of `info_hash`, handing each one over as soon as it is found; the
    /// receiver ends when the lookup is over.
    pub async fn search(
        &self,
        info_hash: InfoHash,
    ) -> Result<mpsc::UnboundedReceiver<SocketAddr>, DhtError> {
        let (tx, rx) = mpsc::unbounded_channel();
        // The outcome is not needed: the channel closes when the lookup ends.
        let _done = self
            .lookup(NodeId::from(info_hash), LookupKind::GetPeers, Some(tx))
            .await?;
        Ok(rx)
    }

    /// The closest nodes to `target` that answered a `find_node` lookup.
    pub async fn find_node(&self, target: NodeId) -> Result<Vec<CompactNode>, DhtError> {
        let rx = self.lookup(target, LookupKind::FindNode, None).await?;
        Ok(rx.await.map_err(|_| DhtError::Stopped)?.nodes)
    }

    /// Announces that we have `info_hash` on TCP `port`, or on our DHT UDP port when `None`
    /// (`implied_port`); returns the lookup's outcome (peers found on the way included).
    pub async fn announce(
        &self,
        info_hash: InfoHash,
        port: Option<u16>,
    ) -> Result<LookupOutcome, DhtError> {
        let kind = LookupKind::Announce {
            port: port.unwrap_or(0),
            implied_port: port.is_none(),
        };
        let rx = self.lookup(NodeId::from(info_hash), kind, None).await?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    /// The nodes in the routing table now.
    pub async fn nodes(&self) -> Result<Vec<CompactNode>, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Nodes(tx)).await?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    /// Stops the node, saving the routing table first if a state file is set.
    pub async fn shutdown(self) -> Result<(), DhtError> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.task.await.map_err(|_| DhtError::Stopped)?
    }
}

struct PendingLookup {
    found: Option<mpsc::UnboundedSender<SocketAddr>>,
    done: oneshot::Sender<LookupOutcome>,
}

struct Shell {
    socket: Arc<UdpSocket>,
    node: Node,
    rng: StdRng,
    config: DhtConfig,
    saved: Vec<CompactNode>,
    stats: watch::Sender<DhtStats>,
    pings: HashMap<RequestId, oneshot::Sender<Result<NodeId, QueryFailure>>>,
    lookups: HashMap<RequestId, PendingLookup>,
    /// The bootstrap lookup running, and whether it started from the saved table.
    bootstrap: Option<(RequestId, bool)>,
    last_bootstrap: Instant,
    bootstrapped: bool,
}

impl Shell {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) -> Result<(), DhtError> {
        let mut out = Vec::new();
        let configured = resolve(&self.config.bootstrap).await;
        self.start_bootstrap(&configured, &mut out);
        self.flush(&mut out).await;
        let mut buf = vec![0u8; 65_536];
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = Instant::now();
        let shutdown = loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((len, from)) = received {
                        let packet = buf.get(..len).unwrap_or_default();
                        self.node.handle_packet(from, packet, Instant::now(), &mut self.rng, &mut out);
                    }
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    self.node.tick(now, &mut self.rng, &mut out);
                    if self.node.table().is_empty()
                        && self.bootstrap.is_none()
                        && now.saturating_duration_since(self.last_bootstrap) >= REBOOTSTRAP_EVERY
                    {
                        self.saved.clear();
                        self.start_bootstrap(&configured, &mut out);
                    }
                    if now.saturating_duration_since(last_save) >= self.config.save_every {
                        last_save = now;
                        self.save().await;
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => break Some(reply),
                    None => break None,
                    Some(command) => self.command(command, &mut out),
                },
            }
            self.flush(&mut out).await;
        };
        let result = match &self.config.state_file {
            Some(path) => save_state(path, &self.node).await,
            None => Ok(()),
        };
        if let Some(reply) = shutdown {
            let _ = reply.send(());
        }
        result
    }

    async fn save(&self) {
        if let Some(path) = &self.config.state_file
            && let Err(error) = save_state(path, &self.node).await
        {
            tracing::warn!(%error, "DHT state not saved");
        }
    }

    fn start_bootstrap(&mut self, configured: &[SocketAddr], out: &mut Vec<Action>) {
        let from_saved = !self.saved.is_empty();
        let addrs = if from_saved {
            Vec::new()
        } else {
            configured.to_vec()
        };
        let request = self
            .node
            .bootstrap(self.saved.clone(), addrs, Instant::now(), out);
        self.bootstrap = Some((request, from_saved));
        self.last_bootstrap = Instant::now();
    }

    fn command(&mut self, command: Command, out: &mut Vec<Action>) {
        let now = Instant::now();
        match command {
            Command::Ping(addr, reply) => {
                let request = self.node.ping(addr, now, out);
                self.pings.insert(request, reply);
            }
            Command::Lookup {
                target,
                kind,
                found,
                done,
            } => {
                let request = self.node.lookup(target, kind, now, out);
                self.lookups.insert(request, PendingLookup { found, done });
            }
            Command::Nodes(reply) => {
                let _ = reply.send(self.node.table().entries().map(|e| e.node).collect());
            }
            Command::Shutdown(_) => {}
        }
    }

    /// Carries out the node's actions (and those they lead to) and publishes the counters.
    async fn flush(&mut self, out: &mut Vec<Action>) {
        while !out.is_empty() {
            let actions: Vec<Action> = std::mem::take(out);
            for action in actions {
                self.act(action, out).await;
            }
        }
        let now = Instant::now();
        let stats = self.node.stats();
        let good_nodes = self
            .node
            .table()
            .entries()
            .filter(|e| e.status(now) == Status::Good)
            .count();
        self.stats.send_replace(DhtStats {
            nodes: stats.nodes,
            good_nodes,
            lookups: stats.lookups_started,
            lookups_active: stats.lookups_active,
            peers_stored: stats.peers_stored,
            queries_answered: stats.queries_answered,
            packets_dropped: stats.packets_dropped,
            bootstrapped: self.bootstrapped,
        });
    }

    async fn act(&mut self, action: Action, out: &mut Vec<Action>) {
        match action {
            Action::Send { to, packet } => {
                if let Err(error) = self.socket.send_to(&packet, to).await {
                    tracing::debug!(%to, %error, "DHT send failed");
                }
            }
            Action::PingDone { request, result } => {
                if let Some(reply) = self.pings.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Action::PeersFound { request, peers } => {
                if let Some(PendingLookup {
                    found: Some(found), ..
                }) = self.lookups.get(&request)
                {
                    for peer in peers {
                        let _ = found.send(peer);
                    }
                }
            }
            Action::LookupDone {
                request,
                peers,
                nodes,
                announced,
            } => {
                if let Some((bootstrap, from_saved)) = self.bootstrap
                    && bootstrap == request
                {
                    self.bootstrap = None;
                    if from_saved && self.node.table().is_empty() {
                        // The saved nodes are all gone: fall back to the configured ones.
                        self.saved.clear();
                        let configured = resolve(&self.config.bootstrap).await;
                        self.start_bootstrap(&configured, out);
                    } else {
                        self.bootstrapped = true;
                    }
                }
                if let Some(pending) = self.lookups.remove(&request) {
                    let _ = pending.done.send(LookupOutcome {
                        peers,
                        nodes,
                        announced,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
