//! The [`Dht`] handle: the API the rest of the client calls. Each call is a [`Command`] on
//! the task's channel; answers come back on oneshots, so a caller that goes away never
//! blocks the task.

use std::net::SocketAddr;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rill_common::InfoHash;
use rill_common::krpc::{CompactNode, NodeId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::shell::Shell;
use super::state_file::load_state;
use super::{DhtConfig, DhtError, DhtStats, LookupOutcome};
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
    id: NodeId,
    task: JoinHandle<Result<(), DhtError>>,
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
        let saved = saved.map(|(_, nodes)| nodes).unwrap_or_default();
        let shell = Shell::new(socket, node, rng, config, saved, stats_tx);
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
