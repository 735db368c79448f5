//! The shell on real loopback sockets: a network of 30+ nodes, floods, persistence.
//! Every wait is bounded by a timeout so a stuck node fails the test instead of hanging.

use super::*;
use rill_common::InfoHash;
use std::net::{Ipv4Addr, SocketAddrV4};

const LIMIT: Duration = Duration::from_secs(60);

fn loopback() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
}

fn config(bootstrap: Option<SocketAddr>) -> DhtConfig {
    let mut config = DhtConfig::new(loopback());
    config.bootstrap = bootstrap.iter().map(ToString::to_string).collect();
    config.node.query_timeout = Duration::from_secs(2);
    config
}

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {LIMIT:?}"),
    }
}

async fn network(size: usize) -> Vec<Dht> {
    let first = Dht::start(config(None)).await.unwrap();
    let seed = first.local_addr();
    let mut nodes = vec![first];
    for _ in 1..size {
        let node = Dht::start(config(Some(seed))).await.unwrap();
        bounded("bootstrap", node.wait_bootstrapped())
            .await
            .unwrap();
        nodes.push(node);
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_announced_on_one_node_is_found_from_every_other() {
    let nodes = network(32).await;
    for node in &nodes {
        assert!(node.stats().nodes >= 1, "{:?}", node.stats());
    }
    let hash = InfoHash::from_bytes([0xC3; 20]);
    let outcome = bounded("announce", nodes[9].announce(hash, Some(4242)))
        .await
        .unwrap();
    assert!(
        outcome.announced >= 3,
        "announced to {} nodes",
        outcome.announced
    );
    let expected = SocketAddr::from(([127, 0, 0, 1], 4242));
    for (i, node) in nodes.iter().enumerate() {
        if i == 9 {
            continue;
        }
        let peers = bounded("get_peers", node.get_peers(hash)).await.unwrap();
        assert_eq!(peers, vec![expected], "from node {i}");
    }
    // implied_port: the announcer's UDP port is stored.
    let implied = InfoHash::from_bytes([0xC4; 20]);
    bounded("announce", nodes[3].announce(implied, None))
        .await
        .unwrap();
    let mut found = bounded("search", nodes[20].search(implied)).await.unwrap();
    let first = bounded("first peer", found.recv()).await;
    assert_eq!(first, Some(nodes[3].local_addr()));
    for node in nodes {
        bounded("shutdown", node.shutdown()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_find_node() {
    let nodes = network(4).await;
    let id = bounded("ping", nodes[1].ping(nodes[2].local_addr()))
        .await
        .unwrap();
    assert_eq!(id, nodes[2].id());
    let found = bounded("find_node", nodes[0].find_node(nodes[3].id()))
        .await
        .unwrap();
    assert_eq!(found.first().map(|n| n.id), Some(nodes[3].id()));
    // Nobody listens on a socket we bound and then dropped: the ping times out.
    let silent = std::net::UdpSocket::bind(loopback()).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    drop(silent);
    let error = bounded("ping timeout", nodes[0].ping(silent_addr))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DhtError::Query(QueryFailure::Timeout)),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_flood_does_not_stop_it_answering() {
    let target = Dht::start(config(None)).await.unwrap();
    let other = Dht::start(config(None)).await.unwrap();
    let flooder = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    let junk: [&[u8]; 6] = [
        b"d1:t2:aa1:y1:q",
        b"\xff\x00garbage",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t99999999:aa1:y1:qe",
        b"d1:ad2:id3:abce1:q9:find_node1:t2:aa1:y1:qe",
        b"d1:ad2:id20:abcdefghij0123456789e1:q6:vote!!1:t2:aa1:y1:qe",
        b"llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll",
    ];
    for round in 0..2000 {
        let packet = junk[round % junk.len()];
        flooder.send_to(packet, target.local_addr()).await.unwrap();
    }
    // The kernel may have dropped packets (the ping among them) while the socket's receive
    // buffer was full of junk, as it would on a real network: a few tries are allowed.
    let mut answer = None;
    for _ in 0..5 {
        if let Ok(id) = bounded("ping after flood", other.ping(target.local_addr())).await {
            answer = Some(id);
            break;
        }
    }
    let id = answer.expect("the node answers a ping after the flood");
    assert_eq!(id, target.id());
    let stats = target.stats();
    assert!(stats.packets_dropped > 0, "{stats:?}");
    assert!(
        stats.queries_answered <= 2 * u64::from(NodeConfig::default().rate_burst),
        "{stats:?}"
    );
    bounded("shutdown", target.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_is_saved_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dht.json");
    let nodes = network(6).await;
    let mut with_state = config(Some(nodes[0].local_addr()));
    with_state.state_file = Some(state.clone());
    let first = Dht::start(with_state.clone()).await.unwrap();
    bounded("bootstrap", first.wait_bootstrapped())
        .await
        .unwrap();
    let id = first.id();
    let known = bounded("nodes", first.nodes()).await.unwrap();
    assert!(known.len() >= 2, "{known:?}");
    bounded("shutdown", first.shutdown()).await.unwrap();
    assert!(state.exists());

    // Restart with no bootstrap node at all: the saved table is enough.
    let mut restart = with_state;
    restart.bootstrap.clear();
    let second = Dht::start(restart).await.unwrap();
    assert_eq!(second.id(), id, "the id is kept");
    let stats = bounded("bootstrap from saved", second.wait_bootstrapped())
        .await
        .unwrap();
    assert!(stats.nodes >= 2, "{stats:?}");
    bounded("shutdown", second.shutdown()).await.unwrap();

    // A corrupt file is ignored, not fatal.
    std::fs::write(&state, b"{not json").unwrap();
    let mut corrupt = config(Some(nodes[0].local_addr()));
    corrupt.state_file = Some(state.clone());
    let third = Dht::start(corrupt).await.unwrap();
    assert_ne!(third.id(), id);
    bounded("bootstrap", third.wait_bootstrapped())
        .await
        .unwrap();
    bounded("shutdown", third.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_saved_table_falls_back_to_configured_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dht.json");
    // A saved table whose only node is gone (a socket bound, then dropped).
    let gone = std::net::UdpSocket::bind(loopback()).unwrap();
    let gone_addr = gone.local_addr().unwrap();
    drop(gone);
    let saved = serde_json::json!({
        "id": "0101010101010101010101010101010101010101",
        "nodes": [{ "id": "0202020202020202020202020202020202020202", "addr": gone_addr }],
    });
    std::fs::write(&state, serde_json::to_vec(&saved).unwrap()).unwrap();
    let nodes = network(3).await;
    let mut config = config(Some(nodes[0].local_addr()));
    config.state_file = Some(state.clone());
    config.node.query_timeout = Duration::from_millis(300);
    let dht = Dht::start(config).await.unwrap();
    assert_eq!(
        dht.id(),
        NodeId::from_bytes([1; 20]),
        "the saved id is kept"
    );
    let stats = bounded("bootstrap", dht.wait_bootstrapped()).await.unwrap();
    assert!(stats.nodes >= 1, "{stats:?}");
    bounded("shutdown", dht.shutdown()).await.unwrap();
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let addrs: Vec<&str> = saved["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["addr"].as_str())
        .collect();
    assert!(!addrs.is_empty());
    assert!(
        !addrs.contains(&gone_addr.to_string().as_str()),
        "the dead node is not saved again"
    );
}

/// Whether `::1` can be bound here. Without it the IPv6 tests are skipped, except under CI
/// (`CI` set), which must have it unless `RILL_TEST_NO_IPV6` says the runner has no IPv6.
fn ipv6_loopback() -> bool {
    match std::net::UdpSocket::bind((std::net::Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => true,
        Err(error) => {
            let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
            let excused = std::env::var_os("RILL_TEST_NO_IPV6").is_some_and(|v| !v.is_empty());
            assert!(
                !ci || excused,
                "::1 cannot be bound ({error}) but CI is set: give the runner IPv6 loopback, \
                 or set RILL_TEST_NO_IPV6=1 where it has none"
            );
            println!("skipping: ::1 cannot be bound ({error})");
            false
        }
    }
}

fn loopback6() -> SocketAddr {
    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
}

/// A node on 127.0.0.1 and ::1 (BEP 32), bootstrapped from `bootstrap`.
fn dual_config(bootstrap: &[SocketAddr]) -> DhtConfig {
    let mut config = config(None);
    config.bind6 = Some(loopback6());
    config.bootstrap = bootstrap.iter().map(ToString::to_string).collect();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_announced_over_ipv6_is_found_from_other_nodes() {
    if !ipv6_loopback() {
        return;
    }
    let first = Dht::start(dual_config(&[])).await.unwrap();
    let seed6 = first.local_addr6().expect("an IPv6 socket");
    assert!(seed6.is_ipv6());
    let seeds = [first.local_addr(), seed6];
    let mut nodes = vec![first];
    for _ in 1..10 {
        let node = Dht::start(dual_config(&seeds)).await.unwrap();
        bounded("bootstrap", node.wait_bootstrapped())
            .await
            .unwrap();
        nodes.push(node);
    }
    // An IPv6-only node joins too, bootstrapped off the first node's IPv6 socket alone.
    let mut v6_only = config(Some(seed6));
    v6_only.bind = loopback6();
    let v6_only = Dht::start(v6_only).await.unwrap();
    assert!(v6_only.local_addr().is_ipv6());
    bounded("bootstrap", v6_only.wait_bootstrapped())
        .await
        .unwrap();
    let stats = v6_only.stats();
    assert!(
        stats.nodes6 >= 1 && stats.nodes == stats.nodes6,
        "{stats:?}"
    );

    let hash = InfoHash::from_bytes([0xD6; 20]);
    let outcome = bounded("announce", nodes[3].announce(hash, Some(4243)))
        .await
        .unwrap();
    assert!(outcome.announced >= 6, "{outcome:?}");
    let v4 = SocketAddr::from(([127, 0, 0, 1], 4243));
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 4243));
    for (i, node) in nodes.iter().enumerate() {
        if i == 3 {
            continue;
        }
        let mut peers = bounded("get_peers", node.get_peers(hash)).await.unwrap();
        peers.sort();
        assert_eq!(peers, vec![v4, v6], "from node {i}");
    }
    let peers = bounded("get_peers", v6_only.get_peers(hash)).await.unwrap();
    assert_eq!(peers, vec![v6], "the IPv6-only node finds the IPv6 peer");
    let known = bounded("nodes", nodes[5].nodes()).await.unwrap();
    assert!(known.iter().any(|n| n.addr.is_ipv6()), "{known:?}");

    // implied_port over IPv6: the announcer's IPv6 UDP port is stored.
    let implied = InfoHash::from_bytes([0xD7; 20]);
    bounded("announce", v6_only.announce(implied, None))
        .await
        .unwrap();
    let peers = bounded("get_peers", nodes[7].get_peers(implied))
        .await
        .unwrap();
    assert_eq!(peers, vec![v6_only.local_addr()]);
    bounded("shutdown", v6_only.shutdown()).await.unwrap();
    for node in nodes {
        bounded("shutdown", node.shutdown()).await.unwrap();
    }
}

#[tokio::test]
async fn two_sockets_of_one_family_are_refused() {
    let mut config = config(None);
    config.bind6 = Some(loopback());
    let error = Dht::start(config).await.unwrap_err();
    assert!(matches!(error, DhtError::Bind { .. }), "{error}");
}
