//! The torrent task's side of the DHT (BEP 5, "BitTorrent protocol extension"): when both
//! handshakes carry the DHT bit, a `port` message tells the peer our DHT's UDP port, and a
//! peer's `port` message gets its node pinged (a node that answers joins the routing table).
//! Private torrents (BEP 27) get no [`DhtLink`], so none of this happens for them.

use std::net::SocketAddr;
use std::sync::Arc;

use rill_common::wire::{Handshake, Message};
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
    /// A new connection: send our DHT port if the peer runs a DHT too.
    pub fn on_connected(&self, link: &Link, theirs: &Handshake) {
        if theirs.reserved.dht() {
            link.send(Message::Port(self.dht.local_addr().port()));
        }
    }

    /// A message from `addr`: a `port` message gets the peer's node pinged.
    pub fn on_message(&self, addr: SocketAddr, message: &Message) {
        let Message::Port(port) = message else {
            return;
        };
        if *port == 0 {
            return;
        }
        let node = SocketAddr::new(addr.ip(), *port);
        let dht = Arc::clone(&self.dht);
        tokio::spawn(async move {
            if let Err(err) = dht.ping(node).await {
                debug!(%node, "DHT ping of a peer's node: {err}");
            }
        });
    }
}
