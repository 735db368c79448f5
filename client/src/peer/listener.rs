//! The listen socket every torrent of a process shares (BEP 3): incoming connections are
//! routed to their torrent by the info hash of their handshake.
//!
//! Invariants: at most [`MAX_PENDING`] handshakes are in progress at once (more connections
//! wait in the kernel's backlog); a connection for an unknown torrent is closed without a
//! reply; a torrent whose queue of new connections is full loses the newcomer rather than
//! slowing the listener down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use rill_common::InfoHash;
use rill_common::wire::Handshake;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tracing::debug;

use super::connection::{self, Established, Timeouts};

/// Handshakes in progress at once.
pub const MAX_PENDING: usize = 64;

/// Where the connections of one torrent go.
#[derive(Clone, Debug)]
pub struct Route {
    /// Our handshake for that torrent.
    pub ours: Handshake,
    /// The torrent's queue of new connections.
    pub incoming: mpsc::Sender<Established>,
}

/// The torrents that accept connections, by info hash.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    map: Arc<RwLock<HashMap<InfoHash, Route>>>,
}

impl Routes {
    /// Accepts connections for `info_hash` from now on.
    pub fn insert(&self, info_hash: InfoHash, route: Route) {
        if let Ok(mut map) = self.map.write() {
            map.insert(info_hash, route);
        }
    }

    /// Stops accepting connections for `info_hash`.
    pub fn remove(&self, info_hash: &InfoHash) {
        if let Ok(mut map) = self.map.write() {
            map.remove(info_hash);
        }
    }

    /// The route for `info_hash`, if a torrent has it.
    pub fn get(&self, info_hash: &InfoHash) -> Option<Route> {
        self.map.read().ok()?.get(info_hash).cloned()
    }
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn run(listener: TcpListener, routes: Routes, timeouts: Timeouts) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    loop {
        let Ok(permit) = Arc::clone(&pending).acquire_owned().await else {
            return;
        };
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Usually out of file descriptors: give the others a moment rather than spin.
                debug!("accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // A dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`.
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        let routes = routes.clone();
        tokio::spawn(async move {
            let _permit = permit;
            hand_over(stream, addr, &routes, timeouts).await;
        });
    }
}

async fn hand_over(
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    routes: &Routes,
    timeouts: Timeouts,
) {
    let route = |info_hash: InfoHash| {
        let route = routes.get(&info_hash)?;
        Some((route.ours, route.incoming))
    };
    match connection::accept(stream, addr, timeouts, route).await {
        Ok((established, incoming)) => {
            if incoming.try_send(established).is_err() {
                debug!(%addr, "torrent busy or gone: incoming connection dropped");
            }
        }
        Err(err) => debug!(%addr, "incoming handshake failed: {err}"),
    }
}
