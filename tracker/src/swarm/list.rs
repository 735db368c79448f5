//! The peers of one address family of one torrent.
//!
//! Invariants:
//! - `entries[..seeders]` are the seeders, `entries[seeders..]` the leechers, so both counts
//!   are O(1) and a reply can sample "leechers only" or "everyone" as one index range.
//! - Each address appears once. A list of more than [`SMALL`] peers has an `index` with
//!   `index[&entries[i].addr] == i` for every `i` and no other key; a small list has none and is
//!   searched linearly (at most a few cache lines), which saves most torrents, whose swarms
//!   are small, a hash map's memory. The index is dropped again below `SMALL / 2` peers.
//!
//! Every change (insert, remove, seeder <-> leecher) moves at most three entries by swaps,
//! so it costs O(1) hash-map updates whatever the swarm size.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use rand::Rng;
use rill_common::PeerId;
use rill_common::tracker::http::Peer;

/// A peer address of one family, stored as compactly as the family allows.
pub(crate) trait Family: Copy + Eq + Hash {
    /// The address as a `SocketAddr`, for replies.
    fn socket(self) -> SocketAddr;
}

impl Family for SocketAddrV4 {
    fn socket(self) -> SocketAddr {
        SocketAddr::V4(self)
    }
}

/// An IPv6 address and port: 18 bytes, where `SocketAddrV6` takes 28 with a flow label and
/// scope id that a tracker never uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct V6 {
    ip: Ipv6Addr,
    port: u16,
}

impl V6 {
    pub(crate) fn new(addr: SocketAddrV6) -> Self {
        V6 {
            ip: *addr.ip(),
            port: addr.port(),
        }
    }
}

impl Family for V6 {
    fn socket(self) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(self.ip, self.port, 0, 0))
    }
}

/// One peer: 32 bytes for IPv4, 44 for IPv6.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<A> {
    pub(crate) addr: A,
    pub(crate) peer_id: PeerId,
    /// Whole seconds since the store's epoch (see `SwarmStore`), when last heard from.
    pub(crate) last_seen: u32,
    /// This peer's `completed` has been counted in the torrent's `downloaded`.
    pub(crate) completed: bool,
}

/// What an upsert did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Upserted {
    /// The requester's index in `entries` after the change.
    pub(crate) position: usize,
    /// Its completion is to be counted in `downloaded` (first `completed` of this peer).
    pub(crate) count_completion: bool,
}

/// Lists of up to this many peers have no hash index.
pub(crate) const SMALL: usize = 16;

/// The peers of one family of one torrent (see the module invariants).
#[derive(Debug)]
pub(crate) struct PeerList<A> {
    entries: Vec<Entry<A>>,
    seeders: usize,
    /// Boxed: an empty or small list pays 8 bytes for it, not 48.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes, not 48, in every small swarm"
    )]
    index: Option<Box<HashMap<A, u32>>>,
}

impl<A> Default for PeerList<A> {
    fn default() -> Self {
        PeerList {
            entries: Vec::new(),
            seeders: 0,
            index: None,
        }
    }
}

impl<A: Family> PeerList<A> {
    /// Seeders in the list.
    pub(crate) fn seeders(&self) -> usize {
        self.seeders
    }

    /// Leechers in the list.
    pub(crate) fn leechers(&self) -> usize {
        self.entries.len() - self.seeders
    }

    /// All entries: seeders first.
    pub(crate) fn entries(&self) -> &[Entry<A>] {
        &self.entries
    }

    /// Inserts or refreshes the peer at `addr`. A changed peer id is a new client on the same
    /// address: its completion flag starts afresh.
    pub(crate) fn upsert(
        &mut self,
        addr: A,
        peer_id: PeerId,
        seeder: bool,
        now: u32,
        completed_event: bool,
    ) -> Upserted {
        let mut position = match self.position(&addr) {
            Some(i) => i,
            None => {
                let i = self.entries.len();
                self.entries.push(Entry {
                    addr,
                    peer_id,
                    last_seen: now,
                    completed: false,
                });
                match &mut self.index {
                    Some(index) => {
                        index.insert(addr, index_u32(i));
                    }
                    None if self.entries.len() > SMALL => self.build_index(),
                    None => {}
                }
                i
            }
        };
        let was_seeder = position < self.seeders;
        if seeder && !was_seeder {
            // Move it to the first leecher's place and grow the seeder range over it.
            self.swap(position, self.seeders);
            position = self.seeders;
            self.seeders += 1;
        } else if !seeder && was_seeder {
            self.seeders -= 1;
            self.swap(position, self.seeders);
            position = self.seeders;
        }
        let entry = &mut self.entries[position];
        if entry.peer_id != peer_id {
            entry.peer_id = peer_id;
            entry.completed = false;
        }
        entry.last_seen = now;
        let count_completion = completed_event && seeder && !entry.completed;
        if count_completion {
            entry.completed = true;
        }
        Upserted {
            position,
            count_completion,
        }
    }

