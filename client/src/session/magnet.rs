//! Resolving a magnet link (BEP 9): the shell around the pure [`MetadataFetch`].
//!
//! Peers come from the magnet's `x.pe`, `--peer`, its `tr` trackers (announced with `left`
//! unknown, sent as 1 so trackers count us as a leecher) and the DHT when the session runs
//! one. Connections use the same code as a torrent's ([`connection::connect`] and
//! [`connection::spawn`]); only outgoing connections are made. The fetch ends with the
//! verified info dict, from which a `.torrent` is built: the raw dict as `info` (so its
//! SHA-1 is the magnet's info hash) plus the magnet's trackers.
//!
//! With a DHT, the first lookup starts the moment a node has answered (the DHT's counters
//! wake the loop; nothing is polled): on a fresh start, as soon as the bootstrap node's
//! reply is in. [`load`] also applies the magnet's `so` (BEP 53) to the torrent it
//! returns ([`Loaded::only_files()`]; `--only-files` wins).
//!
//! Invariants: every connection the fetch knows gets exactly one `Disconnected`; the
//! returned torrent's info hash equals the magnet's (checked again after parsing); a
//! [`Loaded`]'s `so` selection is never empty and names only files of the torrent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rill_common::magnet::{Magnet, PeerAddress};
use rill_common::metainfo::Metainfo;
use rill_common::wire::{Handshake, codec};
use rill_common::{InfoHash, PeerId};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info};

use super::SessionError;
use crate::announce::{self, AnnounceConfig};
use crate::dht::Dht;
use crate::metadata::{Action, Event, FetchConfig, MetadataFetch};
use crate::peer::connection::{
    self, Established, Link, PeerEvent, Throttles, Timeouts, our_reserved,
};
use crate::peer::listener::{Route, Routes};
use crate::torrent::PeerKey;

/// How long after a DHT lookup ends the next one starts, while the fetch goes on.
const DHT_RETRY: Duration = Duration::from_secs(10);
/// How long the first DHT lookup waits for a node to answer before it starts anyway.
const BOOTSTRAP_WAIT: Duration = Duration::from_secs(10);
/// Incoming connections queued for the fetch.
const INCOMING_QUEUE: usize = 32;
/// How long `stopped` announces may take when the fetch ends.
const STOP_ANNOUNCE: Duration = Duration::from_secs(2);

/// A task aborted when this is dropped (on every way out of a function).
#[derive(Debug)]
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The error for a magnet link with no way to find peers.
pub const NO_SOURCES: &str =
    "the magnet link names no trackers or peers (x.pe), no --peer is given and the DHT is off";

/// A magnet link turned into a torrent.
#[derive(Debug)]
pub struct Resolved {
    /// The parsed torrent.
    pub metainfo: Metainfo,
    /// The `.torrent` file's bytes (raw info dict plus the magnet's trackers).
    pub torrent: Vec<u8>,
    /// Peers worth dialling for the download (those that served the dict first).
    pub peers: Vec<SocketAddr>,
}

/// Where a fetch finds peers besides the magnet itself.
pub struct Sources<'a> {
    /// Our peer id.
    pub peer_id: PeerId,
    /// Our TCP listen port (sent in announces and the extended handshake).
    pub port: u16,
    /// Extra peers to dial (`--peer`).
    pub peers: Vec<SocketAddr>,
    /// The session's DHT, if any (never used for a private torrent: none is known yet, and
    /// a magnet's torrent is looked up before its `private` flag can be read).
    pub dht: Option<&'a Dht>,
    /// Connection time-outs.
    pub timeouts: Timeouts,
    /// The session's listener routes: incoming connections for the magnet's info hash join
    /// the fetch while it runs.
    pub routes: Option<&'a Routes>,
}

/// A torrent loaded from what the user gave, with what the source itself says about it.
#[derive(Debug)]
pub struct Loaded {
    /// The torrent.
    pub metainfo: Metainfo,
    /// Peers already known for it (those that served a magnet's info dict).
    pub peers: Vec<SocketAddr>,
    /// The files a magnet's `so` selects (BEP 53), ascending; `None` for every file (no
    /// `so`, or a `.torrent`). Never `Some` of an empty list: that is an error.
    pub only_files: Option<Vec<usize>>,
}

impl Loaded {
    /// The files to download: `--only-files` (`flag`) when given, which wins over the
    /// magnet's `so`; else the `so` selection; empty means every file.
    pub fn only_files(&self, flag: &[usize]) -> Vec<usize> {
        match &self.only_files {
            Some(selected) if flag.is_empty() => selected.clone(),
            Some(_) => {
                info!("--only-files given: the magnet link's file selection (so) is not used");
                flag.to_vec()
            }
            None => flag.to_vec(),
        }
    }
}

