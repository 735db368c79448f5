//! Every query type answered, and errors for bad ones (BEP 5).

use std::net::SocketAddr;

use rill_common::krpc::{ERROR_METHOD_UNKNOWN, ERROR_PROTOCOL, Query, Want};

use super::{Fixture, addr, announce, error_code, get_peers, hash, id, response, sent};

#[test]
fn answers_every_query_type() {
    let mut f = Fixture::new();
    let them = id(0x22);
    let hash = hash(0x33);

    let pong = f.ask(addr(1), Query::Ping { id: them });
    assert_eq!(response(pong.clone()).id, f.node.id());
    assert_eq!(pong.ip, Some(addr(1)), "BEP 42 ip echoed");
    assert_eq!(f.node.table().len(), 1, "querier added");

    let find = Query::FindNode {
        id: id(0x44),
        target: them,
        want: Want::default(),
    };
    let found = response(f.ask(addr(2), find));
    assert_eq!(found.nodes.first().map(|n| n.id), Some(them));

    let peers = response(f.ask(addr(1), get_peers(them, hash)));
    assert!(peers.values.is_empty());
    assert!(!peers.nodes.is_empty());
    let token = peers.token.expect("get_peers gives a token");

    let ack = f.ask(addr(1), announce(them, hash, 6881, false, token.clone()));
    assert_eq!(response(ack).id, f.node.id());
    let ack = f.ask(addr(1), announce(them, hash, 1, true, token));
    assert_eq!(response(ack).id, f.node.id());

    let peers = response(f.ask(addr(9), get_peers(id(0x55), hash)));
    let mut values = peers.values;
    values.sort();
    assert_eq!(
        values,
        vec![addr(1), addr(6881)],
        "implied_port took the UDP port"
    );
}

#[test]
fn bad_token_unknown_method_and_bad_arguments_get_errors() {
    let mut f = Fixture::new();
    let them = id(0x22);
    let hash = hash(0x33);
    let bad = f.ask(addr(1), announce(them, hash, 80, false, b"nope".to_vec()));
    assert_eq!(error_code(&bad), ERROR_PROTOCOL);

    // A token given to another IP is refused.
    let token = f.token(addr(1), them, hash);
    let other_ip = SocketAddr::from(([127, 0, 0, 2], 1));
    let stolen = f.ask(other_ip, announce(them, hash, 80, false, token));
    assert_eq!(error_code(&stolen), ERROR_PROTOCOL);

    let unknown = f.ask(
        addr(1),
        Query::Other {
            method: b"sample_infohashes".to_vec(),
            id: Some(them),
        },
    );
    assert_eq!(error_code(&unknown), ERROR_METHOD_UNKNOWN);

    // Known method, missing argument: 203 with the transaction id kept.
    let out = f.feed(
        addr(1),
        b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:xy1:y1:qe",
    );
    let replies = sent(&out);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].1.transaction_id, b"xy");
    assert_eq!(error_code(&replies[0].1), ERROR_PROTOCOL);
}