    /// Puts a saved peer back (a restart): as an announce at `last_seen`, with its
    /// completion flag as saved.
    pub(crate) fn restore(
        &mut self,
        addr: A,
        peer_id: PeerId,
        seeder: bool,
        last_seen: u32,
        completed: bool,
    ) {
        let position = self
            .upsert(addr, peer_id, seeder, last_seen, false)
            .position;
        if let Some(entry) = self.entries.get_mut(position) {
            entry.completed = completed;
        }
    }

    /// Removes the peer at `addr`; returns whether there was one.
    pub(crate) fn remove(&mut self, addr: &A) -> bool {
        match self.position(addr) {
            Some(i) => {
                self.remove_at(i);
                self.drop_index_if_small();
                true
            }
            None => false,
        }
    }

    /// Removes every peer last seen at or before `cutoff`; returns how many were removed.
    pub(crate) fn purge(&mut self, cutoff: u32) -> usize {
        let before = self.entries.len();
        let mut i = 0;
        // `remove_at(i)` only moves entries from indexes above `i` into `i` and below the
        // end, so re-checking `i` and walking on visits every entry once.
        while i < self.entries.len() {
            if self.entries[i].last_seen <= cutoff {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
        let removed = before - self.entries.len();
        if removed > 0 {
            self.drop_index_if_small();
            if self.entries.capacity() > 4 * self.entries.len().max(4) {
                // Give back the memory of a swarm that shrank a lot.
                self.entries.shrink_to_fit();
                if let Some(index) = &mut self.index {
                    index.shrink_to_fit();
                }
            }
        }
        removed
    }

    /// Appends up to `numwant` peers drawn uniformly without replacement: only leechers for a
    /// seeder, everyone for a leecher, never the entry at `exclude` (the requester).
    pub(crate) fn sample_into(
        &self,
        exclude: Option<usize>,
        for_seeder: bool,
        numwant: usize,
        rng: &mut impl Rng,
        out: &mut Vec<Peer>,
    ) {
        let base = if for_seeder { self.seeders } else { 0 };
        let n = self.entries.len() - base;
        let exclude = exclude
            .filter(|&p| p >= base && p < base + n)
            .map(|p| p - base);
        let pool = n - usize::from(exclude.is_some());
        let amount = numwant.min(pool);
        if amount == 0 {
            return;
        }
        // Index `i` of the pool (the range without the requester) maps to `i`, or `i + 1`
        // at and past the requester's slot: a uniform draw over the others, no rejection.
        let peer = |i: usize| {
            let i = base
                + if exclude.is_some_and(|p| i >= p) {
                    i + 1
                } else {
                    i
                };
            let e = &self.entries[i];
            Peer {
                addr: e.addr.socket(),
                peer_id: Some(e.peer_id),
            }
        };
        out.reserve(amount);
        if amount == pool {
            out.extend((0..pool).map(peer));
        } else {
            // O(amount) expected work (Floyd's / rejection), whatever the pool size.
            out.extend(
                rand::seq::index::sample(rng, pool, amount)
                    .into_iter()
                    .map(peer),
            );
        }
    }

    fn remove_at(&mut self, i: usize) {
        let mut i = i;
        if i < self.seeders {
            // Keep the partition: move it to the last seeder's place, which becomes a leecher.
            self.seeders -= 1;
            self.swap(i, self.seeders);
            i = self.seeders;
        }
        let last = self.entries.len() - 1;
        self.swap(i, last);
        if let (Some(gone), Some(index)) = (self.entries.pop(), &mut self.index) {
            index.remove(&gone.addr);
        }
    }

    fn position(&self, addr: &A) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(addr).map(|&i| i as usize),
            None => self.entries.iter().position(|e| e.addr == *addr),
        }
    }

    fn build_index(&mut self) {
        let mut index = HashMap::with_capacity(self.entries.len());
        for (i, e) in self.entries.iter().enumerate() {
            index.insert(e.addr, index_u32(i));
        }
        self.index = Some(Box::new(index));
    }

    fn drop_index_if_small(&mut self) {
        if self.entries.len() < SMALL / 2 {
            self.index = None;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        self.entries.swap(a, b);
        if let Some(index) = &mut self.index {
            for i in [a, b] {
                if let Some(e) = self.entries.get(i) {
                    index.insert(e.addr, index_u32(i));
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        assert!(self.seeders <= self.entries.len());
        let distinct: std::collections::HashSet<_> = self.entries.iter().map(|e| e.addr).collect();
        assert_eq!(distinct.len(), self.entries.len(), "an address twice");
        match &self.index {
            Some(index) => {
                assert!(self.entries.len() >= SMALL / 2);
                assert_eq!(index.len(), self.entries.len());
                for (i, e) in self.entries.iter().enumerate() {
                    assert_eq!(index.get(&e.addr), Some(&index_u32(i)));
                }
            }
            None => assert!(self.entries.len() <= SMALL),
        }
    }

    #[cfg(test)]
    pub(crate) fn has_index(&self) -> bool {
        self.index.is_some()
    }
}

/// Indexes fit in `u32`: 4 billion peers of one torrent would need hundreds of GB anyway.
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}
