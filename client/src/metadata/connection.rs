//! The fetch's connections: dialling, admitting, the extended handshake, messages,
//! time-outs, bans.

use std::collections::BTreeMap;

use rill_common::wire::extension::{ExtendedHandshake, HANDSHAKE_ID, UT_METADATA};

use super::*;

impl MetadataFetch {
    pub(super) fn dial(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.started || self.finished {
            return;
        }
        let dials = self
            .book
            .dials_within(self.config.max_peers, self.peers.len(), false, now);
        out.extend(dials.into_iter().map(Action::Connect));
    }

    pub(super) fn connected(
        &mut self,
        key: PeerKey,
        addr: SocketAddr,
        handshake: &Handshake,
        outgoing: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.remove_peer(key, now);
        let their_id = handshake.peer_id;
        let refusal = if handshake.info_hash != self.config.info_hash {
            Some(Reason::Protocol("handshake for another torrent".into()))
        } else if self.banned.contains(&their_id) || self.book.is_banned(addr) {
            Some(Reason::Banned)
        } else if their_id == self.config.peer_id {
            Some(Reason::Ourselves)
        } else if self
            .peers
            .values()
            .any(|p| p.sender.peer_id == their_id || p.sender.addr == addr)
        {
            Some(Reason::Duplicate)
        } else if self.peers.len() >= self.config.max_peers {
            Some(Reason::TooManyPeers)
        } else if !handshake.reserved.extension_protocol() {
            // Without BEP 10 a peer cannot send metadata.
            Some(Reason::NotUseful)
        } else {
            None
        };
        if let Some(reason) = refusal {
            if outgoing {
                self.book.refused(addr, &reason, now);
            }
            out.push(Action::Disconnect(key, reason));
            return;
        }
        if outgoing {
            self.book.connected(addr);
        }
        let mut peer = FetchPeer {
            key,
            sender: Sender {
                addr,
                listen_addr: outgoing.then_some(addr),
                peer_id: their_id,
            },
            fast: handshake.reserved.fast(),
            connected_at: now,
            last_received: now,
            last_sent: now,
            ut_metadata: None,
            requests: BTreeMap::new(),
            refused: BTreeMap::new(),
            rejects: 0,
            stalls: 0,
            rejects_sent: 0,
            unrequested: 0,
        };
        if peer.fast {
            // BEP 6: a fast peer is told what we have first; we have nothing.
            peer.send(Message::HaveNone, now, out);
        }
        let ours = ExtendedHandshake {
            messages: BTreeMap::from([(UT_METADATA.to_owned(), OUR_UT_METADATA)]),
            client: Some(self.config.client.clone()),
            port: self.config.listen_port,
            request_queue: None,
            your_ip: Some(addr.ip().to_canonical()),
            metadata_size: None,
            upload_only: false,
        };
        let payload = ours.to_bytes();
        peer.send(
            Message::Extended {
                id: HANDSHAKE_ID,
                payload,
            },
            now,
            out,
        );
        self.peers.insert(key, peer);
    }

