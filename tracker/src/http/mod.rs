//! The HTTP front end (axum): `/announce` and `/scrape` (BEP 3, 7, 23, 48), `/health`, `/stats`,
//! `/metrics` (Prometheus, [`metrics`]).
//!
//! Invariants:
//! - Queries are taken raw and parsed by `rill_common::tracker::http` (info hashes are
//!   byte-wise percent-encoded, which axum's `Query` cannot read).
//! - Every announce or scrape gets HTTP 200 with a bencoded body and `Content-Type:
//!   text/plain`: a failure is a `failure reason`, never an HTML page or an error status.
//! - Replies are compact (BEP 23) unless the client sends `compact=0`: BEP 23 lets a tracker
//!   answer compact regardless, and every current client asks for it; `peers` is always
//!   present, IPv6 peers go to `peers6` (BEP 7).
//! - The client's address is resolved by [`address::client_ip`]; `ip=` is believed only with
//!   `announce.allow_ip_param`, and never in private mode.
//! - Private mode: `/announce/<passkey>` and `/scrape/<passkey>`, or `/<passkey>/announce` and
//!   `/<passkey>/scrape` (the form from which clients derive a scrape URL by BEP 48's
//!   convention, since the last segment is `announce`). The passkey is the raw path
//!   segment (not percent-decoded: a passkey is 32 letters and digits, so any `%`, `/`, quote
//!   or other byte makes it malformed), validated before any lookup; a refusal is a
//!   `failure reason` like any other.
//! - `tracker id` and `warning message` are added to every successful announce reply when
//!   configured.

pub mod address;
pub mod metrics;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use rill_common::tracker::http::{
    AnnounceReply, AnnounceRequest, AnnounceResponse, ScrapeReply, ScrapeRequest, ScrapeResponse,
    ScrapeStats,
};

use tracing::debug;

use crate::service::{Announce, ErrorKind, Protocol, RequestKind, Service};

/// The routes, over the shared service.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/announce", get(announce))
        .route("/announce/{*passkey}", get(announce))
        .route("/scrape", get(scrape))
        .route("/scrape/{*passkey}", get(scrape))
        .route("/{passkey}/announce", get(announce))
        .route("/{passkey}/scrape", get(scrape))
        .route("/health", get(health))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics::metrics))
        .with_state(service)
}

async fn health() -> &'static str {
    "ok"
}

async fn stats(State(service): State<Arc<Service>>) -> Json<crate::service::Stats> {
    Json(service.stats())
}

async fn announce(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let raw = uri.query().unwrap_or_default().as_bytes();
    let passkey = passkey_of(uri.path(), "/announce");
    bencoded(answer_announce(
        &service,
        peer,
        &headers,
        passkey,
        raw,
        Instant::now(),
    ))
}

async fn scrape(State(service): State<Arc<Service>>, uri: Uri) -> Response {
    let raw = uri.query().unwrap_or_default().as_bytes();
    let passkey = passkey_of(uri.path(), "/scrape");
    bencoded(answer_scrape(&service, passkey, raw))
}

/// The raw passkey segment of `/announce/<passkey>` or `/<passkey>/announce` (`None` for the
/// bare `/announce`).
fn passkey_of<'a>(path: &'a str, route: &str) -> Option<&'a str> {
    match path.strip_prefix(route) {
        Some(rest) => rest.strip_prefix('/'),
        None => path.strip_suffix(route)?.strip_prefix('/'),
    }
}

fn bencoded(body: Vec<u8>) -> Response {
    ([(CONTENT_TYPE, "text/plain")], body).into_response()
}

