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
//! and randomness come in as arguments.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use rill_common::krpc::{CompactNode, ID_LEN, NodeId};

/// Nodes per bucket (BEP 5's K).
pub const K: usize = 8;
/// A node that answered within this long is good (BEP 5: 15 minutes).
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// A bucket unchanged this long is refreshed with a lookup of a random id in it (BEP 5).
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row that make a node bad ("try once more before discarding").
pub const MAX_FAILURES: u8 = 2;
const MAX_BUCKETS: usize = ID_LEN * 8;

/// How we heard from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact {
    /// It answered one of our queries.
    Responded,
    /// It sent us a query.
    Queried,
}

/// A node's standing (BEP 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Answered recently.
    Good,
    /// Not heard from in 15 minutes.
    Questionable,
    /// Failed to answer several queries in a row.
    Bad,
}

/// One node in the table, with what we know of its liveness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its id and address.
    pub node: CompactNode,
    /// When it last answered one of our queries.
    pub last_response: Option<Instant>,
    /// When it last sent us a query.
    pub last_query: Option<Instant>,
    /// Queries in a row it did not answer.
    pub failures: u8,
}

impl Entry {
    fn new(node: CompactNode, contact: Contact, now: Instant) -> Self {
        let mut entry = Entry {
            node,
            last_response: None,
            last_query: None,
            failures: 0,
        };
        entry.touch(contact, now);
        entry
    }

    fn touch(&mut self, contact: Contact, now: Instant) {
        match contact {
            Contact::Responded => {
                self.last_response = Some(now);
                self.failures = 0;
            }
            Contact::Queried => self.last_query = Some(now),
        }
    }

    /// The node's status at `now`.
    pub fn status(&self, now: Instant) -> Status {
        let fresh =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < GOOD_FOR);
        if self.failures >= MAX_FAILURES || (self.last_response.is_none() && self.failures > 0) {
            Status::Bad
        } else if fresh(self.last_response)
            || (self.last_response.is_some() && fresh(self.last_query))
        {
            Status::Good
        } else {
            Status::Questionable
        }
    }

    fn last_seen(&self) -> Option<Instant> {
        self.last_response.max(self.last_query)
    }
}

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