    pub(super) fn received(
        &mut self,
        key: PeerKey,
        message: Message,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), Reason> {
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        peer.last_received = now;
        let Message::Extended { id, payload } = message else {
            // What the peer has, its choke and interest, its requests: none of our
            // business before we have the info dict.
            return Ok(());
        };
        let protocol = |e: &dyn std::fmt::Display| Reason::Protocol(e.to_string());
        if id == HANDSHAKE_ID {
            let theirs = ExtendedHandshake::decode(&payload).map_err(|e| protocol(&e))?;
            if peer.sender.listen_addr.is_none()
                && let Some(port) = theirs.port.filter(|p| *p != 0)
            {
                let listen = SocketAddr::new(peer.sender.addr.ip(), port);
                peer.sender.listen_addr = Some(listen);
                self.book.connected(listen);
            }
            // A later handshake (BEP 10) changes what it names and keeps the rest; an id
            // of 0 disables the extension.
            let before = peer.ut_metadata;
            let ext = match theirs.messages.get(UT_METADATA) {
                Some(id) => Some(*id).filter(|id| *id != 0),
                None => before.map(|(id, _)| id),
            };
            let size = theirs
                .metadata_size
                .or(before.map(|(_, size)| size))
                .filter(|s| *s > 0 && *s <= MAX_METADATA_SIZE);
            match (ext, size) {
                (Some(ext), Some(size)) => peer.ut_metadata = Some((ext, size)),
                _ => return Err(Reason::NotUseful),
            }
            return Ok(());
        }
        if id != OUR_UT_METADATA {
            return Ok(());
        }
        match MetadataMessage::decode(&payload).map_err(|e| protocol(&e))? {
            MetadataMessage::Request { piece } => {
                if peer.rejects_sent < MAX_REJECTS_SENT
                    && let Some((ext, _)) = peer.ut_metadata
                {
                    peer.rejects_sent += 1;
                    let payload = MetadataMessage::Reject { piece }.to_bytes();
                    peer.send(Message::Extended { id: ext, payload }, now, out);
                }
            }
            MetadataMessage::Reject { piece } => {
                if peer.requests.remove(&piece).is_some() {
                    peer.refused.insert(piece, now);
                    peer.rejects += 1;
                    if peer.rejects > MAX_REJECTS {
                        return Err(Reason::NotUseful);
                    }
                }
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                if peer.requests.remove(&piece).is_none() {
                    peer.unrequested += 1;
                    if peer.unrequested > MAX_UNREQUESTED {
                        return Err(Reason::Protocol("unrequested metadata pieces".into()));
                    }
                    return Ok(());
                }
                if Some(total_size) != peer.size() {
                    return Err(Reason::Protocol(format!(
                        "total_size {total_size} after announcing {:?}",
                        peer.size()
                    )));
                }
                let sender = peer.sender;
                self.piece_arrived(piece, total_size, data, sender, now, out);
            }
        }
        Ok(())
    }

    /// Bans a peer for good and closes its live connections.
    pub(super) fn ban(&mut self, who: Sender, now: Instant, out: &mut Vec<Action>) {
        self.banned.insert(who.peer_id);
        self.book.ban(who.addr);
        if let Some(listen) = who.listen_addr {
            self.book.ban(listen);
        }
        let live: Vec<PeerKey> = self
            .peers
            .values()
            .filter(|p| p.sender.peer_id == who.peer_id)
            .map(|p| p.key)
            .collect();
        for key in live {
            self.drop_peer(key, Reason::Banned, now, out);
        }
    }

    pub(super) fn drop_peer(
        &mut self,
        key: PeerKey,
        reason: Reason,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if !self.peers.contains_key(&key) {
            return;
        }
        out.push(Action::Disconnect(key, reason.clone()));
        let retry = matches!(reason, Reason::Timeout | Reason::Shutdown);
        if let Some(peer) = self.peers.remove(&key) {
            self.forget(peer, retry, now);
        }
    }

    pub(super) fn remove_peer(&mut self, key: PeerKey, now: Instant) {
        if let Some(peer) = self.peers.remove(&key) {
            self.forget(peer, true, now);
        }
    }

    pub(super) fn forget(&mut self, peer: FetchPeer, retry: bool, now: Instant) {
        if let Some(listen) = peer.sender.listen_addr {
            let lasted = now.saturating_duration_since(peer.connected_at);
            self.book.disconnected(listen, lasted, retry, false, now);
        }
        if let Some(attempt) = self.attempt.as_mut()
            && attempt.solo == Some(peer.key)
        {
            attempt.solo = None;
        }
    }

    pub(super) fn housekeeping(&mut self, now: Instant, out: &mut Vec<Action>) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let since = |t: Instant| now.saturating_duration_since(t);
            if since(peer.last_received) >= IDLE_TIMEOUT {
                self.drop_peer(key, Reason::Timeout, now, out);
                continue;
            }
            if peer.ut_metadata.is_none() && since(peer.connected_at) >= HANDSHAKE_TIMEOUT {
                self.drop_peer(key, Reason::NotUseful, now, out);
                continue;
            }
            let stalled: Vec<u32> = peer
                .requests
                .iter()
                .filter(|(_, at)| since(**at) >= REQUEST_TIMEOUT)
                .map(|(piece, _)| *piece)
                .collect();
            for piece in stalled {
                peer.requests.remove(&piece);
                peer.refused.insert(piece, now);
                peer.stalls += 1;
            }
            if since(peer.last_sent) >= KEEPALIVE_INTERVAL {
                peer.send(Message::KeepAlive, now, out);
            }
        }
        self.dial(now, out);
    }
}
