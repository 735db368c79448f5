//! Timers, run on [`super::Event::Tick`]: rechoke when due, and once a second the
//! housekeeping: idle connections closed, keep-alives sent, stalled or snubbed requests
//! asked elsewhere, single blocks skipped by a peer asked again, useless peers closed at
//! the connection limit, seed-to-seed connections closed, backed-off dials retried.

use std::time::{Duration, Instant};

use rill_common::wire::Message;

use super::download::{BLOCK_TIMEOUT, REQUEST_TIMEOUT};
use super::{Action, Reason, TorrentState};
use crate::torrent::PeerKey;

/// How often the housekeeping runs.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(1);
/// A peer that sent nothing (not even a keep-alive) for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// At the connection limit, a peer with no interest either way for this long is closed.
pub const USELESS_TIMEOUT: Duration = Duration::from_secs(30);
/// We send a keep-alive after this long without sending anything.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(90);

impl TorrentState {
    /// Runs whatever timers are due at `now`.
    pub(super) fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        if now >= self.choker.next_rechoke() {
            self.rechoke(now, out);
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING_INTERVAL;
            self.housekeeping(now, out);
        }
    }

    fn housekeeping(&mut self, now: Instant, out: &mut Vec<Action>) {
        let done = self.missing == 0;
        let full = self.peers.len() >= self.config.max_peers;
        let ids: Vec<PeerKey> = self.peers.keys().copied().collect();
        for id in ids {
            let snubbed = self.choker.is_snubbed(id, now);
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if now.saturating_duration_since(peer.last_received) >= IDLE_TIMEOUT {
                self.drop_peer(id, Reason::Timeout, now, out);
                continue;
            }
            if done && (peer.is_seed() || peer.upload_only) {
                self.drop_peer(id, Reason::NotUseful, now, out);
                continue;
            }
            // At the connection limit, a peer neither side wants anything from makes room
            // (else a group of empty leechers can hold each other's every slot).
            if peer.am_interested || peer.peer_interested {
                peer.useless_since = None;
            } else {
                let since = *peer.useless_since.get_or_insert(now);
                if full && now.saturating_duration_since(since) >= USELESS_TIMEOUT {
                    self.drop_peer(id, Reason::NotUseful, now, out);
                    continue;
                }
            }
            if now.saturating_duration_since(peer.last_sent) >= KEEPALIVE_INTERVAL {
                peer.send(Message::KeepAlive, now, out);
            }
            let stalled = !peer.requests_out.is_empty()
                && now.saturating_duration_since(peer.request_progress) >= REQUEST_TIMEOUT;
            if stalled || (snubbed && peer.requests_out.len() > 1) {
                // Ask these pieces of others: not of this peer until it unchokes us anew.
                let pieces: Vec<_> = peer.requests_out.keys().map(|b| (b.piece, now)).collect();
                peer.rejected.extend(pieces);
                self.give_up_requests(id, true, now, out);
                continue;
            }
            // Blocks skipped while later ones came (a peer may drop requests silently).
            let overdue: Vec<_> = peer
                .requests_out
                .iter()
                .filter(|(_, at)| {
                    now.saturating_duration_since(**at) >= BLOCK_TIMEOUT
                        && peer.request_progress > **at
                })
                .map(|(block, _)| *block)
                .collect();
            for block in overdue {
                peer.requests_out.remove(&block);
                self.picker.request_rejected(id, block);
                peer.give_up(block);
                peer.send(Message::Cancel(block), now, out);
            }
        }
        self.send_pex(now, out);
        self.refill = true;
        self.dial(now, out);
    }
}
