//! The UDP front end (BEP 15): connect, announce, scrape, error.
//!
//! Invariants and choices:
//! - Connection ids are stateless ([`connection::ConnectionIds`]): a keyed hash of the
//!   client's address and a two-minute window; the current and previous windows are accepted.
//! - A well-formed announce or scrape with a wrong or expired connection id gets an error
//!   packet ("connection id expired"), so the client connects again.
//! - A packet that does not decode is answered with an error packet only when its first
//!   8 bytes are a valid connection id for its source (the sender has proven its address and
//!   speaks BEP 15: a bad event code, a cut BEP 41 option, too many hashes); anything else
//!   (garbage, truncated packets, a connect without the magic number) is dropped silently,
//!   so the tracker never answers spoofed or random traffic with more than a connect reply.
//! - Announce replies carry only peers of the request's address family (BEP 15 has one peer
//!   size per packet); IPv4-mapped sources on a dual-stack socket count as IPv4.
//! - BEP 41 URL data is parsed by the codec and ignored in public mode.
//! - Several workers share the socket; each handles a datagram synchronously (no `.await`
//!   while a shard is locked).

pub mod connection;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use rill_common::tracker::udp::{
    Family, Request, Response, ScrapeStats, UdpError, request_transaction_id,
};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use self::connection::ConnectionIds;
use crate::TrackerError;
use crate::service::{Announce, Protocol, Service};

/// The biggest datagram read; longer ones are cut (and then fail to decode or lose options).
const RECV_BUFFER: usize = 2048;

/// Spawns the workers serving `socket` into `tasks`; they end when `stop` turns true.
pub fn spawn(
    socket: UdpSocket,
    service: Arc<Service>,
    stop: watch::Receiver<bool>,
    tasks: &mut JoinSet<Result<(), TrackerError>>,
) {
    let socket = Arc::new(socket);
    let ids = Arc::new(ConnectionIds::new(Instant::now()));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    for _ in 0..workers {
        let (socket, service, ids) = (Arc::clone(&socket), Arc::clone(&service), Arc::clone(&ids));
        let stop = crate::stopped(stop.clone());
        tasks.spawn(async move {
            tokio::pin!(stop);
            let mut buf = vec![0u8; RECV_BUFFER];
            loop {
                let received = tokio::select! {
                    () = &mut stop => return Ok(()),
                    received = socket.recv_from(&mut buf) => received,
                };
                let (len, src) = match received {
                    Ok(received) => received,
                    // ICMP errors from earlier sends surface here on some systems: not fatal.
                    Err(e) => {
                        debug!("UDP receive: {e}");
                        continue;
                    }
                };
                let packet = buf.get(..len).unwrap_or_default();
                if let Some(reply) = answer(&service, &ids, packet, src, Instant::now())
                    && let Err(e) = socket.send_to(&reply, src).await
                {
                    debug!("UDP send to {src}: {e}");
                }
            }
        });
    }
}

/// The reply to one datagram from `src`, or `None` to drop it.
pub fn answer(
    service: &Service,
    ids: &ConnectionIds,
    packet: &[u8],
    src: SocketAddr,
    now: Instant,
) -> Option<Vec<u8>> {
    let client = SocketAddr::new(src.ip().to_canonical(), src.port());
    let family = Family::of(&client);
    let error = |transaction_id, message: String| {
        service.counters().failure(Protocol::Udp);
        Some(
            Response::Error {
                transaction_id,
                message,
            }
            .encode(family),
        )
    };
    let request = match Request::decode(packet) {
        Ok(request) => request,
        Err(e) => {
            return answer_invalid(ids, packet, client, now, e).and_then(|(t, m)| error(t, m));
        }
    };
    let response = match request {
        Request::Connect { transaction_id } => {
            service.counters().udp_connect();
            Response::Connect {
                transaction_id,
                connection_id: ids.issue(client, now),
            }
        }
        Request::Announce(a) => {
            if !ids.check(client, a.connection_id, now) {
                return error(a.transaction_id, EXPIRED.to_owned());
            }
            let mut ip = client.ip();
            if service.config().announce.allow_ip_param
                && family == Family::V4
                && !a.ip.is_unspecified()
            {
                ip = IpAddr::V4(a.ip);
            }
            let announce = Announce {
                info_hash: a.info_hash,
                peer_id: a.peer_id,
                addr: SocketAddr::new(ip, a.port),
                event: a.event,
                uploaded: a.uploaded,
                downloaded: a.downloaded,
                left: a.left,
                // -1 (or any negative) asks for the default.
                numwant: u32::try_from(a.num_want).ok(),
            };
            let granted = match service.announce(&announce, Protocol::Udp, now) {
                Ok(granted) => granted,
                Err(refusal) => return error(a.transaction_id, refusal.0),
            };
            let reply = granted.reply;
            let peers = match family {
                Family::V4 => reply.peers_v4,
                Family::V6 => reply.peers_v6,
            };
            Response::Announce {
                transaction_id: a.transaction_id,
                interval: granted.interval,
                leechers: reply.incomplete,
                seeders: reply.complete,
                peers: peers.into_iter().map(|p| p.addr).collect(),
            }
        }
        Request::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        } => {
            if !ids.check(client, connection_id, now) {
                return error(transaction_id, EXPIRED.to_owned());
            }
            let counts = match service.scrape(&info_hashes, Protocol::Udp) {
                Ok(counts) => counts,
                Err(refusal) => return error(transaction_id, refusal.0),
            };
            Response::Scrape {
                transaction_id,
                stats: counts
                    .into_iter()
                    .map(|c| ScrapeStats {
                        seeders: c.complete,
                        completed: c.downloaded,
                        leechers: c.incomplete,
                    })
                    .collect(),
            }
        }
    };
    Some(response.encode(family))
}

/// The error message for a wrong or expired connection id.
pub const EXPIRED: &str = "connection id expired or unknown; connect again";

/// For a packet that does not decode: the transaction id and message of an error reply if
/// the packet carries a valid connection id for `client`, else `None` (drop it).
fn answer_invalid(
    ids: &ConnectionIds,
    packet: &[u8],
    client: SocketAddr,
    now: Instant,
    error: UdpError,
) -> Option<(u32, String)> {
    let connection_id = u64::from_be_bytes(packet.get(..8)?.try_into().ok()?);
    let transaction_id = request_transaction_id(packet)?;
    ids.check(client, connection_id, now)
        .then(|| (transaction_id, format!("invalid request: {error}")))
}
