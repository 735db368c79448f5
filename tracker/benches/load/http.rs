//! The HTTP side: workers on raw `TcpStream`s, the warm-up and the measured phase.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::population::{Population, draw, http_request};
use crate::report::{Sample, run_phase};
use crate::{BenchResult, PEERS, REQUEST_TIMEOUT};

/// One HTTP connection's loop: announces until `deadline` or `budget` requests.
pub(crate) async fn http_worker(
    addr: SocketAddr,
    pop: Arc<Population>,
    seed: u64,
    peers: Option<Vec<usize>>,
    deadline: Instant,
    budget: u64,
) -> BenchResult<Sample> {
    let mut rng = StdRng::seed_from_u64(seed);
    let host = addr.to_string();
    let mut sample = Sample::default();
    let mut stream: Option<TcpStream> = None;
    // Until a server is seen closing after a reply, connections are reused.
    let mut keep_alive = true;
    let mut buf = Vec::with_capacity(4096);
    let warm_up = peers.is_some();
    let mut i = 0;
    loop {
        let peer = match &peers {
            Some(list) => match list.get(i) {
                Some(&p) => p,
                None => break,
            },
            None => {
                if i as u64 >= budget || Instant::now() >= deadline {
                    break;
                }
                rng.random_range(0..PEERS)
            }
        };
        i += 1;
        let peer = &pop.peers[peer];
        let request = http_request(&pop, peer, &draw(&mut rng, warm_up), &host);
        let start = Instant::now();
        let mut attempts = 0;
        let body = loop {
            attempts += 1;
            if attempts > 3 {
                return Err(format!("{addr}: no reply after reconnecting"));
            }
            if stream.is_none() {
                let s = TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                let _ = s.set_nodelay(true);
                sample.connects += 1;
                stream = Some(s);
            }
            let Some(s) = stream.as_mut() else { continue };
            let fresh = attempts > 1;
            let reply = tokio::time::timeout(REQUEST_TIMEOUT, exchange(s, &request, &mut buf))
                .await
                .map_err(|_| format!("{addr}: HTTP reply timed out"))?;
            match reply {
                Ok(Some((body, close))) => {
                    if close {
                        stream = None;
                    }
                    break body;
                }
                // Closed before any reply byte: the server does not keep connections.
                Ok(None) | Err(_) if !fresh => {
                    keep_alive = false;
                    stream = None;
                }
                Ok(None) => return Err(format!("{addr}: closed without a reply")),
                Err(e) => return Err(format!("{addr}: {e}")),
            }
        };
        let latency = start.elapsed();
        sample.last_reply = Some(Instant::now());
        if !keep_alive {
            stream = None;
        }
        if !warm_up {
            sample
                .latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            match compact_peers(&body) {
                Some(n) => sample.peers += n as u64,
                None => sample.failures += 1,
            }
        }
    }
    Ok(sample)
}

/// Writes one request and reads one reply: `Ok(None)` if the connection was closed before
/// any byte of it, else the body and whether the server closes the connection.
pub(crate) async fn exchange(
    s: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<(Vec<u8>, bool)>> {
    s.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            Err(e) if buf.is_empty() && e.kind() == ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(std::io::Error::other(
                "connection closed inside a reply head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("reply head too long"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("reply without Content-Length"))?;
    if length > 1 << 20 {
        return Err(std::io::Error::other("reply body too long"));
    }
    let close = head.starts_with("http/1.0") || head.contains("\nconnection: close");
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed inside a body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some((body, close)))
}

/// Announces every peer once (event=started) over HTTP to fill the swarms.
pub(crate) async fn warm_up(
    addr: SocketAddr,
    pop: &Arc<Population>,
    conns: usize,
) -> BenchResult<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        let list: Vec<usize> = (c..PEERS).step_by(conns).collect();
        let far = Instant::now() + Duration::from_secs(600);
        tasks.spawn(http_worker(
            addr,
            Arc::clone(pop),
            c as u64,
            Some(list),
            far,
            u64::MAX,
        ));
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The measured HTTP phase: `conns` keep-alive connections for `secs`. The requests follow
/// from `round` alone, so both trackers of a round get the same sequence.
pub(crate) async fn http_phase(
    addr: SocketAddr,
    pop: &Arc<Population>,
    conns: usize,
    secs: u64,
    round: u64,
) -> BenchResult<(Sample, Duration)> {
    run_phase(
        conns,
        secs,
        1000 + round * 10_000,
        |seed, deadline, budget| http_worker(addr, Arc::clone(pop), seed, None, deadline, budget),
    )
    .await
}

/// Peers in a compact bencoded announce reply (`5:peers<len>:`), or `None` if it has none.
pub(crate) fn compact_peers(body: &[u8]) -> Option<usize> {
    let at = body.windows(7).position(|w| w == b"5:peers")? + 7;
    let rest = body.get(at..)?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(rest.get(..colon)?).ok()?.parse().ok()?;
    Some(len / 6)
}
