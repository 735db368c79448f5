//! The task's loop: the sockets (one per address family, BEP 32), the timer and the
//! commands, fed to the pure [`Node`] and its actions carried out. A datagram for a family
//! without a socket is dropped (its query then times out).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rill_common::krpc::{CompactNode, NodeId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use super::handle::Command;
use super::state_file::save_state;
use super::{DhtConfig, DhtError, DhtStats, LookupOutcome};
use crate::dht::family::{Families, Family, PerFamily, canonical};
use crate::dht::node::{Action, Node, QueryFailure, RequestId};
use crate::dht::routing_table::Status;

/// How often the node's timers run.
const TICK: Duration = Duration::from_millis(100);
/// Retry the configured bootstrap nodes this often while the table is empty.
const REBOOTSTRAP_EVERY: Duration = Duration::from_secs(30);

/// Resolves `HOST:PORT` strings to addresses of the `families` we have a socket for; names
/// that do not resolve are skipped with a warning.
async fn resolve(hosts: &[String], families: Families) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for host in hosts {
        match tokio::net::lookup_host(host.as_str()).await {
            Ok(addrs) => out.extend(addrs.filter(|a| families.has(Family::of(a)))),
            Err(error) => tracing::warn!(%host, %error, "DHT bootstrap node does not resolve"),
        }
    }
    out
}

/// The next datagram on `socket`; never, without one.
async fn recv(socket: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

struct PendingLookup {
    found: Option<mpsc::UnboundedSender<SocketAddr>>,
    done: oneshot::Sender<LookupOutcome>,
}

/// The task's state: the node, the socket and what callers wait for.
pub(super) struct Shell {
    sockets: PerFamily<Option<Arc<UdpSocket>>>,
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
    /// A shell around `node` on `socket`, to bootstrap from `saved` nodes or the configured ones.
    pub(super) fn new(
        sockets: PerFamily<Option<UdpSocket>>,
        node: Node,
        rng: StdRng,
        config: DhtConfig,
        saved: Vec<CompactNode>,
        stats: watch::Sender<DhtStats>,
    ) -> Self {
        Shell {
            sockets: PerFamily {
                v4: sockets.v4.map(Arc::new),
                v6: sockets.v6.map(Arc::new),
            },
            node,
            rng,
            config,
            saved,
            stats,
            pings: HashMap::new(),
            lookups: HashMap::new(),
            bootstrap: None,
            last_bootstrap: Instant::now(),
            bootstrapped: false,
        }
    }

    /// Runs until shut down (or every handle is dropped), then saves the table.
    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
    ) -> Result<(), DhtError> {
        let mut out = Vec::new();
        let families = self.node.families();
        let configured = resolve(&self.config.bootstrap, families).await;
        self.start_bootstrap(&configured, &mut out);
        self.flush(&mut out).await;
        let mut buf4 = vec![0u8; 65_536];
        let mut buf6 = vec![0u8; 65_536];
        let (socket4, socket6) = (self.sockets.v4.clone(), self.sockets.v6.clone());
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = Instant::now();
        let shutdown = loop {
            tokio::select! {
                received = recv(socket4.as_deref(), &mut buf4) => {
                    self.datagram(received, &buf4, &mut out);
                }
                received = recv(socket6.as_deref(), &mut buf6) => {
                    self.datagram(received, &buf6, &mut out);
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    self.node.tick(now, &mut self.rng, &mut out);
                    if self.node.is_empty()
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

    /// Hands a datagram received into `buf` to the node.
    fn datagram(
        &mut self,
        received: std::io::Result<(usize, SocketAddr)>,
        buf: &[u8],
        out: &mut Vec<Action>,
    ) {
        if let Ok((len, from)) = received {
            let packet = buf.get(..len).unwrap_or_default();
            self.node
                .handle_packet(from, packet, Instant::now(), &mut self.rng, out);
        }
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
                let _ = reply.send(self.node.entries().map(|e| e.node).collect());
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
            .entries()
            .filter(|e| e.status(now) == Status::Good)
            .count();
        self.stats.send_replace(DhtStats {
            nodes: stats.nodes,
            nodes6: stats.nodes6,
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
                let to = canonical(to);
                let Some(socket) = self.sockets.get(Family::of(&to)) else {
                    tracing::debug!(%to, "DHT send dropped: no socket of that family");
                    return;
                };
                if let Err(error) = socket.send_to(&packet, to).await {
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
                    if from_saved && self.node.is_empty() {
                        // The saved nodes are all gone: fall back to the configured ones.
                        self.saved.clear();
                        let families = self.node.families();
                        let configured = resolve(&self.config.bootstrap, families).await;
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
