//! The routing table (BEP 5): k-buckets of at most [`K`] nodes over the 160-bit id space.
//!
//! Invariants:
//! - bucket `i` (all but the last) holds nodes whose id shares exactly `i` leading bits with
//!   ours; the last bucket holds every node sharing at least `len - 1` bits. Only the last
//!   bucket, the one that covers our own id, ever splits, so the table is fine-grained near
//!   us and coarse far away; there are at most 160 buckets;
//! - each bucket has at most [`K`] nodes and at most [`K`] replacements; an id appears once;
//! - our own id is never in the table.
//!
//! Node status follows the BEP: **good** if it answered one of our queries in the last 15
//! minutes, or answered once and queried us in the last 15 minutes; **bad** after
//! [`MAX_FAILURES`] queries in a row went unanswered (one for a node that never answered);
//! **questionable** otherwise. A full bucket takes a new node in place of a bad one; else the
//! newcomer waits in the replacement cache and the caller is told which questionable nodes to
//! ping — when one of them fails enough, the freshest replacement takes its place. Pure: time
//! and randomness come in as arguments. An entry, its status and a bucket's data are in
//! `bucket`; this file is the table and every rule above.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rill_common::krpc::{CompactNode, ID_LEN, NodeId};

mod bucket;

use bucket::Bucket;
pub use bucket::{Contact, Entry, Status};

/// Nodes per bucket (BEP 5's K).
pub const K: usize = 8;
/// A node that answered within this long is good (BEP 5: 15 minutes).
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// A bucket unchanged this long is refreshed with a lookup of a random id in it (BEP 5).
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row that make a node bad ("try once more before discarding").
pub const MAX_FAILURES: u8 = 2;
const MAX_BUCKETS: usize = ID_LEN * 8;

/// What [`RoutingTable::insert`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Insert {
    /// The node is new in the table (possibly in place of a bad node).
    Added,
    /// The node was there; its liveness was updated.
    Updated,
    /// The bucket is full: the node waits in the replacement cache; ping these questionable
    /// nodes (least recently seen first) and report failures with [`RoutingTable::failed`].
    Cached {
        /// Questionable nodes of the full bucket to ping.
        ping: Vec<CompactNode>,
    },
    /// Not taken: our own id, or an id already held by a good node at another address.
    Ignored,
}

