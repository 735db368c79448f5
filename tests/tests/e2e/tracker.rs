//! rill-tracker in process on port 0, over HTTP and UDP.

use std::net::SocketAddr;

use rill_common::tracker::AnnounceEvent;
use rill_common::tracker::http::{AnnounceRequest, AnnounceResponse, ScrapeResponse};
use rill_common::{InfoHash, PeerId};
use rill_tests::{HttpReply, TestTracker};
use rill_tracker::Config;

fn hash(n: u8) -> InfoHash {
    InfoHash::from_bytes([n; 20])
}

fn peer_id(n: u8) -> PeerId {
    let mut id = *b"-RL0100-000000000000";
    id[19] = b'a' + n;
    PeerId::from_bytes(id)
}

fn announce_query(info_hash: InfoHash, peer: u8, port: u16, left: u64) -> AnnounceRequest {
    let mut request = AnnounceRequest::new(info_hash, peer_id(peer), port);
    request.left = left;
    request
}

fn http_announce(tracker: &TestTracker, request: &AnnounceRequest) -> AnnounceResponse {
    let reply = tracker.get(&format!("/announce?{}", request.to_query()));
    decode_announce(&reply)
}

fn decode_announce(reply: &HttpReply) -> AnnounceResponse {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
    AnnounceResponse::from_bytes(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.text()))
}

fn success(response: AnnounceResponse) -> rill_common::tracker::http::AnnounceReply {
    match response {
        AnnounceResponse::Success(reply) => reply,
        AnnounceResponse::Failure(reason) => panic!("announce failed: {reason}"),
    }
}

fn addrs(reply: &rill_common::tracker::http::AnnounceReply) -> Vec<SocketAddr> {
    reply.peers.iter().map(|p| p.addr).collect()
}

#[test]
fn two_http_peers_see_each_other() {
    let tracker = TestTracker::start(Config::default());
    let first = success(http_announce(
        &tracker,
        &announce_query(hash(1), 1, 6001, 100),
    ));
    assert!(first.peers.is_empty());
    assert_eq!((first.complete, first.incomplete), (Some(0), Some(1)));
    let second = success(http_announce(
        &tracker,
        &announce_query(hash(1), 2, 6002, 0),
    ));
    assert_eq!(addrs(&second), ["127.0.0.1:6001".parse().unwrap()]);
    assert_eq!((second.complete, second.incomplete), (Some(1), Some(1)));
    let first = success(http_announce(
        &tracker,
        &announce_query(hash(1), 1, 6001, 100),
    ));
    assert_eq!(addrs(&first), ["127.0.0.1:6002".parse().unwrap()]);
}
