//! The torrent task's side of the DHT (BEP 5, "BitTorrent protocol extension"): when both
//! handshakes carry the DHT bit, a `port` message tells the peer our DHT's UDP port, and a
//! peer's `port` message gets its node pinged (a node that answers joins the routing table).
//! Private torrents (BEP 27) get no [`DhtLink`], so none of this happens for them.
//!
//! Against libtorrent 2.0.8 (shown in `tests/tests/e2e/client_pex_interop.rs`): it sends
//! `port` after its extended handshake and Have All / bitfield when both bits are set, and
//! pings the node of a `port` it receives, adding it once it answers; a libtorrent with no
//! bootstrap node thus gets rill's node, and rill libtorrent's.

use std::net::SocketAddr;
use std::sync::Arc;

use rill_common::wire::{Handshake, Message};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::dht::Dht;
use crate::peer::connection::Link;

/// The session's DHT as a torrent task uses it.
#[derive(Clone, Debug)]
pub struct DhtLink {
    /// The node.
    pub dht: Arc<Dht>,
}

impl DhtLink {
    /// A new connection to `addr`: send our DHT port if the peer runs a DHT too.
    pub fn on_connected(&self, link: &Link, addr: SocketAddr, theirs: &Handshake) {
        if theirs.reserved.dht() {
            let port = port_for(addr, self.dht.local_addr(), self.dht.local_addr6());
            link.send(Message::Port(port));
        }
    }

    /// A message from `addr`: a `port` message (a non-zero one) gets the peer's node, on
    /// `addr`'s IP, pinged in the background; the ping's task is returned, for tests to await.
    pub fn on_message(&self, addr: SocketAddr, message: &Message) -> Option<JoinHandle<()>> {
        let Message::Port(port) = message else {
            return None;
        };
        if *port == 0 {
            return None;
        }
        let node = SocketAddr::new(addr.ip(), *port);
        let dht = Arc::clone(&self.dht);
        Some(tokio::spawn(async move {
            match dht.ping(node).await {
                Ok(id) => debug!(%node, %id, "a peer's DHT node answered our ping"),
                Err(err) => debug!(%node, "DHT ping of a peer's node: {err}"),
            }
        }))
    }
}

/// The DHT port to tell a peer at `peer`: our IPv6 node's for an IPv6 peer when that node
/// runs (its socket may have had to take another port than the IPv4 one), else the IPv4
/// node's. An IPv4-mapped address is an IPv4 peer.
pub fn port_for(peer: SocketAddr, v4: SocketAddr, v6: Option<SocketAddr>) -> u16 {
    match (crate::dht::family::canonical(peer), v6) {
        (SocketAddr::V6(_), Some(v6)) => v6.port(),
        _ => v4.port(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::dht::DhtConfig;

    async fn node() -> Dht {
        let config = DhtConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        Dht::start(config).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peers_port_message_gets_its_node_pinged_into_our_table() {
        let link = DhtLink {
            dht: Arc::new(node().await),
        };
        // The peer's node has no bootstrap node and no reason to query us: our table can
        // only get it from the answer to our ping.
        let theirs = node().await;
        assert!(link.dht.nodes().await.unwrap().is_empty());
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 6881));
        let ping = link
            .on_message(peer, &Message::Port(theirs.local_addr().port()))
            .expect("a ping for a port message");
        ping.await.unwrap();
        let nodes = link.dht.nodes().await.unwrap();
        assert!(
            nodes
                .iter()
                .any(|n| n.addr == theirs.local_addr() && n.id == theirs.id()),
            "{nodes:?}"
        );
    }

    #[test]
    fn each_family_is_told_its_own_nodes_port() {
        let v4: SocketAddr = "0.0.0.0:6881".parse().unwrap();
        let v6: SocketAddr = "[::]:6991".parse().unwrap();
        let peer4: SocketAddr = "10.0.0.1:51413".parse().unwrap();
        let peer6: SocketAddr = "[2001:db8::1]:51413".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:51413".parse().unwrap();
        assert_eq!(port_for(peer4, v4, Some(v6)), 6881);
        assert_eq!(port_for(peer6, v4, Some(v6)), 6991);
        assert_eq!(port_for(mapped, v4, Some(v6)), 6881);
        // No IPv6 node: the IPv4 port is all we have.
        assert_eq!(port_for(peer6, v4, None), 6881);
    }

    #[tokio::test]
    async fn other_messages_and_port_zero_ping_nobody() {
        let link = DhtLink {
            dht: Arc::new(node().await),
        };
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 6881));
        assert!(link.on_message(peer, &Message::Port(0)).is_none());
        assert!(link.on_message(peer, &Message::Interested).is_none());
        assert!(link.on_message(peer, &Message::HaveAll).is_none());
    }
}
