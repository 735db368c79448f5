//! Our own queries: transactions matched to their source, timeouts, bucket maintenance and
//! refresh, and a lookup that counts the peers announced to us.

use std::time::Duration;

use rill_common::krpc::{Body, Message, NodeId, Query, Response};

use super::{Fixture, addr, announce, hash, id, ping, sent};
use crate::dht::node::{Action, QueryFailure};
use crate::dht::routing_table::REFRESH_AFTER;

#[test]
fn ping_matches_transaction_and_source_then_times_out() {
    let mut f = Fixture::new();
    let mut out = Vec::new();
    let request = f.node.ping(addr(1), f.now, &mut out);
    let (to, query) = sent(&out).remove(0);
    assert_eq!(to, addr(1));
    let their = id(0x77);
    let reply = Message::response(
        query.transaction_id.clone(),
        Response {
            id: their,
            ..Response::default()
        },
    )
    .to_bytes();

    // From the wrong address: ignored (and counted as junk).
    assert!(f.feed(addr(2), &reply).is_empty());
    // From the right one: done.
    assert_eq!(
        f.feed(addr(1), &reply),
        vec![Action::PingDone {
            request,
            result: Ok(their)
        }]
    );
    assert_eq!(
        f.node.table().get(&their).map(|e| e.node.addr),
        Some(addr(1))
    );
    // A replay is dropped.
    assert!(f.feed(addr(1), &reply).is_empty());

    let request = f.node.ping(addr(3), f.now, &mut Vec::new());
    assert!(f.tick(Duration::from_millis(1999)).is_empty());
    assert_eq!(
        f.tick(Duration::from_secs(2)),
        vec![Action::PingDone {
            request,
            result: Err(QueryFailure::Timeout)
        }]
    );
    assert_eq!(f.node.stats().pending_queries, 0);
}

#[test]
fn idle_bucket_is_refreshed_with_a_find_node() {
    let mut f = Fixture::new();
    f.ask(addr(1), ping(0x22));
    assert!(
        sent(&f.tick(Duration::from_secs(60))).is_empty(),
        "not idle yet"
    );
    let queries = sent(&f.tick(REFRESH_AFTER));
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].0, addr(1));
    assert!(matches!(
        queries[0].1.body,
        Body::Query(Query::FindNode { .. })
    ));
}

#[test]
fn full_bucket_pings_its_questionable_nodes_before_replacing() {
    let mut f = Fixture::new();
    // Fill the table's first bucket (ids far from ours, first bit differs) with 8 queriers,
    // then one near node so that bucket is no longer the one that splits.
    let far = |i: u8| {
        let mut bytes = [0u8; 20];
        bytes[0] = 0x80;
        bytes[19] = i;
        NodeId::from_bytes(bytes)
    };
    for i in 0..8u8 {
        f.ask(addr(100 + u16::from(i)), Query::Ping { id: far(i) });
    }
    f.ask(addr(99), ping(0x10));
    let newcomer = Message::query("tx", Query::Ping { id: far(50) }).to_bytes();
    let queries: Vec<_> = sent(&f.feed(addr(200), &newcomer))
        .into_iter()
        .filter(|(_, m)| matches!(m.body, Body::Query(Query::Ping { .. })))
        .map(|(to, _)| to)
        .collect();
    assert!(
        !queries.is_empty() && queries.iter().all(|to| (100..108).contains(&to.port())),
        "{queries:?}"
    );
    // The pinged nodes never answer: after two timeouts each, the newcomer takes a place.
    for _ in 0..3 {
        f.tick(Duration::from_secs(3));
        f.feed_at(Duration::from_secs(3), addr(200), &newcomer);
        f.tick(Duration::from_secs(6));
    }
    assert!(
        f.node.table().get(&far(50)).is_some(),
        "newcomer took the place of a node that failed"
    );
}

#[test]
fn own_lookup_includes_peers_announced_to_us() {
    let mut f = Fixture::new();
    let them = id(0x22);
    let hash = hash(0x33);
    let token = f.token(addr(1), them, hash);
    f.ask(addr(1), announce(them, hash, 6000, false, token));
    let mut out = Vec::new();
    let request = f.node.get_peers(hash, f.now, &mut out);
    // The querier is in our table and is asked; it never answers.
    out.extend(f.tick(Duration::from_secs(5)));
    let done = out.iter().find_map(|a| match a {
        Action::LookupDone {
            request: r, peers, ..
        } if *r == request => Some(peers.clone()),
        _ => None,
    });
    assert_eq!(done, Some(vec![addr(6000)]));
}
