//! Peer exchange (BEP 11), the pure part: what to tell one peer about the others, as a diff
//! against what it was told before, and the pacing and caps of the messages.
//!
//! Invariants of [`diff`]: `added` and `dropped` are disjoint; `added` holds the addresses
//! that are new or whose flags changed, `dropped` those no longer present; each list holds
//! at most `max` entries (the rest waits for the next message), so [`apply`]ing successive
//! diffs to what the peer knows reproduces the current set.
//!
//! Pacing ([`PexOut`]): at most one message a minute per peer ([`PEX_INTERVAL`]), the first
//! [`PEX_FIRST_DELAY`] after the peer said it speaks `ut_pex`; empty diffs are not sent.
//! Private torrents (BEP 27) never use PEX: the caller neither sends nor takes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rill_common::wire::extension::{PexFlags, PexMessage, PexPeer};

/// The extended id we receive `ut_pex` under (announced in our `m`).
pub const OUR_UT_PEX: u8 = 1;
/// At most one PEX message a minute per peer (BEP 11).
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// The first message goes this long after the peer announced `ut_pex`.
pub const PEX_FIRST_DELAY: Duration = Duration::from_secs(5);
/// Entries per list in a message we send (the Azureus/µTorrent convention: 50 added, 50 dropped).
pub const MAX_PEX_SENT: usize = 50;
/// Added peers we take from one received message; the rest are ignored.
pub const MAX_PEX_TAKEN: usize = 50;
/// Messages from one peer closer together than this are ignored (a flood, not exchange).
pub const PEX_MIN_GAP: Duration = Duration::from_secs(20);

/// A set of peers as PEX describes them: address → flags.
pub type PexSet = BTreeMap<SocketAddr, PexFlags>;

/// The message that takes a peer from knowing `known` to knowing `current`, with at most
/// `max` entries in each list.
pub fn diff(known: &PexSet, current: &PexSet, max: usize) -> PexMessage {
    let added = current
        .iter()
        .filter(|(addr, flags)| known.get(*addr) != Some(*flags))
        .take(max)
        .map(|(addr, flags)| PexPeer {
            addr: *addr,
            flags: *flags,
        })
        .collect();
    let dropped = known
        .keys()
        .filter(|addr| !current.contains_key(*addr))
        .take(max)
        .copied()
        .collect();
    PexMessage { added, dropped }
}

/// What a peer knows after receiving `message`.
pub fn apply(known: &mut PexSet, message: &PexMessage) {
    for addr in &message.dropped {
        known.remove(addr);
    }
    for peer in &message.added {
        known.insert(peer.addr, peer.flags);
    }
}

/// The flags we send for a peer: seed (or upload only), reachable when we dialled it.
/// We speak neither encryption nor uTP.
pub fn flags(seed: bool, outgoing: bool) -> PexFlags {
    let mut flags = PexFlags::default();
    if seed {
        flags = flags.union(PexFlags::SEED);
    }
    if outgoing {
        flags = flags.union(PexFlags::REACHABLE);
    }
    flags
}

/// The addresses to take from a received message: at most [`MAX_PEX_TAKEN`] added peers,
/// port 0 left out.
pub fn take(message: &PexMessage) -> Vec<SocketAddr> {
    message
        .added
        .iter()
        .map(|p| p.addr)
        .filter(|a| a.port() != 0)
        .take(MAX_PEX_TAKEN)
        .collect()
}

/// PEX with one peer: what it was told, when the next message may go, when the last
/// message came from it.
#[derive(Clone, Debug, Default)]
pub struct PexOut {
    known: PexSet,
    next_at: Option<Instant>,
    last_in: Option<Instant>,
}

impl PexOut {
    /// The peer said it speaks `ut_pex` at `now`: the first message is due soon.
    pub fn enable(&mut self, now: Instant) {
        if self.next_at.is_none() {
            self.next_at = Some(now + PEX_FIRST_DELAY);
        }
    }

    /// Whether the peer speaks `ut_pex` (as far as we send).
    pub fn enabled(&self) -> bool {
        self.next_at.is_some()
    }

    /// When the next message is due, if the peer speaks `ut_pex`.
    pub fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// The message due at `now`, if one is due and not empty; the peer is assumed to know
    /// what it says from then on.
    pub fn poll(&mut self, current: &PexSet, now: Instant) -> Option<PexMessage> {
        let due = self.next_at?;
        if now < due {
            return None;
        }
        self.next_at = Some(now + PEX_INTERVAL);
        let message = diff(&self.known, current, MAX_PEX_SENT);
        if message.added.is_empty() && message.dropped.is_empty() {
            return None;
        }
        apply(&mut self.known, &message);
        Some(message)
    }

    /// A message arrived from the peer at `now`: whether to take it (not a flood).
    pub fn accept_incoming(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last_in
            && now.saturating_duration_since(last) < PEX_MIN_GAP
        {
            return false;
        }
        self.last_in = Some(now);
        true
    }
}

#[cfg(test)]
mod tests;
