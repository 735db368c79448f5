use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::node::{v4, v6};
use super::*;

const A: NodeId = NodeId::from_bytes(*b"abcdefghij0123456789");
const M: NodeId = NodeId::from_bytes(*b"mnopqrstuvwxyz123456");
const M_HASH: InfoHash = InfoHash::from_bytes(*b"mnopqrstuvwxyz123456");

/// Decodes `bytes` to `message` and encodes `message` back to exactly `bytes`.
fn known_answer(bytes: &[u8], message: Message) {
    assert_eq!(Message::from_bytes(bytes), Ok(message.clone()));
    assert_eq!(
        String::from_utf8_lossy(&message.to_bytes()),
        String::from_utf8_lossy(bytes)
    );
}

fn response(id: NodeId) -> Response {
    Response {
        id,
        ..Response::default()
    }
}

// The example packets of BEP 5, byte for byte.

#[test]
fn bep5_ping() {
    known_answer(
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        Message::query("aa", Query::Ping { id: A }),
    );
    known_answer(
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        Message::response("aa", response(M)),
    );
}

#[test]
fn bep5_find_node() {
    known_answer(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        Message::query(
            "aa",
            Query::FindNode {
                id: A,
                target: M,
                want: Want::default(),
            },
        ),
    );
    // BEP 5's reply shows "def456..." as a placeholder: nine bytes, not compact node info.
    assert_eq!(
        Message::from_bytes(b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re"),
        Err(KrpcError::Ragged {
            key: "nodes",
            source: CompactError { len: 9, entry: 26 }
        })
    );
    // The same reply with one real node.
    known_answer(
        b"d1:rd2:id20:0123456789abcdefghij5:nodes26:mnopqrstuvwxyz123456\x7f\x00\x00\x01\x1a\xe1e1:t2:aa1:y1:re",
        Message::response(
            "aa",
            Response {
                nodes: vec![CompactNode {
                    id: M,
                    addr: "127.0.0.1:6881".parse().unwrap(),
                }],
                ..response(NodeId::from_bytes(*b"0123456789abcdefghij"))
            },
        ),
    );
}

#[test]
fn bep5_get_peers() {
    known_answer(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        Message::query(
            "aa",
            Query::GetPeers {
                id: A,
                info_hash: M_HASH,
                want: Want::default(),
            },
        ),
    );
    known_answer(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        Message::response(
            "aa",
            Response {
                values: vec![
                    v4(Ipv4Addr::new(97, 120, 106, 101), 0x2e75),
                    v4(Ipv4Addr::new(105, 100, 104, 116), 0x6e6d),
                ],
                token: Some(b"aoeusnth".to_vec()),
                ..response(A)
            },
        ),
    );
    assert_eq!(
        Message::from_bytes(
            b"d1:rd2:id20:abcdefghij01234567895:nodes9:def456...5:token8:aoeusnthe1:t2:aa1:y1:re"
        ),
        Err(KrpcError::Ragged {
            key: "nodes",
            source: CompactError { len: 9, entry: 26 }
        })
    );
}

#[test]
fn bep5_announce_peer() {
    known_answer(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        Message::query(
            "aa",
            Query::AnnouncePeer {
                id: A,
                info_hash: M_HASH,
                port: 6881,
                implied_port: true,
                token: b"aoeusnth".to_vec(),
            },
        ),
    );
    known_answer(
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        Message::response("aa", response(M)),
    );
}

#[test]
fn bep5_error() {
    known_answer(
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        Message::error("aa", ERROR_GENERIC, "A Generic Error Ocurred"),
    );
}

#[test]
fn extensions_round_trip_bytes() {
    // BEP 32 want and nodes6, BEP 42 ip, BEP 43 ro, and a version.
    let mut query = Message::query(
        "t1",
        Query::GetPeers {
            id: A,
            info_hash: M_HASH,
            want: Want { v4: true, v6: true },
        },
    );
    query.read_only = true;
    query.version = Some(b"RL01".to_vec());
    known_answer(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:get_peers2:roi1e1:t2:t11:v4:RL011:y1:qe",
        query,
    );

    let mut reply = Message::response(
        "t1",
        Response {
            nodes: vec![CompactNode {
                id: M,
                addr: "1.2.3.4:258".parse().unwrap(),
            }],
            nodes6: vec![CompactNode {
                id: A,
                addr: "[::1]:258".parse().unwrap(),
            }],
            ..response(A)
        },
    );
    reply.ip = Some("10.0.0.1:6881".parse().unwrap());
    let mut expected = b"d2:ip6:\x0a\x00\x00\x01\x1a\xe11:rd2:id20:abcdefghij01234567895:nodes26:mnopqrstuvwxyz123456\x01\x02\x03\x04\x01\x026:nodes638:abcdefghij0123456789".to_vec();
    expected.extend_from_slice(&[0; 15]);
    expected.extend_from_slice(b"\x01\x01\x02e1:t2:t11:y1:re");
    known_answer(&expected, reply);
}

#[test]
fn unsorted_and_extra_keys_are_accepted() {
    let bytes = b"d1:y1:q1:t2:aa1:q4:ping5:extrai7e1:ad2:id20:abcdefghij01234567893:fooli1eeee";
    assert_eq!(
        Message::from_bytes(bytes),
        Ok(Message::query("aa", Query::Ping { id: A }))
    );
}

#[test]
fn unknown_method_surfaces_transaction_and_method() {
    let bytes = b"d1:ad2:id20:abcdefghij01234567891:k3:keye1:q3:get1:t2:xy1:y1:qe";
    let message = Message::from_bytes(bytes).unwrap();
    assert_eq!(message.transaction_id, b"xy");
    let Body::Query(query) = message.body else {
        panic!("not a query")
    };
    assert_eq!(query.method(), b"get");
    assert_eq!(query.id(), Some(A));
    assert_eq!(
        query,
        Query::Other {
            method: b"get".to_vec(),
            id: Some(A)
        }
    );
}

#[test]
fn bad_known_query_keeps_transaction_for_a_203_reply() {
    let bytes = b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe";
    assert_eq!(
        Message::from_bytes(bytes),
        Err(KrpcError::InvalidQuery {
            transaction_id: b"aa".to_vec(),
            method: b"ping".to_vec(),
            source: Box::new(KrpcError::BadId { key: "id", len: 3 }),
        })
    );
    let bytes = b"d1:t2:aa1:y1:qe";
    assert_eq!(
        Message::from_bytes(bytes),
        Err(KrpcError::InvalidQuery {
            transaction_id: b"aa".to_vec(),
            method: Vec::new(),
            source: Box::new(KrpcError::MissingKey("q")),
        })
    );
    let port = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe";
    let Err(KrpcError::InvalidQuery { source, .. }) = Message::from_bytes(port) else {
        panic!("port accepted")
    };
    assert_eq!(*source, KrpcError::BadPort(70000));
}

#[test]
fn errors_say_what_is_wrong() {
    let cases: &[(&[u8], KrpcError)] = &[
        (b"d1:y1:re", KrpcError::MissingKey("t")),
        (b"d1:t2:aae", KrpcError::MissingKey("y")),
        (
            b"d1:ti1e1:y1:re",
            KrpcError::WrongType {
                key: "t",
                expected: "string",
                found: "integer",
            },
        ),
        (
            b"le",
            KrpcError::WrongType {
                key: "message",
                expected: "dictionary",
                found: "list",
            },
        ),
        (b"d1:t2:aa1:y1:ze", KrpcError::UnknownType("z".into())),
        (b"d1:t2:aa1:y1:re", KrpcError::MissingKey("r")),
        (
            b"d1:rd2:id19:abcdefghij012345678e1:t2:aa1:y1:re",
            KrpcError::BadId { key: "id", len: 19 },
        ),
        (
            b"d1:rd2:id20:abcdefghij01234567896:valuesl3:abcee1:t2:aa1:y1:re",
            KrpcError::BadPeer(3),
        ),
        (
            b"d1:rd2:id20:abcdefghij01234567896:valuesi1ee1:t2:aa1:y1:re",
            KrpcError::WrongType {
                key: "values",
                expected: "list",
                found: "integer",
            },
        ),
        (b"d1:eli201ee1:t2:aa1:y1:ee", KrpcError::BadErrorList),
        (b"d1:t2:aa1:y1:ee", KrpcError::MissingKey("e")),
        (
            b"d2:ip3:abc1:rd2:id20:abcdefghij0123456789e1:t2:aa1:y1:re",
            KrpcError::BadIp(3),
        ),
        (
            b"d1:t17:aaaaaaaaaaaaaaaaa1:y1:re",
            KrpcError::TransactionIdTooLong(17),
        ),
        (
            b"d1:t2:aa",
            KrpcError::Bencode(bencode::DecodeError::UnexpectedEnd(8)),
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(
            Message::from_bytes(bytes).as_ref(),
            Err(error),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(
        KrpcError::BadId { key: "id", len: 19 }.to_string(),
        "`id` is 19 bytes, not 20"
    );
}

#[test]
fn caps_are_enforced() {
    let big = vec![b'x'; MAX_PACKET_LEN + 1];
    assert_eq!(
        Message::from_bytes(&big),
        Err(KrpcError::TooLarge(MAX_PACKET_LEN + 1))
    );

    let values = vec![v4(Ipv4Addr::LOCALHOST, 1); MAX_VALUES + 1];
    let message = Message::response(
        "aa",
        Response {
            values,
            ..response(A)
        },
    );
    assert_eq!(
        Message::from_bytes(&message.to_bytes()),
        Err(KrpcError::TooMany {
            key: "values",
            count: MAX_VALUES + 1,
            max: MAX_VALUES
        })
    );

    let node = CompactNode {
        id: A,
        addr: v6(Ipv6Addr::LOCALHOST, 1),
    };
    let message = Message::response(
        "aa",
        Response {
            nodes6: vec![node; MAX_NODES + 1],
            ..response(A)
        },
    );
    assert_eq!(
        Message::from_bytes(&message.to_bytes()),
        Err(KrpcError::TooMany {
            key: "nodes6",
            count: MAX_NODES + 1,
            max: MAX_NODES
        })
    );
    let message = Message::response(
        "aa",
        Response {
            nodes6: vec![node; MAX_NODES],
            ..response(A)
        },
    );
    assert!(Message::from_bytes(&message.to_bytes()).is_ok());
}

#[test]
fn announce_with_implied_port_may_omit_port() {
    let bytes = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe";
    let Ok(Message {
        body: Body::Query(Query::AnnouncePeer {
            port, implied_port, ..
        }),
        ..
    }) = Message::from_bytes(bytes)
    else {
        panic!("refused")
    };
    assert_eq!((port, implied_port), (0, true));
    let without = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe";
    let Err(KrpcError::InvalidQuery { source, .. }) = Message::from_bytes(without) else {
        panic!("accepted")
    };
    assert_eq!(*source, KrpcError::MissingKey("port"));
}

// Property tests.

fn node_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 20]>().prop_map(NodeId::from_bytes)
}

fn want() -> impl Strategy<Value = Want> {
    any::<(bool, bool)>().prop_map(|(v4, v6)| Want { v4, v6 })
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        any::<([u8; 4], u16)>().prop_map(|(ip, port)| v4(ip.into(), port)),
        any::<([u8; 16], u16)>().prop_map(|(ip, port)| v6(ip.into(), port)),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

fn query() -> impl Strategy<Value = Query> {
    let hash = any::<[u8; 20]>().prop_map(InfoHash::from_bytes);
    prop_oneof![
        node_id().prop_map(|id| Query::Ping { id }),
        (node_id(), node_id(), want()).prop_map(|(id, target, want)| Query::FindNode {
            id,
            target,
            want
        }),
        (node_id(), hash.clone(), want()).prop_map(|(id, info_hash, want)| Query::GetPeers {
            id,
            info_hash,
            want
        }),
        (node_id(), hash, any::<u16>(), any::<bool>(), bytes(20)).prop_map(
            |(id, info_hash, port, implied_port, token)| Query::AnnouncePeer {
                id,
                info_hash,
                port,
                implied_port,
                token
            }
        ),
        ("[a-z_]{1,20}", proptest::option::of(node_id()))
            .prop_filter("known method", |(m, _)| {
                !["ping", "find_node", "get_peers", "announce_peer"].contains(&m.as_str())
            })
            .prop_map(|(method, id)| Query::Other {
                method: method.into_bytes(),
                id
            }),
    ]
}

fn response_strategy() -> impl Strategy<Value = Response> {
    let v4_node = (node_id(), any::<([u8; 4], u16)>()).prop_map(|(id, (ip, port))| CompactNode {
        id,
        addr: v4(ip.into(), port),
    });
    let v6_node = (node_id(), any::<([u8; 16], u16)>()).prop_map(|(id, (ip, port))| CompactNode {
        id,
        addr: v6(ip.into(), port),
    });
    (
        node_id(),
        proptest::collection::vec(v4_node, 0..10),
        proptest::collection::vec(v6_node, 0..10),
        proptest::collection::vec(addr(), 0..10),
        proptest::option::of(bytes(20)),
    )
        .prop_map(|(id, nodes, nodes6, values, token)| Response {
            id,
            nodes,
            nodes6,
            values,
            token,
        })
}

fn message() -> impl Strategy<Value = Message> {
    let body = prop_oneof![
        query().prop_map(Body::Query),
        response_strategy().prop_map(Body::Response),
        (any::<i64>(), ".{0,40}").prop_map(|(code, message)| Body::Error { code, message }),
    ];
    (
        bytes(MAX_TRANSACTION_ID_LEN),
        proptest::option::of(bytes(8)),
        proptest::option::of(addr()),
        any::<bool>(),
        body,
    )
        .prop_map(|(transaction_id, version, ip, read_only, body)| Message {
            transaction_id,
            version,
            ip,
            read_only,
            body,
        })
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(message in message()) {
        prop_assert_eq!(Message::from_bytes(&message.to_bytes()), Ok(message));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in bytes(256)) {
        let _ = Message::from_bytes(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(message in message(),
                                    mutations in proptest::collection::vec(mutation(), 1..6)) {
        let mut bytes = message.to_bytes();
        for mutation in mutations {
            let len = bytes.len().max(1);
            match mutation {
                Mutation::Set(i, b) => {
                    if let Some(byte) = bytes.get_mut(i % len) {
                        *byte = b;
                    }
                }
                Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Mutation::Remove(i) => {
                    if !bytes.is_empty() {
                        bytes.remove(i % len);
                    }
                }
                Mutation::Truncate(i) => bytes.truncate(i % len),
            }
        }
        // Whatever decodes must encode to something that decodes to the same message.
        if let Ok(decoded) = Message::from_bytes(&bytes) {
            prop_assert_eq!(Message::from_bytes(&decoded.to_bytes()), Ok(decoded));
        }
    }
}

#[test]
fn nodes_are_encoded_by_address_family() {
    let v4_node = CompactNode {
        id: A,
        addr: v4(Ipv4Addr::new(1, 2, 3, 4), 5),
    };
    let v6_node = CompactNode {
        id: M,
        addr: v6(Ipv6Addr::LOCALHOST, 6),
    };
    let misfiled = Message::response(
        "aa",
        Response {
            nodes: vec![v6_node],
            nodes6: vec![v4_node],
            ..response(A)
        },
    );
    let filed = Message::response(
        "aa",
        Response {
            nodes: vec![v4_node],
            nodes6: vec![v6_node],
            ..response(A)
        },
    );
    assert_eq!(misfiled.to_bytes(), filed.to_bytes());
    assert_eq!(Message::from_bytes(&misfiled.to_bytes()), Ok(filed));
}
