//! Tests of the routing table: splitting, replacement of bad nodes, status, refresh, and
//! invariants with closest-K against brute force over random operations.

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

/// The K far nodes (first bit 1, ports 1 to K) of [`split_table`].
fn far_nodes() -> Vec<CompactNode> {
    (0..K as u8)
        .map(|i| node(id_with_first_byte(0x80, i), 1 + u16::from(i)))
        .collect()
}

/// A table around id 0 whose far bucket is full of [`far_nodes`] and, with one near node
/// split off, no longer the last bucket (so it never splits again).
fn split_table(now: Instant) -> RoutingTable {
    let mut table = RoutingTable::new(NodeId::from_bytes([0; 20]), now);
    for n in far_nodes() {
        table.insert(n, Contact::Responded, now);
    }
    table.insert(
        node(id_with_first_byte(0x01, 0), 50),
        Contact::Responded,
        now,
    );
    assert_eq!(table.bucket_count(), 2);
    table
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
    for n in far_nodes() {
        assert_eq!(table.insert(n, Contact::Responded, now), Insert::Added);
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
    let mut table = split_table(now);
    let far = far_nodes();
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
    let mut table = split_table(now);
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
