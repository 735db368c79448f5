//! The UDP side (BEP 15): workers, one socket each, and the measured phase.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rill_common::tracker::udp::{self, Family, Request, Response};

use crate::population::{Population, draw};
use crate::report::{Sample, run_phase};
use crate::{BenchResult, NUMWANT, PEERS, REQUEST_TIMEOUT};

/// One UDP socket: connects once (again only if the tracker says the id expired), then
/// announces random peers, one request in flight.
pub(crate) async fn udp_worker(
    addr: SocketAddr,
    pop: Arc<Population>,
    seed: u64,
    deadline: Instant,
    budget: u64,
) -> BenchResult<Sample> {
    let mut rng = StdRng::seed_from_u64(seed);
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(addr).await.map_err(|e| e.to_string())?;
    let mut sample = Sample::default();
    let mut buf = vec![0u8; 2048];
    let mut connection_id = None;
    let mut transaction_id: u32 = rng.random();
    let mut sent = 0;
    while sent < budget && Instant::now() < deadline {
        transaction_id = transaction_id.wrapping_add(1);
        let Some(id) = connection_id else {
            let packet = Request::Connect { transaction_id }.encode();
            socket.send(&packet).await.map_err(|e| e.to_string())?;
            let got = tokio::time::timeout(REQUEST_TIMEOUT, socket.recv(&mut buf)).await;
            sample.connects += 1;
            if let Ok(Ok(len)) = got
                && let Ok(Response::Connect {
                    transaction_id: t,
                    connection_id: c,
                }) = Response::decode(&buf[..len], Family::V4)
                && t == transaction_id
            {
                connection_id = Some(c);
            } else if sample.connects > 20 {
                return Err(format!("{addr}: UDP connect keeps failing"));
            }
            continue;
        };
        let peer = &pop.peers[rng.random_range(0..PEERS)];
        let d = draw(&mut rng, false);
        let packet = Request::Announce(udp::AnnounceRequest {
            connection_id: id,
            transaction_id,
            info_hash: pop.hashes[peer.torrent],
            peer_id: peer.peer_id,
            downloaded: d.downloaded,
            left: d.left,
            uploaded: d.uploaded,
            event: d
                .started
                .then_some(rill_common::tracker::AnnounceEvent::Started),
            ip: Ipv4Addr::UNSPECIFIED,
            key: 0,
            num_want: NUMWANT as i32,
            port: peer.port,
            url_data: if pop.passkeys.is_some() {
                pop.path(peer).into_bytes()
            } else {
                Vec::new()
            },
        })
        .encode();
        let start = Instant::now();
        socket.send(&packet).await.map_err(|e| e.to_string())?;
        sent += 1;
        // Read until this transaction's reply (a late reply to a lost one is skipped).
        let reply = loop {
            match tokio::time::timeout_at((start + REQUEST_TIMEOUT).into(), socket.recv(&mut buf))
                .await
            {
                Err(_) => break None,
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(len)) => {
                    let r = Response::decode(&buf[..len], Family::V4);
                    match r {
                        Ok(Response::Announce {
                            transaction_id: t,
                            peers,
                            ..
                        }) if t == transaction_id => break Some(Ok(peers.len())),
                        Ok(Response::Error {
                            transaction_id: t,
                            message,
                        }) if t == transaction_id => break Some(Err(message)),
                        _ => {}
                    }
                }
            }
        };
        let latency = start.elapsed();
        if reply.is_some() {
            sample.last_reply = Some(Instant::now());
        }
        match reply {
            None => sample.lost += 1,
            Some(Ok(peers)) => {
                sample.peers += peers as u64;
                sample
                    .latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Some(Err(_)) => {
                // An expired or unknown connection id: connect again.
                sample.failures += 1;
                sample
                    .latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                connection_id = None;
            }
        }
    }
    Ok(sample)
}

/// The measured UDP phase: `conns` sockets for `secs`.
pub(crate) async fn udp_phase(
    addr: SocketAddr,
    pop: &Arc<Population>,
    conns: usize,
    secs: u64,
    round: u64,
) -> BenchResult<(Sample, Duration)> {
    run_phase(
        conns,
        secs,
        2000 + round * 10_000,
        |seed, deadline, budget| udp_worker(addr, Arc::clone(pop), seed, deadline, budget),
    )
    .await
}