/// The k-bucket routing table around one node id.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own_id: NodeId,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table (one bucket covering the whole space) for a node with `own_id`.
    pub fn new(own_id: NodeId, now: Instant) -> Self {
        RoutingTable {
            own_id,
            buckets: vec![Bucket::new(now)],
        }
    }

    /// Our node id.
    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    /// Number of buckets (1 to 160).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Nodes in the table (replacements not counted).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// Whether the table holds no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every node in the table, nearest buckets last.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// Looks a node up by id.
    pub fn get(&self, id: &NodeId) -> Option<&Entry> {
        let index = self.bucket_index(id);
        self.buckets
            .get(index)?
            .nodes
            .iter()
            .find(|e| e.node.id == *id)
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        let shared = self.own_id.distance(id).leading_zeros() as usize;
        shared.min(self.buckets.len() - 1)
    }

    /// Records that `node` answered a query of ours or sent us one.
    pub fn insert(&mut self, node: CompactNode, contact: Contact, now: Instant) -> Insert {
        if node.id == self.own_id {
            return Insert::Ignored;
        }
        if contact == Contact::Responded {
            // A node that restarted with a new id at the same address: drop the stale entry.
            self.remove_addr_with_other_id(node.addr, &node.id);
        }
        loop {
            let last = self.buckets.len() - 1;
            let can_split = self.buckets.len() < MAX_BUCKETS;
            let index = self.bucket_index(&node.id);
            let Some(bucket) = self.buckets.get_mut(index) else {
                return Insert::Ignored;
            };
            if let Some(entry) = bucket.nodes.iter_mut().find(|e| e.node.id == node.id) {
                if entry.node.addr != node.addr {
                    if entry.status(now) == Status::Good {
                        return Insert::Ignored;
                    }
                    *entry = Entry::new(node, contact, now);
                } else {
                    entry.touch(contact, now);
                }
                if contact == Contact::Responded {
                    bucket.last_changed = now;
                }
                return Insert::Updated;
            }
            if bucket.nodes.len() < K {
                bucket.replacements.retain(|e| e.node.id != node.id);
                bucket.nodes.push(Entry::new(node, contact, now));
                bucket.last_changed = now;
                return Insert::Added;
            }
            if index == last && can_split {
                self.split(now);
                continue;
            }
            if let Some(bad) = bucket
                .nodes
                .iter()
                .position(|e| e.status(now) == Status::Bad)
            {
                bucket.nodes.remove(bad);
                bucket.nodes.push(Entry::new(node, contact, now));
                bucket.last_changed = now;
                return Insert::Added;
            }
            bucket.replacements.retain(|e| e.node.id != node.id);
            if bucket.replacements.len() >= K {
                bucket.replacements.remove(0);
            }
            bucket.replacements.push(Entry::new(node, contact, now));
            let mut stale: Vec<&Entry> = bucket
                .nodes
                .iter()
                .filter(|e| e.status(now) == Status::Questionable)
                .collect();
            stale.sort_by_key(|e| e.last_seen());
            return Insert::Cached {
                ping: stale.into_iter().map(|e| e.node).collect(),
            };
        }
    }

    fn remove_addr_with_other_id(&mut self, addr: SocketAddr, id: &NodeId) {
        for bucket in &mut self.buckets {
            bucket
                .nodes
                .retain(|e| e.node.addr != addr || e.node.id == *id);
        }
    }

    /// Splits the last bucket: nodes sharing more bits with us move to a new last bucket.
    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len();
        let own = self.own_id;
        let Some(last) = self.buckets.last_mut() else {
            return;
        };
        let deeper = |e: &Entry| own.distance(&e.node.id).leading_zeros() as usize >= depth;
        let mut next = Bucket::new(now);
        next.last_changed = last.last_changed;
        let (near, far): (Vec<Entry>, Vec<Entry>) = last.nodes.drain(..).partition(deeper);
        last.nodes = far;
        next.nodes = near;
        let (near, far): (Vec<Entry>, Vec<Entry>) = last.replacements.drain(..).partition(deeper);
        last.replacements = far;
        next.replacements = near;
        self.buckets.push(next);
    }

    /// Records that `id` did not answer a query. A node that becomes bad is replaced by the
    /// freshest node of its bucket's replacement cache, if any; returns whether it was.
    pub fn failed(&mut self, id: &NodeId, now: Instant) -> bool {
        let index = self.bucket_index(id);
        let Some(bucket) = self.buckets.get_mut(index) else {
            return false;
        };
        let Some(position) = bucket.nodes.iter().position(|e| e.node.id == *id) else {
            return false;
        };
        let Some(entry) = bucket.nodes.get_mut(position) else {
            return false;
        };
        entry.failures = entry.failures.saturating_add(1);
        if entry.status(now) != Status::Bad {
            return false;
        }
        let Some(replacement) = bucket.replacements.pop() else {
            return false;
        };
        bucket.nodes.remove(position);
        bucket.nodes.push(replacement);
        bucket.last_changed = now;
        true
    }

    /// Removes a node (for example one that turned out to be read-only).
    pub fn remove(&mut self, id: &NodeId) {
        let index = self.bucket_index(id);
        if let Some(bucket) = self.buckets.get_mut(index) {
            bucket.nodes.retain(|e| e.node.id != *id);
        }
    }

    /// Up to `count` nodes that are not bad, closest to `target` first (XOR distance).
    pub fn closest(&self, target: &NodeId, count: usize, now: Instant) -> Vec<CompactNode> {
        let mut all: Vec<&Entry> = self
            .entries()
            .filter(|e| e.status(now) != Status::Bad)
            .collect();
        all.sort_by_key(|e| e.node.id.distance(target));
        all.into_iter().take(count).map(|e| e.node).collect()
    }

    /// Random targets, one in each bucket unchanged for [`REFRESH_AFTER`]; those buckets
    /// count as changed now, so each is refreshed once per period.
    pub fn refresh_targets(&mut self, now: Instant, rng: &mut impl Rng) -> Vec<NodeId> {
        let own = self.own_id;
        let mut targets = Vec::new();
        for (index, bucket) in self.buckets.iter_mut().enumerate() {
            if now.saturating_duration_since(bucket.last_changed) >= REFRESH_AFTER {
                bucket.last_changed = now;
                targets.push(random_id_in_bucket(&own, index, rng));
            }
        }
        targets
    }
}

/// A random id sharing exactly `shared` leading bits with `own` (all of them when 160).
pub fn random_id_in_bucket(own: &NodeId, shared: usize, rng: &mut impl Rng) -> NodeId {
    let random = NodeId::random(rng);
    let mut bytes = *random.as_bytes();
    for (i, byte) in bytes.iter_mut().enumerate() {
        let own_byte = own.as_bytes().get(i).copied().unwrap_or(0);
        for bit in 0..8 {
            let position = i * 8 + bit;
            let mask = 0x80u8 >> bit;
            if position < shared {
                *byte = (*byte & !mask) | (own_byte & mask);
            } else if position == shared {
                *byte = (*byte & !mask) | (!own_byte & mask);
            }
        }
    }
    NodeId::from_bytes(bytes)
}

#[cfg(test)]
mod tests;