/// A source as a torrent and the peers already known for it: a `.torrent` (file or URL) as
/// [`super::load_source`] reads it, or a magnet link resolved through its peers. `None` when
/// `stop` turned true during a fetch.
pub async fn load(
    source: &str,
    sources: Sources<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Loaded>, SessionError> {
    if !source.starts_with("magnet:") {
        return Ok(Some(Loaded {
            metainfo: super::load_source(source).await?,
            peers: Vec::new(),
            only_files: None,
        }));
    }
    let magnet = Magnet::parse(source).map_err(|err| SessionError::Source {
        source_name: source.to_owned(),
        message: err.to_string(),
    })?;
    let Some(resolved) = resolve(&magnet, sources, stop).await? else {
        return Ok(None);
    };
    let only_files =
        select_only(&magnet, &resolved.metainfo).map_err(|message| SessionError::Source {
            source_name: source.to_owned(),
            message,
        })?;
    Ok(Some(Loaded {
        metainfo: resolved.metainfo,
        peers: resolved.peers,
        only_files,
    }))
}

/// BEP 53: the files `magnet`'s `so` selects in `metainfo` (indices as `rill info` lists
/// them, pad files included); an error when it selects none of them.
pub fn select_only(magnet: &Magnet, metainfo: &Metainfo) -> Result<Option<Vec<usize>>, String> {
    let count = metainfo.info.files.len();
    match magnet.selected_files(count) {
        Some(selected) if selected.is_empty() => {
            let so: Vec<String> = magnet.select_only.iter().map(ToString::to_string).collect();
            Err(format!(
                "the magnet link's file selection so={} names none of the torrent's files \
                 (0 to {})",
                so.join(","),
                count.saturating_sub(1)
            ))
        }
        selected => Ok(selected),
    }
}

/// `rill info MAGNET --fetch`: fetches the torrent of `source` with its own DHT node (when
/// `dht` names bootstrap nodes, on any UDP port, no saved table) and no listen socket.
/// `None` if `stop` turned true first.
pub async fn fetch(
    source: &str,
    peers: Vec<SocketAddr>,
    dht: Option<Vec<String>>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Resolved>, SessionError> {
    let magnet = Magnet::parse(source).map_err(|err| SessionError::Source {
        source_name: source.to_owned(),
        message: err.to_string(),
    })?;
    let node = match dht {
        Some(bootstrap) => super::dht::start_transient(bootstrap, 0)
            .await
            .map_err(|err| debug!("DHT off: {err}"))
            .ok(),
        None => None,
    };
    let sources = Sources {
        peer_id: PeerId::generate(&mut rand::rng()),
        port: crate::config::DEFAULT_PORT,
        peers,
        dht: node.as_ref(),
        timeouts: Timeouts::default(),
        routes: None,
    };
    let resolved = resolve(&magnet, sources, stop).await;
    if let Some(node) = node {
        let _ = node.shutdown().await;
    }
    resolved
}

/// Fetches the info dict of `magnet` from peers; `None` if `stop` turned true first.
pub async fn resolve(
    magnet: &Magnet,
    sources: Sources<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Resolved>, SessionError> {
    let info_hash = magnet.info_hash;
    if magnet.peers.is_empty()
        && sources.peers.is_empty()
        && magnet.trackers.is_empty()
        && sources.dht.is_none()
    {
        return Err(SessionError::Source {
            source_name: format!("magnet {info_hash}"),
            message: NO_SOURCES.to_owned(),
        });
    }
    // The session is up (listen socket bound, DHT started): benchmarks time from this line.
    info!("fetching metadata of {info_hash}");
    let now = Instant::now();
    let mut fetch = MetadataFetch::new(
        FetchConfig {
            info_hash,
            peer_id: sources.peer_id,
            client: format!("Rill {}", env!("CARGO_PKG_VERSION")),
            listen_port: Some(sources.port),
            max_peers: 32,
        },
        now.into_std(),
    );
    let mut initial: Vec<SocketAddr> = magnet
        .peers
        .iter()
        .filter_map(|peer| match peer {
            PeerAddress::Ip(addr) => Some(*addr),
            PeerAddress::Host { host, port } => {
                use std::net::ToSocketAddrs;
                (host.as_str(), *port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut addrs| addrs.next())
            }
        })
        .collect();
    initial.extend(sources.peers.iter().copied());

    let (found_tx, mut found_rx) = mpsc::channel::<Vec<SocketAddr>>(16);
    let tiers = announce::tiers(
        None,
        &magnet
            .trackers
            .iter()
            .map(|url| vec![url.clone()])
            .collect::<Vec<_>>(),
    );
    let counters = watch::Sender::new(announce::Progress {
        uploaded: 0,
        downloaded: 0,
        left: 1,
    });
    let announcer = (!tiers.is_empty()).then(|| {
        let config = AnnounceConfig::new(info_hash, sources.peer_id, sources.port, tiers.clone());
        announce::spawn(config, counters.subscribe(), found_tx.clone())
    });

    let mut shell = Shell::new(info_hash, sources.peer_id, sources.timeouts);
    let (incoming_tx, mut incoming) = mpsc::channel::<Established>(INCOMING_QUEUE);
    if let Some(routes) = sources.routes {
        routes.insert(
            info_hash,
            Route {
                ours: shell.ours,
                incoming: incoming_tx,
            },
        );
    }
    let mut actions = Vec::new();
    fetch.handle(Event::Start, now.into_std(), &mut actions);
    if !initial.is_empty() {
        fetch.handle(Event::PeersFound(initial), now.into_std(), &mut actions);
    }
    let mut dht_search: Option<mpsc::UnboundedReceiver<SocketAddr>> = None;
    let mut next_search = Instant::now();
    // A lookup into an empty table finds nobody: the first one starts the moment a node
    // answers (woken by the DHT's own counters, not polled), or after BOOTSTRAP_WAIT.
    let mut dht_usable = sources.dht.is_some_and(|dht| {
        let stats = dht.stats();
        stats.bootstrapped || stats.good_nodes > 0
    });
    let usable_by = now + BOOTSTRAP_WAIT;
    let mut done = shell.carry_out(&mut fetch, &mut actions);
    while done.is_none() {
        if *stop.borrow() {
            break;
        }
        if let Some(dht) = sources.dht
            && dht_usable
            && dht_search.is_none()
            && Instant::now() >= next_search
        {
            match dht.search(info_hash).await {
                Ok(rx) => {
                    info!(
                        "DHT lookup for {info_hash}: {} nodes in the table",
                        dht.stats().nodes
                    );
                    dht_search = Some(rx);
                }
                Err(err) => debug!("DHT lookup for {info_hash} failed: {err}"),
            }
            next_search = Instant::now() + DHT_RETRY;
        }
        let mut deadline = Instant::from_std(fetch.next_deadline()).min(Instant::now() + DHT_RETRY);
        if sources.dht.is_some() && dht_usable && dht_search.is_none() {
            deadline = deadline.min(next_search);
        }
        let event = tokio::select! {
            Some(event) = shell.events.recv() => match event {
                PeerEvent::Message(key, message) => shell.live(key).then_some(Event::Received(key, message)),
                PeerEvent::Closed(key, why) => {
                    debug!("metadata peer {key:?} closed: {why}");
                    shell.links.remove(&key).map(|_| Event::Disconnected(key))
                }
            },
            Some((addr, result)) = shell.dialled_rx.recv() => Some(match result {
                Ok(established) => shell.admit(established),
                Err(err) => {
                    debug!("metadata peer {addr}: {err}");
                    Event::ConnectFailed(addr)
                }
            }),
            Some(addrs) = found_rx.recv() => Some(Event::PeersFound(addrs)),
            Some(established) = incoming.recv() => Some(shell.admit(established)),
            found = recv_dht(&mut dht_search) => match found {
                Some(addr) => Some(Event::PeersFound(vec![addr])),
                None => {
                    dht_search = None;
                    None
                }
            },
            () = usable(sources.dht.filter(|_| !dht_usable), usable_by) => {
                dht_usable = true;
                None
            }
            () = tokio::time::sleep_until(deadline) => Some(Event::Tick),
            changed = stop.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
                None
            }
        };
        if let Some(event) = event {
            fetch.handle(event, Instant::now().into_std(), &mut actions);
            done = shell.carry_out(&mut fetch, &mut actions);
        }
    }
    if let Some(routes) = sources.routes {
        routes.remove(&info_hash);
    }
    let peers = fetch.known_addresses();
    if done.is_none() {
        fetch.handle(Event::Stop, Instant::now().into_std(), &mut actions);
        shell.carry_out(&mut fetch, &mut actions);
    }
    shell.links.clear();
    if let Some(announcer) = announcer {
        announcer.stop(STOP_ANNOUNCE).await;
    }
    let Some(dict) = done else {
        return Ok(None);
    };
    let torrent = torrent_bytes(&dict, &tiers);
    let failed = |message: String| SessionError::Source {
        source_name: format!("magnet {info_hash}"),
        message,
    };
    let metainfo = Metainfo::from_bytes(&torrent)
        .map_err(|err| failed(format!("the peers' info dict is not valid: {err}")))?;
    if metainfo.info_hash != info_hash {
        return Err(failed(
            "the info dict does not match the info hash".to_owned(),
        ));
    }
    info!("metadata of {info_hash} fetched ({} bytes)", dict.len());
    Ok(Some(Resolved {
        metainfo,
        torrent,
        peers,
    }))
}

/// Resolves once `dht` has a node to start a lookup from, or at `by`; never without a DHT.
async fn usable(dht: Option<&Dht>, by: Instant) {
    match dht {
        Some(dht) => {
            let _ = tokio::time::timeout_at(by, dht.wait_usable()).await;
        }
        None => std::future::pending().await,
    }
}

async fn recv_dht(search: &mut Option<mpsc::UnboundedReceiver<SocketAddr>>) -> Option<SocketAddr> {
    match search {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The I/O side of a fetch: dials, live links, their events.
struct Shell {
    ours: Handshake,
    timeouts: Timeouts,
    throttles: Arc<Throttles>,
    next_key: u32,
    links: HashMap<PeerKey, Link>,
    events_tx: mpsc::Sender<PeerEvent>,
    events: mpsc::Receiver<PeerEvent>,
    dialled_tx:
        mpsc::UnboundedSender<(SocketAddr, Result<Established, connection::ConnectionError>)>,
    dialled_rx:
        mpsc::UnboundedReceiver<(SocketAddr, Result<Established, connection::ConnectionError>)>,
}

impl Shell {
    fn new(info_hash: InfoHash, peer_id: PeerId, timeouts: Timeouts) -> Self {
        let (events_tx, events) = mpsc::channel(256);
        let (dialled_tx, dialled_rx) = mpsc::unbounded_channel();
        Shell {
            ours: Handshake::new(our_reserved(), info_hash, peer_id),
            timeouts,
            throttles: Arc::new(Throttles::unlimited()),
            next_key: 0,
            links: HashMap::new(),
            events_tx,
            events,
            dialled_tx,
            dialled_rx,
        }
    }

    fn live(&self, key: PeerKey) -> bool {
        self.links.contains_key(&key)
    }

    fn admit(&mut self, established: Established) -> Event {
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        let addr = established.addr;
        let handshake = established.handshake;
        let outgoing = established.outgoing;
        // Before the dict is known the piece count is not: allow the default cap.
        let link = connection::spawn(
            key,
            established,
            codec::max_len_for(0),
            self.timeouts,
            self.events_tx.clone(),
            Arc::clone(&self.throttles),
        );
        self.links.insert(key, link);
        Event::Connected {
            peer: key,
            addr,
            handshake,
            outgoing,
        }
    }

    /// Carries out `actions` (and those their follow-up events cause); the dict once done.
    fn carry_out(&mut self, fetch: &mut MetadataFetch, actions: &mut Vec<Action>) -> Option<Bytes> {
        let mut done = None;
        while !actions.is_empty() {
            let batch: Vec<Action> = std::mem::take(actions);
            for action in batch {
                match action {
                    Action::Connect(addr) => {
                        let ours = self.ours;
                        let timeouts = self.timeouts;
                        let tx = self.dialled_tx.clone();
                        tokio::spawn(async move {
                            let result = connection::connect(addr, ours, timeouts).await;
                            let _ = tx.send((addr, result));
                        });
                    }
                    Action::Send(key, message) => {
                        if let Some(link) = self.links.get(&key) {
                            link.send(message);
                        }
                    }
                    Action::Disconnect(key, reason) => {
                        if self.links.remove(&key).is_some() {
                            debug!("metadata peer {key:?} dropped: {reason:?}");
                            fetch.handle(
                                Event::Disconnected(key),
                                Instant::now().into_std(),
                                actions,
                            );
                        }
                    }
                    Action::Done(dict) => done = Some(dict),
                }
            }
        }
        done
    }
}

/// A `.torrent` from the raw info dict and tracker tiers (keys in sorted order, BEP 3).
pub fn torrent_bytes(info: &[u8], tiers: &[Vec<String>]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, text: &[u8]) {
        out.extend_from_slice(text.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(text);
    }
    let mut out = vec![b'd'];
    if let Some(first) = tiers.first().and_then(|tier| tier.first()) {
        string(&mut out, b"announce");
        string(&mut out, first.as_bytes());
        string(&mut out, b"announce-list");
        out.push(b'l');
        for tier in tiers {
            out.push(b'l');
            for url in tier {
                string(&mut out, url.as_bytes());
            }
            out.push(b'e');
        }
        out.push(b'e');
    }
    string(&mut out, b"info");
    out.extend_from_slice(info);
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests;
