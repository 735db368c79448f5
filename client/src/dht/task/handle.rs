//! The [`Dht`] handle: the API the rest of the client calls. Each call is a [`Command`] on
//! the task's channel; answers come back on oneshots, so a caller that goes away never
//! blocks the task.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::InfoHash;
use rill_common::krpc::{CompactNode, NodeId};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::shell::Shell;
use super::state_file::load_state;
use super::{DhtConfig, DhtError, DhtStats, LookupOutcome};
use crate::dht::family::{Families, Family, PerFamily};
use crate::dht::node::{LookupKind, Node, QueryFailure};

/// A request to the task.
pub(super) enum Command {
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
    local_addr6: Option<SocketAddr>,
    id: NodeId,
    task: JoinHandle<Result<(), DhtError>>,
}

impl Dht {
    /// Binds the socket, restores the saved table (if any) and starts bootstrapping.
    pub async fn start(config: DhtConfig) -> Result<Dht, DhtError> {
        let sockets = bind(&config)?;
        let local = |family| -> Result<Option<SocketAddr>, DhtError> {
            let Some(socket) = sockets.get(family) else {
                return Ok(None);
            };
            let addr = socket.local_addr().map_err(|source| DhtError::Bind {
                addr: config.bind,
                source,
            })?;
            Ok(Some(addr))
        };
        let (local4, local6) = (local(Family::V4)?, local(Family::V6)?);
        let local_addr = match Family::of(&config.bind) {
            Family::V4 => local4,
            Family::V6 => local6,
        }
        .unwrap_or(config.bind);
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
        node_config.families = Families {
            v4: local4.is_some(),
            v6: local6.is_some(),
        };
        let node = Node::new(id, node_config, Instant::now(), &mut rng);
        let (commands, receiver) = mpsc::channel(64);
        let (stats_tx, stats) = watch::channel(DhtStats::default());
        let saved = saved.map(|(_, nodes)| nodes).unwrap_or_default();
        let shell = Shell::new(sockets, node, rng, config, saved, stats_tx);
        let task = tokio::spawn(shell.run(receiver));
        Ok(Dht {
            commands,
            stats,
            local_addr,
            local_addr6: local6,
            id,
            task,
        })
    }

    /// The UDP address the node listens on ([`DhtConfig::bind`]'s socket).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The UDP address of the node's IPv6 socket, if it is on the IPv6 DHT (BEP 32).
    pub fn local_addr6(&self) -> Option<SocketAddr> {
        self.local_addr6
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

/// Binds the sockets of `config`: [`DhtConfig::bind`], and [`DhtConfig::bind6`] beside it;
/// one per address family.
fn bind(config: &DhtConfig) -> Result<PerFamily<Option<UdpSocket>>, DhtError> {
    let mut sockets: PerFamily<Option<UdpSocket>> = PerFamily::default();
    for addr in std::iter::once(config.bind).chain(config.bind6) {
        let slot = sockets.get_mut(Family::of(&addr));
        if slot.is_some() {
            let source = io::Error::new(
                io::ErrorKind::InvalidInput,
                "a second DHT socket of the same address family",
            );
            return Err(DhtError::Bind { addr, source });
        }
        *slot = Some(bind_udp(addr).map_err(|source| DhtError::Bind { addr, source })?);
    }
    Ok(sockets)
}

/// A UDP socket on `addr`; an IPv6 one carries IPv6 only, so it can share a port number
/// with the IPv4 socket and never sees IPv4-mapped addresses.
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}
