//! Tiny in-process trackers for the announce tests: an HTTP server that answers each request
//! with bytes a closure chooses, and a UDP tracker whose replies a closure chooses (or drops).
//! Both record what they received, on 127.0.0.1 port 0.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rill_common::tracker::udp::{Family, Request as Packet, Response as PacketReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What a fake HTTP tracker answers to a request target (path and query).
pub type HttpHandler = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// An HTTP tracker on loopback.
pub struct FakeHttp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Request targets received, in order.
    pub targets: mpsc::UnboundedReceiver<String>,
    task: JoinHandle<()>,
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A whole HTTP/1.1 response with a body and `Content-Length`.
pub fn response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A 200 response with `body`.
pub fn ok(body: &[u8]) -> Vec<u8> {
    response(200, body)
}

impl FakeHttp {
    /// Starts the server; `handler` writes the raw response (status line onwards), or
    /// nothing to leave the request unanswered.
    pub async fn start(handler: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let handler: HttpHandler = Arc::new(handler);
        let (tx, targets) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Some(target) = read_target(&mut stream).await else {
                        return;
                    };
                    let _ = tx.send(target.clone());
                    let reply = handler(&target);
                    if reply.is_empty() {
                        // Never answer: hold the connection open.
                        std::future::pending::<()>().await;
                    }
                    let _ = stream.write_all(&reply).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        FakeHttp {
            base,
            targets,
            task,
        }
    }

    /// The next request target received (waits for it).
    pub async fn next_target(&mut self) -> String {
        self.targets.recv().await.expect("a request")
    }
}

/// Reads a request head and returns its target.
async fn read_target(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next()?;
    Some(line.split(' ').nth(1)?.to_owned())
}

/// A UDP tracker on loopback.
pub struct FakeUdp {
    /// Its address.
    pub addr: SocketAddr,
    /// Requests received (decoded) and their raw bytes, in order.
    pub received: Arc<Mutex<Vec<Packet>>>,
    /// Each request as it arrives, with the tokio time it arrived.
    pub arrivals: mpsc::UnboundedReceiver<(Packet, tokio::time::Instant)>,
    task: JoinHandle<()>,
}

impl Drop for FakeUdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUdp {
    /// Starts the tracker on `ip` (127.0.0.1 or ::1); `handler` chooses the replies.
    pub async fn start_on(
        ip: &str,
        mut handler: impl FnMut(&Packet, &[u8]) -> Vec<Vec<u8>> + Send + 'static,
    ) -> Self {
        let socket = UdpSocket::bind((ip, 0)).await.expect("bind");
        let addr = socket.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let (tx, arrivals) = mpsc::unbounded_channel();
        let log = received.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let raw = &buf[..len];
                let Ok(packet) = Packet::decode(raw) else {
                    continue;
                };
                log.lock().expect("lock").push(packet.clone());
                let _ = tx.send((packet.clone(), tokio::time::Instant::now()));
                for reply in handler(&packet, raw) {
                    let _ = socket.send_to(&reply, from).await;
                }
            }
        });
        FakeUdp {
            addr,
            received,
            arrivals,
            task,
        }
    }

    /// Starts the tracker on 127.0.0.1.
    pub async fn start(
        handler: impl FnMut(&Packet, &[u8]) -> Vec<Vec<u8>> + Send + 'static,
    ) -> Self {
        Self::start_on("127.0.0.1", handler).await
    }

    /// `udp://ADDR` plus `path`.
    pub fn url(&self, path: &str) -> String {
        format!("udp://{}{path}", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Packet> {
        self.received.lock().expect("lock").clone()
    }
}

/// A well-behaved reply to `packet`: connection id 42 (or `connection_id`), an announce
/// reply with `peers`, scrape counters 1/2/3.
pub fn answer(packet: &Packet, family: Family, peers: &[SocketAddr]) -> Vec<u8> {
    match packet {
        Packet::Connect { transaction_id } => PacketReply::Connect {
            transaction_id: *transaction_id,
            connection_id: 42,
        }
        .encode(family),
        Packet::Announce(a) => PacketReply::Announce {
            transaction_id: a.transaction_id,
            interval: 1800,
            leechers: 3,
            seeders: 4,
            peers: peers.to_vec(),
        }
        .encode(family),
        Packet::Scrape {
            transaction_id,
            info_hashes,
            ..
        } => PacketReply::Scrape {
            transaction_id: *transaction_id,
            stats: info_hashes
                .iter()
                .map(|_| rill_common::tracker::udp::ScrapeStats {
                    seeders: 1,
                    completed: 2,
                    leechers: 3,
                })
                .collect(),
        }
        .encode(family),
    }
}