/// The bencoded reply to an announce with raw query `raw` from socket peer `peer`, with
/// the passkey of its path, if any.
pub fn answer_announce(
    service: &Service,
    peer: SocketAddr,
    headers: &HeaderMap,
    passkey: Option<&str>,
    raw: &[u8],
    now: Instant,
) -> Vec<u8> {
    let failure = |kind: ErrorKind, reason: String| {
        debug!(%peer, "announce refused: {reason}");
        let counters = service.counters();
        counters.failure(Protocol::Http, RequestKind::Announce, kind);
        AnnounceResponse::Failure(reason).to_bytes(true, false)
    };
    let request = match AnnounceRequest::from_query(raw) {
        Ok(request) => request,
        Err(e) => return failure(metrics::kind_of(&e), e.to_string()),
    };
    let config = service.config();
    let mut ip = address::client_ip(peer.ip(), headers, &config.http.trusted_proxies);
    if service.trusts_ip_param() {
        // Only addresses: Rill resolves no host names on a client's behalf.
        if let Some(claimed) = request.ip.as_deref().and_then(|t| t.parse::<IpAddr>().ok()) {
            ip = claimed.to_canonical();
        }
    }
    let announce = Announce {
        info_hash: request.info_hash,
        peer_id: request.peer_id,
        addr: SocketAddr::new(ip, request.port),
        event: request.event,
        uploaded: request.uploaded,
        downloaded: request.downloaded,
        left: request.left,
        numwant: request.numwant,
    };
    let granted = match service.announce(passkey, &announce, Protocol::Http, now) {
        Ok(granted) => granted,
        Err(refusal) => return failure(refusal.kind, refusal.reason),
    };
    let mut peers = granted.reply.peers_v4;
    peers.extend(granted.reply.peers_v6);
    AnnounceResponse::Success(AnnounceReply {
        interval: granted.interval,
        min_interval: Some(granted.min_interval),
        complete: Some(granted.reply.complete),
        incomplete: Some(granted.reply.incomplete),
        tracker_id: config
            .announce
            .tracker_id
            .as_ref()
            .map(|id| id.clone().into_bytes()),
        warning_message: config.announce.warning_message.clone(),
        peers,
    })
    .to_bytes(wants_compact(raw), request.no_peer_id)
}

/// The bencoded reply to a scrape with raw query `raw` and the passkey of its path, if any.
pub fn answer_scrape(service: &Service, passkey: Option<&str>, raw: &[u8]) -> Vec<u8> {
    let failure = |kind: ErrorKind, reason: String| {
        debug!("scrape refused: {reason}");
        let counters = service.counters();
        counters.failure(Protocol::Http, RequestKind::Scrape, kind);
        ScrapeResponse::Failure(reason).to_bytes()
    };
    let request = match ScrapeRequest::from_query(raw, service.config().scrape.max_hashes) {
        Ok(request) => request,
        Err(e) => return failure(metrics::kind_of(&e), e.to_string()),
    };
    let counts = if request.info_hashes.is_empty() {
        service.scrape_all(passkey, Protocol::Http)
    } else {
        service
            .scrape(passkey, &request.info_hashes, Protocol::Http)
            .map(|counts| request.info_hashes.iter().copied().zip(counts).collect())
    };
    let counts = match counts {
        Ok(counts) => counts,
        Err(refusal) => return failure(refusal.kind, refusal.reason),
    };
    let files = counts
        .into_iter()
        .map(|(hash, c)| {
            let stats = ScrapeStats {
                complete: c.complete,
                downloaded: c.downloaded,
                incomplete: c.incomplete,
                name: None,
            };
            (hash, stats)
        })
        .collect();
    ScrapeResponse::Success(ScrapeReply {
        files,
        min_request_interval: None,
    })
    .to_bytes()
}

/// Compact unless the first `compact` parameter is `0` (the codec reads only `compact=1`, so
/// it cannot tell an absent parameter from `compact=0`).
fn wants_compact(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'&')
        .find_map(|segment| segment.strip_prefix(b"compact="))
        .is_none_or(|value| value != b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_unless_asked_otherwise() {
        assert!(wants_compact(b""));
        assert!(wants_compact(b"info_hash=x&compact=1"));
        assert!(wants_compact(b"port=1&compactx=0"));
        assert!(!wants_compact(b"port=1&compact=0"));
        assert!(!wants_compact(b"compact=0&compact=1"));
    }

    #[test]
    fn passkey_is_the_raw_rest_of_the_path() {
        assert_eq!(passkey_of("/announce", "/announce"), None);
        assert_eq!(passkey_of("/announce/abc", "/announce"), Some("abc"));
        assert_eq!(passkey_of("/announce/a/b", "/announce"), Some("a/b"));
        assert_eq!(passkey_of("/announce/%27", "/announce"), Some("%27"));
        assert_eq!(passkey_of("/scrape/k", "/scrape"), Some("k"));
        assert_eq!(passkey_of("/k/scrape", "/scrape"), Some("k"));
        assert_eq!(passkey_of("/k/announce", "/announce"), Some("k"));
    }
}