#[derive(Clone, Debug)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: Vec<Entry>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket {
            nodes: Vec::with_capacity(K),
            replacements: Vec::new(),
            last_changed: now,
        }
    }
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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn node(id: NodeId, port: u16) -> CompactNode {
        CompactNode {
            id,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn id_with_first_byte(first: u8, last: u8) -> NodeId {
        let mut bytes = [0u8; 20];
        bytes[0] = first;
        bytes[19] = last;
        NodeId::from_bytes(bytes)
    }

    #[test]
    fn own_id_is_ignored() {
        let now = Instant::now();
        let own = NodeId::from_bytes([7; 20]);
        let mut table = RoutingTable::new(own, now);
        assert_eq!(
            table.insert(node(own, 1), Contact::Responded, now),
            Insert::Ignored
        );
        assert!(table.is_empty());
    }

    #[test]
    fn splits_only_around_own_id() {
        let now = Instant::now();
        // Own id starts with bit 0; nodes far away (first bit 1) never split their bucket.
        let own = NodeId::from_bytes([0; 20]);
        let mut table = RoutingTable::new(own, now);
        for i in 0..K as u8 {
            assert_eq!(
                table.insert(
                    node(id_with_first_byte(0x80, i), 1 + u16::from(i)),
                    Contact::Responded,
                    now
                ),
                Insert::Added
            );
        }
        assert_eq!(table.bucket_count(), 1);
        // A ninth far node: the bucket splits (it covers our id), the far half stays full.
        let ninth = table.insert(
            node(id_with_first_byte(0x80, 100), 100),
            Contact::Responded,
            now,
        );
        assert!(matches!(ninth, Insert::Cached { .. }), "{ninth:?}");
        assert_eq!(table.bucket_count(), 2);
        // Far buckets never split again however many far nodes come.
        for i in 0..50u8 {
            table.insert(
                node(id_with_first_byte(0xC0, i), 200 + u16::from(i)),
                Contact::Responded,
                now,
            );
        }
        assert_eq!(table.bucket_count(), 2);
        assert_eq!(table.len(), K);
        // Near nodes split the last bucket again and again.
        for i in 0..20u8 {
            table.insert(
                node(id_with_first_byte(0x40 >> (i % 6), i), 300 + u16::from(i)),
                Contact::Responded,
                now,
            );
        }
        assert!(table.bucket_count() > 2);
    }

    #[test]
    fn bad_node_is_replaced_by_cached_one() {
        let now = Instant::now();
        let own = NodeId::from_bytes([0; 20]);
        let mut table = RoutingTable::new(own, now);
        let far: Vec<CompactNode> = (0..K as u8)
            .map(|i| node(id_with_first_byte(0x80, i), 1 + u16::from(i)))
            .collect();
        for n in &far {
            table.insert(*n, Contact::Responded, now);
        }
        // Split off the near half so the far bucket is no longer the last one.
        table.insert(
            node(id_with_first_byte(0x01, 0), 50),
            Contact::Responded,
            now,
        );
        let later = now + GOOD_FOR;
        let newcomer = node(id_with_first_byte(0x90, 0), 60);
        match table.insert(newcomer, Contact::Responded, later) {
            Insert::Cached { ping } => assert_eq!(ping.len(), K, "all far nodes are questionable"),
            other => panic!("expected Cached, got {other:?}"),
        }
        assert!(table.get(&newcomer.id).is_none());
        assert!(
            !table.failed(&far[3].id, later),
            "one failure: questionable, kept"
        );
        assert!(
            table.failed(&far[3].id, later),
            "second failure: bad, replaced"
        );
        assert!(table.get(&far[3].id).is_none());
        assert!(table.get(&newcomer.id).is_some());
        assert_eq!(table.len(), K + 1);
    }

    #[test]
    fn bad_node_gives_way_to_newcomer_directly() {
        let now = Instant::now();
        let own = NodeId::from_bytes([0; 20]);
        let mut table = RoutingTable::new(own, now);
        for i in 0..K as u8 {
            table.insert(
                node(id_with_first_byte(0x80, i), 1 + u16::from(i)),
                Contact::Responded,
                now,
            );
        }
        table.insert(
            node(id_with_first_byte(0x01, 0), 50),
            Contact::Responded,
            now,
        );
        let victim = id_with_first_byte(0x80, 2);
        table.failed(&victim, now);
        table.failed(&victim, now);
        assert_eq!(table.get(&victim).map(|e| e.status(now)), Some(Status::Bad));
        let newcomer = node(id_with_first_byte(0xA0, 0), 70);
        assert_eq!(table.insert(newcomer, Contact::Queried, now), Insert::Added);
        assert!(table.get(&victim).is_none());
    }

    #[test]
    fn status_follows_the_bep() {
        let t0 = Instant::now();
        let mut e = Entry::new(node(NodeId::from_bytes([1; 20]), 1), Contact::Queried, t0);
        assert_eq!(e.status(t0), Status::Questionable, "never answered");
        e.touch(Contact::Responded, t0);
        assert_eq!(e.status(t0 + Duration::from_secs(899)), Status::Good);
        assert_eq!(e.status(t0 + GOOD_FOR), Status::Questionable);
        e.touch(Contact::Queried, t0 + GOOD_FOR);
        assert_eq!(
            e.status(t0 + GOOD_FOR),
            Status::Good,
            "answered once, queried recently"
        );
        e.failures = 1;
        assert_eq!(e.status(t0 + GOOD_FOR), Status::Good);
        e.failures = MAX_FAILURES;
        assert_eq!(e.status(t0 + GOOD_FOR), Status::Bad);
    }

    #[test]
    fn good_entry_keeps_its_address() {
        let now = Instant::now();
        let mut table = RoutingTable::new(NodeId::from_bytes([0; 20]), now);
        let id = NodeId::from_bytes([9; 20]);
        table.insert(node(id, 1), Contact::Responded, now);
        assert_eq!(
            table.insert(node(id, 2), Contact::Queried, now),
            Insert::Ignored
        );
        assert_eq!(table.get(&id).map(|e| e.node.addr.port()), Some(1));
    }

    #[test]
    fn refresh_targets_land_in_their_bucket() {
        let mut rng = StdRng::seed_from_u64(5);
        let own = NodeId::random(&mut rng);
        for shared in [0, 1, 7, 8, 100, 159] {
            let target = random_id_in_bucket(&own, shared, &mut rng);
            assert_eq!(own.distance(&target).leading_zeros() as usize, shared);
        }
        let t0 = Instant::now();
        let mut table = RoutingTable::new(own, t0);
        assert!(table.refresh_targets(t0, &mut rng).is_empty());
        assert_eq!(table.refresh_targets(t0 + REFRESH_AFTER, &mut rng).len(), 1);
        assert!(
            table
                .refresh_targets(t0 + REFRESH_AFTER, &mut rng)
                .is_empty(),
            "once per period"
        );
    }

    proptest! {
        #[test]
        fn invariants_hold_and_closest_matches_brute_force(
            seed in any::<u64>(),
            ops in proptest::collection::vec((any::<[u8; 20]>(), any::<bool>(), 0u8..4), 1..300),
            target in any::<[u8; 20]>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let now = Instant::now();
            let own = NodeId::random(&mut rng);
            let mut table = RoutingTable::new(own, now);
            for (i, (bytes, responded, fail)) in ops.iter().enumerate() {
                let id = NodeId::from_bytes(*bytes);
                let contact = if *responded { Contact::Responded } else { Contact::Queried };
                table.insert(node(id, i as u16), contact, now);
                if *fail == 0 {
                    table.failed(&id, now);
                }
            }
            prop_assert!(table.bucket_count() <= 160);
            let last = table.bucket_count() - 1;
            let mut seen = std::collections::HashSet::new();
            for (index, bucket) in table.buckets.iter().enumerate() {
                prop_assert!(bucket.nodes.len() <= K);
                prop_assert!(bucket.replacements.len() <= K);
                for e in &bucket.nodes {
                    prop_assert!(e.node.id != own);
                    prop_assert!(seen.insert(e.node.id), "id twice");
                    let shared = own.distance(&e.node.id).leading_zeros() as usize;
                    if index < last { prop_assert_eq!(shared, index); } else { prop_assert!(shared >= last); }
                }
            }
            let target = NodeId::from_bytes(target);
            let got = table.closest(&target, K, now);
            let mut brute: Vec<CompactNode> = table.entries().filter(|e| e.status(now) != Status::Bad).map(|e| e.node).collect();
            brute.sort_by_key(|n| n.id.distance(&target));
            brute.truncate(K);
            prop_assert_eq!(got, brute);
        }
    }
}
